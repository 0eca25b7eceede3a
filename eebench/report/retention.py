"""What an "R % retention" is a percentage of (``report.retention_reference``).

EEformer's abstract states its claims as "X× speed-up while maintaining R % performance … comparable to the original
model" (spec methods §6): R is read against the original model, i.e. the run's fine-tuned plain backbone row, on the
same seeds. ``backbone`` (the default) reads it so. ``own`` reads it against each method's own full depth (its slowest
operating point), which rewards a method whose exits lowered its final accuracy; it is kept as a switch for
comparison. The backbone row is the method named ``backbone``, else the run's first method without exits (the
leaderboard's baseline). A run without one falls back to ``own``, and every table that reads a retention says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pandas as pd

REFERENCES = ("backbone", "own")
DEFAULT = "backbone"
LABELS = {"backbone": "backbone", "own": "own full depth"}  # how a column header names a reference


def requested(report_cfg: dict[str, Any]) -> str:
    return report_cfg.get("retention_reference", DEFAULT)


def backbone_row(methods: Iterable[str], has_exits: Callable[[str], bool]) -> str | None:
    methods = list(methods)
    if "backbone" in methods and not has_exits("backbone"):
        return "backbone"
    return next((m for m in methods if not has_exits(m)), None)


@dataclass(frozen=True, eq=False)
class Reference:
    """The reference a run's retentions are read against: ``asked`` (the config's), the backbone row's name and its
    per-seed curve (None where the reference is each method's own full depth)."""
    asked: str
    row: str | None = None
    curve: pd.DataFrame | None = None

    @property
    def used(self) -> str:
        return "backbone" if self.row is not None else "own"

    @property
    def fell_back(self) -> bool:
        return self.asked == "backbone" and self.row is None

    def value(self, per_seed: pd.DataFrame) -> float | None:
        """The backbone row's full-depth metric, mean over the seeds ``per_seed`` ran (all of the row's seeds where
        they share none); None for ``own``."""
        if self.curve is None:
            return None
        from .summary import mean_curve, score_column

        shared = self.curve[self.curve["seed"].isin(set(per_seed["seed"]))]
        mc = mean_curve(shared if len(shared) else self.curve)
        return float(mc.loc[mc["layer_speedup"].idxmin(), score_column(mc)])

    def describe(self) -> str:
        """The phrase a note completes "R % of …" with."""
        if self.used == "backbone":
            return (f"the backbone row's ('{self.row}') full-depth metric, mean over the same seeds "
                    "(report.retention_reference: backbone)")
        if self.fell_back:
            return ("its own full-depth metric — report.retention_reference asks for the backbone, but this run has "
                    "no backbone row (a method without exits), so each method's own full depth is used")
        return "its own full-depth metric (report.retention_reference: own)"


def reference(report_cfg: dict[str, Any], curves: dict[str, pd.DataFrame], costs: dict[str, dict],
              asked: str | None = None) -> Reference:
    """The run's reference from its curves (a method has exits where its costs list more than one row); ``asked``
    overrides the config's (the claims table reads both)."""
    asked = asked or requested(report_cfg)
    if asked == "own":
        return Reference(asked)
    row = backbone_row(curves, lambda m: len(costs[m]["row_layers"]) > 1)
    return Reference(asked, row, curves[row] if row is not None else None)


def retention_columns(report_cfg: dict[str, Any], ref: Reference) -> dict[str, Any]:
    """The reference of a ``retention`` operating point, as raw columns of the tables that rank by it."""
    if report_cfg["operating_point"]["rule"] != "retention":
        return {}
    return {"retention_reference": ref.used, "retention_reference_row": ref.row}
