"""The plugin files this process imported (``eebench.plugins``), and whether an exception was raised by one.

A floor below the plugin loader, which imports every registry: code that a registry calls (``heads.build_head``)
asks here whether an error came from a plugin's own code, without importing the loader.
"""
from __future__ import annotations

from pathlib import Path
from types import TracebackType

LOADED: dict[Path, tuple[str, dict[str, list[str]]]] = {}  # resolved file → (path as given, {kind: names})


def plugin_frame(err: BaseException) -> tuple[TracebackType, str] | None:
    """The innermost traceback entry of ``err`` inside a plugin file, and that file as first given; None where no
    plugin code raised it."""
    files = {str(key): given for key, (given, _) in LOADED.items()}
    tb, hit = err.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in files:
            hit = tb
        tb = tb.tb_next
    return None if hit is None else (hit, files[hit.tb_frame.f_code.co_filename])
