"""The command line's surface, held fixed: every command path, option, default, nargs, choices, required flag and help
text of ``build_parser()`` against the snapshot in fixtures/cli_surface.json.

The snapshot records what a user and a script see, so a refactoring of the command line that changes any of it fails
here. After a deliberate change of the surface, rewrite the snapshot from the code and review its diff:

    EEBENCH_WRITE_CLI_SURFACE=1 pytest tests/test_cli_surface.py

The walk records argparse's own fields rather than ``format_help()``, whose layout differs between Python versions.
"""
import argparse
import json
import os
from pathlib import Path

from eebench.cli import build_parser

FIXTURE = Path(__file__).parent / "fixtures" / "cli_surface.json"


def _plain(value):
    """A JSON value for a default, a const or set_defaults entry: a function or type by its name, a leading underscore
    dropped (a converter that moves from one module's private helper to a shared module is the same surface)."""
    if callable(value):
        return value.__name__.lstrip("_")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _action(action: argparse.Action) -> dict:
    record = {"option_strings": action.option_strings, "dest": action.dest, "action": type(action).__name__,
              "nargs": action.nargs, "const": _plain(action.const), "default": _plain(action.default),
              "type": _plain(action.type), "required": action.required, "help": action.help,
              "metavar": action.metavar}
    if isinstance(action, argparse._SubParsersAction):
        record["choices"] = list(action.choices)
    else:
        record["choices"] = None if action.choices is None else list(action.choices)
    return record


def surface(parser: argparse.ArgumentParser, path: str = "eebench", help_text: str | None = None) -> dict:
    """Command path → its parser's record, for ``parser`` and every parser below it."""
    record = {"prog": parser.prog, "help": help_text, "description": parser.description, "epilog": parser.epilog,
              "usage": parser.usage, "formatter_class": parser.formatter_class.__name__,
              "set_defaults": _plain(dict(sorted(parser._defaults.items()))),
              "arguments": [_action(a) for a in parser._actions],
              "mutually_exclusive": [[a.dest for a in g._group_actions] for g in parser._mutually_exclusive_groups]}
    out = {path: record}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                out.update(surface(child, f"{path} {name}", helps.get(name)))
    return out


def test_the_command_line_surface_is_the_snapshot():
    now = surface(build_parser())
    if os.environ.get("EEBENCH_WRITE_CLI_SURFACE"):
        FIXTURE.parent.mkdir(exist_ok=True)
        FIXTURE.write_text(json.dumps(now, indent=1, ensure_ascii=False) + "\n")
    expected = json.loads(FIXTURE.read_text())
    assert list(now) == list(expected), "the command paths changed"
    for path in expected:
        assert now[path] == expected[path], f"`{path}` changed"


def test_the_walk_sees_nested_commands_and_their_fields():
    """The records read every level (``board make``), a mutually exclusive group, choices and set_defaults."""
    s = surface(build_parser())
    assert "eebench board make" in s and "eebench list" in s
    make = s["eebench board make"]
    assert make["mutually_exclusive"] == [["cores", "profile"]]
    assert make["set_defaults"]["passthrough"] == "snakemake_args"
    what = next(a for a in s["eebench list"]["arguments"] if a["dest"] == "what")
    assert "heads" in what["choices"]
    assert s["eebench train"]["set_defaults"] == {"argv": None, "func": "cmd_train"}
