"""The paper grid (config/paper.yaml) plans offline: every cell, every ablation, resources, GPU-hour estimate."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eebench.budget import run_budget
from eebench.cli import main
from eebench.plan import Plan, expand_grid, load_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plans():
    return {name: Plan(cfg) for name, cfg in expand_grid(load_config(REPO / "config" / "paper.yaml")).items()}


def test_grid_cells(plans):
    assert len(plans) == 9
    for name, plan in plans.items():
        # Table 1's baselines as the LGViT port ran them (spec methods §2.4, baselines §9), and EEformer (†)
        assert set(plan.methods) == {"backbone", "sdn_port", "pabee_port", "pcee_port", "berxit_port", "vit_ee_port",
                                     "deebert", "lgvit", "eeformer"}, name
        # the port's SDN, PABEE and PCEE are one model (linear exits, static weighted loss): trained once
        assert plan.canonical["pcee_port"] == plan.canonical["pabee_port"] == "sdn_port"
    vit = plans["paper/vit_b16-cifar100"]
    assert vit.method("lgvit")["exit_layers"] == [4, 5, 6, 7, 8, 9, 10, 11]
    assert vit.method("abl-pos-shallow")["exit_layers"] == [2, 3, 4, 5]
    assert vit.method("abl-exits-6")["exit_layers"] == [4, 5, 7, 8, 10, 11]
    assert vit.canonical["abl-lgvit-two_stage"] == "lgvit" and vit.canonical["abl-exits-8"] == "lgvit"
    assert vit.canonical["abl-exits-4"] == "abl-pos-uniform"
    swin = plans["paper/swin_b-cifar100"]
    assert swin.method("lgvit")["exit_layers"] == [4, 7, 10, 13, 16, 19, 22, 23]
    assert swin.method("lgvit")["stages"][0]["epochs"] == 100 and not swin.method("berxit_port")["lte"]
    assert not swin.tables.get("table6")  # ablations only where the paper ran them


def test_budget(plans):
    b = run_budget(plans["paper/vit_b16-cifar100"])
    # 50,000 images × 50 epochs / 2,366 img/s = 0.29 h for one ViT-B training stage
    lgvit_stage1 = 50_000 * 50 / 2366 / 3600
    assert b["gpu_hours"]["train"] > 30 * lgvit_stage1 * 0.9
    # 43 LGViT-paper jobs + EEformer's 3 stages + the EEformer ablation's 3 not shared with them (GLH normal, LPH+GAH
    # and MLP progressive stage 3; GLH two-stage and progressive are EEformer's own stages)
    assert b["jobs"]["report"] == 1 and b["jobs"]["train"] == 49


def test_plan_cli_prints_the_total(capsys):
    assert main(["plan", "--configfile", str(REPO / "config" / "paper.yaml")]) == 0
    out = capsys.readouterr().out
    assert "total jobs: train 129, costs 9, curves 9, report 9" in out and "GPU-hours" in out  # + 9 × 3 + 3 EEformer


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_snakemake_dry_run_of_the_grid(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                           "--configfile", str(REPO / "config" / "paper.yaml")], capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = proc.stdout.split("Job stats:")[1].split("total")[0]
    counts = {line.split()[0]: int(line.split()[1]) for line in stats.splitlines()[3:] if line.strip()}
    assert counts["train"] == 129 and "evaluate" not in counts  # every stage evaluates itself into its cache
    for rule in ("costs_", "curves_", "report_"):  # one job per run and step
        assert sum(v for k, v in counts.items() if k.startswith(rule)) == 9, rule
