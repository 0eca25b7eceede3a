"""Datasets by name: ``load_dataset(spec) → DataSource``.

Training and evaluation ask a source for "train batches for this backbone" and "eval batches for this backbone" and
never learn which kind of dataset it is: the backbone's input size and mean/std are applied when batches are made, so
one loaded dataset serves every backbone. Two kinds exist: ``Splits`` (small in-memory tensors in [0, 1], e.g.
``digits``; no augmentation) and ``ImageSource`` (image files decoded per sample with the paper's transforms,
``images.py``).
"""
from __future__ import annotations

from typing import Any

from .base import DATASETS, Batch, DataSource, Splits, load_dataset, tensor_batches  # noqa: F401  (the interface)
from .glue_tasks import TASKS
from . import catalog, digits, glue  # noqa: F401  (registration)


KNOWN_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "food101": 101, "imagenet1k": 1000,
                 "tiny_imagenet": 200}


def num_classes_of(spec: dict[str, Any]) -> int:
    """Classes of a dataset without loading it when the name (or a smoke fixture) says (cost counts need no data);
    else load it."""
    if spec.get("fixture"):
        return int(spec["fixture"].get("classes", 10))
    if spec["name"] == "glue" and spec.get("task", "sst2") in TASKS:
        return TASKS[spec.get("task", "sst2")].num_classes
    return KNOWN_CLASSES.get(spec["name"]) or load_dataset(spec).num_classes
