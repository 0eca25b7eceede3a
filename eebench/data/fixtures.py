"""Small image and text datasets written on the fly in the formats the real ones come in, for smoke runs
(``eebench.smoke``).

A fixture goes through the very loader path of the data set it stands in for: hub-style parquet (``data/<split>-…
.parquet`` with an ``Image`` and a ``ClassLabel`` column, as CIFAR-100 comes from the hub), a ``save_to_disk`` folder
(Food-101's ``validation`` split), an ImageFolder tree (ImageNet's ``train/`` and ``val/``… read as ``validation``)
or zip archives in the ``shared/data/cifar10`` layout. Pixels are a class colour plus noise, so even one epoch can
learn something. Written once into a temporary folder and renamed into place, so concurrent jobs never see half of one.
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from ..errors import fail

FORMATS = ("parquet", "saved", "folder", "zip")
EVAL_SPLIT = {"parquet": "test", "saved": "validation", "folder": "validation", "zip": "test"}


def _images(classes: int, per_class: int, seed: int, size: int):
    """[(label, PIL image)]: class c's colour is a point on a hue circle, plus uniform noise."""
    import colorsys

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for label in range(classes):
        base = np.array(colorsys.hsv_to_rgb(label / classes, 0.8, 0.9)) * 255
        for _ in range(per_class):
            pixels = np.clip(base + rng.uniform(-40, 40, (size, size, 3)), 0, 255).astype("uint8")
            out.append((label, Image.fromarray(pixels, "RGB")))
    return out


def _splits(classes: int, train: int, eval: int, size: int, fmt: str):
    return {"train": _images(classes, train, 0, size), EVAL_SPLIT[fmt]: _images(classes, eval, 1, size)}


def _names(classes: int) -> list[str]:
    return [f"class{c:03d}" for c in range(classes)]


def _write_hf(tmp: Path, splits, classes: int, fmt: str) -> None:
    from datasets import ClassLabel, Dataset, DatasetDict, Features
    from datasets import Image as HFImage

    features = Features({"img": HFImage(), "fine_label": ClassLabel(names=_names(classes))})
    dd = DatasetDict({split: Dataset.from_dict({"img": [im for _, im in items],
                                                "fine_label": [label for label, _ in items]}, features=features)
                      for split, items in splits.items()})
    if fmt == "saved":
        dd.save_to_disk(str(tmp))
        return
    (tmp / "data").mkdir()
    for split, ds in dd.items():
        ds.to_parquet(str(tmp / "data" / f"{split}-00000-of-00001.parquet"))


def _write_tree(tmp: Path, splits, classes: int, fmt: str) -> None:
    names = _names(classes)
    for split, items in splits.items():
        if fmt == "zip":
            with zipfile.ZipFile(tmp / f"{split}_{len(items)}.zip", "w", zipfile.ZIP_STORED) as z:
                for i, (label, im) in enumerate(items):
                    buf = io.BytesIO()
                    im.save(buf, "JPEG", quality=95)
                    z.writestr(f"{split}/{names[label]}/{i:05d}.jpg", buf.getvalue())
            continue
        for i, (label, im) in enumerate(items):
            folder = tmp / split / names[label]
            folder.mkdir(parents=True, exist_ok=True)
            im.save(folder / f"{i:05d}.png")


def ensure_fixture(root: str | Path, format: str, classes: int = 10, train: int = 4, eval: int = 3,
                   size: int = 32) -> Path:
    """The fixture at ``root`` (``train``/``eval`` images per class), written if it is not there yet."""
    root, fmt = Path(root), format
    if fmt not in FORMATS:
        raise fail(f"unknown fixture format {fmt!r}", f"choose one of: {', '.join(FORMATS)}")
    return _written(root, lambda tmp: (_write_hf if fmt in ("parquet", "saved") else _write_tree)(
        tmp, _splits(classes, train, eval, size, fmt), classes, fmt))


def _written(root: Path, write) -> Path:
    """``root``, filled by ``write(tmp)`` in a temporary sibling folder renamed into place, unless it exists."""
    if root.exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        write(tmp)
        try:
            os.rename(tmp, root)
        except OSError:
            if not root.exists():  # another job renamed its copy into place first: that one is identical
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


WORDS = ("the a film movie plot actor scene story good bad great dull moving funny long short not very quite "
         "truly never always music ending script cast director").split()


def ensure_text_fixture(root: str | Path, task: str, train: int = 8, eval: int = 6) -> Path:
    """A GLUE task as the hub serves it (``data/<split>-00000-of-00001.parquet`` with the task's hub columns and a
    ``label`` column: class ids, or STS-B's float scores), ``train``/``eval`` rows per class, written if absent.
    Sentences are random words of random length, so padding and length buckets are exercised."""
    import numpy as np

    from .glue_tasks import TASKS

    root, spec = Path(root), TASKS[task]

    def write(tmp: Path) -> None:
        from datasets import Dataset

        rng = np.random.default_rng(0)
        classes = spec.num_classes
        (tmp / "data").mkdir()
        for split, per_class in (("train", train), (spec.eval_split, eval)):
            n = per_class * classes
            rows = {c: [" ".join(rng.choice(WORDS, int(rng.integers(3, 20)))) for _ in range(n)]
                    for c in spec.columns}
            rows["label"] = ([float(v) for v in rng.uniform(0, 5, n)] if spec.labels is None
                             else [i % classes for i in range(n)])
            Dataset.from_dict(rows).to_parquet(str(tmp / "data" / f"{split}-00000-of-00001.parquet"))

    return _written(root, write)
