"""Strangers' files and configs: nothing loaded runs code, names cannot escape results/ or reach a shell, a config
is data, a resumed stage replays the dropout draws of an uninterrupted one, and outputs respect the umask."""
import os
import re
from pathlib import Path

import pytest
import torch
from conftest import TINY_BACKBONE, train_killed_and_resumed

from eebench.errors import EEBenchError
from eebench.io import load_torch, write_text

REPO = Path(__file__).resolve().parents[1]


class Planted:
    """A pickled object whose ``__reduce__`` creates a file when unpickled by the full unpickler."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def plant(path, marker, **extra):
    torch.save({"model": {"w": torch.zeros(1)}, "payload": Planted(marker), **extra}, path)


def one_line(err: EEBenchError) -> str:
    text = str(err)
    assert "\n" not in text and " — " in text
    return text


def test_a_checkpoint_that_needs_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    plant(tmp_path / "evil.pt", marker)
    with pytest.raises(EEBenchError) as err:
        load_torch(tmp_path / "evil.pt")
    assert "evil.pt" in one_line(err.value) and "pickle" in str(err.value)
    assert not marker.exists()


def test_the_cli_refuses_a_pickled_checkpoint_in_one_line(tmp_path, capsys):
    from eebench.cli import main

    marker = tmp_path / "ran"
    plant(tmp_path / "evil.pt", marker)
    rc = main(["evaluate", "--checkpoint", str(tmp_path / "evil.pt"), "--out", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and err[0].startswith("eebench: error:") and "evil.pt" in err[0]
    assert not marker.exists() and not (tmp_path / "x.npz").exists()


def job(epochs=3, dropout=0.0):
    return {"run": "t", "seed": 3, "threads": 1, "dataset": {"name": "digits", "test_fraction": 0.9},
            "backbone": dict(TINY_BACKBONE),
            "method": {"name": "m", "exit_layers": [2, 4],
                       "heads": [{"type": "mlp", "dropout": dropout}, {"type": "mlp", "dropout": dropout}]},
            "stage": {"name": "s", "loss": "normal", "train": "all", "init": None, "epochs": epochs,
                      "batch_size": 64, "lr": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.0, "grad_clip": 1.0,
                      "loss_params": {}}}


def test_a_planted_resume_file_is_refused_and_runs_nothing(tmp_path):
    import eebench.training.loop as loop

    marker = tmp_path / "ran"
    plant(tmp_path / "s.pt.resume", marker, spec_hash="x")
    with pytest.raises(EEBenchError) as err:
        loop.train_stage(job(epochs=1), tmp_path / "s.pt", progress=False)
    assert "s.pt.resume" in one_line(err.value)
    assert not marker.exists() and not (tmp_path / "s.pt").exists()


def test_a_planted_token_cache_entry_is_refused_rebuilt_and_runs_nothing(tmp_path, capsys):
    from eebench.backbones import build_backbone
    from eebench.data.text import TextSplit, cache_root, tokenize

    bb = build_backbone("bert_tiny_test", num_classes=2, pretrained=False)
    split = TextSplit([("a good film",), ("a bad one",)], torch.tensor([1, 0]))
    first = tokenize(split, bb, 16, str(tmp_path))
    (entry,) = cache_root(str(tmp_path)).glob("*.pt")
    marker = tmp_path / "ran"
    plant(entry, marker)
    capsys.readouterr()
    again = tokenize(split, bb, 16, str(tmp_path))
    assert not marker.exists()
    assert [s["input_ids"].tolist() for s in again] == [s["input_ids"].tolist() for s in first]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pickle" in lines[0] and entry.name in lines[0]


@pytest.mark.parametrize("name", ["x$(touch F)", "../../../x", "a b", "..", "-rf", ""])
def test_an_unsafe_method_name_is_a_config_error(name):
    from eebench.plan import Plan, validate_config

    cfg = validate_config({"run": "t", "methods": {name: {"recipe": "backbone"}}})
    with pytest.raises(EEBenchError, match="not a safe name"):
        Plan(cfg)


@pytest.mark.parametrize("run", ["../..", "a/../../b", "x$(id)"])
def test_an_unsafe_run_name_is_a_config_error(run):
    from eebench.plan import Plan, validate_config

    with pytest.raises(EEBenchError, match="run"):
        Plan(validate_config({"run": run, "methods": {"backbone": {}}}))


def test_every_shell_placeholder_is_quoted():
    """A path or parameter pasted into a rule's shell line unquoted is a shell word a name could break out of."""
    unquoted = []
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for block in re.findall(r"shell:\s*((?:\s*\"[^\"]*\"\s*)+)", text):
            unquoted += [f"{smk.name}: {{{p}}}" for p in re.findall(r"\{([^{}]+)\}", block) if not p.endswith(":q")]
    assert not unquoted


def test_compare_checks_the_head_name_before_writing(tmp_path, monkeypatch):
    from eebench.leaderboard.compare import compare

    monkeypatch.chdir(tmp_path)
    with pytest.raises(EEBenchError, match="not a safe name"):
        compare("../../evil", str(REPO / "config" / "default.yaml"))
    assert not list(tmp_path.rglob("*"))


@pytest.mark.parametrize("head", ["pabee", "lgvit"])
def test_compare_refuses_a_head_named_like_a_method(tmp_path, monkeypatch, head):
    from eebench.leaderboard.compare import compare

    monkeypatch.chdir(tmp_path)
    with pytest.raises(EEBenchError, match="another name"):
        compare(head, str(REPO / "config" / "default.yaml"))
    assert not list(tmp_path.rglob("*"))


def test_compare_drops_the_documented_separator(tmp_path, monkeypatch):
    import eebench.leaderboard.compare as cmp

    seen = {}
    monkeypatch.setattr(cmp.subprocess, "call", lambda cmd: seen.setdefault("cmd", cmd) and 0)
    monkeypatch.chdir(REPO)
    cmp.compare("linear", "config/default.yaml", snakemake_args=["--", "-n"])
    assert "--" not in seen["cmd"] and "-n" in seen["cmd"]
    (REPO / "results" / "default" / "compare" / "linear.yaml").unlink()


def test_a_yte_config_is_refused(tmp_path):
    from eebench.plan import load_config

    (tmp_path / "c.yaml").write_text("__use_yte__: true\nrun: t\nmethods: {backbone: {}}\n")
    with pytest.raises(EEBenchError, match="YTE"):
        load_config(tmp_path / "c.yaml")


def test_resume_replays_the_dropout_draws(tmp_path, monkeypatch):
    """With dropout, the resumed stage must draw what the uninterrupted one drew: the global generator is part of
    the resume state (without it the weights differ after the resumed epoch)."""
    def scramble(path):
        torch.manual_seed(987654)  # a fresh process would start from another global state

    full, resumed = train_killed_and_resumed(job(dropout=0.3), tmp_path, monkeypatch, scramble)
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


def test_outputs_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "x.md", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "x.md").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("section,key", [("backbone", "hiden_size"), ("dataset", "tset_fraction")])
def test_a_nested_typo_is_a_config_error_at_plan_time(section, key):
    from eebench.plan import Plan, validate_config

    cfg = validate_config({"run": "t", "methods": {"backbone": {}},
                           "dataset": {"name": "digits"}, "backbone": {"name": "vit_tiny_digits", "pretrained": False}})
    cfg[section][key] = 1
    with pytest.raises(EEBenchError, match=key):
        Plan(cfg)
