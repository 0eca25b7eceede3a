"""The real Snakemake DAG on a tiny config: it completes, a second run does nothing, and editing one training
hyper-parameter reruns only the jobs that depend on it."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import job_counts

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
                "deebert": {"stages": {"offramps": {"epochs": 1}}}, "eeformer": {}},
    "ablations": {"base": "lgvit", "heads": ["mlp", "lgvit"], "schemes": ["normal", "two_stage"],
                  "positions": {"shallow": [1, 2], "uniform": [2, 4]}, "num_exits": {"2": [2, 4], "4": [2, 3, 4, 5]},
                  "eeformer": {}},
    "report": {"paper_setting": {"backbone": "ViT-B/16", "dataset": "CIFAR-100"}},
    "latency": {"methods": ["backbone", "lgvit"], "passes": 1, "limit": 12},
}


def snakemake(workdir: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile",
           str(workdir / "tiny.yaml"), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


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


def test_every_ablation_table_and_figure(finished_run):
    report = finished_run / "reports" / "tiny"
    for name in ["table2", "table3", "table4", "table6", "table7"]:
        for ext in ["md", "csv", "tex"]:
            assert (report / f"{name}.{ext}").stat().st_size > 0, (name, ext)
    for name in ["fig1_tradeoff", "fig4_num_exits"]:
        for ext in ["png", "pdf"]:
            assert (report / f"{name}.{ext}").stat().st_size > 0, (name, ext)
    assert "\\toprule" in (report / "table6.tex").read_text()


def test_table_cells_trace_back_to_the_stored_curves(finished_run):
    import pandas as pd

    from eebench.report.summary import summarize

    cfg = {"operating_point": {"rule": "max_speedup_within_drop", "max_drop": 1.0}, "auc_speedup_range": [1.0, 3.0]}
    t1 = pd.read_csv(finished_run / "reports" / "tiny" / "table1.csv").set_index("method")
    curve = pd.read_csv(finished_run / "results" / "tiny" / "curves" / "lgvit" / "seed0.csv")
    s = summarize(curve, cfg, True)
    assert t1.loc["lgvit", "accuracy_mean"] == pytest.approx(s["accuracy_mean"])
    assert t1.loc["lgvit", "layer_speedup_mean"] == pytest.approx(s["layer_speedup_mean"])
    t6 = pd.read_csv(finished_run / "reports" / "tiny" / "table6.csv").set_index("method")
    curve = pd.read_csv(finished_run / "results" / "tiny" / "curves" / "abl-mlp-normal" / "seed0.csv")
    assert t6.loc["abl-mlp-normal", "accuracy_mean"] == pytest.approx(summarize(curve, cfg, True)["accuracy_mean"])


def test_paper_vs_ours(finished_run):
    import pandas as pd

    text = (finished_run / "reports" / "tiny" / "paper_vs_ours.md").read_text()
    assert "stands in for the paper's **ViT-B/16 / CIFAR-100** setting" in text
    lgvit = [l for l in text.splitlines() if l.startswith("| Ours (LGViT) | 101 / ")]  # Table 1's row
    assert len(lgvit) == 1 and "| 88.5 / " in lgvit[0] and "—" not in lgvit[0]
    # the run has 2 of Table 1's 7 rows of its setting: 3 × 3 × 7 × 4 - 2 × 4 = 244 cells not run
    assert "244 cells not run at this scale: ViT-B/16 on Food-101, ImageNet-1K; DeiT-B, Swin-B on every dataset; " \
           "ViT-B/16 on CIFAR-100: SDN, PABEE, BERxiT, ViT-EE, PCEE." in text
    cells = pd.read_csv(finished_run / "reports" / "tiny" / "paper_vs_ours.csv")
    food = cells[cells["cell"] == "backbone=ViT-B/16, dataset=Food-101, method=lgvit"]
    assert len(food) == 4 and (food["status"] == "not run at this scale").all() and food["ours"].isna().all()
    for table in ["Table 1", "Table 2", "Table 3", "Table 4", "Table 5", "Table 6", "Table 7"]:
        assert f"## {table}: " in text


def test_table5_times_each_method_at_its_table1_operating_point(finished_run):
    import pandas as pd

    from eebench.evaluate import load_cache
    from eebench.policies import build_policy

    report = finished_run / "reports" / "tiny"
    for name in ["table5.md", "table5.csv", "table5.tex", "fig5_wallclock.png", "fig5_wallclock.pdf"]:
        assert (report / name).stat().st_size > 0, name
    t5 = pd.read_csv(report / "table5.csv").set_index("method")
    t1 = pd.read_csv(report / "table1.csv").set_index("method")
    assert list(t5.index) == ["backbone", "lgvit"]
    assert t5.loc["lgvit", "setting"] == t1.loc["lgvit", "setting"]  # the very point Table 1 reports
    assert t5.loc["backbone", "setting"] == t1.loc["backbone", "setting"] == "full depth"
    assert (t5["queries"] == 12).all() and (t5["timed_passes"] == 1).all() and (t5["latency_ms"] > 0).all()
    assert (t5["decisions_matched"] == 12).all() and (t5["decisions_total"] == 12).all()  # live = offline replay
    assert set(t5["runtime"]) == {"eager"} and t5["latency_p99_ms"].notna().all()
    assert t5.loc["backbone", "layer_speedup_mean"] == 1.0
    # live accuracy on the timed images = the offline policy on the cached logits of the same images
    cache = load_cache(finished_run / "results" / "tiny" / "logits" / "lgvit" / "seed0" / "stage2.npz")
    value = float(t1.loc["lgvit", "setting"].split("=")[1])
    decision = build_policy("lgvit_confidence", threshold=value).decide(cache["logits"][:, :12])
    offline = float((decision.prediction == cache["labels"][:12]).double().mean())
    assert t5.loc["lgvit", "accuracy_mean"] == pytest.approx(offline)
    text = (report / "paper_vs_ours.md").read_text().split("## Table 5")[1]
    row = [line for line in text.splitlines() if line.startswith("| Ours (LGViT) | 9.76 (0.58) / ")]
    assert row and "| 5.03 ± 0.16 / " in row[0] and "Our times: cpu, fp32, eager; the paper's: an RTX 3090." in text


def test_eeformer_row_claims_and_ablation_are_marked_reconstructed(finished_run):
    import pandas as pd

    from eebench.report.style import RECONSTRUCTED_NOTE

    report = finished_run / "reports" / "tiny"
    t1 = (report / "table1.md").read_text()
    assert "| EEformer † " in t1 and RECONSTRUCTED_NOTE in t1
    assert pd.read_csv(report / "table1.csv").set_index("method").loc["eeformer", "reconstructed"]
    claims = pd.read_csv(report / "eeformer_claims.csv").set_index("method")
    assert claims.loc["eeformer_paper", "speedup_at_99"] == 1.87 and claims.loc["eeformer_paper", "speedup_at_98.5"] == 3.05
    assert set(claims.index) == {"eeformer_paper", "backbone", "lgvit", "mlp_normal", "deebert", "eeformer"}
    abl = (report / "eeformer_ablation.md").read_text()
    assert abl.count("| GLH † ") == 3 and abl.count("Progressive three-stage †") == 3 and RECONSTRUCTED_NOTE in abl
    pvo = (report / "paper_vs_ours.md").read_text().split("## EEformer claims (abstract)")[1]
    cifar = next(line for line in pvo.splitlines() if line.startswith("| CIFAR-100 |"))
    assert "| 1.87 / " in cifar  # this run stands in for CIFAR-100: ours beside (a value, or none that keeps 99 %)
    assert "1 cell not run at this scale: SST-2 (98.5 %)." in pvo
    # at one epoch everywhere the GLH two-stage and progressive variants are EEformer's own stages: no jobs of theirs
    train = finished_run / "results" / "tiny" / "train"
    assert (train / "eeformer" / "seed0" / "stage3.pt").exists()
    assert not (train / "abl-glh-two_stage").exists() and not (train / "abl-glh-progressive").exists()
    assert (train / "abl-lgvit-progressive" / "seed0" / "stage3.pt").exists()
    assert not (train / "abl-lgvit-progressive" / "seed0" / "stage1.pt").exists()


def test_second_run_does_nothing(finished_run):
    assert "Nothing to be done" in snakemake(finished_run, "-n")


def test_editing_one_hyperparameter_reruns_only_its_jobs(finished_run):
    cfg = yaml.safe_load((finished_run / "tiny.yaml").read_text())
    cfg["methods"]["mlp_normal"] = {"stages": {"train": {"lr": 1e-3}}}
    (finished_run / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    counts = job_counts(snakemake(finished_run, "-n"))
    # mlp_normal's one training job, then its curve, the report, store and leaderboard; nothing of lgvit or the backbone
    assert counts == {"train": 1, "curves": 1, "report": 1, "store": 1, "leaderboard": 1, "all": 1}, counts


def test_shared_stage_reruns_every_method_built_on_it(finished_run):
    cfg = yaml.safe_load((finished_run / "tiny.yaml").read_text())
    cfg["methods"]["backbone"] = {"stages": {"finetune": {"epochs": 2}}}
    (finished_run / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    log = snakemake(finished_run, "-n")
    counts = job_counts(log)
    # the backbone's fine-tuning is also DeeBERT's stage 1: both retrain (+ mlp_normal from the previous edit)
    assert counts["train"] == 3 and "deebert/seed0/offramps.pt" in log, counts
    assert "output: results/tiny/train/lgvit" not in log and "output: results/tiny/train/deebert" in log
    assert counts["latency"] == 1  # it times the retrained backbone



def test_ablation_tables_state_the_ablations_own_epochs():
    """The ablation variants train at ``ablations.training.epochs``, not the run's: their tables' scale line says so."""
    from eebench.report.run import scale_note

    cfg = {**TINY, "training": {"epochs": 8}}
    assert "8 epochs per stage" in scale_note(cfg) and "4 epochs per stage" in scale_note(cfg, 4)
