"""``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes; the UCI optdigits test set).

The split is fixed and documented: stratified, ``test_fraction`` (default 0.2 → 1,437 train / 360 test) with
``split_seed`` (default 0) through ``sklearn.model_selection.train_test_split``. Pixels 0–16 are scaled to [0, 1].
"""
from __future__ import annotations

import torch

from . import DATASETS, Splits


@DATASETS.register("digits")
def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> Splits:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), held in memory; the CPU default."""
    from sklearn.datasets import load_digits as sk_load
    from sklearn.model_selection import train_test_split

    d = sk_load()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)  # [N, 1, 8, 8]
    y = torch.tensor(d.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(range(len(y)), test_size=test_fraction, stratify=d.target,
                                           random_state=split_seed)
    return Splits(x[idx_train], y[idx_train], x[idx_test], y[idx_test], 10,
                  f"digits 8x8 ({len(idx_train)} train / {len(idx_test)} test, split seed {split_seed})")
