"""Datasets by name: ``load_dataset(spec) → Splits``. Each loader returns tensors in [0, 1]; the backbone's
mean/std normalisation is applied when batches are made, so one loader serves every backbone."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..errors import fail
from ..registry import Registry


@dataclass
class Splits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    description: str  # the scale, as reports state it


DATASETS: Registry[Callable[..., Splits]] = Registry("datasets")


def load_dataset(spec: dict[str, Any]) -> Splits:
    spec = dict(spec)
    loader = DATASETS.get(spec.pop("name"))
    try:
        return loader(**spec)
    except TypeError as err:
        raise fail(f"bad dataset option: {err}", "check the dataset section of the config") from err


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, mean, std, shuffle: bool = False,
            generator: torch.Generator | None = None):
    """Normalised mini-batches from in-memory tensors (the embedded data sets are small)."""
    mean_t = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    order = torch.randperm(len(x), generator=generator) if shuffle else torch.arange(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        yield (x[idx] - mean_t) / std_t, y[idx]


from . import digits  # noqa: E402,F401  (registration)
