"""HF ``datasets``: a hub dataset (name, config, revision), a ``save_to_disk`` folder, or parquet files per split.

Offline the hub is never retried (``eebench.hub``): the HF cache still serves what it holds, and a miss is one error
that says how to provide the data locally.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from ..errors import fail
from ..hub import hub_call
from .images import ImageSplit, Loaded, choose_splits

IMAGE_COLUMNS = ("img", "image")  # cifar10/100 name it img; food101, imagenet-1k image
LABEL_COLUMNS = ("fine_label", "label", "labels")  # cifar100's fine labels (100 classes) before its coarse ones
LOCAL_FORMATS = ("an ImageFolder (<root>/train/<class>/*.jpg and <root>/test/<class>/*.jpg), a save_to_disk folder "
                 "or parquet files per split")


def _datasets():
    try:
        import datasets
    except ImportError as err:
        raise fail(f"this dataset needs the HF datasets package ({err})", "pip install 'datasets>=3'") from err
    return datasets


def open_hub(dataset: str, hub: str, config: str | None, revision: str | None, cache_dir: str | None):
    """``datasets.load_dataset(hub, config, revision=...)`` → DatasetDict, or one actionable error."""
    datasets = _datasets()
    where = hub + (f" ({config})" if config else "") + (f" @ {revision}" if revision else "")
    offline = False
    try:
        with hub_call() as offline:
            return datasets.load_dataset(hub, config, revision=revision, cache_dir=cache_dir)
    except Exception as err:  # noqa: BLE001 — any hub failure ends in the same advice
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        fix = (f"download it where there is network and save it (datasets.load_dataset({hub!r}).save_to_disk(DIR)), "
               f"or provide {LOCAL_FORMATS}, and set root: DIR in the dataset section")
        if offline and isinstance(err, (ConnectionError, FileNotFoundError)):
            raise fail(f"dataset {dataset!r}: hub dataset {where} is not in the local HF cache and the hub cannot be "
                       f"reached (offline: HF_HUB_OFFLINE set or no network)", fix) from err
        raise fail(f"dataset {dataset!r}: could not load hub dataset {where} ({reason})",
                   f"check the name/config/revision (gated sets need `hf auth login`), or {fix}") from err


def is_saved(root: Path) -> bool:
    return (root / "dataset_dict.json").exists() or (root / "state.json").exists()


def open_saved(root: Path):
    dd = _datasets().load_from_disk(str(root))
    if not hasattr(dd, "keys"):
        raise fail(f"{root} holds a single saved Dataset, not a DatasetDict of splits",
                   "save a DatasetDict({'train': ..., 'test': ...}) with save_to_disk")
    return dd


def parquet_files(root: Path) -> dict[str, list[str]]:
    """split → files. A file's split is its folder under ``root`` (``data/`` skipped, as on the hub), else its name up
    to the first ``-`` or ``.`` (``train.parquet``, ``train-00000-of-00002.parquet``)."""
    if not root.is_dir():
        return {}
    out: dict[str, list[str]] = {}
    for f in sorted(root.rglob("*.parquet")):
        parts = f.relative_to(root).parts
        if parts[0] == "data" and len(parts) > 1:
            parts = parts[1:]
        split = parts[0] if len(parts) > 1 else re.split(r"[-.]", f.stem)[0]
        out.setdefault(split, []).append(str(f))
    return out


def open_parquet(files: dict[str, list[str]], cache_dir: str | None):
    return _datasets().load_dataset("parquet", data_files=files, cache_dir=cache_dir)


def load_splits(dd, train_split: str, eval_split: str | None, image_column: str | None, label_column: str | None,
                where: str) -> Loaded:
    """The chosen splits of a DatasetDict as ``ImageSplit``s; labels are read once, images on demand."""
    datasets = _datasets()
    train_name, eval_name = choose_splits(list(dd.keys()), train_split, eval_split, where)
    train = dd[train_name]
    image_col = _column(train, image_column, IMAGE_COLUMNS, datasets.Image, "image", where)
    label_col = _column(train, label_column, LABEL_COLUMNS, datasets.ClassLabel, "label", where)
    names = getattr(train.features[label_col], "names", None)
    splits = []
    for split_name in (train_name, eval_name):
        ds = dd[split_name]
        if label_col not in ds.column_names or image_col not in ds.column_names:
            raise fail(f"split {split_name!r} of {where} lacks column {image_col!r} or {label_col!r}",
                       "give every split the same columns")
        labels = torch.as_tensor(ds.with_format("numpy")[label_col], dtype=torch.long).reshape(-1)
        splits.append(ImageSplit(labels, RowReader(ds.select_columns([image_col]), image_col)))
    num_classes = len(names) if names else int(splits[0].labels.max()) + 1
    for split, split_name in zip(splits, (train_name, eval_name)):
        if len(split) and (split.labels.min() < 0 or split.labels.max() >= num_classes):
            raise fail(f"split {split_name!r} of {where} has labels outside 0..{num_classes - 1} (an unlabelled split, "
                       f"such as ImageNet's test split, has -1)", "choose a labelled split with eval_split:")
    return Loaded(splits[0], splits[1], num_classes, list(names) if names else None, train_name, eval_name)


def _column(ds, asked: str | None, candidates, feature_type, kind: str, where: str) -> str:
    columns = ds.column_names
    if asked is not None:
        if asked not in columns:
            raise fail(f"{where} has no {kind} column {asked!r} (columns: {', '.join(columns)})",
                       f"set {kind}_column: to one of those")
        return asked
    found = next((c for c in candidates if c in columns), None) or next(
        (c for c in columns if isinstance(ds.features[c], feature_type)), None)
    if found is None:
        raise fail(f"{where} has no {kind} column among {', '.join(columns)}",
                   f"set {kind}_column: in the dataset section")
    return found


class RowReader:
    """Row i's image column as a PIL image (``datasets`` decodes an Image feature; raw arrays are converted)."""

    def __init__(self, ds, column: str):
        self.ds, self.column = ds, column

    def __call__(self, index: int, mode: str):
        from PIL import Image

        value = self.ds[index][self.column]
        if not isinstance(value, Image.Image):
            import numpy as np

            value = Image.fromarray(np.asarray(value, dtype=np.uint8))
        return value.convert(mode)
