"""``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes; the UCI optdigits test set).

The split is fixed and documented: stratified, ``test_fraction`` (default 0.2 → 1,437 train / 360 test) with
``split_seed`` (default 0) through ``sklearn.model_selection.train_test_split``. Pixels 0–16 are scaled to [0, 1].

Importing scikit-learn costs about a second, more than reading the data, and every training job of the embedded run
reads it. So the pixels come straight from the package's ``digits.csv.gz`` (located without importing the package),
and the split indices are computed once per (scikit-learn version, test_fraction, split_seed) and cached as a small
``.npz`` in ``$EEBENCH_CACHE`` (default ``~/.cache/eebench``); later jobs never import scikit-learn.
"""
from __future__ import annotations

import importlib.util
import os
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from ..errors import fail
from .base import DATASETS, Splits


def cache_dir() -> Path:
    return Path(os.environ.get("EEBENCH_CACHE") or Path.home() / ".cache" / "eebench")


def digits_csv() -> Path:
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise fail("dataset 'digits' needs scikit-learn's bundled data", "pip install scikit-learn")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"


def digits_split(test_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices) of the stratified split, from the cache or computed (and cached) once."""
    path = cache_dir() / f"digits-split-sklearn{version('scikit-learn')}-{test_fraction!r}-{split_seed}.npz"
    try:
        with np.load(path) as z:
            return z["train"], z["test"]
    except (OSError, ValueError, KeyError):  # absent or unreadable: compute it again
        pass
    from sklearn.model_selection import train_test_split

    from ..io import atomic_path

    target = np.loadtxt(digits_csv(), delimiter=",", usecols=[64]).astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(target)), test_size=test_fraction, stratify=target,
                                           random_state=split_seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # concurrent first jobs: the last rename wins
            np.savez(fh, train=idx_train, test=idx_test)
    except OSError:  # a read-only home only loses the cache
        pass
    return idx_train, idx_test


@DATASETS.register("digits")
def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> Splits:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), held in memory; the CPU default.

    test_fraction must lie strictly between 0 and 1: 0 would leave no test split and scikit-learn would raise."""
    if not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise fail(f"dataset.test_fraction is {test_fraction!r}, outside (0, 1)", "set e.g. test_fraction: 0.2")
    table = np.loadtxt(digits_csv(), delimiter=",")  # 64 pixels (0-16) then the label, as sklearn reads it
    x = torch.tensor(table[:, :64].reshape(-1, 8, 8) / 16.0, dtype=torch.float32).unsqueeze(1)  # [N, 1, 8, 8]
    y = torch.tensor(table[:, 64], dtype=torch.long)
    idx_train, idx_test = (torch.from_numpy(i) for i in digits_split(test_fraction, split_seed))
    return Splits(x[idx_train], y[idx_train], x[idx_test], y[idx_test], 10,
                  f"digits 8x8 ({len(idx_train)} train / {len(idx_test)} test, split seed {split_seed})")
