"""The docs say only what the code does: every ``eebench`` command and flag they name parses, every config key they
name is declared in the config schema, and every relative link and image resolves.

What the checker reads (docs/README.md states the same conventions for writers):

- commands: ``eebench <command> [<subcommand>] [--flag …]`` in a code span or on a code block's line, at the start
  of a shell command (after a ``$`` prompt, ``&&``, ``;`` or ``|``); its flags run up to the end of the command (a
  shell separator, ``--`` before Snakemake's own arguments, or a ``#`` comment). Each flag must be an option of
  that command, and the words that are not options or their values no more than its positional arguments take
  (``eebench plan config/paper.yaml`` is wrong: plan reads ``--configfile``). A word in angle brackets
  (``eebench <command>``) is a placeholder and ends the check;
- config keys: dotted, at the start of a code span, first part a top-level key of the schema: ``latency.runtime``,
  ``training.jobs``, ``report.retention_reference: own``. Every part must be declared (``properties``), or be a name
  in a mapping whose values the schema describes (``additionalProperties``: ``resources.train``). A file name such
  as ``leaderboard.md`` is not a key;
- links: inline Markdown links and images outside code. A relative target must exist; ``#anchor`` must name a
  heading of the target page (GitHub's slugs). A file the DAG writes (``reports/<run>/<file>``) counts as existing
  when a config in config/ has that run and the workflow's rules declare that file for every run.

No training and no Snakemake: the parser, the schema and the files are read as they are.
"""
from __future__ import annotations

import argparse
import re
import shlex
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

SHELL_STOPS = {"&&", "||", ";", "|", "--", ">", ">>", "2>&1", "&"}
SHELL_STARTS = {"$", "&&", "||", ";", "|", "("}
FILE_EXTS = {"md", "csv", "html", "tex", "png", "pdf", "json", "yaml", "yml", "parquet", "npz", "npy", "pt", "py",
             "zip", "log", "onnx", "txt", "tsv", "smk", "sh", "toml"}
KEY_AT_START = re.compile(r"([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+)(?=$|[\s:=,)])")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


# ---------------------------------------------------------------------------------------------- reading a page

def split_page(text: str) -> tuple[list[str], list[str], str]:
    """(code block lines, code spans, prose): the prose is the page without its code blocks and code spans."""
    block_lines, prose_lines, fence = [], [], None
    for line in text.splitlines():
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            else:
                block_lines.append(line)
            continue
        prose_lines.append(line)
    prose = "\n".join(prose_lines)
    spans = [m.group(2) for m in re.finditer(r"(`+)(.+?)\1", prose, flags=re.S)]
    prose = re.sub(r"(`+)(.+?)\1", " ", prose, flags=re.S)
    return join_continuations(block_lines), [" ".join(s.split()) for s in spans], prose


def join_continuations(lines: list[str]) -> list[str]:
    out, held = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            held += line.rstrip()[:-1] + " "
        else:
            out.append(held + line)
            held = ""
    return out + ([held] if held else [])


def without_comment(text: str) -> str:
    """``text`` up to a shell comment: a ``#`` outside quotes that starts a word (``a#b`` is one word, as in bash)."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i]
    return text


def words(text: str) -> list[str]:
    text = without_comment(text)
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote in pasted output: plain words serve
        return text.split()


def eebench_commands(text: str) -> list[list[str]]:
    """The words after each ``eebench`` that starts a shell command in ``text``, up to the command's end."""
    toks = words(text)
    found = []
    for i, tok in enumerate(toks):
        if tok == "eebench" and (i == 0 or toks[i - 1] in SHELL_STARTS):
            rest = []
            for t in toks[i + 1:]:
                if t in SHELL_STOPS or t.startswith(">"):
                    break
                rest.append(t)
            found.append(rest)
    return found


# ---------------------------------------------------------------------------------------------- the three checks

@cache
def parser() -> argparse.ArgumentParser:
    from eebench.cli import build_parser

    return build_parser()


def subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return None


def check_command(rest: list[str]) -> list[str]:
    """Problems of one ``eebench`` command line: an unknown (sub)command, a flag its parser does not have, or more
    words than its positional arguments take."""
    p, name, i = parser(), "eebench", 0
    while (subs := subcommands(p)) is not None and i < len(rest) and not rest[i].startswith("-"):
        word = rest[i]
        if word.startswith("<"):
            return []
        if word not in subs:
            return [f"`{name} {word}`: no such command (choices: {', '.join(sorted(subs))})"]
        p, name, i = subs[word], f"{name} {word}", i + 1
    problems, free, toks, unsure = [], [], [t.strip("[],") for t in rest[i:]], False
    while toks:
        tok = toks.pop(0)
        if tok.startswith("<"):
            return problems
        if not is_flag(tok):
            free.append(tok)
            continue
        flag = tok.split("=")[0]
        action = p._option_string_actions.get(flag)
        if action is None:
            problems.append(f"`{name} {flag}`: no such option")
            unsure = True  # what it would take is unknown, so the words after it are not counted as arguments
        elif "=" not in tok:  # the words the option takes are its values, not the command's arguments
            takes = words_taken(action.nargs)
            while takes and toks and not is_flag(toks[0]):
                toks.pop(0)
                takes -= 1
    if not unsure and len(free) > positional_capacity(p):
        problems.append(f"`{name} {' '.join(free)}`: takes at most {positional_capacity(p)} argument(s) besides its "
                        f"options")
    return problems


def is_flag(tok: str) -> bool:
    return len(tok) > 1 and tok.startswith("-") and not re.match(r"-[\d.]", tok)


def words_taken(nargs) -> float:
    """How many words an argument with this ``nargs`` takes at most (a flag: 0, one value: 1, * + ...: any)."""
    if isinstance(nargs, int):
        return nargs
    return 1 if nargs in (None, "?") else float("inf")


def positional_capacity(p: argparse.ArgumentParser) -> float:
    """How many words a command takes besides its options: its positionals'."""
    return sum(words_taken(a.nargs) for a in p._actions
               if not a.option_strings and not isinstance(a, argparse._SubParsersAction))


@cache
def schema() -> dict:
    return yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def config_key(span: str) -> str | None:
    """The dotted config key a code span starts with, or None (a file name, a module path, anything else)."""
    m = KEY_AT_START.match(span)
    if not m:
        return None
    parts = m.group(1).split(".")
    if parts[0] not in schema()["properties"] or parts[-1] in FILE_EXTS:
        return None
    return m.group(1)


def key_declared(key: str) -> bool:
    node = schema()
    for part in key.split("."):
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            node = node["items"]
        props = node.get("properties") or {}
        extra = node.get("additionalProperties")
        if part in props:
            node = props[part]
        elif isinstance(extra, dict):
            node = extra
        else:
            return False
    return True


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fence = not fence
        m = None if fence else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = slug(m.group(1))
            out.add(f"{s}-{seen[s]}" if s in seen else s)
            seen[s] = seen.get(s, 0) + 1
    return out


@cache
def declared_report_files() -> set[str]:
    """File names every run's report writes, as the workflow's rules declare them (``reports/{run}/<file>``)."""
    text = "\n".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))
    return set(re.findall(r"reports/\{run\}/([\w.-]+\.\w+)", text))


@cache
def config_runs() -> set[str]:
    return {(yaml.safe_load(p.read_text()) or {}).get("run") for p in (ROOT / "config").glob("*.yaml")}


def check_link(page: Path, target: str) -> list[str]:
    if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
        return []
    path_part, _, anchor = target.partition("#")
    dest = (page.parent / path_part).resolve() if path_part else page
    if not dest.exists():
        rel = dest.relative_to(ROOT).parts if dest.is_relative_to(ROOT) else ()
        generated = (len(rel) == 3 and rel[0] == "reports" and rel[1] in config_runs()
                     and rel[2] in declared_report_files())
        return [] if generated else [f"link `{target}`: {path_part} does not exist"]
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        return [f"link `{target}`: no heading with anchor #{anchor} in {dest.name}"]
    return []


def problems(page: Path, text: str) -> list[str]:
    """Everything ``text`` (the content of ``page``) names that the code, the schema or the files do not have."""
    blocks, spans, prose = split_page(text)
    out = []
    for fragment in blocks + spans:
        for rest in eebench_commands(re.sub(r"^\s*\$\s+", "", fragment)):
            out += check_command(rest)
    for span in spans:
        key = config_key(span)
        if key and not key_declared(key):
            out.append(f"config key `{key}` is not in workflow/schemas/config.schema.yaml")
    for m in LINK.finditer(prose):
        out += check_link(page, m.group(1))
    return out


# ---------------------------------------------------------------------------------------------- the tests

def test_the_docs_exist():
    assert (ROOT / "README.md").is_file() and len(PAGES) > 5


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_names_only_what_exists(page):
    assert problems(page, page.read_text(encoding="utf-8")) == []


def test_readme_is_short_and_keeps_the_two_ci_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    ci = (ROOT / ".ci/run").read_text()
    for command in ('pip install -e ".[all]" && snakemake --cores all', 'pip install -e ".[all,dev]" && pytest'):
        assert f"```bash\n{command}\n```" in text, command
        assert f"\n{command}\n" in ci, command


def test_every_docs_page_is_on_the_readme_map():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in DOCS.glob("*.md"):
        assert f"(docs/{page.name})" in readme, page.name


def test_the_checker_catches_what_does_not_exist():
    """One fake of each kind (a command, a flag, a surplus argument, a config key, a link, an anchor, an image),
    beside real counterparts, which pass."""
    page = DOCS / "fake.md"
    fake = (
        "Run `eebench frobnicate` or `eebench board frob`, then\n\n"
        "```bash\n$ eebench plan --configfile config/paper.yaml --frobnicate -v\n"
        "eebench plan config/paper.yaml   # plan reads its config through --configfile only\n"
        "eebench latency --checkpoint C --policy P \\\n    --frob-level 2   # a flag on a continued line\n```\n\n"
        "Set `latency.frobnicate` and `training.jobs.deeper`; see [the page](nothere.md),\n"
        "[a heading](configs.md#no-such-heading) and ![a figure](../reports/default/fig9.png).\n"
    )
    found = problems(page, fake)
    expected = ["`eebench frobnicate`: no such command", "`eebench board frob`: no such command",
                "`eebench plan --frobnicate`: no such option", "`eebench plan config/paper.yaml`: takes at most 0",
                "`eebench latency --frob-level`: no such option",
                "config key `latency.frobnicate`", "config key `training.jobs.deeper`",
                "link `nothere.md`", "link `configs.md#no-such-heading`", "link `../reports/default/fig9.png`"]
    for e in expected:
        assert any(f.startswith(e) for f in found), (e, found)
    assert len(found) == len(expected), found
    real = (
        "Run `eebench board make sst2-minilm --cores 2` or `eebench --help`.\n\n"
        "```console\n$ eebench plan --configfile config/paper.yaml -v && eebench smoke config/tiny.yaml -- -n\n"
        "eebench compare --head gated --board sst2-minilm \\\n    --protocol frozen   # joint also\n```\n\n"
        "Set `latency.runtime`, `resources.train`, `report.operating_point.rule: fixed`; `leaderboard.md` is a file.\n"
        "See [configs](configs.md#smoke-mode), [the schema](../workflow/schemas/config.schema.yaml) and\n"
        "![Figure 1](../reports/default/fig1_tradeoff.png).\n"
    )
    assert problems(page, real) == []


def test_slugs_follow_the_code_host():
    assert slug("Smoke mode") == "smoke-mode"
    assert slug("Against a board, and `reproduce`") == "against-a-board-and-reproduce"
    assert slug("COST-EFF (slender multi-exit language models)") == "cost-eff-slender-multi-exit-language-models"
