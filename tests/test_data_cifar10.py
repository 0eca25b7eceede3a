"""Optional: the CIFAR-10 subset kept in shared/data (see its SOURCES.md). Skipped where it is absent; point
EEBENCH_CIFAR10 at another copy of the two zips to run it elsewhere."""
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from eebench.data import load_dataset

ROOT = Path(os.environ.get("EEBENCH_CIFAR10", Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"))


@pytest.mark.skipif(not (ROOT / "train_1000_per_class.zip").exists(), reason=f"no CIFAR-10 subset at {ROOT}")
def test_shared_cifar10_subset():
    src = load_dataset({"name": "cifar10", "root": str(ROOT)})
    assert src.num_classes == 10 and src.class_names[0] == "airplane" and src.class_names[-1] == "truck"
    assert src.train_size == 10_000 and len(src.eval) == 2_000
    assert torch.bincount(src.train.labels).tolist() == [1000] * 10
    assert torch.bincount(src.eval.labels).tolist() == [200] * 10
    x, y = next(iter(src.eval_batches(SimpleNamespace(image_size=32, mean=(0.5,) * 3, std=(0.5,) * 3), 4)))
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [0, 0, 0, 0] and x.std() > 0.1
