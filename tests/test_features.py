"""The frozen-backbone feature cache (eebench.training.features): a heads-only stage on a frozen backbone reads the
backbone's block outputs from a cache computed once, and ends with the heads it would have without the cache."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch

import eebench.training.features as features
from eebench.errors import EEBenchError
from eebench.io import load_torch
from eebench.plan import Plan, validate_config
from eebench.training.loop import train_stage

REPO = Path(__file__).resolve().parents[1]
SST2 = REPO.parent / "shared" / "data" / "sst2_glue"
FROZEN = {"init": "backbone:finetune", "train": "heads", "frozen_backbone_mode": "eval", "feature_cache": True}


def plan_of(dataset: dict, backbone: dict, **training) -> Plan:
    return Plan(validate_config({
        "run": "fc", "seeds": [0], "dataset": dataset, "backbone": backbone,
        "training": {"epochs": 2, "batch_size": 32, "lr": 1e-3, **training},
        "methods": {"fro": {"recipe": "mlp_normal", "stages": {"train": dict(FROZEN)}}}}))


def train_with_and_without(plan: Plan, tmp_path: Path, monkeypatch) -> dict:
    """The backbone's fine-tune, then the frozen heads three times: with the cache (computed), with it again (read),
    without it. → the three checkpoints and logit caches, and how often the cache was computed."""
    builds = []
    real = features.build
    monkeypatch.setattr(features, "build", lambda *a, **k: builds.append(1) or real(*a, **k))
    train_stage(plan.train_job("backbone", 0, "finetune"), tmp_path / "bb.pt", progress=False)
    on = plan.train_job("fro", 0, "train")
    off = copy.deepcopy(on)
    off["stage"]["feature_cache"] = False
    out = {}
    for name, job in (("computed", on), ("read", on), ("off", off)):
        train_stage(job, tmp_path / f"{name}.pt", init=tmp_path / "bb.pt", logits_out=tmp_path / f"{name}.npz",
                    progress=False, eval_batch_size=64)
        out[name] = (load_torch(tmp_path / f"{name}.pt")["model"], np.load(tmp_path / f"{name}.npz")["logits"])
    out["builds"] = len(builds)
    return out


def assert_same_heads(res: dict) -> None:
    (a, la), (b, lb), (c, lc) = res["computed"], res["read"], res["off"]
    assert res["builds"] == 1  # computed by the first stage, read by the second
    assert all(torch.equal(a[k], b[k]) for k in a) and np.array_equal(la, lb)  # a read cache: bit for bit
    # Without the cache the backbone runs on each training batch; with it, its outputs come from length-sorted batches
    # of eval_batch_size, padded to other lengths, so fp32 sums run in another order: per op ~1 ulp (6e-8 relative),
    # after 2 epochs × 8 Adam steps of lr 1e-3 measured at 1.5e-8 on the heads' weights and 1.1e-8 on the logits.
    # 1e-5 leaves a factor of ~1,000 for other BLAS kernels; a cache that fed the wrong sample, layer or padding moves
    # the heads by the learning rate's order (1e-3 per step) and the logits by far more.
    for k in a:
        assert torch.allclose(a[k].float(), c[k].float(), atol=1e-5, rtol=0), k
    assert np.allclose(la, lc, atol=1e-5, rtol=0) and np.array_equal(la.argmax(-1), lc.argmax(-1))


@pytest.mark.skipif(not SST2.exists(), reason="shared SST-2 data not present")
def test_text_heads_are_those_trained_without_the_cache(tmp_path, monkeypatch):
    """A 3-block random BERT on 256 SST-2 sentences (padded batches, a mask): the heads' weights and every exit's
    logits match training without the cache; the second stage reads the cache the first one wrote."""
    plan = plan_of({"name": "glue", "task": "sst2", "root": str(SST2), "max_seq_length": 64, "limit_train": 256,
                    "limit_eval": 64, "cache_dir": str(tmp_path / "cache")}, {"name": "bert_tiny_test",
                                                                              "pretrained": False})
    res = train_with_and_without(plan, tmp_path, monkeypatch)
    assert_same_heads(res)
    (folder,) = (tmp_path / "cache" / "features").iterdir()
    meta = (folder / "meta.json").read_text()
    assert '"masked": true' in meta and '"layers": [1, 2, 3]' in meta


def test_digits_heads_are_those_trained_without_the_cache(tmp_path, monkeypatch, tiny_backbone):
    """In-memory images are not augmented, so they are cached too (fixed token count, no mask)."""
    monkeypatch.setenv("EEBENCH_CACHE", str(tmp_path / "cache"))
    plan = plan_of({"name": "digits", "test_fraction": 0.5}, tiny_backbone, epochs=1)
    assert_same_heads(train_with_and_without(plan, tmp_path, monkeypatch))


def test_augmented_images_are_not_cached(capsys):
    """An image-file source (random resized crop and flip every epoch) has no fixed inputs to cache: None, and a line
    saying why."""
    class Augmented:  # eebench.data.images.ImageSource offers no train_order
        train_size = 4

    job = {"stage": {"name": "train", "loss": "normal", **FROZEN}}
    assert features.frozen_features(None, Augmented(), job, torch.device("cpu"), "fp32", 8) is None
    assert "feature cache: off — this dataset's training images are augmented" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    ({"train": "all", "frozen_backbone_mode": "train"}, "feature_cache needs a frozen backbone"),
    ({"freeze": "optimizer"}, "feature_cache needs a frozen backbone"),
    ({"frozen_backbone_mode": "train"}, "feature_cache needs frozen_backbone_mode: eval"),
    ({"loss": "lgvit_distillation"}, "reads the backbone's hidden states or a teacher"),
])
def test_a_stage_the_cache_cannot_serve_is_refused_at_plan_time(tiny_backbone, change, message):
    with pytest.raises(EEBenchError, match=f"config error at methods.fro.stages.train.feature_cache: .*{message}"):
        Plan(validate_config({"run": "fc", "dataset": {"name": "digits"}, "backbone": tiny_backbone,
                              "methods": {"fro": {"recipe": "mlp_normal",
                                                  "stages": {"train": {**FROZEN, **change}}}}}))


def test_a_damaged_cache_is_rebuilt(tmp_path, capsys):
    folder = tmp_path / "features" / "abc"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text('{"format": 1, "key": "other"}')
    assert features.FeatureCache.open(folder, "abc", 10) is None
    assert not folder.exists() and "refused (another cache's meta.json); rebuilding it" in capsys.readouterr().err
