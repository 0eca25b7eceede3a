"""config/text_ci.yaml through the real Snakemake DAG: a tiny random BERT on an SST-2 slice, every NLP method, to
Table 1 with its text cost columns (real-length MACs and FLOPs beside the padded convention) and Table 5."""
import json
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
    runtimes = cfg["latency"]["runtime"]
    assert runtimes == ["eager", "onnxruntime"]
    if not _installed("onnxruntime", "onnx"):  # the export extra is optional: time with eager alone
        cfg["latency"]["runtime"] = runtimes = ["eager"]
    (tmp_path / "text.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile",
           str(tmp_path / "text.yaml"), "--cores", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = tmp_path / "reports" / "text_ci"
    table = (report / "table1.md").read_text()
    for title in ["Backbone", "DeeBERT", "PABEE", "PCEE-BERT", "BERxiT", "BERxiT (no LTE)", "SDN", "COST-EFF",
                  "COST-EFF (8x)"]:
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
    # Table 5 on text: every method live at batch 1 on dev sentences at their own lengths, one thread and every core,
    # with the protocol's columns; the live decisions equal the offline replay of each method's cache
    t5 = (report / "table5.md").read_text()
    assert "| COST-EFF (8x) " in t5 and "p50 / p90 / p99 (ms)" in t5 and "real length" in t5
    raw5 = pd.read_csv(report / "table5.csv")
    # one row per method, thread setting and runtime, each method against its backbone under the same runtime;
    # EEformer's GLH heads keep a data-dependent number of tokens on text, which the ONNX exporter refuses: one row
    # says it was not run under onnxruntime
    timed = raw5[raw5["latency_ms"].notna()]
    not_run = raw5[raw5["latency_ms"].isna()]
    assert [(r.method, r.runtime) for r in not_run.itertuples()] == [("eeformer", r) for r in runtimes[1:]]
    assert len(timed) == (10 * len(runtimes) - len(not_run)) * len(set(timed["threads"]))
    assert list(dict.fromkeys(raw5["runtime"])) == runtimes
    assert timed["real_over_mac"].notna().all() and "Real ÷ MAC" in t5
    assert (timed["decisions_matched"] == timed["decisions_total"]).all() and (timed["decisions_total"] == 64).all()
    assert timed["gate_pass"].notna().all()
    batched = pd.read_csv(report / "table5_batched.csv")
    assert set(batched["batch"]) == {32, 64} and (batched["same_as_batch1"] == batched["queries_compared"]).all()
    assert (report / "table5_breakdown.md").exists()
    # COST-EFF: the TA is one job for both presets; each preset's pruned checkpoint records its shape and events;
    # its costs are counted on that checkpoint; its table and the Pareto figure are rendered
    import torch

    results = tmp_path / "results" / "text_ci"
    assert not (results / "train" / "cost_eff_8x" / "seed0" / "ta_pred.pt").exists()
    ckpt = torch.load(results / "train" / "cost_eff_8x" / "seed0" / "prune.pt", weights_only=False)
    assert ckpt["slender_shape"]["ffn"] == [16] * 4 and ckpt["slender_shape"]["rank"] == 16
    assert [e["step"] for e in ckpt["slenderise"]["events"]] == [e["planned_step"] for e in ckpt["slenderise"]["events"]]
    costs = json.loads((results / "costs" / "cost_eff_8x.json").read_text())
    assert costs["slender_shape"]["heads"] == [1] * 4 and costs["profiler_flops"]["cumulative"]
    ce = pd.read_csv(report / "costeff.csv")
    assert set(ce["method"]) == {"cost_eff", "cost_eff_8x"} and (ce["params_vs_backbone"] > 1).all()
    assert ce["expected_flops_profiler_vs_backbone"].notna().all()
    assert (report / "fig_costeff_pareto.png").stat().st_size > 0
    # COST-EFF distils from its own fine-tune (batch 32, weight decay 0.01 without biases and LayerNorm weights,
    # warm-up 10 %, best dev epoch: not the backbone row's job) and reads its retention against it; the tables state the text runs' departures from the official codes
    assert set(ce["teacher"]) == set(ce["teacher_job"]) == {"backbone_costeff:finetune"}
    assert ((ce["retention"] - ce["score"] / ce["teacher_score"]).abs() < 1e-12).all()
    costeff_md = (report / "costeff.md").read_text()
    assert "Teacher (the retention denominator): backbone_costeff:finetune: batch 32" in costeff_md
    assert "Text batches: training batches are length-bucketed" in table
    assert "PCEE-BERT: no dev-set checkpoint selection" in table
    # the tiny board of this run (what `eebench board build` commits for sst2-minilm, at CI size)
    from eebench.cli import main
    from eebench.leaderboard.boards import load_board

    assert main(["board", "build", "text-ci", "--configfile", str(tmp_path / "text.yaml"), "--results-root",
                 str(tmp_path), "--out", str(tmp_path / "board")]) == 0
    board = load_board(tmp_path / "board")
    cell = board.cells["text_ci"]
    for f in ["store.csv", "samples.npz", "entries.csv", "leaderboard.html", "table1.md", "table5.md", "costeff.md",
              "fig1_tradeoff.png", "pareto.png"]:
        assert (cell / f).is_file(), f
    samples, store = board.samples("text_ci"), board.store("text_ci")
    assert samples.lengths is not None and samples.n == 64 and len(samples.keys) == len(store)
    for method in ["backbone", "pabee", "berxit", "cost_eff_8x"]:
        curve = pd.read_csv(results / "curves" / method / "seed0.csv")
        for e, (_, point) in zip(samples.entries(method, 0), curve.iterrows()):
            # each sample charged at its own length, as the curve's real-length columns
            assert e.sample_macs(real=True).mean() == pytest.approx(point["expected_macs_paper_real"], rel=1e-12)
            assert e.mac_speedup(real=True) == pytest.approx(point["head_aware_speedup_paper_real"], rel=1e-12)
            assert e.accuracy() == pytest.approx(point["accuracy"], abs=1e-12)
    summary = (board.root / "summary.md").read_text()
    assert "Board summary" in summary and "| sst2 (accuracy) " in summary
    assert "within 1 point of the backbone" in summary
    assert json.loads((board.root / "board.json").read_text())["provenance"]["wall_time"]["stages"] >= 10
    assert sum(p.stat().st_size for p in board.root.rglob("*") if p.is_file()) < 2_000_000


def _installed(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


def _glue_folder(root: Path, header: str, rows: list[str]) -> str:
    root.mkdir(parents=True)
    for split in ("train", "dev"):
        (root / f"{split}.tsv").write_text(header + "".join(rows), encoding="utf-8")
    return str(root)


def test_glue_grid_with_regression_renders_the_cross_task_table(tmp_path):
    words = ["good", "bad", "fine", "awful", "nice", "dull", "great", "poor"]
    rng = __import__("random").Random(0)
    pairs = [(" ".join(rng.choices(words, k=rng.randint(2, 12))), " ".join(rng.choices(words, k=rng.randint(2, 9))))
             for _ in range(48)]
    mrpc = _glue_folder(tmp_path / "MRPC", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n",
                        [f"{i % 2}\t{i}\t{i}\t{a}\t{b}\n" for i, (a, b) in enumerate(pairs)])
    stsb = _glue_folder(tmp_path / "STS-B", "index\tgenre\tsentence1\tsentence2\tscore\n",
                        [f"{i}\tnews\t{a}\t{b}\t{(i * 7) % 50 / 10}\n" for i, (a, b) in enumerate(pairs)])
    pabee = {"heads": {"type": "pooled_linear"}}
    cfg = {"run": "glue_ci", "seeds": [0], "dataset": {"name": "glue", "max_seq_length": 32,
                                                       "cache_dir": str(tmp_path / "cache")},
           "backbone": {"name": "bert_tiny_test", "pretrained": False},
           "training": {"epochs": 1, "batch_size": 16, "lr": 1e-3},
           "methods": {"backbone": {}, "pabee": pabee},
           "grid": [{"name": "sst2", "dataset": {"task": "sst2", "root": str(SST2), "limit_train": 48,
                                                 "limit_eval": 32}},
                    {"name": "mrpc", "dataset": {"task": "mrpc", "root": mrpc}},
                    {"name": "stsb", "dataset": {"task": "stsb", "root": stsb},
                     "methods": {"backbone": {}, "pabee": {**pabee, "policy": {
                         "name": "pabee_patience_regression", "params": {"regression_threshold": 0.1},
                         "sweep": {"patience": [0, 1, 2]}}}}}]}
    (tmp_path / "text.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile",
           str(tmp_path / "text.yaml"), "--cores", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = (tmp_path / "reports" / "glue_ci" / "table1_glue.md").read_text()
    assert "| sst2 (accuracy) " in table and "| mrpc (F1/acc.) " in table and "| stsb (Pearson/Spearman) " in table
    assert "| PABEE " in table and "GLUE avg." in table
    assert "Text batches: training batches are length-bucketed (dataset.bucket: 50" in table
    assert "PCEE-BERT" not in table  # no PCEE in this grid: no note about its selection
    stsb_t1 = (tmp_path / "reports" / "glue_ci" / "stsb" / "table1.md").read_text()
    assert "Pearson/Spearman (%)" in stsb_t1 and "Accuracy (%)" not in stsb_t1
    curve = pd.read_csv(tmp_path / "results" / "glue_ci" / "stsb" / "curves" / "pabee" / "seed0.csv")
    assert set(curve["metric"]) == {"Pearson/Spearman"} and curve["score"].between(-1, 1).all()
    # the store (and the leaderboard) rank that score, not the regression's undefined accuracy (NaN)
    store = pd.read_parquet(tmp_path / "results" / "glue_ci" / "stsb" / "store.parquet")
    ranked = store[store["method"] == "pabee"]
    assert set(store["metric"]) == {"Pearson/Spearman"} and store["metric_value"].notna().all()
    assert sorted(ranked["metric_value"]) == pytest.approx(sorted(curve["score"]))
    pvo = (tmp_path / "reports" / "glue_ci" / "paper_vs_ours_glue.md").read_text()
    assert "| Paper | Claim | sst2 | mrpc | stsb |" in pvo and "| 1.62× / " in pvo
    glue_cells = pd.read_csv(tmp_path / "reports" / "glue_ci" / "paper_vs_ours_glue.csv")
    pabee = glue_cells[glue_cells["claim"] == "PABEE speed-up"]
    assert list(pabee["task"]) == ["sst2", "mrpc", "stsb"] and (pabee["status"] == "run").all()
    # the grid's board: one cell per task, the summary method × task, STS-B's records without correctness
    from eebench.cli import main
    from eebench.leaderboard.boards import load_board

    assert main(["board", "build", "glue-ci", "--configfile", str(tmp_path / "text.yaml"), "--results-root",
                 str(tmp_path), "--out", str(tmp_path / "board")]) == 0
    board = load_board(tmp_path / "board")
    assert board.meta["cells"] == {"glue_ci/sst2": "sst2", "glue_ci/mrpc": "mrpc", "glue_ci/stsb": "stsb"}
    summary = (board.root / "summary.md").read_text()
    for head in ["| sst2 (accuracy) ", "| mrpc (F1/acc.) ", "| stsb (Pearson/Spearman) "]:
        assert head in summary
    assert "→" in summary and (board.root / "summary.csv").is_file() and (board.root / "table1_glue.md").is_file()
    stsb = board.samples("glue_ci/stsb")
    assert not stsb.has_correct and all(e.correct is None for e in stsb.entries("pabee"))
    assert board.samples("glue_ci/mrpc").has_correct
