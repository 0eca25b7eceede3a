"""What every data set is: the ``DataSource`` protocol the training loop and the evaluator read, the registry of
data sets by name, and ``Splits``, the in-memory kind. The loaders (``catalog``, ``digits``, ``glue``) register
themselves here; the package re-exports it all.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

import torch

from ..errors import fail
from ..registry import Registry

Batch = tuple[torch.Tensor, torch.Tensor]


class DataSource(Protocol):
    """What the training loop and the evaluator use. ``train_batches`` draws its order (and any augmentation) only
    from ``generator``, so a resumed run that restores the generator replays the same epochs exactly."""

    num_classes: int
    description: str  # the scale, as reports state it
    train_size: int

    def train_batches(self, backbone, batch_size: int, generator: torch.Generator) -> Iterable[Batch]: ...

    def eval_batches(self, backbone, batch_size: int) -> Iterable[Batch]: ...


@dataclass
class Splits:
    """A small data set held as tensors in [0, 1] (``[N, C, H, W]``); batches are normalised, never resized or
    augmented (the tiny models take the native size)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    description: str

    @property
    def train_size(self) -> int:
        return len(self.x_train)

    def train_batches(self, backbone, batch_size: int, generator: torch.Generator) -> Iterable[Batch]:
        self._check_fits(backbone)
        return tensor_batches(self.x_train, self.y_train, batch_size, backbone.mean, backbone.std, shuffle=True,
                              generator=generator)

    def eval_batches(self, backbone, batch_size: int) -> Iterable[Batch]:
        self._check_fits(backbone)
        return tensor_batches(self.x_test, self.y_test, batch_size, backbone.mean, backbone.std)

    # Not augmented, so a frozen backbone's block outputs can be cached (eebench.training.features): these give the
    # epoch's batches as indices (the same draws as train_batches) and the inputs of given samples.
    def train_order(self, backbone, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        return list(torch.randperm(len(self.x_train), generator=generator).split(batch_size))

    def train_batch(self, backbone, idx: torch.Tensor) -> Batch:
        self._check_fits(backbone)
        mean = torch.tensor(backbone.mean, dtype=self.x_train.dtype).view(1, -1, 1, 1)
        std = torch.tensor(backbone.std, dtype=self.x_train.dtype).view(1, -1, 1, 1)
        return (self.x_train[idx] - mean) / std, self.y_train[idx]

    def train_labels(self, idx: torch.Tensor) -> torch.Tensor:
        return self.y_train[idx]

    def train_key(self, backbone) -> str:
        import hashlib
        import json

        digest = hashlib.sha256(self.x_train.contiguous().numpy().tobytes()).hexdigest()
        return json.dumps(["tensors", digest, list(backbone.mean), list(backbone.std)])

    def _check_fits(self, backbone) -> None:
        channels, side = self.x_train.shape[1], self.x_train.shape[-1]
        size = getattr(backbone, "image_size", None)
        if (size is not None and size != side) or len(backbone.mean) != channels:
            raise fail(f"dataset '{self.description}' has {channels}-channel {side}x{side} images but the backbone "
                       f"takes {len(backbone.mean)}-channel {size}x{size} inputs",
                       "pick a backbone preset made for this dataset (e.g. vit_tiny_digits) or an image dataset")


DATASETS: Registry[Callable[..., DataSource]] = Registry("datasets")


def load_dataset(spec: dict[str, Any]) -> DataSource:
    spec = dict(spec)
    name = spec.pop("name")
    loader = DATASETS.get(name)
    try:  # validate the options first, so a TypeError raised while loading is not mistaken for a config typo
        inspect.signature(loader).bind(**spec)
    except TypeError as err:
        raise fail(f"bad option for dataset {name!r}: {err}", "check the dataset section of the config") from err
    return loader(**spec)


def tensor_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, mean, std, shuffle: bool = False,
                   generator: torch.Generator | None = None):
    """Normalised mini-batches from in-memory tensors (the embedded data sets are small)."""
    mean_t = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    order = torch.randperm(len(x), generator=generator) if shuffle else torch.arange(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        yield (x[idx] - mean_t) / std_t, y[idx]
