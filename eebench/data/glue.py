"""GLUE, every task: ``dataset: {name: glue, task: sst2, root: ... | hub: nyu-mll/glue, revision: ...}``.

Sources: the HF hub (``nyu-mll/glue``, one config per task, revision pinnable); a local folder in the original GLUE
layout (``train.tsv``/``dev.tsv``, as the GLUE download script writes them; MNLI ``dev_matched.tsv`` and
``dev_mismatched.tsv``); the sentence-level SST files (``stsa.binary.{train,dev,test}``, ``<label> <sentence>``); a
``save_to_disk`` folder; parquet files per split. Columns and labels follow the hub's names and label order, so every
source yields the same task.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import torch

from ..errors import fail
from . import hf
from .base import DATASETS
from .glue_tasks import HUB_CONFIG, TASKS, GlueTask
from .text import TextSource, TextSplit


ALIASES = {"sentence": ("text", "content")}  # sst2_glue's header says text; awake020's labeled test says content
STSA = "stsa.binary"
LOCAL_FORMATS = ("a GLUE folder (train.tsv, dev.tsv), the sentence-level SST files (stsa.binary.train/dev/test), a "
                 "save_to_disk folder or parquet files per split")


def read_tsv(path: Path, task: GlueTask, name: str) -> TextSplit:
    """One GLUE tsv. Quotes are text (GLUE's files are not CSV-quoted), so fields split on tabs only.

    Read as utf-8-sig because MRPC's original GLUE files begin with a byte-order mark, which plain utf-8 would
    leave glued to the first header name."""
    csv.field_size_limit(sys.maxsize)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    except UnicodeDecodeError as e:
        line = 1 + path.read_bytes()[:e.start].count(b"\n")
        raise fail(f"{path}:{line}: not UTF-8 text ({e.reason})", "re-save the file as UTF-8") from None
    if not rows:
        raise fail(f"{path} is empty", "restore the split from the original GLUE download") from None
    if task.tsv_positions:  # headerless (CoLA)
        header, body = None, rows
        text_at, label_at = [task.tsv_positions[0]], task.tsv_positions[1]
    else:
        header, body = rows[0], rows[1:]
        wanted = task.tsv_columns or task.columns
        text_at = [_find(header, c, path) for c in wanted]
        label_at = _find(header, task.tsv_label, path)
    texts, labels = [], []
    for i, row in enumerate(body):
        if not row:
            continue
        try:
            texts.append(tuple(row[j].strip() for j in text_at))
            labels.append(row[label_at].strip())
        except IndexError:
            raise fail(f"{path}: row {i + 2} has {len(row)} fields, fewer than the columns of {name}",
                       "check that the file is tab-separated in the GLUE layout") from None
    return TextSplit(texts, _labels(labels, task, f"{path}"))


def _find(header: list[str], column: str, path: Path) -> int:
    for c in (column, *ALIASES.get(column, ())):
        if c in header:
            return header.index(c)
    raise fail(f"{path} has no column {column!r} (header: {', '.join(header)})",
               "use the GLUE files' own headers (or the hub's column names)")


def _is_float(v) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _labels(raw: list, task: GlueTask, where: str) -> torch.Tensor:
    if task.labels is None:
        try:  # a score such as "n/a" is a broken row, named here rather than as float()'s traceback
            return torch.tensor([float(v) for v in raw], dtype=torch.float32)
        except ValueError:
            bad = next(i for i, v in enumerate(raw) if not _is_float(v))
            raise fail(f"{where}: data row {bad + 1} has score {raw[bad]!r}, not a number",
                       "give every row a numeric similarity score or drop the row") from None
    out = []
    for v in raw:
        if isinstance(v, str) and not v.lstrip("-").isdigit():
            if v not in task.labels:
                raise fail(f"{where}: label {v!r} is not one of {', '.join(task.labels)}", "check the task name")
            out.append(task.labels.index(v))
        else:
            out.append(int(v))
    labels = torch.tensor(out, dtype=torch.long)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(task.labels)):
        raise fail(f"{where}: labels outside 0..{len(task.labels) - 1} (an unlabelled test split has -1)",
                   "evaluate on a labelled split (eval_split: validation)")
    return labels


def read_stsa(path: Path, task: GlueTask) -> TextSplit:
    rows = [r for r in path.read_text(encoding="utf-8-sig").splitlines() if r.strip()]
    return TextSplit([(r[2:].strip(),) for r in rows], _labels([r[:1] for r in rows], task, str(path)))


def _from_hub_dict(dd, task: GlueTask, split: str, where: str) -> TextSplit:
    if split not in dd:
        raise fail(f"{where} has no split {split!r} (splits: {', '.join(dd.keys())})", "set train_split/eval_split")
    ds = dd[split]
    missing = [c for c in (*task.columns, "label") if c not in ds.column_names]
    if missing:
        raise fail(f"split {split!r} of {where} lacks column(s) {missing} (columns: {', '.join(ds.column_names)})",
                   "give the columns the hub's GLUE names")
    cols = [ds[c] for c in task.columns]
    return TextSplit(list(zip(*cols)), _labels(list(ds["label"]), task, f"split {split!r} of {where}"))


class GlueDataset:
    """The registered ``glue`` dataset: options → ``TextSource``."""

    description = "GLUE (every task; local GLUE/SST folder, save_to_disk, parquet or the hub nyu-mll/glue)"

    def __call__(self, task: str = "sst2", root: str | None = None, hub: str = "nyu-mll/glue",
                 revision: str | None = None, train_split: str = "train", eval_split: str | None = None,
                 max_seq_length: int = 128, limit_train: int | None = None, limit_eval: int | None = None,
                 bucket: int = 50, cache_dir: str | None = None, fixture: dict | None = None) -> TextSource:
        if task not in TASKS:
            raise fail(f"unknown GLUE task {task!r}", f"use one of: {', '.join(TASKS)}")
        if fixture is not None:  # a smoke run's stand-in, written at root as hub-style parquet (data/fixtures.py)
            from .fixtures import ensure_text_fixture

            ensure_text_fixture(root, task, fixture.get("train", 8), fixture.get("eval", 6))
        spec = TASKS[task]
        eval_split = eval_split or spec.eval_split
        if root is not None:
            where, train, test = self._local(Path(root).expanduser(), task, spec, train_split, eval_split, cache_dir)
        else:
            config = HUB_CONFIG.get(task, task)
            dd = hf.open_hub(f"glue/{task}", hub, config, revision, cache_dir)
            where = f"hub {hub} ({config})" + (f" @ {revision}" if revision else "")
            train, test = (_from_hub_dict(dd, spec, s, where) for s in (train_split, eval_split))
        train, test = train.head(limit_train), test.head(limit_eval)
        scale = f"GLUE {task} from {where}: {len(train)} train / {len(test)} {eval_split}"
        return TextSource(train, test, spec.num_classes, scale, spec.metric, max_seq_length, bucket, cache_dir)

    def _local(self, path: Path, task, spec, train_split, eval_split, cache_dir):
        if not path.exists():
            raise fail(f"dataset glue/{task}: root {path} does not exist", f"point root: at {LOCAL_FORMATS}")
        if (path / f"{STSA}.train").exists():
            names = {"train": "train", "validation": "dev", "dev": "dev", "test": "test"}
            files = [path / f"{STSA}.{names.get(s, s)}" for s in (train_split, eval_split)]
            for f in files:
                if not f.exists():
                    raise fail(f"dataset glue/{task}: {f} does not exist", "use splits train, dev (validation), test")
            return f"sentence-level SST files in {path}", *(read_stsa(f, spec) for f in files)
        if (path / "train.tsv").exists():
            names = {"validation": spec.tsv_eval, "validation_matched": "dev_matched",
                     "validation_mismatched": "dev_mismatched"}
            files = [path / f"{names.get(s, s)}.tsv" for s in (train_split, eval_split)]
            for f in files:
                if not f.exists():
                    raise fail(f"dataset glue/{task}: {f} does not exist", f"point root: at the {task} GLUE folder")
            return f"GLUE tsv folder {path}", *(read_tsv(f, spec, task) for f in files)
        if hf.is_saved(path):
            where = f"save_to_disk folder {path}"
            dd = hf.open_saved(path)
        elif parquet := hf.parquet_files(path):
            where = f"parquet files in {path}"
            dd = hf.open_parquet(parquet, cache_dir)
        else:
            raise fail(f"dataset glue/{task}: root {path} holds no dataset in a known layout",
                       f"point root: at {LOCAL_FORMATS}")
        return where, *(_from_hub_dict(dd, spec, s, where) for s in (train_split, eval_split))


DATASETS.register("glue")(GlueDataset())
