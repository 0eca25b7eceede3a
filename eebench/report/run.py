"""Render every table and figure of a run from its operating curves and cost counts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..io import read_json
from ..plan import Plan, costs_path, curve_path, latency_path
from .ablations import ablation_table, figure4
from .claims import claims_table, has_claims
from .costeff import costeff_methods, costeff_table
from .glue import nlp_paper_vs_ours, task_of
from .paper_vs_ours import paper_vs_ours
from .style import display_title
from .table1 import table1
from .table5 import table5


def scale_note(config: dict[str, Any], epochs: int | None = None, tasks: list[str] | None = None) -> str:
    """What a table's numbers were trained at; ``epochs``: the stages' own count where it differs from the run's (the
    ablation variants' ``ablations.training.epochs``); ``tasks``: every task of a table over a grid's runs, which
    share the rest of the scale."""
    bb = config["backbone"]
    pre = bb.get("pretrained")
    pre_txt = "random init" if pre is False else ("pretrained " + (pre if isinstance(pre, str) else "(preset weights)"))
    ds = config["dataset"]
    n = epochs or config["training"]["epochs"]
    data = ds["name"] + (f" ({', '.join(tasks)})" if tasks else (f"/{ds['task']}" if ds.get("task") else ""))
    return f"{data}, {bb['name']} ({pre_txt}), {n} epoch{'' if n == 1 else 's'} per stage unless overridden"


def render_run(plan: Plan, out_dir: str | Path) -> dict[str, pd.DataFrame]:
    out_dir = Path(out_dir)
    run = plan.run
    curves: dict[str, list] = {}
    for method, seed in plan.reported():
        curves.setdefault(method, []).append(pd.read_csv(curve_path(run, method, seed)))
    curves = {m: pd.concat(parts, ignore_index=True) for m, parts in curves.items()}
    costs = {m: read_json(costs_path(run, plan.cost_canonical[m])) for m in curves}
    titles = {m: display_title(plan.method(m)) for m in curves}
    scale = scale_note(plan.config)
    abl_scale = scale_note(plan.config, ((plan.config.get("ablations") or {}).get("training") or {}).get("epochs"))
    tables = {"table1": table1({m: curves[m] for m in plan.methods}, costs, titles, plan.config, out_dir, scale)}
    for name, rows in plan.tables.items():
        if rows and not name.startswith("fig"):
            tables[name] = ablation_table(name, rows, curves, costs, plan.config, out_dir, abl_scale)
    if has_claims(plan.methods):
        tables["eeformer_claims"] = claims_table({m: curves[m] for m in plan.methods}, costs, titles, plan.config,
                                                 out_dir, scale)
    if costeff_methods(plan):
        tables["costeff"] = costeff_table(plan, curves, costs, titles, out_dir, scale)
    if plan.config.get("latency"):
        latency = read_json(latency_path(run))
        tables["table5"] = table5(latency, titles, out_dir, scale, latency["order"])
    if plan.tables.get("fig4"):
        tables["fig4"] = figure4(plan.tables["fig4"], curves, costs, plan.config, out_dir, abl_scale)
    task = task_of(plan.config)
    if task is None:
        paper_vs_ours(plan, tables, out_dir / "paper_vs_ours.md", scale, abl_scale)
    else:  # a text run: the NLP papers' numbers, not LGViT's
        nlp_paper_vs_ours({task: tables["table1"]}, out_dir / "paper_vs_ours.md", scale,
                          {task: tables.get("costeff")})
    return tables
