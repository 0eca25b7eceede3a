"""DDP on CPU (gloo, two processes): the same global batch gives the same model and exit-logit cache as one process,
and a killed two-rank job resumes to the uninterrupted result."""
import os
import socket
import subprocess
import sys
import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_BACKBONE, train_killed_and_resumed

import eebench.training.loop as loop
from eebench.evaluate import load_cache
from eebench.io import load_torch

# the train split of digits at test_fraction 0.9 has 179 samples: global batches of 64, 64 and 51, so the last
# one splits 25/26 over two ranks and tests the loss scaling of a ragged batch
SPEC = {"run": "t", "seed": 5, "threads": 1, "dataset": {"name": "digits", "test_fraction": 0.9},
        "backbone": TINY_BACKBONE,
        "method": {"name": "m", "exit_layers": [2, 4], "heads": [{"type": "mlp"}, {"type": "mlp"}]},
        "stage": {"name": "s", "loss": "weighted", "train": "all", "init": None, "epochs": 3, "batch_size": 64,
                  "lr": 2e-3, "weight_decay": 0.01, "warmup_ratio": 0.2, "grad_clip": 1.0, "loss_params": {}}}
TOLERANCE = 1e-4  # absolute, on logits of order 1: only the order of float additions differs between 1 and 2 ranks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    loop.train_stage(SPEC, tmp_path / "one.pt", progress=False, logits_out=tmp_path / "one.npz")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "eebench.cli", "train", "--nproc", "2", "--spec", json.dumps(SPEC),
                          "--out", str(tmp_path / "two.pt"), "--logits", str(tmp_path / "two.npz"),
                          "--epochs-csv", str(tmp_path / "two.csv")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("timing:") == 1  # only rank 0 reports
    one, two = load_cache(tmp_path / "one.npz"), load_cache(tmp_path / "two.npz")
    assert torch.equal(one["labels"], two["labels"])  # gathered in dataset order
    assert one["logits"].shape == two["logits"].shape == (3, 1618, 10)
    assert (one["logits"] - two["logits"]).abs().max() < TOLERANCE
    a, b = load_torch(tmp_path / "one.pt"), load_torch(tmp_path / "two.pt")
    assert b["provenance"]["world_size"] == 2
    assert [r["loss"] for r in b["log"]] == pytest.approx([r["loss"] for r in a["log"]], abs=TOLERANCE)
    assert not (tmp_path / "two.pt.resume").exists()
    assert (tmp_path / "two.csv").read_text().count("\n") == 4  # header + 3 epochs, written once


def _rank(rank: int, port: int, directory: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        full, resumed = train_killed_and_resumed(SPEC, Path(directory), mp, logits=True)
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    assert [r["loss"] for r in resumed["log"]] == [r["loss"] for r in full["log"]]
    import torch.distributed as dist

    dist.destroy_process_group()


def test_a_killed_two_rank_job_resumes_exactly(tmp_path):
    torch.multiprocessing.spawn(_rank, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    assert (tmp_path / "full.npz").exists() and not (tmp_path / "killed.pt.resume").exists()
