"""``paper_vs_ours.md``: each LGViT paper table in its own shape (the rows and columns the paper prints), every cell
"paper / ours", only the rows this run has a counterpart for; the cells it has none for are counted in one line under
their table. ``paper_vs_ours.csv`` holds every cell, run or not, one per row (``paper_cells``).

The scales differ by orders of magnitude, so MACs also stand as a fraction of the backbone's full-depth MACs, the one
way a tiny model and ViT-B can be compared.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..io import write_text
from .claims import claims_section
from .paper_cells import ABLATION_SETTING, ABLATION_TABLES, Cell, load_paper, paper_cells

METHODS = {"sdn": "SDN", "pabee": "PABEE", "berxit": "BERxiT", "vit_ee": "ViT-EE", "pcee": "PCEE",
           "lgvit": "Ours (LGViT)"}
HEADS = {"mlp": "MLP", "conv": "Conv", "attention": "Attention", "lgvit": "Ours (LPH+GAH)"}
SCHEMES = {"normal": "Normal", "weighted": "Weighted", "distillation": "Distillation", "alternating": "Alternating",
           "two_stage": "Ours (two-stage)"}
POSITIONS = {"shallow": "Shallow", "deep": "Deep", "middle": "Middle", "uniform": "Uniform (Ours)"}
ACC, SPEEDUP = ("Acc. (%)", ("accuracy",)), ("Speed-up (×)", ("speedup",))
PARAMS, MACS = ("#Params (M)", ("params_m",)), ("MACs (G)", ("macs_g",))
METRIC_NAMES = {"params_m": "#params", "accuracy": "accuracy", "macs_g": "MACs", "speedup": "speed-up",
                "latency_ms": "time", "latency_std_ms": "time spread"}


def _method(cell: Cell, ours) -> str:
    name = cell.key["method"]
    label = cell.key.get("backbone", "ViT-B/16") if name == "backbone" else METHODS.get(name, name)
    return label + (f" ({cell.semantics})" if cell.semantics else "")


def _mark(field: str) -> Callable[[Cell, pd.Series | None], str]:
    return lambda cell, ours: "✓" if cell.key[field] else "×"


def _positions(cell: Cell, ours) -> str:
    paper = "{" + ",".join(map(str, cell.key["positions"])) + "}"
    return paper if ours is None else f"{paper} / {ours['Exiting position']}"


def _components(cell: Cell, ours=None) -> str:
    on = [name for key, name in (("lph", "LPH"), ("gah", "GAH"), ("two_stage", "two-stage")) if cell.key[key]]
    return "+".join(on) or "no LPH, GAH or two-stage"


@dataclass(frozen=True)
class Shape:
    """A paper table as printed: its leading columns (header, the row's label) and value columns (header, the
    paper's metrics one cell shows); ``name``: a row in a count of cells not run (default: its first column)."""
    title: str
    keys: tuple[tuple[str, Callable[[Cell, pd.Series | None], str]], ...]
    columns: tuple[tuple[str, tuple[str, ...]], ...]
    name: Callable[[Cell, pd.Series | None], str] | None = None


SHAPES = {
    "table1": Shape("methods", (("Method", _method),), (PARAMS, ACC, MACS, SPEEDUP)),
    "table2": Shape("main components", (("LPH", _mark("lph")), ("GAH", _mark("gah")),
                                        ("Two-stage training", _mark("two_stage"))), (ACC, SPEEDUP), _components),
    "table3": Shape("exiting head architectures", (("Exiting head", lambda c, o: HEADS[c.key["head"]]),),
                    (PARAMS, MACS, ACC, SPEEDUP)),
    "table4": Shape("training schemes, LGViT's heads", (("Training scheme", lambda c, o: SCHEMES[c.key["scheme"]]),),
                    (ACC, SPEEDUP)),
    "table5": Shape("execution time", (("Method", _method),),
                    (MACS, ACC, ("Execution time (ms)", ("latency_ms", "latency_std_ms")))),
    "table6": Shape("exiting heads × training schemes", (("Exiting heads", lambda c, o: HEADS[c.key["head"]]),
                                                         ("Training schemes", lambda c, o: SCHEMES[c.key["scheme"]])),
                    (ACC, SPEEDUP), lambda c, o: f"{HEADS[c.key['head']]} + {SCHEMES[c.key['scheme']]}"),
    "table7": Shape("exiting positions", (("Position scheme", lambda c, o: POSITIONS[c.key["position_scheme"]]),
                                          ("Exiting position", _positions)), (ACC, SPEEDUP)),
}


def paper_vs_ours(plan, tables: dict[str, pd.DataFrame], path, scale: str, ablation_scale: str | None = None) -> None:
    """Write ``path`` (markdown) and its CSV beside it. ``ablation_scale``: the ablation variants' scale where their
    stages train otherwise than the main methods'."""
    path = Path(path)
    paper = load_paper()
    setting = plan.config["report"].get("paper_setting") or {}
    cells = paper_cells(plan, tables)
    claims, claim_cells = claims_section(plan, tables)
    tables_abl = f"the ablations (Tables {', '.join(t[5:] for t in ABLATION_TABLES)})"
    abl = "" if not plan.ablation_seeds else (
        f"; {tables_abl}: seeds {plan.ablation_seeds}" if ablation_scale in (None, scale) else
        f"; {tables_abl}: {ablation_scale}, seeds {plan.ablation_seeds}")
    lines = ["# The LGViT paper's numbers beside ours", "",
             "- Each cell: **paper / ours**, in the rows and columns the paper prints, for the rows this run has; "
             "every cell, run or not, is in `paper_vs_ours.csv`.",
             f"- **Paper**: {paper['source']}; ImageNet-pretrained backbones fine-tuned 50–100 epochs on 3 GPUs, "
             "CIFAR-100 / Food-101 / ImageNet-1K at 224×224.",
             f"- **Ours**: {scale}; seeds {plan.seeds}{abl}; operating points as stated under each of our tables. "
             f"This run stands in for the paper's **{setting.get('backbone', '—')} / {setting.get('dataset', '—')}**"
             " setting" + (" (the setting of every ablation in the paper)." if setting == ABLATION_SETTING else "."),
             "- The scales differ by orders of magnitude: compare trends and ratios, not values. MACs in brackets: "
             "the fraction of the backbone's full-depth MACs."]
    swin = setting.get("backbone") == "Swin-B"
    if swin:
        lines.append("- Swin speed-ups: the paper's carry the official code's exit-layer off-by-one (an early exit is "
                     "logged one block too early, spec methods §4.2); ours follow that convention, the correct value "
                     "in brackets.")
    if any(c.semantics for c in cells):
        lines.append("- A baseline marked (official code) ran its original code's semantics; the paper's baseline "
                     "rows come from the LGViT port (spec baselines §9), so the two are different methods.")
    lines.append("")
    for name, shape in SHAPES.items():
        title = shape.title + (f", {setting.get('backbone', '—')} on {setting.get('dataset', '—')}"
                               if name == "table1" else "")
        lines += [f"## Table {name[5:]}: {title}"] + _table(name, shape, [c for c in cells if c.table == name],
                                                           tables.get(name), swin)
    lines += claims
    write_text(path, "\n".join(lines))
    records = [c.record() for c in cells + claim_cells]
    write_text(path.with_suffix(".csv"), pd.DataFrame(records).to_csv(index=False))


def _table(name: str, shape: Shape, cells: list[Cell], ours_df: pd.DataFrame | None, swin: bool) -> list[str]:
    rows: dict[str, list[Cell]] = {}
    for cell in cells:
        rows.setdefault(cell.label, []).append(cell)
    ours_rows = ours_df.set_index("method") if ours_df is not None else None
    out = []
    for row in rows.values():
        if not any(c.ours is not None for c in row):
            continue
        ours = ours_rows.loc[next(c.our_row for c in row if c.our_row)] if ours_rows is not None else None
        by_metric = {c.metric: c for c in row}
        values = [_cell_text([by_metric.get(m) for m in metrics], swin) for _, metrics in shape.columns]
        out.append("| " + " | ".join([fn(row[0], ours) for _, fn in shape.keys] + values) + " |")
    if out:
        headers = [h for h, _ in shape.keys] + [h for h, _ in shape.columns]
        out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + out
    notes = [f"Our times: {'; '.join(sorted({c.measured_on for c in cells if c.measured_on}))}; the paper's: an RTX "
             "3090."] if any(c.measured_on for c in cells) else []
    missing = [c for c in cells if c.ours is None]
    if missing:
        notes.append(f"{len(missing)} cells not run at this scale: {_missing_names(name, missing, cells)}.")
    return out + ([""] if out and notes else []) + notes + [""]


def _cell_text(cells: list[Cell | None], swin: bool) -> str:
    cell = cells[0]
    if cell is None:
        return "—"
    if cell.metric == "latency_ms":
        spread = cells[1]
        paper = f"{cell.paper:.2f} ± {spread.paper:.2f}" if spread else f"{cell.paper:.2f}"
        ours = "—" if cell.ours is None else f"{cell.ours:.2f}" + (
            f" ± {spread.ours:.2f}" if spread and spread.ours is not None else "")
        return f"{paper} / {ours}"
    return f"{_paper_value(cell)} / {_our_value(cell, swin)}"


def _paper_value(cell: Cell) -> str:
    if cell.metric == "macs_g":
        return f"{cell.paper:.2f}" + (f" ({cell.paper_vs_backbone:.2f})" if cell.paper_vs_backbone else "")
    return {"accuracy": f"{cell.paper:.1f}", "speedup": f"{cell.paper:.2f}", "params_m": f"{cell.paper:g}"}.get(
        cell.metric, f"{cell.paper:g}")


def _our_value(cell: Cell, swin: bool) -> str:
    if cell.ours is None:
        return "—"
    v, std = cell.ours, cell.ours_std
    if cell.metric == "accuracy":
        return f"{v:.1f}" + (f" ± {std:.1f}" if std is not None else "")
    if cell.metric == "speedup":
        text = f"{v:.2f}" + (f" ± {std:.2f}" if std is not None else "")
        if swin:
            text += f" ({cell.ours_correct:.2f})" if cell.ours_correct is not None else " (correct layers only)"
        return text
    if cell.metric == "macs_g":
        return f"{v:.3g}" + (f" ({cell.ours_vs_backbone:.2f})" if cell.ours_vs_backbone else "")
    return f"{v:.3g}"


def _missing_names(name: str, missing: list[Cell], cells: list[Cell]) -> str:
    """The cells of ``missing`` named compactly: Table 1 by setting (backbone on datasets, or the methods of a setting
    run in part), the other tables by row (and metric where a row is run in part)."""
    if name == "table1":
        return _missing_settings(missing, cells)
    total = {c.label for c in cells}
    by_row: dict[str, list[str]] = {}
    for c in missing:
        by_row.setdefault(c.label, []).append(c.metric)
    if set(by_row) == total and all(len(ms) == sum(c.label == row for c in cells) for row, ms in by_row.items()):
        return "every row"
    shape = SHAPES[name]
    row_name = shape.name or shape.keys[0][1]
    first = {c.label: c for c in reversed(cells)}
    names = []
    for row, metrics in by_row.items():
        label = row_name(first[row], None)
        whole = len(metrics) == sum(c.label == row for c in cells)
        names.append(label if whole else f"{label} ({', '.join(METRIC_NAMES.get(m, m) for m in metrics)})")
    return ", ".join(names)


def _missing_settings(missing: list[Cell], cells: list[Cell]) -> str:
    def methods(cs):  # setting → its methods, in the paper's order
        out: dict[tuple[str, str], dict[str, None]] = {}
        for c in cs:
            out.setdefault((c.key["backbone"], c.key["dataset"]), {})[c.key["method"]] = None
        return out

    gone, every = methods(missing), methods(cells)
    datasets = list(dict.fromkeys(ds for _, ds in every))
    whole: dict[str, list[str]] = {}
    partial = []
    for (bb, ds), ms in gone.items():
        rows_run_in_part = {c.key["method"] for c in cells if (c.key["backbone"], c.key["dataset"]) == (bb, ds)
                            and c.ours is not None}
        if rows_run_in_part:
            partial.append(f"{bb} on {ds}: {', '.join(METHODS.get(m, m) for m in ms)}")
        else:
            whole.setdefault(bb, []).append(ds)
    all_of = [bb for bb, dss in whole.items() if len(dss) == len(datasets)]
    parts = [f"{bb} on {', '.join(dss)}" for bb, dss in whole.items() if bb not in all_of]
    if all_of:
        parts.append(f"{', '.join(all_of)} on every dataset")
    return "; ".join(parts + partial)
