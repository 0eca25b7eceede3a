"""A training job killed with SIGKILL in the middle of an epoch, then rerun with the same command, ends with the bits
of an uninterrupted job: every weight tensor and every exit logit equal, each epoch once in the epochs CSV, and no
half-written file left by the kill. One process (image heads with dropout; a text backbone with dropout and
length-bucketed batches) and two DDP ranks under torchrun (gloo on CPU).

The jobs run as the workflow runs them (``eebench train`` as a subprocess, the arguments of workflow/rules/train.smk).
To kill at a known point, the killed job's interpreter loads a ``sitecustomize`` written by the test into a temporary
folder on its PYTHONPATH: when a stage runner's module (``eebench.training.loop``, COST-EFF's pruning stage's) is
imported, it wraps its ``batches`` so that the job writes a marker and sleeps before step ``STEP`` of epoch ``EPOCH``. The test waits for the resume file of epoch ``EPOCH - 1`` and
the marker of every rank, then kills every process of the job at once.
"""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_BACKBONE

from eebench.io import load_torch

REPO = Path(__file__).resolve().parents[1]
EPOCH, STEP = 2, 1  # killed in epoch 2 of 3, after its first optimiser step: epoch 1 is saved, epoch 2 half done

HOOK = '''
import importlib.machinery
import os
import sys
import time
from pathlib import Path


def install(loop):
    epoch, step, marker = os.environ["EEBENCH_TEST_PAUSE"].split(":", 2)
    real, calls = loop.batches, [0]

    def batches(*args, **kwargs):
        calls[0] += 1
        for i, batch in enumerate(real(*args, **kwargs)):
            if calls[0] == int(epoch) and i == int(step):
                rank = os.environ.get("RANK", "0")
                Path(marker, "writing." + rank).write_text(str(os.getpid()))
                os.replace(Path(marker, "writing." + rank), Path(marker, "paused." + rank))
                time.sleep(120)  # killed here; the bound only keeps a forgotten process from living on
            yield batch

    loop.batches = batches


class Patch:
    def find_spec(self, name, path, target=None):
        if name not in ("eebench.training.loop", "eebench.slender.train"):  # the stage runners that fetch batches
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            install(module)

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("EEBENCH_TEST_PAUSE"):
    sys.meta_path.insert(0, Patch())
'''


def heads(dropout):
    return [{"type": "mlp", "dropout": dropout}, {"type": "mlp", "dropout": dropout}]


def stage(batch_size):
    return {"name": "s", "loss": "weighted", "train": "all", "init": None, "epochs": 3, "batch_size": batch_size,
            "lr": 2e-3, "weight_decay": 0.01, "warmup_ratio": 0.2, "grad_clip": 1.0, "loss_params": {}}


# digits at test_fraction 0.9: 179 training samples, global batches of 64, 64 and 51. Under two ranks the last one
# splits 25/26, so the ranks' dropout draws differ from epoch 1 on (one rank's generator state cannot stand in for the
# other's); one process: 3 steps an epoch, dropout 0.3 in both exit heads.
DIGITS = {"run": "t", "seed": 5, "threads": 1, "dataset": {"name": "digits", "test_fraction": 0.9},
          "backbone": TINY_BACKBONE, "method": {"name": "m", "exit_layers": [2, 4], "heads": heads(0.3)},
          "stage": stage(64)}


def text_spec(directory: Path):
    """bert_tiny_test keeps BERT's dropout 0.1 (embeddings, attention, blocks; the head adds 0.3); 96 SST-2-style
    phrases of 2 to 20 words in length-bucketed batches of 32, drawn from the stage's generator: 3 steps an epoch."""
    import random

    words, draw = ["good", "bad", "fine", "awful", "nice", "dull", "great", "poor", "film", "plot"], random.Random(0)
    root = directory / "sst2"
    root.mkdir()
    for split, n in (("train", 96), ("dev", 64)):
        rows = [f"{' '.join(draw.choices(words, k=draw.randint(2, 20)))}\t{i % 2}\n" for i in range(n)]
        (root / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(rows))
    return {"run": "t", "seed": 7, "threads": 1,
            "dataset": {"name": "glue", "task": "sst2", "root": str(root), "max_seq_length": 32,
                        "cache_dir": str(directory / "cache")},
            "backbone": {"name": "bert_tiny_test", "pretrained": False},
            "method": {"name": "m", "exit_layers": [2], "heads": heads(0.3)[:1]}, "stage": stage(32)}


def paths(directory: Path, name: str) -> dict[str, Path]:
    return {"out": directory / f"{name}.pt", "logits": directory / f"{name}.npz", "log": directory / f"{name}.log",
            "epochs": directory / f"{name}.epochs.csv", "tensorboard": directory / "tensorboard" / name}


def start(spec, directory: Path, name: str, nproc: int, pause: Path | None = None, extra=()) -> subprocess.Popen:
    """``eebench train`` with the arguments of the workflow's train rule (``extra``: e.g. ``--init``, ``--teacher``),
    output to the job log, in its own process group (so the test can signal the whole job)."""
    p = paths(directory, name)
    cmd = [sys.executable, "-m", "eebench.cli", "train", "--spec", json.dumps(spec), "--out", str(p["out"]),
           "--logits", str(p["logits"]), "--eval-batch-size", "256", "--epochs-csv", str(p["epochs"]),
           "--tensorboard", str(p["tensorboard"]), "--nproc", str(nproc), *extra]
    hook = directory / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)]), "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1"}
    env.pop("EEBENCH_TEST_PAUSE", None)
    if pause is not None:
        pause.mkdir()
        env["EEBENCH_TEST_PAUSE"] = f"{EPOCH}:{STEP}:{pause}"
    with open(p["log"], "w") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def finish(proc: subprocess.Popen, log: Path) -> None:
    try:
        rc = proc.wait(timeout=300)
    finally:
        stop([proc])
    assert rc == 0, log.read_text()[-3000:]


def stop(procs: list[subprocess.Popen]) -> None:
    """SIGKILL the process group of each job still running (never a reaped one, whose id may be reused)."""
    for proc in procs:
        if proc.poll() is None:
            kill([proc.pid])
            proc.wait(timeout=60)


def kill(groups: list[int]) -> None:
    """SIGKILL each process group (torchrun starts every rank in a session of its own)."""
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def gone(pid: int) -> bool:
    """No such process, or only its zombie (a killed rank whose launcher died first waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def kill_mid_epoch(proc: subprocess.Popen, directory: Path, name: str, pause: Path, nproc: int) -> None:
    """Wait until the job has saved epoch EPOCH - 1 and every rank sits inside epoch EPOCH, then kill -9 it all."""
    resume = directory / f"{name}.pt.resume"
    ranks: list[int] = []
    deadline = time.time() + 300
    try:
        while len(ranks) < nproc:
            assert proc.poll() is None, paths(directory, name)["log"].read_text()[-3000:]
            assert time.time() < deadline, "the job never reached the pause"
            ranks = [int(f.read_text()) for f in pause.glob("paused.*")]
            time.sleep(0.2)
        assert load_torch(resume)["epoch"] == EPOCH - 1
    finally:
        kill([proc.pid, *[pid for pid in ranks if pid != proc.pid]])
        proc.wait(timeout=60)
    deadline = time.time() + 30
    while not all(gone(pid) for pid in ranks):  # every rank is dead too, not only the launcher
        assert time.time() < deadline, "a rank survived the kill"
        time.sleep(0.1)


def check_nothing_half_written(directory: Path, name: str) -> None:
    p = paths(directory, name)
    assert not p["out"].exists() and not p["logits"].exists()
    assert not list(directory.glob(".*.tmp")), "the atomic writer left a temporary file"
    assert load_torch(directory / f"{name}.pt.resume")["epoch"] == EPOCH - 1  # whole, and the last epoch saved
    assert [r["epoch"] for r in read_csv(p["epochs"])] == [str(e) for e in range(1, EPOCH)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_same_bits(directory: Path, full: str, killed: str) -> None:
    a, b = paths(directory, full), paths(directory, killed)
    assert "resuming m/s from epoch 1" in b["log"].read_text() and "bit for bit" not in b["log"].read_text()
    assert not (directory / f"{killed}.pt.resume").exists()
    wa, wb = load_torch(a["out"])["model"], load_torch(b["out"])["model"]
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    with np.load(a["logits"]) as za, np.load(b["logits"]) as zb:
        assert sorted(za.files) == sorted(zb.files)
        for key in za.files:
            assert np.array_equal(za[key], zb[key]), key
    ra, rb = read_csv(a["epochs"]), read_csv(b["epochs"])
    assert [r["epoch"] for r in rb] == ["1", "2", "3"]  # each epoch once: the resumed run does not append twice
    timing = ("seconds", "samples_per_s")
    assert [{k: v for k, v in r.items() if k not in timing} for r in rb] == \
        [{k: v for k, v in r.items() if k not in timing} for r in ra]


def kill_resume_compare(spec, directory: Path, nproc: int) -> None:
    """The uninterrupted job and the one to kill start together (their startups overlap); then the rerun."""
    full = start(spec, directory, "full", nproc)
    killed = start(spec, directory, "killed", nproc, pause=directory / "pause")
    try:
        kill_mid_epoch(killed, directory, "killed", directory / "pause", nproc)
        check_nothing_half_written(directory, "killed")
        rerun = start(spec, directory, "killed", nproc)
        finish(rerun, paths(directory, "killed")["log"])
        finish(full, paths(directory, "full")["log"])
    finally:
        stop([full, killed])
    assert_same_bits(directory, "full", "killed")


def test_kill_9_mid_epoch_resumes_to_the_same_bits(tmp_path):
    kill_resume_compare(DIGITS, tmp_path, nproc=1)


def test_kill_9_mid_epoch_resumes_a_text_stage_to_the_same_bits(tmp_path):
    kill_resume_compare(text_spec(tmp_path), tmp_path, nproc=1)


def test_kill_9_of_every_ddp_rank_resumes_to_the_same_bits(tmp_path):
    kill_resume_compare(DIGITS, tmp_path, nproc=2)


def test_a_resume_without_this_rank_count_restores_the_first_state_and_says_so():
    """One process given the states of two ranks (or a pre-per-rank file's single state) takes the first one; only
    the single state of a single process is exact."""
    from eebench import rng

    torch.manual_seed(1)
    first = rng.capture()
    torch.manual_seed(2)
    second = rng.capture()
    assert rng.restore_rank([first, second]) is False
    assert torch.equal(torch.get_rng_state(), first["torch"])
    assert rng.restore_rank(second) is True and torch.equal(torch.get_rng_state(), second["torch"])
    assert rng.restore_rank([first]) is True and torch.equal(torch.get_rng_state(), first["torch"])
