"""config/text_ci.yaml through the real Snakemake DAG: a tiny random BERT on an SST-2 slice, every NLP method, to
Table 1 with its text cost columns (real-length MACs and FLOPs beside the padded convention)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SST2 = REPO.parent / "shared" / "data" / "sst2_glue"
pytestmark = [pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed"),
              pytest.mark.skipif(not SST2.exists(), reason="shared SST-2 data not present")]


def test_text_ci_config_runs_to_table1(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "text_ci.yaml").read_text())
    cfg["dataset"].update(root=str(SST2), limit_train=128, limit_eval=64, cache_dir=str(tmp_path / "cache"))
    (tmp_path / "text.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile",
           str(tmp_path / "text.yaml"), "--cores", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = tmp_path / "reports" / "text_ci"
    table = (report / "table1.md").read_text()
    for title in ["Backbone", "DeeBERT", "PABEE", "PCEE-BERT", "BERxiT", "BERxiT (no LTE)", "SDN"]:
        assert f"| {title} " in table
    assert "MACs (G, paper, real length)" in table and "FLOPs (G, full, real length)" in table
    assert "pads every sample to 64 tokens" in table
    raw = pd.read_csv(report / "table1.csv")
    # real lengths (≤ 64 tokens, mostly far fewer) cost less than every sample padded to 64
    assert (raw["expected_macs_paper_real_mean"] < raw["expected_macs_paper_mean"]).all()
    assert (raw["expected_flops_full_real_mean"] == 2 * raw["expected_macs_full_real_mean"]).all()
    curve = pd.read_csv(tmp_path / "results" / "text_ci" / "curves" / "pabee" / "seed0.csv")
    assert set(curve["metric"]) == {"accuracy"} and (curve["score"] == curve["accuracy"]).all()
    assert (report / "fig1_tradeoff.png").stat().st_size > 0
