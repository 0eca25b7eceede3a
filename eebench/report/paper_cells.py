"""Every number the LGViT paper prints in Tables 1–7 (``paper_lgvit.yaml``), each matched to the row of this run that
stands for it, with our value in the paper's units: one record per cell and metric, the long format of
``paper_vs_ours.csv`` and what ``paper_vs_ours`` lays out in the paper's shapes.

A run stands in for one column of the paper's Table 1 (``report.paper_setting``, e.g. ViT-B/16 on CIFAR-100, the
setting of all the paper's ablations). Cells of other settings, and rows the run does not contain, have no value of
ours: "not run at this scale".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

PAPER_FILE = Path(__file__).with_name("paper_lgvit.yaml")
NOT_RUN = "not run at this scale"
ABLATION_SETTING = {"backbone": "ViT-B/16", "dataset": "CIFAR-100"}  # every ablation of the paper (its §4.3)
ABLATION_TABLES = ("table2", "table3", "table4", "table6", "table7")


def load_paper() -> dict[str, Any]:
    return yaml.safe_load(PAPER_FILE.read_text())


@dataclass
class Cell:
    """One number of the paper and ours beside it. ``ours``: in the paper's units and convention (Swin speed-ups: the
    official code's exit-layer off-by-one, spec methods §4.2; the correct value is ``ours_correct``); None where the
    run has no counterpart. ``vs_backbone``: MACs as a fraction of the backbone's full-depth MACs."""
    table: str
    key: dict[str, Any]  # the paper's row: backbone and dataset (Table 1), method, head, scheme, …
    metric: str
    paper: float
    paper_vs_backbone: float | None = None
    our_row: str | None = None  # the run's method or variant
    ours: float | None = None
    ours_std: float | None = None  # over seeds; None with one seed
    ours_vs_backbone: float | None = None
    ours_correct: float | None = None
    semantics: str | None = None  # a Table 1/5 baseline that ran its original code's semantics, not the port's
    measured_on: str | None = None  # latency: device, dtype, mode
    status: str | None = None  # why a cell that ran has no value (e.g. no operating point keeps a retention)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.key.items())

    def record(self) -> dict[str, Any]:
        return {"table": self.table, "cell": self.label, "metric": self.metric, "paper": self.paper,
                "paper_vs_backbone": self.paper_vs_backbone, "ours": self.ours, "ours_std": self.ours_std,
                "ours_vs_backbone": self.ours_vs_backbone, "ours_correct_layers": self.ours_correct,
                "our_row": self.our_row, "semantics": self.semantics, "measured_on": self.measured_on,
                "status": self.status or ("run" if self.ours is not None else NOT_RUN)}


def paper_cells(plan, tables: dict[str, pd.DataFrame]) -> list[Cell]:
    """Every cell of Tables 1–7, in the paper's order, with ours where this run has it."""
    paper = load_paper()
    setting = plan.config["report"].get("paper_setting") or {}
    t1 = tables.get("table1")
    our_backbone_macs = None
    if t1 is not None and (t1["method"] == "backbone").any():
        our_backbone_macs = float(t1.loc[t1["method"] == "backbone", "expected_macs_paper_mean"].iloc[0]) / 1e9
    tagged = {m: plan.method(m).get("semantics", "official code") for m in plan.methods
              if m != "backbone" and plan.method(m).get("recipe", m) in _with_variants(plan)}
    swin = setting.get("backbone") == "Swin-B"
    out = []
    for name, spec in paper["tables"].items():
        ours_df = tables.get(name)
        for entry in spec["cells"]:
            key = {k: v for k, v in entry.items() if not isinstance(v, (int, float)) or isinstance(v, bool)
                   or k == "positions"}
            in_setting = all(entry.get(k, ABLATION_SETTING.get(k)) == setting.get(k) for k in ("backbone", "dataset"))
            row = None
            if in_setting and ours_df is not None:
                row = next((r for _, r in _port_rows_first(plan, name, ours_df)
                            if _matches(entry, _key_of(name, _paper_name(plan, name, r["method"])))), None)
            paper_bb = _paper_backbone_macs(paper, entry)
            for metric, value in entry.items():
                if metric in key:
                    continue
                cell = Cell(name, key, metric, float(value),
                            paper_vs_backbone=value / paper_bb if metric == "macs_g" and paper_bb else None)
                if row is not None:
                    _fill_ours(cell, row, our_backbone_macs, swin)
                    if cell.ours is not None and name in ("table1", "table5"):
                        cell.semantics = tagged.get(row["method"])
                out.append(cell)
    return out


def _fill_ours(cell: Cell, row: pd.Series, backbone_macs: float | None, swin: bool) -> None:
    spread = row.get("seeds", 2) > 1  # one seed has no spread to show
    cell.our_row = row["method"]
    m = cell.metric
    if m == "accuracy":
        cell.ours = row["accuracy_mean"] * 100
        cell.ours_std = row["accuracy_std"] * 100 if spread else None
    elif m == "speedup":
        mean, std = row["layer_speedup_mean"], row["layer_speedup_std"]
        coded = row.get("layer_speedup_as_coded_mean")
        if swin and coded is not None and not pd.isna(coded):  # the paper's convention (like with like) …
            cell.ours_correct = mean  # … and the correct value beside it
            mean, std = coded, row["layer_speedup_as_coded_std"]
        cell.ours, cell.ours_std = mean, std if spread else None
    elif m == "params_m":
        cell.ours = row["params"] / 1e6
    elif m == "macs_g":
        cell.ours = row["expected_macs_paper_mean"] / 1e9
        cell.ours_vs_backbone = cell.ours / backbone_macs if backbone_macs else None
    elif m in ("latency_ms", "latency_std_ms"):
        cell.ours = row[m]
        cell.measured_on = f"{row['device']}, {row['dtype']}, {row['mode']}"


def _key_of(table: str, method: str) -> dict[str, Any]:
    """Our variant name → the paper's row key (names follow ``eebench.ablations``)."""
    parts = method.split("-")
    if table in ("table1", "table5"):
        return {"method": method}
    if table == "table2":
        lph, gah, two = {"abl-mlp-normal": (False, False, False), "abl-mlp-two_stage": (False, False, True),
                         "abl-gah_only-two_stage": (False, True, True),
                         "abl-lgvit-two_stage": (True, True, True)}[method]
        return {"lph": lph, "gah": gah, "two_stage": two}
    if table == "table3":
        return {"head": parts[1]}
    if table == "table4":
        return {"scheme": parts[2]}
    if table == "table6":
        return {"head": parts[1], "scheme": parts[2]}
    if table == "table7":
        return {"position_scheme": parts[2]}
    return {}


def _matches(cell: dict, key: dict) -> bool:
    return all(cell.get(k) == v for k, v in key.items())


def _with_variants(plan) -> set[str]:
    """Recipes that exist under more than one semantics (a baseline and its LGViT-port variant): their rows say
    which."""
    from ..recipes import variant_names

    return {base for base, _ in variant_names(plan.config.get("extra_recipe_dirs")).values()}


def _paper_name(plan, table: str, method: str) -> str:
    """Table 1 and 5 rows are named after the paper's methods: a variant (``sdn_port``) is its recipe's row."""
    if table in ("table1", "table5") and method in plan.all_methods:
        return plan.method(method).get("recipe", method)
    return method


def _port_rows_first(plan, table: str, df: pd.DataFrame):
    """Where a run has a baseline both as the port ran it and as its original code does, the port's row stands
    beside the paper's number (the paper's rows come from the port)."""
    def rank(m):
        return 0 if m in plan.all_methods and plan.method(m).get("semantics") == "LGViT port" else 1
    return sorted(df.iterrows(), key=lambda ir: rank(ir[1]["method"]) if table in ("table1", "table5") else 0)


def _paper_backbone_macs(paper: dict, cell: dict) -> float | None:
    bb, ds = cell.get("backbone", "ViT-B/16"), cell.get("dataset", "CIFAR-100")
    for c in paper["tables"]["table1"]["cells"]:
        if c["method"] == "backbone" and c["backbone"] == bb and c["dataset"] == ds:
            return c.get("macs_g")
    return None
