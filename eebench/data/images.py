"""Image-file datasets as a ``DataSource``: torch Datasets + DataLoaders with the paper's transforms.

Every image family (folders, zips, HF ``datasets``) reduces to an ``ImageSplit`` per split — labels plus a reader that
decodes image i on demand — so loading a dataset costs no decoding and the same loaders serve all of them.

Reproducibility: the training order and every sample's augmentation seed are drawn from the run's generator, and each
sample's crop/flip runs under its own seed. An epoch therefore depends only on the generator state (which the resume
file saves), not on ``num_workers`` or on the global RNG, and a resumed run replays it exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import fail
from .transforms import eval_transform, train_transform

EVAL_SPLITS = ("validation", "valid", "test")  # the official code's order of preference (spec methods §2.5)


@dataclass
class ImageSplit:
    """One split: integer labels and ``read(i, mode)`` → PIL image i converted to ``mode`` ("RGB" or "L")."""

    labels: torch.Tensor
    read: Callable[[int, str], Any]

    def __len__(self) -> int:
        return len(self.labels)


class Loaded(NamedTuple):
    """What every image family hands over: the two chosen splits, the class count and names, the splits' names."""

    train: ImageSplit
    eval: ImageSplit
    num_classes: int
    class_names: list[str] | None
    train_split: str
    eval_split: str


def choose_splits(available: Sequence[str], train_split: str, eval_split: str | None, where: str) -> tuple[str, str]:
    """The train split, and the evaluation split: the one asked for, else validation/valid/test, whichever exists
    first (no carve-out from train, as in the official code)."""
    names = list(available)
    if train_split not in names:
        raise fail(f"{where} has no split {train_split!r} (it has: {', '.join(names) or 'none'})",
                   "set train_split: in the dataset section, or add that split")
    if eval_split is None:
        eval_split = next((s for s in EVAL_SPLITS if s in names), None)
        if eval_split is None:
            raise fail(f"{where} has no evaluation split (none of {', '.join(EVAL_SPLITS)}; "
                       f"it has: {', '.join(names)})",
                       "set eval_split: in the dataset section, or add a test/validation split")
    elif eval_split not in names:
        raise fail(f"{where} has no split {eval_split!r} (it has: {', '.join(names)})",
                   "set eval_split: to one of those")
    return train_split, eval_split


class _Transformed(Dataset):
    """Split i → (transformed image, label); a key ``(i, seed)`` runs the random transform under that seed."""

    def __init__(self, split: ImageSplit, transform, mode: str):
        self.split, self.transform, self.mode = split, transform, mode

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        image = self.split.read(index, self.mode)
        if seed is None:
            return self.transform(image), self.split.labels[index]
        state = torch.get_rng_state()  # torchvision draws from the global CPU RNG: seed it here, then restore it
        try:  # (100x cheaper than torch.random.fork_rng + torch.manual_seed, which also visit every accelerator)
            torch.default_generator.manual_seed(seed)
            return self.transform(image), self.split.labels[index]
        finally:
            torch.set_rng_state(state)


class _SeededShuffle(Sampler):
    """A permutation plus one augmentation seed per sample, both drawn from ``generator`` when an epoch starts."""

    def __init__(self, size: int, generator: torch.Generator):
        self.size, self.generator = size, generator

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(self.size, generator=self.generator).tolist()
        seeds = torch.randint(0, 2**62, (self.size,), generator=self.generator).tolist()
        return iter(zip(order, seeds))


class ImageSource:
    """Train and eval ``ImageSplit``s with DataLoaders sized and normalised for whichever backbone asks."""

    def __init__(self, train: ImageSplit, eval: ImageSplit, num_classes: int, description: str,
                 num_workers: int = 0, class_names: Sequence[str] | None = None):
        self.train, self.eval = train, eval
        self.num_classes, self.description = num_classes, description
        self.num_workers = int(num_workers)
        self.class_names = list(class_names) if class_names is not None else None

    @property
    def train_size(self) -> int:
        return len(self.train)

    def train_batches(self, backbone, batch_size: int, generator: torch.Generator) -> DataLoader:
        size, mode = self._input(backbone)
        data = _Transformed(self.train, train_transform(size, backbone.mean, backbone.std), mode)
        return self._loader(data, batch_size, _SeededShuffle(len(data), generator), generator)

    def eval_batches(self, backbone, batch_size: int) -> DataLoader:
        size, mode = self._input(backbone)
        data = _Transformed(self.eval, eval_transform(size, backbone.mean, backbone.std), mode)
        # a private generator: DataLoader draws a base seed from it, which must not advance the global RNG
        return self._loader(data, batch_size, None, torch.Generator().manual_seed(0))

    def _loader(self, data, batch_size, sampler, generator) -> DataLoader:
        return DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=self.num_workers,
                          generator=generator)

    def _input(self, backbone) -> tuple[int, str]:
        size = getattr(backbone, "image_size", None)
        if not size:
            raise fail(f"dataset '{self.description}' holds images but the backbone has no image input size",
                       "use an image backbone (vit_b16, deit_b, …) with this dataset")
        return int(size), ("L" if len(backbone.mean) == 1 else "RGB")

    @classmethod
    def from_loaded(cls, name: str, where: str, loaded: Loaded, num_workers: int = 0) -> "ImageSource":
        description = (f"{name} ({where}; {len(loaded.train):,} {loaded.train_split} / {len(loaded.eval):,} "
                       f"{loaded.eval_split})")
        return cls(loaded.train, loaded.eval, loaded.num_classes, description, num_workers, loaded.class_names)
