"""COST-EFF's pruning stage, killed between two pruning events and resumed, ends with the bits of an uninterrupted
run (issue 25 item 4): the resume file carries the pruned shape, the events done, the optimiser and LR schedule of
the current period, the step, the position in the epoch, the data generator and every RNG."""
import random

import numpy as np
import pytest
import torch

import eebench.slender.train as slender_train
import eebench.training.loop as loop
from eebench.build import build_model
from eebench.io import load_torch, save_torch
from eebench.plan import Plan, validate_config

REAL_BATCHES = slender_train.batches
WORDS = ["good", "bad", "fine", "awful", "nice", "dull", "great", "poor", "film", "plot"]


def sst2_folder(root):
    """48 training and 16 dev sentences of 2-11 words (length buckets of different widths), labels alternating."""
    rng = random.Random(0)
    root.mkdir()
    for split, n in (("train", 48), ("dev", 16)):
        rows = [f"{' '.join(rng.choices(WORDS, k=rng.randint(2, 11)))}\t{i % 2}\n" for i in range(n)]
        (root / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(rows))
    return str(root)


@pytest.fixture
def prune_job(tmp_path):
    """A 4-head tiny BERT pruned to 1 head, FFN 16, rank 8: three events. 48 samples in batches of 8 are 6 steps an
    epoch, 12 over the 2 epochs, so prune_step = 12 // 3 = 4 and the events land at steps 4 (mid epoch 1), 8 (mid
    epoch 2, after the epoch-end save at step 6) and 12 (the final step, after the loop). Dropout stays at 0.1, so
    the global RNG matters; the TA (init and teacher) is a random multi-exit model."""
    cfg = validate_config({
        "run": "t", "seeds": [0],
        "dataset": {"name": "glue", "task": "sst2", "root": sst2_folder(tmp_path / "sst2"), "max_seq_length": 16,
                    "cache_dir": str(tmp_path / "cache")},
        "backbone": {"name": "bert_tiny_test", "pretrained": False, "num_attention_heads": 4},
        "training": {"epochs": 2, "batch_size": 8, "lr": 1e-3},
        "methods": {"cost_eff": {"slender": {"heads": 1, "ffn": 16, "rank": 8},
                                 # the recipe's batch 32 would leave 2 steps: the test's batches of 8 say so
                                 "stages": {"prune": {"lr": 1e-3, "weight_decay": 0.01, "epochs": 2,
                                                      "batch_size": 8,
                                                      "slenderise": {"taylor_proportion": 0.25}}}}}})
    job = Plan(cfg).train_job("cost_eff", 0, "prune")
    torch.manual_seed(3)
    ta = build_model(job["backbone"], job["method"], 2, pretrained=False)
    save_torch(tmp_path / "ta.pt", {"model": ta.state_dict(), "job": job})
    return job, tmp_path


def killed_at_fetch(kill_at: int):
    """The pruning stage's ``batches`` that raises (the job is killed) when the stage fetches its ``kill_at``-th
    batch (0-based, counted over the stage: the batch of training step ``kill_at``)."""
    fetched = {"n": 0}

    def batches(*args, **kwargs):
        for batch in REAL_BATCHES(*args, **kwargs):
            if fetched["n"] == kill_at:
                raise KeyboardInterrupt
            fetched["n"] += 1
            yield batch

    return batches


@pytest.mark.parametrize("kill_at, resumes_from", [
    (5, {"step": 4, "events": 1, "epoch": 0, "batch": 4}),  # after event 1, mid epoch 1
    (8, {"step": 6, "events": 1, "epoch": 1, "batch": None}),  # the end of epoch 1, before event 2
    (11, {"step": 8, "events": 2, "epoch": 1, "batch": 2})])  # after event 2, mid epoch 2
def test_prune_stage_resumes_bit_identically_between_events(prune_job, monkeypatch, kill_at, resumes_from):
    job, tmp = prune_job
    run = dict(init=tmp / "ta.pt", teacher=tmp / "ta.pt")
    loop.train_stage(job, tmp / "full.pt", logits_out=tmp / "full.npz", **run)
    assert not (tmp / "full.pt.resume").exists()  # removed when the stage completes

    monkeypatch.setattr(slender_train, "batches", killed_at_fetch(kill_at))
    with pytest.raises(KeyboardInterrupt):
        loop.train_stage(job, tmp / "killed.pt", logits_out=tmp / "killed.npz", **run)
    state = load_torch(tmp / "killed.pt.resume")
    assert {"step": state["step"], "events": len(state["events"]), "epoch": state["epoch"],
            "batch": state["batch"]} == resumes_from
    assert state["shape"]["heads"] == [4 - resumes_from["events"]] * 4  # saved at its pruned width
    monkeypatch.setattr(slender_train, "batches", REAL_BATCHES)
    loop.train_stage(job, tmp / "killed.pt", logits_out=tmp / "killed.npz", **run)
    assert not (tmp / "killed.pt.resume").exists()

    full, resumed = load_torch(tmp / "full.pt"), load_torch(tmp / "killed.pt")
    assert full["slender_shape"] == resumed["slender_shape"] and full["slender_shape"]["heads"] == [1] * 4
    assert full["model"].keys() == resumed["model"].keys()
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in full["slenderise"]["events"]]
    assert strip == [{k: v for k, v in e.items() if k != "seconds"} for e in resumed["slenderise"]["events"]]
    assert [r["loss"] for r in full["log"]] == [r["loss"] for r in resumed["log"]]
    with np.load(tmp / "full.npz") as a, np.load(tmp / "killed.npz") as b:
        assert np.array_equal(a["logits"], b["logits"])


def test_a_resume_file_of_another_job_is_ignored(prune_job, monkeypatch):
    """A changed job (here the learning rate) never continues from the old job's state."""
    job, tmp = prune_job
    monkeypatch.setattr(slender_train, "batches", killed_at_fetch(6))
    with pytest.raises(KeyboardInterrupt):
        loop.train_stage(job, tmp / "x.pt", init=tmp / "ta.pt", teacher=tmp / "ta.pt")
    monkeypatch.setattr(slender_train, "batches", REAL_BATCHES)
    other = {**job, "stage": {**job["stage"], "lr": 5e-4}}
    loop.train_stage(other, tmp / "x.pt", init=tmp / "ta.pt", teacher=tmp / "ta.pt")
    loop.train_stage(other, tmp / "y.pt", init=tmp / "ta.pt", teacher=tmp / "ta.pt")
    x, y = load_torch(tmp / "x.pt"), load_torch(tmp / "y.pt")
    assert all(torch.equal(v, y["model"][k]) for k, v in x["model"].items())


def test_kill_9_between_two_pruning_events_resumes_to_the_same_bits(prune_job):
    """``eebench train`` of the prune stage, killed with SIGKILL in epoch 2 before its second batch (step 7: event 1
    done at step 4, epoch 1 saved at step 6, event 2 due at step 8), then rerun with the same command. The
    uninterrupted job runs beside it in a folder of its own (its atomic writes' temporary files are not the killed
    job's)."""
    from test_kill_resume import check_nothing_half_written, finish, kill_mid_epoch, paths, read_csv, start, stop

    job, tmp = prune_job
    ta = ["--init", str(tmp / "ta.pt"), "--teacher", str(tmp / "ta.pt")]
    one, two = tmp / "uninterrupted", tmp / "killed"
    one.mkdir()
    two.mkdir()
    full = start(job, one, "full", 1, extra=ta)
    killed = start(job, two, "killed", 1, pause=two / "pause", extra=ta)
    try:
        kill_mid_epoch(killed, two, "killed", two / "pause", 1)
        check_nothing_half_written(two, "killed")
        assert len(load_torch(two / "killed.pt.resume")["events"]) == 1
        rerun = start(job, two, "killed", 1, extra=ta)
        finish(rerun, paths(two, "killed")["log"])
        finish(full, paths(one, "full")["log"])
    finally:
        stop([full, killed])
    a, b = paths(one, "full"), paths(two, "killed")
    assert "resuming cost_eff/prune at step 6 (1 pruning events done)" in b["log"].read_text()
    assert not (two / "killed.pt.resume").exists()
    wa, wb = load_torch(a["out"])["model"], load_torch(b["out"])["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    with np.load(a["logits"]) as za, np.load(b["logits"]) as zb:
        assert all(np.array_equal(za[k], zb[k]) for k in za.files)
    timing = ("seconds", "samples_per_s")
    ra, rb = read_csv(a["epochs"]), read_csv(b["epochs"])
    assert [r["epoch"] for r in rb] == ["1", "2"]
    assert [{k: v for k, v in r.items() if k not in timing} for r in rb] == \
        [{k: v for k, v in r.items() if k not in timing} for r in ra]
