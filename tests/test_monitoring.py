"""Training you can watch and per-job overhead: the per-epoch CSV, the timing line and provenance, digits read without
scikit-learn, the bench script, TensorBoard events, and the multi-GPU plan figures."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_BACKBONE

import eebench.training.loop as loop
from eebench.errors import EEBenchError
from eebench.evaluate import load_cache
from eebench.io import load_torch

REPO = Path(__file__).resolve().parents[1]
JOB = {"run": "t", "seed": 1, "threads": 1, "dataset": {"name": "digits", "test_fraction": 0.9},
       "backbone": TINY_BACKBONE,
       "method": {"name": "m", "exit_layers": [2, 4], "heads": [{"type": "mlp"}, {"type": "mlp"}]},
       "stage": {"name": "s", "loss": "normal", "train": "all", "init": None, "epochs": 2, "batch_size": 64,
                 "lr": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.0, "grad_clip": 1.0, "loss_params": {}}}


def test_per_epoch_csv_timing_line_and_provenance(tmp_path, capsys):
    loop.train_stage(JOB, tmp_path / "m.pt", progress=False, logits_out=tmp_path / "m.npz",
                     epochs_csv=tmp_path / "m.csv")
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    ckpt, cache = load_torch(tmp_path / "m.pt"), load_cache(tmp_path / "m.npz")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["loss"]) for r in rows] == pytest.approx([r["loss"] for r in ckpt["log"]])
    for r in rows:
        assert {f"loss_exit_L{k}" for k in (2, 4, 6)} <= set(r) and float(r["lr"]) >= 0
        assert float(r["samples_per_s"]) == pytest.approx(179 / float(r["seconds"]), rel=0.01)  # 179 train samples
    # "normal" = the mean of the three exits' cross-entropies: so is the mean of the per-exit columns
    assert sum(float(rows[0][f"loss_exit_L{k}"]) for k in (2, 4, 6)) / 3 == pytest.approx(float(rows[0]["loss"]),
                                                                                          rel=1e-5)
    assert rows[0]["eval_acc_L6"] == ""  # evaluated once, after the last epoch
    accuracy = (cache["logits"].argmax(-1) == cache["labels"]).float().mean(dim=1)
    assert [float(rows[1][f"eval_acc_L{k}"]) for k in (2, 4, 6)] == pytest.approx(accuracy.tolist())
    timing_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("timing: ")]
    timing = json.loads(timing_line[0][8:])
    assert timing == ckpt["provenance"]["timing"]
    assert timing["startup_s"] > 0 and timing["train_s"] == pytest.approx(sum(r["seconds"] for r in ckpt["log"]))
    assert timing["samples_per_s"] == pytest.approx(2 * 179 / timing["train_s"], rel=0.01)


def test_tensorboard_events_when_installed(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    loop.train_stage(JOB, tmp_path / "m.pt", progress=False, tensorboard_dir=tmp_path / "tb")
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [1, 2]
    assert "loss/exit_L2" in events.Tags()["scalars"]


def test_digits_split_is_sklearns_and_cached_reads_skip_sklearn(tmp_path, monkeypatch):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from eebench.data import load_dataset

    monkeypatch.setenv("EEBENCH_CACHE", str(tmp_path))
    ours = load_dataset({"name": "digits", "test_fraction": 0.3, "split_seed": 4})
    d = load_digits()
    tr, te = train_test_split(range(len(d.target)), test_size=0.3, stratify=d.target, random_state=4)
    assert torch.equal(ours.x_train, torch.tensor(d.images[tr] / 16.0, dtype=torch.float32).unsqueeze(1))
    assert torch.equal(ours.y_test, torch.tensor(d.target[te]))
    assert len(list(tmp_path.glob("digits-split-*.npz"))) == 1
    code = ("import sys; from eebench.data import load_dataset; "
            "s = load_dataset({'name': 'digits', 'test_fraction': 0.3, 'split_seed': 4}); "
            "print(len(s.y_train), any(m.split('.')[0] == 'sklearn' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "EEBENCH_CACHE": str(tmp_path), "PYTHONPATH": str(REPO)}).stdout
    assert out.split() == [str(len(tr)), "False"]


def test_bench_script_sums_startup_against_compute(tmp_path):
    logs = tmp_path / "run" / "logs" / "train"
    for name, t in [("a/seed0/s", {"startup_s": 3.0, "train_s": 20.0, "eval_s": 1.0, "samples_per_s": 100.0}),
                    ("b/seed0/s", {"startup_s": 1.0, "train_s": 14.0, "eval_s": 1.0, "samples_per_s": 90.0})]:
        (logs / name).parent.mkdir(parents=True)
        (logs / name).with_suffix(".log").write_text("resuming\ntiming: " + json.dumps(t) + "\n")
    script = [sys.executable, str(REPO / "workflow" / "scripts" / "bench_overhead.py"), str(tmp_path / "run")]
    run = subprocess.run(script + ["--max-startup", "0.15"], capture_output=True, text=True)
    # startup 4 s of 40 s = 10.0 %, training 34 s = 85.0 %, evaluation 2 s = 5.0 %
    assert run.returncode == 0 and "summed job time 40.0 s = startup 4.0 s (10.0%)" in run.stdout
    assert "training 34.0 s (85.0%)" in run.stdout
    assert subprocess.run(script + ["--max-startup", "0.05"], capture_output=True).returncode == 1


def test_plan_reports_wall_time_of_multi_gpu_runs():
    from eebench.budget import run_budget
    from eebench.plan import Plan, expand_grid, load_config

    plans = {n: Plan(c) for n, c in expand_grid(load_config(REPO / "config" / "paper.yaml")).items()}
    imagenet, cifar = plans["paper/swin_b-imagenet1k"], plans["paper/swin_b-cifar100"]
    assert (imagenet.train_devices, cifar.train_devices) == (8, 1)
    b = run_budget(imagenet)
    assert b["wall_hours"]["serial"] == pytest.approx(sum(b["gpu_hours"].values()) / 8)
    assert b["wall_hours"]["critical_path"] < b["wall_hours"]["serial"]
    c = run_budget(cifar)  # one GPU per job, no Table 5 job: wall one job at a time = GPU-hours
    assert c["wall_hours"]["serial"] == pytest.approx(sum(c["gpu_hours"].values()))


@pytest.mark.parametrize("gpu", [0, -2, 1.5, "two"])
def test_bad_device_count_is_one_clear_error(gpu):
    from eebench.plan import Plan, expand_grid, load_config

    cfg = next(iter(expand_grid(load_config(REPO / "config" / "tiny.yaml")).values()))
    with pytest.raises(EEBenchError, match="resources.train.gpu .* give an integer >= 1"):
        Plan({**cfg, "resources": {"train": {"gpu": gpu}}})


def test_stages_trained_in_one_process_equal_separate_jobs(tmp_path, capfd):
    """eebench train-group (shared processes): a stage trained after another in the same process, and one that starts
    from the previous stage's checkpoint, are bit-identical to the same stages trained on their own; each stage's
    output goes to its own log, as a job of its own would write it."""
    from eebench.cli import main

    first = {**JOB, "stage": {**JOB["stage"], "loss": "weighted", "epochs": 1}}
    second = {**JOB, "seed": 2, "stage": {**JOB["stage"], "name": "s2", "train": "heads", "init": "s", "epochs": 1}}
    items = [{"job": first, "out": str(tmp_path / "g1.pt"), "logits": str(tmp_path / "g1.npz"), "init": None,
              "epochs_csv": str(tmp_path / "g1.csv"), "log": str(tmp_path / "logs" / "g1.log")},
             {"job": second, "out": str(tmp_path / "g2.pt"), "logits": str(tmp_path / "g2.npz"),
              "init": str(tmp_path / "g1.pt"), "epochs_csv": str(tmp_path / "g2.csv"),
              "log": str(tmp_path / "logs" / "g2.log")}]
    assert main(["train-group", "--spec", json.dumps({"jobs": items, "eval_batch_size": 128})]) == 0
    group_out = capfd.readouterr().out
    loop.train_stage(first, tmp_path / "a1.pt", progress=False)
    loop.train_stage(second, tmp_path / "a2.pt", init=tmp_path / "a1.pt", progress=False)
    for g, a in (("g1.pt", "a1.pt"), ("g2.pt", "a2.pt")):
        grouped, alone = load_torch(tmp_path / g)["model"], load_torch(tmp_path / a)["model"]
        assert all(torch.equal(grouped[k], alone[k]) for k in alone), g
    assert (tmp_path / "g2.csv").read_text().count("\n") == 2
    startup = load_torch(tmp_path / "g2.pt")["provenance"]["timing"]["startup_s"]
    assert startup < load_torch(tmp_path / "g1.pt")["provenance"]["timing"]["startup_s"]  # no second import
    for k in (1, 2):
        log = (tmp_path / "logs" / f"g{k}.log").read_text()
        timing = json.loads(next(line for line in log.splitlines() if line.startswith("timing: "))[8:])
        assert timing == load_torch(tmp_path / f"g{k}.pt")["provenance"]["timing"]
    assert "timing: " not in group_out and group_out.count("== m seed ") == 2
    assert not list(tmp_path.glob("*.resume"))  # the finished share leaves no resume state


def test_rerun_share_keeps_the_stages_a_killed_process_finished(tmp_path, monkeypatch):
    """A share killed in its second stage: the rerun re-evaluates the finished first stage from its kept resume state
    (no training epoch, same weights) and resumes the second where it stopped."""
    from eebench.cli import main

    first = {**JOB, "stage": {**JOB["stage"], "epochs": 1}}
    second = {**JOB, "stage": {**JOB["stage"], "name": "s2", "epochs": 2}}
    items = [{"job": j, "out": str(tmp_path / f"{j['stage']['name']}.pt"), "init": None,
              "logits": str(tmp_path / f"{j['stage']['name']}.npz")} for j in (first, second)]
    spec = ["train-group", "--spec", json.dumps({"jobs": items, "eval_batch_size": 128})]
    calls, real = [], loop.batches

    def killed_in_stage_two(data, backbone, bs, gen):
        calls.append(1)
        if len(calls) == 3:  # stage s: epoch 1; stage s2: epoch 1, then killed at the start of epoch 2
            raise KeyboardInterrupt
        return real(data, backbone, bs, gen)

    monkeypatch.setattr(loop, "batches", killed_in_stage_two)
    assert main(spec) == 130
    weights = load_torch(tmp_path / "s.pt")["model"]
    for out in ("s.pt", "s2.pt"):  # what the scheduler does with the outputs of a failed job
        (tmp_path / out).unlink(missing_ok=True)
    calls.clear()
    monkeypatch.setattr(loop, "batches", lambda *a: calls.append(1) or real(*a))
    assert main(spec) == 0
    assert len(calls) == 1  # only the second stage's last epoch trained again
    again = load_torch(tmp_path / "s.pt")["model"]
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    assert [r["epoch"] for r in load_torch(tmp_path / "s2.pt")["log"]] == [1, 2]
    assert not list(tmp_path.glob("*.resume"))


def test_default_run_trains_its_stages_in_a_few_shared_processes():
    """config/default.yaml: the main methods (training.jobs) and the ablation variants (ablations.jobs) in 2 shares
    each; every stage trained once, after the stage it starts from; a run on several devices per job keeps one job per
    main stage (DDP jobs are not grouped)."""
    from eebench.plan import Plan, load_config

    plan = Plan(load_config(REPO / "config" / "default.yaml"))
    groups = plan.train_groups()
    assert sorted(groups) == ["ablations-1", "ablations-2", "methods-1", "methods-2"]
    jobs = [j for share in groups.values() for j in share]
    assert len(jobs) == len(set(jobs))
    owned = {(plan.stage_owner(m, st["name"]), s) for m in plan.all_methods for st in plan.method(m)["stages"]
             for s in (plan.seeds if "variant_of" not in plan.method(m) else plan.ablation_seeds)}
    assert {((m, st), s) for m, s, st in jobs} == owned  # every stage of the run, nothing else
    where = {(m, s, st): (g, i) for g, share in groups.items() for i, (m, s, st) in enumerate(share)}
    for (m, s, st), (g, i) in where.items():
        prev = plan.init_stage(m, st)
        if prev:  # the stage it starts from: earlier in the same share
            assert where[(prev[0], s, prev[1])][0] == g and where[(prev[0], s, prev[1])][1] < i, (m, st)
    ddp = Plan({**plan.config, "resources": {"train": {"gpu": 2}}})
    assert sorted(ddp.train_groups()) == ["ablations-1", "ablations-2"]


def test_a_failed_start_leaves_no_empty_epoch_csv(tmp_path):
    """Snakemake creates every log file a finished job did not write, a failed job's too: a stage that fails before
    its first epoch (here: pretrained weights that do not exist) must not leave a zero-byte <stage>.epochs.csv."""
    import shutil

    import yaml

    if shutil.which("snakemake") is None:
        pytest.skip("snakemake not installed")
    config = {"run": "fs", "seeds": [0], "dataset": {"name": "digits", "test_fraction": 0.5},
              "backbone": {**TINY_BACKBONE, "pretrained": "./no_such_weights"}, "training": {"epochs": 1},
              "methods": {"backbone": {}}}
    (tmp_path / "fs.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                           "--configfile", str(tmp_path / "fs.yaml"), "--cores", "1",
                           "results/fs/train/backbone/seed0/finetune.pt"], capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    logs = tmp_path / "results" / "fs" / "logs" / "train" / "backbone" / "seed0"
    assert "pretrained weights folder './no_such_weights' does not exist" in (logs / "finetune.log").read_text()
    assert sorted(p.name for p in logs.iterdir()) == ["finetune.log"]  # no finetune.epochs.csv, empty or not
