"""The named image datasets of the papers (LGViT: CIFAR-100, Food-101, ImageNet-1K) and CIFAR-10, the stand-in that
can be had offline (``shared/data/cifar10``).

Each name is a hub default plus the same options: ``root:`` reads a local copy instead — an ImageFolder
(``<root>/<split>/<class>/*.jpg``), zip archives of that layout, a ``save_to_disk`` folder, or parquet files per split;
otherwise the hub dataset ``hub:`` (``config:``, ``revision:``; pin the revision for a reproducible run) is loaded
through HF ``datasets``. Splits: ``train_split`` (default ``train``) and ``eval_split`` (default: ``validation``,
``valid`` or ``test``, whichever exists first, as in the official code).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import fail
from . import folder, hf
from .base import DATASETS
from .images import ImageSource


class ImageDataset:
    """A registered image dataset: ``DATASETS.get(name)(**options) → ImageSource``."""

    def __init__(self, name: str, hub: str | None, description: str):
        self.name, self.hub, self.description = name, hub, description

    def __call__(self, root: str | None = None, hub: str | None = None, config: str | None = None,
                 revision: str | None = None, train_split: str = "train", eval_split: str | None = None,
                 image_column: str | None = None, label_column: str | None = None, num_workers: int = 0,
                 cache_dir: str | None = None, fixture: dict | None = None) -> ImageSource:
        if fixture is not None:  # a smoke run's stand-in, written at root in the format it names (data/fixtures.py)
            if root is None:
                raise fail(f"dataset {self.name!r}: fixture: needs root: (where to write it)", "set root: DIR")
            from .fixtures import ensure_fixture

            ensure_fixture(root, **fixture)
        if root is not None:
            path = Path(root).expanduser()
            where, loaded = self._local(path, train_split, eval_split, image_column, label_column, cache_dir)
        else:
            hub = hub or self.hub
            if hub is None:
                raise fail(f"dataset {self.name!r} needs root: (a local folder) or hub: (a hub dataset name)",
                           "set one of them in the dataset section")
            dd = hf.open_hub(self.name, hub, config, revision, cache_dir)
            where = f"hub {hub}" + (f" ({config})" if config else "") + (f" @ {revision}" if revision else "")
            loaded = hf.load_splits(dd, train_split, eval_split, image_column, label_column, where)
        return ImageSource.from_loaded(self.name, where, loaded, num_workers)

    def _local(self, path: Path, train_split, eval_split, image_column, label_column, cache_dir):
        if not path.exists():
            raise fail(f"dataset {self.name!r}: root {path} does not exist",
                       f"point root: at {hf.LOCAL_FORMATS} (or drop root: to use the hub)")
        if path.is_dir() and hf.is_saved(path):
            where = f"save_to_disk folder {path}"
            dd = hf.open_saved(path)
            return where, hf.load_splits(dd, train_split, eval_split, image_column, label_column, where)
        parquet = hf.parquet_files(path)
        if parquet:
            where = f"parquet files in {path}"
            dd = hf.open_parquet(parquet, cache_dir)
            return where, hf.load_splits(dd, train_split, eval_split, image_column, label_column, where)
        if folder.is_tree(path):
            where = f"{'zip files' if path.suffix == '.zip' or any(path.glob('*.zip')) else 'ImageFolder'} at {path}"
            return where, folder.load_tree(path, train_split, eval_split, where)
        raise fail(f"dataset {self.name!r}: root {path} holds no dataset in a known layout",
                   f"point root: at {hf.LOCAL_FORMATS}")


for _name, _hub, _desc in [
    ("cifar10", "uoft-cs/cifar10", "CIFAR-10 (10 classes, 32x32; offline: root: at shared/data/cifar10's zips)"),
    ("cifar100", "uoft-cs/cifar100", "CIFAR-100 (100 fine classes, 32x32), LGViT's main dataset; eval on test"),
    ("food101", "ethz/food101", "Food-101 (101 classes), eval on the 25,250-image validation split"),
    ("imagenet1k", "ILSVRC/imagenet-1k", "ImageNet-1K (1,000 classes; gated on the hub), eval on validation"),
    ("tiny_imagenet", "Maysee/tiny-imagenet", "Tiny ImageNet (200 classes, 64x64), wired in the official code"),
    ("images", None, "any image-classification set: root: (local) or hub: (HF dataset name)"),
]:
    DATASETS.register(_name)(ImageDataset(_name, _hub, _desc))
