"""`eebench compare` end to end on a tiny config: a head file outside the package joins the leaderboard with every
score, and Snakemake's job counts show that no baseline job ran again; the HTML page loads in headless Chromium."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import headless_dom, job_counts

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")

CONFIG = {
    "run": "lb", "seeds": [0],
    "dataset": {"name": "digits", "test_fraction": 0.5},
    "backbone": {"name": "vit_tiny_digits", "pretrained": False, "hidden_size": 32, "num_attention_heads": 2,
                 "intermediate_size": 64},
    "training": {"epochs": 15, "lr": 5e-3, "warmup_ratio": 0.1, "batch_size": 32},  # ≈ 65 % on digits, ~15 s/job
    "methods": {"backbone": {}, "sdn": {}},
    "report": {"paper_setting": {"backbone": "ViT-B/16", "dataset": "CIFAR-100"}},
    "leaderboard": {"bootstrap": 50, "speedups": [1.5, 2.0], "retention": [0.9]},
}
SCORES = ["area_mean", "area_ci_lo", "area_ci_hi", "at_1.5x_mean", "at_2x_mean", "speedup_at_90_mean", "elue_mean",
          "pareto_points", "params", "full_macs", "min_macs"]


def run(cmd, cwd, ok=True):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, env=env)
    if ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    work = tmp_path_factory.mktemp("compare")
    (work / "lb.yaml").write_text(yaml.safe_dump(CONFIG))
    eebench = [sys.executable, "-m", "eebench.cli"]
    base = run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
                "--configfile", "lb.yaml"], work)
    baseline = {p: p.stat().st_mtime_ns for p in (work / "results" / "lb" / "train").rglob("*.pt")}
    curves = {p: p.read_bytes() for p in (work / "results" / "lb" / "curves").rglob("*.csv")}
    run(eebench + ["new-head", "gated", "--dir", "my_heads"], work)
    out = run(eebench + ["compare", "--head", "gated", "--configfile", "lb.yaml", "--plugin", "my_heads/gated.py",
                         "--cores", "2"], work)
    return {"work": work, "log": out.stdout + out.stderr, "baseline": baseline, "curves": curves,
            "base_log": base.stdout + base.stderr}


def test_the_default_target_renders_the_leaderboard(compared):
    assert job_counts(compared["base_log"])["leaderboard"] == 1


def test_new_head_joins_the_leaderboard_with_every_score(compared):
    board = pd.read_csv(compared["work"] / "reports" / "lb" / "leaderboard.csv").set_index("method")
    assert {"gated", "sdn", "backbone"} <= set(board.index)
    row = board.loc["gated"]
    missing = [s for s in SCORES if pd.isna(row[s])]
    assert not missing, (missing, row.to_dict())
    assert row["highlight"] and row["rank"] >= 1
    assert row["area_ci_lo"] <= row["area_mean"] <= row["area_ci_hi"]
    md = (compared["work"] / "reports" / "lb" / "leaderboard.md").read_text()
    assert "gated ★" in md and "Reported in the paper (not ranked" in md and "| lgvit " in md


def test_no_baseline_job_ran_again(compared):
    counts = job_counts(compared["log"])
    # the new head's one training job; the per-run cost, curve, store and leaderboard jobs; no baseline training
    assert counts == {"train": 1, "costs": 1, "curves": 1, "store": 1, "leaderboard": 1}, counts
    assert "method=gated" in compared["log"] and "method=sdn" not in compared["log"]
    assert all(p.stat().st_mtime_ns == t for p, t in compared["baseline"].items())
    assert all(p.read_bytes() == b for p, b in compared["curves"].items())  # baseline curves: byte for byte
    # the protocol the head was compared under is printed and recorded
    assert "compare gated in run lb: backbone vit_tiny_digits" in compared["log"]
    store = pd.read_parquet(compared["work"] / "results" / "lb" / "store.parquet")
    gated = store[(store["method"] == "gated") & (store["policy"] != "static_exit")]
    assert set(gated["exit_positions"]) == {"[1, 2, 3, 4, 5]"} and set(gated["macs_convention"]) == {"paper"}
    assert gated["git_commit"].notna().all() and gated["torch"].notna().all()


def test_store_merge_and_validate_from_the_command_line(compared, tmp_path):
    from eebench.cli import main

    store = compared["work"] / "results" / "lb" / "store.parquet"
    other = pd.read_parquet(store).assign(macs_convention="full")
    other.to_parquet(tmp_path / "full.parquet")
    assert main(["validate", str(store)]) == 0
    assert main(["validate", str(tmp_path / "full.parquet"), "--against", str(store)]) == 2
    assert main(["merge", str(store), str(store), "--out", str(tmp_path / "m.parquet")]) == 0
    assert len(pd.read_parquet(tmp_path / "m.parquet")) == len(pd.read_parquet(store))
    assert (tmp_path / "m.csv").is_file()
    # a merged store is ranked without the run's caches (no bootstrap interval then)
    assert main(["leaderboard", "--store", str(tmp_path / "m.parquet"), "--configfile",
                 str(compared["work"] / "lb.yaml"), "--out-dir", str(tmp_path / "board")]) == 0
    board = pd.read_csv(tmp_path / "board" / "leaderboard.csv").set_index("method")
    assert "gated" in board.index and pd.isna(board.loc["gated", "area_ci_lo"])


def test_html_loads_in_headless_chromium_without_console_errors(compared, tmp_path):
    page = compared["work"] / "reports" / "lb" / "leaderboard.html"
    dom, console = headless_dom(page, tmp_path / "profile")
    assert not console, console
    status = re.search(r'<div id="js-status" data-rows="(\d+)" data-errors="([^"]*)"', dom)
    assert status and int(status.group(1)) == 3 and status.group(2) == "[]", dom[-2000:]
    assert '<table id="leaderboard">' in dom and 'data-method="gated"' in dom and 'class="highlight"' in dom
    assert re.search(r'<div id="pareto"><svg', dom) and "curve-gated" in dom
