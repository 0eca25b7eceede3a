"""Names that become paths and command-line words (run, method, variant, stage, head, task) are checked against one
safe pattern, so that a config or a head name can neither plan files outside ``results/`` nor reach a shell."""
from __future__ import annotations

import re

from .errors import fail

SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")


def check_name(name, key: str) -> str:
    """``name`` unchanged when it is safe; otherwise the one-line error naming ``key``."""
    if not isinstance(name, str) or not SAFE.fullmatch(name) or ".." in name:
        raise fail(f"config error at {key}: {name!r} is not a safe name",
                   "use letters, digits and _ . + - (starting with a letter or digit, no '..', at most 100 "
                   "characters): names become paths under results/ and words on a command line")
    return name


def check_run_name(run) -> str:
    """A run name is one safe name, or ``<run>/<cell>`` for a grid cell."""
    for part in str(run).split("/"):
        check_name(part, "run")
    return run
