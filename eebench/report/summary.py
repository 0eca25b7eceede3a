"""From per-seed operating curves to the numbers a table shows: mean ± std over seeds, the operating point chosen by a
documented rule, and the threshold-free area under the accuracy–speed-up curve."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import fail

METRICS = ["accuracy", "layer_speedup", "expected_macs_paper", "expected_macs_full", "head_aware_speedup_paper",
           "head_aware_speedup_full", "avg_exit_layer"]


def param_columns(curve: pd.DataFrame) -> list[str]:
    return [c for c in curve.columns if c.startswith("param_")]


def mean_curve(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds at each policy setting (columns ``<metric>`` and ``<metric>_std``)."""
    keys = param_columns(curves)
    if not keys:
        curves = curves.assign(_point=0)
        keys = ["_point"]
    grouped = curves.groupby(keys, sort=True, dropna=False)[METRICS]
    out = grouped.mean().join(grouped.std(ddof=0).add_suffix("_std")).reset_index()
    return out.drop(columns=["_point"], errors="ignore")


def operating_point(curve: pd.DataFrame, rule: dict[str, Any]) -> pd.Series:
    """Pick one row of a mean curve.

    ``max_speedup_within_drop``: the highest layer speed-up whose mean accuracy is at most ``max_drop`` points below
    the method's own full-depth accuracy (its slowest point). ``fixed``: the point with the given policy parameters.
    """
    if len(curve) == 1:
        return curve.iloc[0]
    if rule["rule"] == "fixed":
        sel = curve
        for key, value in (rule.get("params") or {}).items():
            if f"param_{key}" not in curve:
                raise fail(f"operating point fixes {key!r}, which this policy does not sweep",
                           f"swept parameters: {[c[6:] for c in param_columns(curve)]}")
            sel = sel[np.isclose(sel[f"param_{key}"].astype(float), float(value))]
        if sel.empty:
            raise fail(f"no swept point has {rule.get('params')}", "add it to the method's policy sweep")
        return sel.iloc[0]
    reference = curve.loc[curve["layer_speedup"].idxmin(), "accuracy"]
    ok = curve[curve["accuracy"] >= reference - rule.get("max_drop", 1.0) / 100 - 1e-12]
    return ok.loc[ok["layer_speedup"].idxmax()]


def describe_rule(rule: dict[str, Any]) -> str:
    if rule["rule"] == "fixed":
        return f"each method at the fixed policy setting {rule.get('params')}"
    return (f"each method at its highest layer speed-up whose mean accuracy is within {rule.get('max_drop', 1.0):g} "
            "point(s) of its own full-depth accuracy (mean over seeds; the threshold is chosen on the mean curve)")


def curve_auc(curve: pd.DataFrame, lo: float, hi: float, x: str = "layer_speedup", samples: int = 4001) -> float:
    """Area under the accuracy envelope acc*(s) = best accuracy among points with speed-up ≥ s (0 where none reaches
    s), over s ∈ [lo, hi], divided by (hi − lo): a threshold-free score in accuracy units."""
    s = np.linspace(lo, hi, samples)
    xs, acc = curve[x].to_numpy(), curve["accuracy"].to_numpy()
    env = np.array([acc[xs >= v - 1e-12].max() if (xs >= v - 1e-12).any() else 0.0 for v in s])
    return float(np.trapezoid(env, s) / (hi - lo))
