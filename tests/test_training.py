"""The shared training loop: resume after a kill, NaN losses, corrupt checkpoints, the exit-logit cache."""
import pytest
import torch
from conftest import train_killed_and_resumed

import eebench.training.loop as loop
from eebench.errors import EEBenchError
from eebench.evaluate import evaluate_checkpoint, load_cache
from eebench.io import load_torch


def job(tiny_backbone, epochs=2, loss="normal"):
    return {"run": "t", "seed": 3, "threads": 1, "dataset": {"name": "digits", "test_fraction": 0.9},
            "backbone": tiny_backbone,
            "method": {"name": "m", "exit_layers": [2, 4], "heads": [{"type": "mlp"}, {"type": "mlp"}]},
            "stage": {"name": "s", "loss": loss, "train": "all", "init": None, "epochs": epochs, "batch_size": 64,
                      "lr": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.0, "grad_clip": 1.0, "loss_params": {}}}


def test_resume_after_kill_gives_the_uninterrupted_result(tmp_path, tiny_backbone, monkeypatch):
    def half_written(path):
        assert not path.exists() and path.with_name(path.name + ".resume").exists()

    reference, resumed = train_killed_and_resumed(job(tiny_backbone, epochs=3), tmp_path, monkeypatch, half_written)
    assert not (tmp_path / "killed.pt.resume").exists()
    assert [r["loss"] for r in resumed["log"]] == pytest.approx([r["loss"] for r in reference["log"]])
    for key, value in reference["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


def test_nan_loss_is_one_clear_error(tmp_path, tiny_backbone, monkeypatch):
    import eebench.data.digits as digits

    real = digits.load_digits

    def poisoned(**kw):
        s = real(**kw)
        s.x_train[:] = float("nan")
        return s

    monkeypatch.setitem(digits.DATASETS._items, "digits", poisoned)
    with pytest.raises(EEBenchError, match=r"training loss became nan .* lower the learning rate"):
        loop.train_stage(job(tiny_backbone, epochs=1), tmp_path / "nan.pt", progress=False)
    assert not (tmp_path / "nan.pt").exists()


def test_corrupt_checkpoint_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(EEBenchError, match="unreadable or corrupt .* delete it and rerun"):
        load_torch(bad)
    with pytest.raises(EEBenchError, match="does not exist"):
        load_torch(tmp_path / "missing.pt")


def test_exit_logit_cache_holds_every_row(tmp_path, tiny_backbone):
    loop.train_stage(job(tiny_backbone, epochs=1), tmp_path / "m.pt", progress=False)
    info = evaluate_checkpoint(tmp_path / "m.pt", tmp_path / "m.npz")
    cache = load_cache(tmp_path / "m.npz")
    assert cache["logits"].shape == (3, len(cache["labels"]), 10)  # 2 exits + final, every test sample
    assert cache["row_layers"] == [2, 4, 6] == info["row_layers"]
    acc = (cache["logits"].argmax(-1) == cache["labels"]).float().mean(1)
    assert acc.tolist() == pytest.approx(info["row_accuracy"])
    (tmp_path / "broken.npz").write_bytes(b"xx")
    with pytest.raises(EEBenchError, match="corrupt"):
        load_cache(tmp_path / "broken.npz")


def test_fused_adamw_matches_the_per_tensor_loop():
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    fused = loop.adamw(a, 1e-2, 0.01)
    plain = torch.optim.AdamW(b, lr=1e-2, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    assert fused.defaults["fused"]
    for step in range(5):
        for params, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            sum((p * (step + 1)).sin().sum() for p in params).backward()
            opt.step()
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_cpu_precision_is_its_own_switch(monkeypatch, capsys):
    import eebench.device as dev

    cpu = torch.device("cpu")
    assert dev.effective_precision({"precision": "bf16"}, cpu) == "fp32"  # a GPU setting leaves the CPU in fp32
    monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda: True)
    assert dev.effective_precision({"cpu_precision": "bf16"}, cpu) == "bf16"
    with dev.autocast(cpu, "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda: False)
    assert dev.effective_precision({"cpu_precision": "bf16"}, cpu) == "fp32"
    assert "no native bf16" in capsys.readouterr().out
    with pytest.raises(EEBenchError, match="unknown cpu_precision 'fp16'"):
        dev.effective_precision({"cpu_precision": "fp16"}, cpu)


def test_cpu_bf16_training_records_its_precision(tmp_path, tiny_backbone, monkeypatch):
    import eebench.device as dev

    monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda: True)
    loop.train_stage({**job(tiny_backbone, epochs=1), "cpu_precision": "bf16"}, tmp_path / "m.pt", progress=False)
    assert load_torch(tmp_path / "m.pt")["provenance"]["precision"] == "bf16"
