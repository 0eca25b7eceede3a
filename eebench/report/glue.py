"""The NLP side of the report.

``glue_table``: Table 1 across GLUE tasks (a grid config with one run per task): method × task, each cell the task's
metric / expected MACs per sample at its real length / layer speed-up at the run's operating point, with every
method's parameters and the GLUE average (WNLI left out, as BERT and the GLUE baselines report it).
``nlp_paper_vs_ours``: the NLP papers' published numbers (spec baselines §6, methods §6–§7) beside ours.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..data.glue_tasks import TASKS
from ..io import write_text
from ..metrics import get_metric
from .tables import write_table

AVERAGE_SKIPS = ("wnli",)

# Published NLP numbers the spec records: the paper, its claim (``what``, and ``name`` in a count of cells not run),
# the task it is on ("glue": every task of a GLUE run), its value and which of our figures stands beside it
NLP_PAPER = [
    {"paper": "PABEE (Zhou et al., NeurIPS 2020), HF README", "method": "pabee", "task": "glue",
     "what": "speed-up on GLUE dev, BERT-base", "name": "PABEE speed-up", "value": "1.62×", "ours": "speedup"},
    {"paper": "EEformer (journal extension of LGViT), abstract", "method": "eeformer", "task": "sst2",
     "what": "speed-up at 98.5 % of the original's accuracy on SST-2", "name": "EEformer speed-up", "value": "3.05×",
     "ours": "speedup"},
    # COST-EFF's abstract: Pareto-optimal at 1/8 of BERT-base's parameters and 1/19 of its FLOPs at ≈ 96.5 % of its
    # GLUE performance — read on the 8x preset ([INFERRED] as the paper's 1/8 point) at the run's operating point
    {"paper": "COST-EFF (Shen et al., EMNLP 2022), abstract", "method": "cost_eff_8x", "task": "glue",
     "what": "parameters, BERT-base ÷ COST-EFF (8x preset)", "name": "COST-EFF parameters ratio", "value": "8× (1/8)",
     "ours": "params_ratio"},
    {"paper": "COST-EFF (Shen et al., EMNLP 2022), abstract", "method": "cost_eff_8x", "task": "glue",
     "what": "FLOPs per sample, BERT-base ÷ COST-EFF (torch.profiler, padded; 8x preset)",
     "name": "COST-EFF FLOPs ratio", "value": "19× (1/19)", "ours": "flops_ratio"},
    {"paper": "COST-EFF (Shen et al., EMNLP 2022), abstract", "method": "cost_eff_8x", "task": "glue",
     "what": "performance retained of its fine-tuned BERT-base teacher on GLUE (8x preset)",
     "name": "COST-EFF retention", "value": "≈ 96.5 %", "ours": "retention"},
]


def task_of(config: dict[str, Any]) -> str | None:
    ds = config["dataset"]
    return ds.get("task", "sst2") if ds["name"] == "glue" else None


def metric_of(task: str) -> str:
    return get_metric(TASKS[task].metric).name


def _score(row: pd.Series) -> tuple[float, float]:
    col = "score" if "score_mean" in row and pd.notna(row["score_mean"]) else "accuracy"
    return float(row[f"{col}_mean"]), float(row[f"{col}_std"])


OWN_POINT = "at each run's own operating point (see its Table 1)"


def glue_table(cells: dict[str, pd.DataFrame], titles: dict[str, str], out_dir: str | Path, scale: str,
               extra_notes: list[str] | None = None, stem: str = "table1_glue",
               title: str = "Table 1 (GLUE): methods × tasks", point: str = OWN_POINT, tex: bool = True) -> pd.DataFrame:
    """``cells``: task → that run's raw Table 1 (``table1.csv``), or rows of the same columns at another operating
    point (``point`` says which; a board's summary); a ``full_score`` column adds the metric at full depth before
    the operating point's, and a row without a point (its metric empty) shows "—". ``extra_notes``: the cells'
    departures from the official codes (``report.departures``)."""
    methods = list(dict.fromkeys(m for df in cells.values() for m in df["method"]))
    display, raw = [], []
    for method in methods:
        row = {"Method": titles.get(method, method)}
        scores = []
        params = None
        for task, df in cells.items():
            hit = df[df["method"] == method]
            head = f"{task} ({metric_of(task)})"
            if hit.empty:
                row[head] = "—"
                continue
            r = hit.iloc[0]
            params = int(r["params"])
            full = r.get("full_score")
            reached = pd.notna(r.get("score_mean")) or pd.notna(r.get("accuracy_mean"))
            score = _score(r)[0] if reached else None
            macs = r.get("expected_macs_paper_real_mean", r["expected_macs_paper_mean"])
            before = "" if full is None or pd.isna(full) else f"{full * 100:.1f} → "
            row[head] = (before + f"{score * 100:.1f} / {macs / 1e9:.3g} G / {r['layer_speedup_mean']:.2f}×"
                         if reached else before + f"— ({r['setting']})")
            if task not in AVERAGE_SKIPS and reached:
                scores.append(score)
            raw.append({"method": method, "task": task, "metric": metric_of(task), "score": score,
                        **({"full_score": full} if "full_score" in r else {}),
                        "params": params, "expected_macs_paper_real": macs if reached else None,
                        "expected_macs_paper_padded": r["expected_macs_paper_mean"],
                        "layer_speedup": r["layer_speedup_mean"], "setting": r["setting"]})
        row["#Params (M)"] = f"{params / 1e6:.2f}" if params else "—"
        row["GLUE avg."] = f"{sum(scores) / len(scores) * 100:.1f}" if scores and \
            len(scores) == len([t for t in cells if t not in AVERAGE_SKIPS]) else "—"
        display.append(row)
    notes = [f"Scale: {scale}.",
             "Each cell: " + ("the metric at full depth (the method's slowest point) → " if any(
                 "full_score" in df for df in cells.values()) else "") +
             "the task's metric (%) / expected MACs per dev sample, each sample charged its own (unpadded) "
             "length and the exit it took (paper convention: Linear only, exit heads included) / layer speed-up "
             f"(L / mean executed layers); {point}.",
             "Metrics (GLUE): MCC for CoLA, mean of F1 and accuracy for MRPC and QQP, mean of Pearson and Spearman for "
             "STS-B, accuracy elsewhere; MNLI matched (mnli) and mismatched (mnli_mm).",
             f"GLUE avg.: mean over the tasks run, {', '.join(AVERAGE_SKIPS)} left out; '—' where a method did not run "
             "on every task (STS-B is regression: only the backbone and PABEE).", *(extra_notes or [])]
    raw_df = pd.DataFrame(raw)
    write_table(pd.DataFrame(display), raw_df, Path(out_dir) / stem, title, notes, tex=tex)
    return raw_df


def nlp_paper_vs_ours(cells: dict[str, pd.DataFrame], path: str | Path, scale: str,
                      costeff: dict[str, pd.DataFrame | None] | None = None) -> None:
    """The NLP papers' claims beside ours, as ``paper_vs_ours.md`` sets the LGViT paper's: one row per claim, one
    column per task of this run (a GLUE grid: each task; one-task run: that task), each cell paper / ours; only the
    claims this run has a counterpart for, the others counted in one line; every claim × task in the CSV beside
    ``path``. ``costeff``: task → that run's COST-EFF table (``report.costeff``), whose teacher COST-EFF's retention
    is read against (the paper reports it of its own fine-tuned BERT-base); without one, the backbone row's score."""
    path = Path(path)
    records = [_nlp_record(entry, task, cells[task], (costeff or {}).get(task))
               for entry in NLP_PAPER for task in cells if entry["task"] in ("glue", task)]
    tasks = list(cells)
    lines = ["# The NLP papers' numbers beside ours", "",
             "- Each cell: **paper / ours**, one column per task of this run, for the claims this run has; every "
             f"claim and task, run or not, is in `{path.with_suffix('.csv').name}`.",
             "- **Papers**: BERT-base (12 blocks, 110 M) fine-tuned on the full GLUE training sets; numbers as the "
             "spec records them (spec/baselines.md §6, spec/methods.md §6–§7).",
             f"- **Ours**: {scale}.",
             "- Scales may differ (backbone size, data, epochs): compare ratios, not values.", ""]
    shown = [e for e in NLP_PAPER if any(r["claim"] == e["name"] and r["status"] == "run" for r in records)]
    if shown:
        lines += ["| Paper | Claim | " + " | ".join(tasks) + " |", "|" + "---|" * (2 + len(tasks))]
        for entry in shown:
            by_task = {r["task"]: r for r in records if r["claim"] == entry["name"]}
            row = [f"{entry['value']} / {by_task[t]['ours_text']}" if t in by_task and by_task[t]["status"] == "run"
                   else "— (not run)" for t in tasks]
            lines.append(f"| {entry['paper']} | {entry['what']} | " + " | ".join(row) + " |")
        lines.append("")
    refs = sorted({r["reference"] for r in records if r["claim"] == "COST-EFF retention" and r["status"] == "run"})
    if refs:
        lines.append(f"Retention: COST-EFF's metric ÷ that of {' and '.join(refs)}, at the run's operating point.")
    missing = [r for r in records if r["status"] != "run"]
    if missing:
        names: dict[str, list[str]] = {}
        for r in missing:
            names.setdefault(r["claim"], []).append(r["task"])
        lines.append(f"{len(missing)} cell{'s' if len(missing) > 1 else ''} not run in this config: "
                     + "; ".join(f"{claim} ({', '.join(ts)})" for claim, ts in names.items()) + ".")
    write_text(path, "\n".join(lines + [""]))
    write_text(path.with_suffix(".csv"), pd.DataFrame(records).to_csv(index=False))


def _nlp_record(entry: dict[str, Any], task: str, df: pd.DataFrame, costeff: pd.DataFrame | None) -> dict[str, Any]:
    """One claim on one task: our figure (``ours``, as a number and as the cell's text) and what it is relative to."""
    rec = {"claim": entry["name"], "paper_source": entry["paper"], "what": entry["what"], "task": task,
           "paper": entry["value"], "ours": None, "ours_text": None, "reference": None,
           "status": "not run in this config"}
    hit, base = df[df["method"] == entry["method"]], df[df["method"] == "backbone"]
    if hit.empty:
        return rec
    r = hit.iloc[0]
    if entry["ours"] == "speedup":
        rec["ours"], rec["ours_text"] = r["layer_speedup_mean"], f"{r['layer_speedup_mean']:.2f}×"
    elif entry["ours"] == "params_ratio" and not base.empty:
        rec["ours"] = base.iloc[0]["params"] / r["params"]
        rec["ours_text"], rec["reference"] = f"{rec['ours']:.2f}×", "the backbone row"
    elif entry["ours"] == "flops_ratio" and not base.empty:
        col = "expected_flops_profiler_mean"
        if col in r and col in base.columns and r[col]:
            rec["ours"] = base.iloc[0][col] / r[col]
            rec["ours_text"], rec["reference"] = f"{rec['ours']:.2f}× (at {r['setting']})", "the backbone row"
    elif entry["ours"] == "retention":
        rec["reference"], ref = _retention_reference(entry["method"], base, costeff)
        if ref is not None:  # undefined where the reference scores 0 (a constant predictor's MCC)
            rec["ours"] = _score(r)[0] / ref if ref and pd.notna(ref) else None
            rec["ours_text"] = f"{rec['ours'] * 100:.1f} %" if rec["ours"] is not None else \
                f"— ({rec['reference']} scores 0)"
    if rec["ours_text"] is not None:
        rec["status"] = "run"
    return rec


def _retention_reference(method: str, base: pd.DataFrame,
                         costeff: pd.DataFrame | None) -> tuple[str | None, float | None]:
    """(what a retention is of, its score): the teacher COST-EFF's table records for ``method`` (its TA distils from
    it: ``backbone_costeff:finetune``), else the backbone row; (None, None) where the run has neither."""
    if costeff is not None and "teacher_score" in costeff.columns:
        rows = costeff[(costeff["method"] == method) & costeff["teacher_score"].notna()]
        if not rows.empty:
            return f"its teacher ({rows.iloc[0]['teacher']})", float(rows.iloc[0]["teacher_score"])
    if not base.empty:
        return "the backbone row", _score(base.iloc[0])[0]
    return None, None
