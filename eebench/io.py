"""Atomic writes and safe reads: a killed job never leaves a half-written result behind, and no file runs code.

A write that the system refuses (a full disk, a read-only mount, a folder without write permission) is one error
naming the file, and the file keeps its previous content. Files that belong together (a leaderboard's pages, a store
and its CSV mirror) are renamed into place only once every one of them is written.

Checkpoints, resume files and token-cache entries are torch zip files whose non-tensor parts are plain data (dicts,
lists, strings, numbers); they are read with torch's weights-only unpickler, which builds tensors and containers and
nothing else. A file that needs the full unpickler (a pickled object whose ``__reduce__`` could run code) is refused.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .errors import EEBenchError, fail


WRITE_FIXES = {
    errno.ENOSPC: "free space on that disk, then rerun",
    errno.EDQUOT: "free space within your disk quota, then rerun",
    errno.EROFS: "that filesystem is mounted read-only: run from a writable folder",
    errno.EACCES: "give yourself access to it and its folder (chmod/chown), or run from a folder you own",
    errno.EPERM: "give yourself access to it and its folder (chmod/chown), or run from a folder you own",
}


def write_failed(path, err: OSError, verb: str = "write") -> EEBenchError:
    """One line for a file operation the system refused: the file, the system's reason and what to do."""
    reason = err.strerror or str(err) or type(err).__name__
    return fail(f"cannot {verb} {path} ({reason})",
                WRITE_FIXES.get(err.errno, "check that its folder exists, is writable and has free space"))


@contextmanager
def atomic_paths(paths):
    """Yield temporary paths beside ``paths``; rename them all into place only if the block succeeds (so a failure
    while any of them is written leaves every previous file as it was). A refused write is one error naming its
    file."""
    paths = [Path(p) for p in paths]
    tmps: list[Path] = []
    try:
        for path in paths:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            except OSError as err:
                raise write_failed(path, err) from err
            os.close(fd)
            tmps.append(Path(tmp))
        try:
            yield tmps
        except OSError as err:  # the block only writes its temporary files
            failed = {str(t): p for t, p in zip(tmps, paths)}.get(str(err.filename))
            raise write_failed(failed or ", ".join(map(str, paths)), err) from err
        mode = 0o666 & ~_umask()  # mkstemp creates 0600; the result gets the mode any new file gets under the umask
        for tmp, path in zip(tmps, paths):
            try:
                if tmp.exists():
                    os.chmod(tmp, mode)
                os.replace(tmp, path)
            except OSError as err:
                raise write_failed(path, err) from err
    finally:
        for tmp in tmps:
            if os.path.exists(tmp):
                os.unlink(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    with atomic_paths([path]) as (tmp,):
        yield tmp


@contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a new empty folder beside ``path``; when the block succeeds it takes ``path``'s place (a previous folder
    there is moved aside, then removed), so a reader finds the previous folder or the whole new one, never a half
    written one. A failure removes the new folder and leaves the previous one as it was."""
    import shutil

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as err:
        raise write_failed(path, err) from err
    try:
        try:
            yield tmp
        except OSError as err:
            raise write_failed(err.filename or path, err) from err
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        try:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
            if path.exists():
                os.replace(path, old)
            try:
                os.replace(tmp, path)
            except OSError:
                if old.exists():
                    os.replace(old, path)
                raise
        except OSError as err:
            raise write_failed(path, err) from err
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def copy_file(src, dst) -> None:
    """``src``'s bytes to ``dst``, atomically."""
    data = Path(src).read_bytes()
    with atomic_path(dst) as tmp:
        tmp.write_bytes(data)


def _umask() -> int:
    """The process umask (reading it means setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_texts(files: dict) -> None:
    """Several text files as one set ({path: text}): all of them, or (on a failure) none."""
    with atomic_paths(list(files)) as tmps:
        for tmp, text in zip(tmps, files.values()):
            with writing(tmp):
                tmp.write_text(text)


@contextmanager
def writing(tmp):
    """A write error while ``tmp`` is written names it (a failed ``write`` call, pyarrow's too, carries no file name),
    so that a set of files reports the one that failed."""
    try:
        yield
    except OSError as err:
        if err.filename is None:
            err.filename = str(tmp)
        raise


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


class _Sink:
    """A file whose write errors are kept: torch's zip writer reports one as a RuntimeError that no longer says what
    happened (a full disk reads "unexpected pos 64 vs 0")."""

    def __init__(self, fh):
        self.fh, self.error = fh, None

    def write(self, data) -> int:
        try:
            return self.fh.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.fh.flush()


def save_torch(path, obj: Any) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        sink = _Sink(fh)
        try:
            torch.save(plain(obj), sink)
        except RuntimeError as err:
            if sink.error is None:
                raise
            raise sink.error from err  # a full disk: one line naming the file (atomic_path)


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
