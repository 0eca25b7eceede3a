"""A run's tables and figures (`report`), and Table 1 across a grid config's GLUE tasks (`report-glue`)."""
from __future__ import annotations

from .args import json_arg


def cmd_report(args) -> None:
    from ..plan import Plan, load_config, validate_config
    from ..report.run import render_run

    config = validate_config(json_arg(args.config_json)) if args.config_json else load_config(args.configfile)
    plan = Plan(config)
    out_dir = args.out_dir or f"reports/{plan.run}"
    tables = render_run(plan, out_dir)
    print(f"wrote {', '.join(sorted(tables))} to {out_dir}")


def add_report(sub) -> None:
    s = sub.add_parser("report", help="(DAG step) Table 1 (md/csv/tex) and Figure 1 of a run from its curves")
    s.add_argument("--configfile", default="config/default.yaml")
    s.add_argument("--config-json", help="the validated config as JSON (what the DAG passes)")
    s.add_argument("--out-dir", help="default: reports/<run>")
    s.set_defaults(func=cmd_report)


def cmd_report_glue(args) -> None:
    from pathlib import Path

    import pandas as pd

    from ..plan import Plan, expand_grid, validate_config
    from ..report.departures import text_notes
    from ..report.glue import glue_table, nlp_paper_vs_ours, task_of
    from ..report.run import scale_note

    config = validate_config(json_arg(args.config_json))
    cells, titles, notes, costeff, last = {}, {}, [], {}, None
    for run, cfg in expand_grid(config).items():
        task = task_of(cfg)
        if task is None:
            continue
        plan = Plan(cfg)
        cells[task] = pd.read_csv(f"reports/{run}/table1.csv")
        teachers = Path(f"reports/{run}/costeff.csv")  # COST-EFF's table: its retention's teacher score
        costeff[task] = pd.read_csv(teachers) if teachers.exists() else None
        titles.update({m: plan.method(m)["title"] for m in plan.methods})
        last = cfg
        notes += [n for n in text_notes(cfg, plan.methods) if n not in notes]
    out = Path(args.out_dir)
    scale = scale_note(last, tasks=list(cells)) if last else ""
    glue_table(cells, titles, out, scale, notes)
    nlp_paper_vs_ours(cells, out / "paper_vs_ours_glue.md", scale, costeff)
    print(f"wrote table1_glue and paper_vs_ours_glue ({len(cells)} tasks) to {out}")


def add_report_glue(sub) -> None:
    s = sub.add_parser("report-glue", help="(DAG step) Table 1 across the GLUE tasks of a grid config")
    s.add_argument("--config-json", required=True, help="the whole config (with its grid) as JSON")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_report_glue)
