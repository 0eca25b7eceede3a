"""The real Snakemake DAG on a tiny config: it completes, a second run does nothing, and editing one training
hyper-parameter reruns only the jobs that depend on it."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")

TINY = {
    "run": "tiny",
    "seeds": [0],
    "dataset": {"name": "digits", "test_fraction": 0.5},
    "backbone": {"name": "vit_tiny_digits", "pretrained": False, "hidden_size": 32, "num_attention_heads": 2,
                 "intermediate_size": 64},
    "training": {"epochs": 1, "lr": 2e-3},
    "methods": {"backbone": {}, "lgvit": {"stages": {"stage2": {"epochs": 1}}}, "mlp_normal": {},
                "deebert": {"stages": {"offramps": {"epochs": 1}}}},
}


def snakemake(workdir: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile",
           str(workdir / "tiny.yaml"), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def job_counts(log: str) -> dict[str, int]:
    block = log.split("Job stats:")[1].split("total")[0] if "Job stats:" in log else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("dag")
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    snakemake(work)
    return work


def test_dag_renders_table1_and_fig1(finished_run):
    report = finished_run / "reports" / "tiny"
    for name in ["table1.md", "table1.csv", "table1.tex", "fig1_tradeoff.png"]:
        assert (report / name).stat().st_size > 0, name
    table = (report / "table1.md").read_text()
    for title in ["Backbone", "LGViT", "MLP exits (normal)", "DeeBERT"]:
        assert f"| {title} " in table
    assert "Operating point:" in table


def test_second_run_does_nothing(finished_run):
    assert "Nothing to be done" in snakemake(finished_run, "-n")


def test_editing_one_hyperparameter_reruns_only_its_jobs(finished_run):
    cfg = yaml.safe_load((finished_run / "tiny.yaml").read_text())
    cfg["methods"]["mlp_normal"] = {"stages": {"train": {"lr": 1e-3}}}
    (finished_run / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    counts = job_counts(snakemake(finished_run, "-n"))
    # mlp_normal's one training job, then its evaluation, curve, and the report; nothing of lgvit or the backbone
    assert counts == {"train": 1, "evaluate": 1, "curve": 1, "table1": 1, "all": 1}, counts


def test_shared_stage_reruns_every_method_built_on_it(finished_run):
    cfg = yaml.safe_load((finished_run / "tiny.yaml").read_text())
    cfg["methods"]["backbone"] = {"stages": {"finetune": {"epochs": 2}}}
    (finished_run / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    log = snakemake(finished_run, "-n")
    counts = job_counts(log)
    # the backbone's fine-tuning is also DeeBERT's stage 1: both retrain (+ mlp_normal from the previous edit)
    assert counts["train"] == 3 and "deebert/seed0/offramps.pt" in log and "train/lgvit" not in log, counts
