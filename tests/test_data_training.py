"""An image-file dataset through the real training loop and evaluator: augmented training resumes exactly after a
kill, and the exit-logit cache holds the evaluation split's labels in order."""
import pytest
import torch
from conftest import train_killed_and_resumed
from PIL import Image

from eebench.evaluate import evaluate_checkpoint, load_cache


@pytest.fixture
def image_job(tmp_path, tiny_backbone):
    root = tmp_path / "data"
    for label, name in enumerate(["a", "b", "c"]):
        for split, n in (("train", 6), ("test", 2)):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (16, 16), (80 * label, 30 * i, 60)).save(root / split / name / f"{i}.png")
    backbone = {**tiny_backbone, "num_channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                "num_hidden_layers": 2}
    return {"run": "t", "seed": 5, "threads": 1, "dataset": {"name": "images", "root": str(root)},
            "backbone": backbone, "method": {"name": "m", "exit_layers": [1], "heads": [{"type": "mlp"}]},
            "stage": {"name": "s", "loss": "normal", "train": "all", "init": None, "epochs": 3, "batch_size": 8,
                      "lr": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.0, "grad_clip": 1.0, "loss_params": {}}}


def test_image_dataset_resumes_exactly_and_caches_eval_labels(tmp_path, image_job, monkeypatch):
    reference, resumed = train_killed_and_resumed(image_job, tmp_path, monkeypatch)
    assert [r["loss"] for r in resumed["log"]] == pytest.approx([r["loss"] for r in reference["log"]])
    for key, value in reference["model"].items():
        assert torch.equal(value, resumed["model"][key]), key

    info = evaluate_checkpoint(tmp_path / "full.pt", tmp_path / "full.npz")
    cache = load_cache(tmp_path / "full.npz")
    assert cache["labels"].tolist() == [0, 0, 1, 1, 2, 2]
    assert cache["logits"].shape == (2, 6, 3) and info["row_layers"] == [1, 2]
