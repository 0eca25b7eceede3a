"""The numbers a board shows per entry (``entries.csv``, the site's tables) and, for a text board, its summary: method
× task at the ≤ 1-point operating point, rendered by the cross-task Table 1's code (``report.glue.glue_table``).

The operating point is Table 1's rule read against the backbone (``report.summary.operating_point`` with ``against:
reference``): each method's highest layer speed-up whose metric stays within 1 point of the backbone row's full-depth
metric on the same seeds — "speed-up at ≤ 1-point drop", the figure the early-exit papers quote for GLUE.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

DROP_RULE = {"rule": "max_speedup_within_drop", "max_drop": 1.0, "against": "reference"}


def cell_entries(plan, root: Path, lb: pd.DataFrame) -> pd.DataFrame:
    """Per method of one run: the metric at full depth (its slowest point), the point ≤ 1 point below the backbone
    row's full-depth metric with the highest layer speed-up (``report.summary`` with ``DROP_RULE``: its metric,
    speed-up and expected MACs, columns as Table 1 names them), and the leaderboard's area, interval, speed-up at
    ≥ 99 % and rank."""
    from ..io import read_json
    from ..plan import costs_path, curve_path
    from ..report.retention import reference
    from ..report.style import display_title
    from ..report.summary import mean_curve, metric_name, score_column, summarize

    rep = plan.config["report"]
    curves = {m: pd.concat([pd.read_csv(root / curve_path(plan.run, m, s)) for s in plan.seeds], ignore_index=True)
              for m in plan.methods}
    costs = {m: read_json(root / costs_path(plan.run, plan.cost_canonical[m])) for m in plan.methods}
    ref = reference({**rep, "retention_reference": "backbone"}, curves, costs)
    board = lb.set_index("method")
    rows = []
    for m, per_seed in curves.items():
        has_exits = len(costs[m]["row_layers"]) > 1
        s = summarize(per_seed, {**rep, "operating_point": DROP_RULE}, has_exits, m, ref)
        mc = mean_curve(per_seed)
        lbrow = board.loc[m] if m in board.index else pd.Series(dtype=object)
        rows.append({"method": m, "title": display_title(plan.method(m)), "metric": metric_name(per_seed),
                     "params": int(costs[m]["params"]["total"]), "has_exits": has_exits,
                     "full_score": float(mc.loc[mc["layer_speedup"].idxmin(), score_column(mc)]),
                     "reference_row": ref.row, **s,
                     **{k: lbrow.get(k) for k in ("rank", "area_mean", "area_std", "area_ci_lo", "area_ci_hi",
                                                 "speedup_at_99_mean")}})
    return pd.DataFrame(rows)


def write_summary(plans: dict, out: Path, cells: dict[str, str]) -> str | None:
    """A text board (every run a GLUE task): method × task at the ≤ 1-point operating point, rendered by
    ``report.glue.glue_table`` (the cross-task Table 1's code) as ``summary.md/.csv``."""
    from ..report.departures import text_notes
    from ..report.glue import glue_table, task_of
    from ..report.run import scale_note
    from ..report.style import display_title

    tasks = {run: task_of(p.config) for run, p in plans.items()}
    if not tasks or any(t is None for t in tasks.values()):
        return None
    tables, titles, notes = {}, {}, []
    for run, plan in plans.items():
        tables[tasks[run]] = pd.read_csv(out / cells[run] / "entries.csv")
        titles.update({m: display_title(plan.method(m)) for m in plan.methods})
        notes += [n for n in text_notes(plan.config, plan.methods) if n not in notes]
    first = next(iter(plans.values()))
    point = ("at each method's highest layer speed-up whose metric stays within 1 point of the backbone row's "
             "full-depth metric on the same task (mean over seeds; '—' where no point does)")
    glue_table(tables, titles, out, scale_note(first.config, tasks=list(tables)), notes, stem="summary",
               title="Board summary: methods × tasks, speed-up at ≤ 1-point drop against the backbone", point=point,
               tex=False)  # a board ships md and csv (docs/configs.md)
    return "summary.md"
