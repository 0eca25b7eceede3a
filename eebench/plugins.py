"""User plugin files: a head (or policy, loss…) in one ``.py`` file anywhere, found through a config's ``plugins:`` key.

Importing the file registers what it defines (``@register_head("gated")``). Each file is imported once per process,
and the items it registered are remembered, so a run plan can record the file (and its hash) in the spec of exactly
the jobs that use them: editing the head reruns its jobs and nothing else. An exception that a plugin's own code
raises later (a head's ``__init__`` or ``forward``) is told apart from eebench's bugs by the file it came from, and
reported in one line naming the item, the file and the exception.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from .errors import fail
from .loaded_plugins import LOADED as _LOADED, plugin_frame


def _registries():
    from .backbones import BACKBONES
    from .heads import HEADS
    from .policies import POLICIES
    from .training import LOSSES

    return {"heads": HEADS, "policies": POLICIES, "backbones": BACKBONES, "losses": LOSSES}


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_plugin_files(paths) -> dict[str, str]:
    """Import every plugin file (once); → {head name: file} for the heads they registered."""
    regs = _registries()
    for p in paths or []:
        path = Path(p)
        if not path.is_file():
            raise fail(f"plugin file {p} does not exist",
                       "fix the path under 'plugins:' (relative to the run directory)")
        key = path.resolve()
        if key in _LOADED:
            continue
        before = {k: set(r._items) for k, r in regs.items()}
        name = f"eebench_plugin_{path.stem}_{hashlib.sha1(str(key).encode()).hexdigest()[:8]}"
        spec = importlib.util.spec_from_file_location(name, key)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # a plugin's own bug: name the file and the error in one line
            sys.modules.pop(name, None)
            raise fail(f"plugin file {p} failed to import ({type(err).__name__}: {err})", "fix the file") from err
        _LOADED[key] = (str(p), {k: sorted(set(r._items) - before[k]) for k, r in regs.items()})
    return plugin_heads()


def plugin_heads() -> dict[str, str]:
    """{head name: its file as first given} (relative paths stay relative: results move with the run directory)."""
    return {h: given for given, items in _LOADED.values() for h in items.get("heads", [])}


def plugin_record(head_types, paths_by_head: dict[str, str]) -> list[dict[str, str]]:
    """The plugin files a method's heads come from, as its spec records them: path as given and content hash."""
    files = sorted({str(paths_by_head[t]) for t in head_types if t in paths_by_head})
    return [{"path": f, "sha256": file_hash(f)} for f in files]


def load_recorded(records) -> None:
    """A job's side: import the files its spec names, refusing one that changed since the run was planned."""
    for rec in records or []:
        if not Path(rec["path"]).is_file():
            raise fail(f"plugin file {rec['path']} does not exist", "restore it, or plan the run again")
        if file_hash(rec["path"]) != rec["sha256"]:
            raise fail(f"plugin file {rec['path']} changed since the run was planned",
                       "rerun snakemake (it reruns the jobs of that head)")
        load_plugin_files([rec["path"]])


def plugin_failure(err: BaseException) -> str | None:
    """The one-line report of ``err`` if plugin code raised it (its innermost frame in a plugin file), else None."""
    found = plugin_frame(err)
    if found is None:
        return None
    hit, given = found
    frame = hit.tb_frame
    text = str(err).strip().splitlines()
    return str(fail(f"{_item_of(frame, given)} in plugin file {given} raised {type(err).__name__}"
                    f"{': ' + text[0] if text else ''} (in {frame.f_code.co_name}, line {hit.tb_lineno})",
                    f"fix the file (`eebench check-head NAME --plugin {given}` runs a head on tiny models)"))


def _item_of(frame, given: str) -> str:
    """Which registered item the failing frame belongs to: its ``self``'s class, its function, or the file's only
    item; "code" when none fits."""
    regs = _registries()
    owner = frame.f_locals.get("self")
    mro = type(owner).__mro__ if owner is not None else ()
    for kind, reg in regs.items():
        for name, obj in reg._items.items():
            if obj in mro or getattr(obj, "__code__", None) is frame.f_code:
                return f"{reg.singular} {name!r}"
    items = [(kind, name) for _, (g, found) in _LOADED.items() if g == given for kind, names in found.items()
             for name in names]
    if len(items) == 1:
        return f"{regs[items[0][0]].singular} {items[0][1]!r}"
    return "code"
