"""Image trees: ``<split>/<class>/<image>`` as a folder (torchvision's ImageFolder layout, one folder per split) or
inside zip archives (the layout of ``shared/data/cifar10/*.zip``: ``train/<class>/<n>.jpg``).

Both are one list of (split, class, locator) entries; a locator is a file path or an (archive, member) pair, which is
the only place the two differ. Classes are the train split's class names, sorted (ImageFolder's convention).
"""
from __future__ import annotations

import io
import os
import zipfile
from collections import defaultdict
from pathlib import Path

import torch

from ..errors import fail
from .images import ImageSplit, Loaded, choose_splits

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def is_tree(root: Path) -> bool:
    if not root.is_dir():
        return root.suffix == ".zip"
    return any(root.glob("*.zip")) or any(p.is_dir() and any(c.is_dir() for c in p.iterdir()) for p in root.iterdir())


def scan(root: Path) -> dict[str, list[tuple[str, object]]]:
    """split → sorted [(class, locator)] for a folder tree, a zip archive, or a folder of zip archives."""
    entries: dict[str, list[tuple[str, object]]] = defaultdict(list)
    archives = [root] if root.suffix == ".zip" else sorted(root.glob("*.zip"))
    for archive in archives:
        try:
            with zipfile.ZipFile(archive) as z:
                names = z.namelist()
        except zipfile.BadZipFile as err:
            raise fail(f"{archive} is not a readable zip archive ({err})", "re-copy or re-download it") from err
        for member in names:
            parts = member.split("/")
            if len(parts) == 3 and Path(parts[2]).suffix.lower() in IMAGE_SUFFIXES:
                entries[parts[0]].append((parts[1], (str(archive), member)))
    if not archives:
        for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
                for dirpath, _, files in os.walk(class_dir):  # nested folders count, as in ImageFolder
                    entries[split_dir.name] += [(class_dir.name, os.path.join(dirpath, f)) for f in files
                                                if Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return {split: sorted(items, key=lambda e: (e[0], str(e[1]))) for split, items in entries.items() if items}


def load_tree(root: Path, train_split: str, eval_split: str | None, where: str) -> Loaded:
    entries = scan(root)
    train_name, eval_name = choose_splits(sorted(entries), train_split, eval_split, where)
    classes = sorted({c for c, _ in entries[train_name]})
    return Loaded(_split(entries[train_name], classes, train_name, where),
                  _split(entries[eval_name], classes, eval_name, where), len(classes), classes, train_name, eval_name)


def _split(entries: list[tuple[str, object]], classes: list[str], split: str, where: str) -> ImageSplit:
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({c for c, _ in entries} - set(index))
    if unknown:
        raise fail(f"split {split!r} of {where} has classes the train split lacks: {', '.join(unknown[:5])}",
                   "give every split the same class folders")
    labels = torch.tensor([index[c] for c, _ in entries], dtype=torch.long)
    return ImageSplit(labels, TreeReader([loc for _, loc in entries]))


class TreeReader:
    """Decodes entry i on demand. Zip handles are opened lazily per process (DataLoader workers must not share one)."""

    def __init__(self, locators: list):
        self.locators = locators
        self._zips: dict[str, zipfile.ZipFile] = {}
        self._pid = os.getpid()

    def __getstate__(self):
        return {"locators": self.locators}

    def __setstate__(self, state):
        self.__init__(state["locators"])

    def __call__(self, index: int, mode: str):
        from PIL import Image

        loc = self.locators[index]
        if isinstance(loc, tuple):
            if self._pid != os.getpid():  # forked worker: reopen
                self._zips, self._pid = {}, os.getpid()
            archive, member = loc
            if archive not in self._zips:
                self._zips[archive] = zipfile.ZipFile(archive)
            source = io.BytesIO(self._zips[archive].read(member))
        else:
            source = loc
        with Image.open(source) as image:
            return image.convert(mode)
