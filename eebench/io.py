"""Atomic writes and safe reads: a killed job never leaves a half-written result behind."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .errors import fail


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as err:
        raise fail(f"missing file {path}", "run the step that produces it (snakemake does this for you)") from err
    except json.JSONDecodeError as err:
        raise fail(f"{path} is not valid JSON ({err})", "delete it and rerun the step that produces it") from err


def save_torch(path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path) -> Any:
    if not Path(path).exists():
        raise fail(f"checkpoint {path} does not exist", "run the training step first (or check the path)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated zip, pickle errors, …
        raise fail(f"checkpoint {path} is unreadable or corrupt ({type(err).__name__})",
                   "delete it and rerun the training job that writes it") from err
