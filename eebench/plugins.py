"""User plugin files: a head (or policy, loss…) in one ``.py`` file anywhere, found through a config's ``plugins:`` key.

Importing the file registers what it defines (``@register_head("gated")``). Each file is imported once per process,
and the items it registered are remembered, so a run plan can record the file (and its hash) in the spec of exactly
the jobs that use them: editing the head reruns its jobs and nothing else.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from .errors import fail

_LOADED: dict[Path, tuple[str, dict[str, list[str]]]] = {}  # resolved file → (path as given, {kind: names})


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
