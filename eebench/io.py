"""Atomic writes and safe reads: a killed job never leaves a half-written result behind, and no file runs code.

Checkpoints, resume files and token-cache entries are torch zip files whose non-tensor parts are plain data (dicts,
lists, strings, numbers); they are read with torch's weights-only unpickler, which builds tensors and containers and
nothing else. A file that needs the full unpickler (a pickled object whose ``__reduce__`` could run code) is refused.
"""
from __future__ import annotations

import json
import os
import pickle
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
        if os.path.exists(tmp):  # mkstemp creates 0600; the result gets the mode any new file gets under the umask
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    """The process umask (reading it means setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


def plain(obj: Any) -> Any:
    """``obj`` as tensors and plain containers only, so that the weights-only reader can load it back: numpy scalars
    become Python numbers, numpy arrays become tensors; anything else that is not plain data is a bug here."""
    if isinstance(obj, torch.Tensor) or obj is None:
        return obj
    for base in (bool, int, float, str, bytes):  # subclasses (torch.__version__ is one of str) as their base type
        if isinstance(obj, base):
            return obj if type(obj) is base else base(obj)
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, (torch.dtype, torch.device)):  # the weights-only reader builds both
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint: only tensors and plain data")


def save_torch(path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        torch.save(plain(obj), tmp)


def load_torch(path) -> Any:
    if not Path(path).exists():
        raise fail(f"checkpoint {path} does not exist", "run the training step first (or check the path)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, garbage bytes, … or a pickled object the weights-only reader refused
        if isinstance(err, pickle.UnpicklingError) and "GLOBAL" in str(err):
            raise fail(f"{path} needs pickle to load (it holds Python objects, which could run code), refused",
                       "load only files written by eebench; re-save a foreign checkpoint as plain tensors") from err
        raise fail(f"checkpoint {path} is unreadable or corrupt ({type(err).__name__})",
                   "delete it and rerun the training job that writes it") from err
