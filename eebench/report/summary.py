"""From per-seed operating curves to the numbers a table shows: mean ± std over seeds, the operating point chosen by a
documented rule, and the threshold-free area under the accuracy–speed-up curve."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import fail

METRICS = ["accuracy", "layer_speedup", "expected_macs_paper", "expected_macs_full", "head_aware_speedup_paper",
           "head_aware_speedup_full", "avg_exit_layer"]
# columns a curve may add: the Swin speed-up under the official code's exit-layer convention, the task's metric
# (``score``; curves without it score by accuracy) and text's per-sample costs at real length
OPTIONAL = ["layer_speedup_as_coded", "score", "expected_macs_paper_real", "expected_macs_full_real",
            "head_aware_speedup_paper_real", "head_aware_speedup_full_real", "expected_flops_full_real",
            "expected_flops_full", "expected_flops_profiler"]  # the last: COST-EFF's torch.profiler count


def score_column(curve: pd.DataFrame) -> str:
    """The column operating points and AUCs read: the task's metric where the curve names one, else accuracy."""
    return "score" if "score" in curve and metric_name(curve) != "accuracy" else "accuracy"


def metric_name(curve: pd.DataFrame) -> str:
    return str(curve["metric"].iloc[0]) if "metric" in curve else "accuracy"


def metrics_of(curve: pd.DataFrame) -> list[str]:
    """The columns a table aggregates. ``score`` only where it is not plain accuracy, so image runs aggregate (and
    print) exactly what they did before tasks had metrics."""
    return METRICS + [m for m in OPTIONAL if m in curve and (m != "score" or metric_name(curve) != "accuracy")]


def param_columns(curve: pd.DataFrame) -> list[str]:
    return [c for c in curve.columns if c.startswith("param_")]


def metrics_in(curve: pd.DataFrame) -> list[str]:
    return [m for m in METRICS if m in curve or m not in OPTIONAL]


def mean_curve(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds at each policy setting (columns ``<metric>`` and ``<metric>_std``)."""
    keys = param_columns(curves)
    if not keys:
        curves = curves.assign(_point=0)
        keys = ["_point"]
    grouped = curves.groupby(keys, sort=True, dropna=False)[metrics_of(curves)]
    out = grouped.mean().join(grouped.std(ddof=0).add_suffix("_std")).reset_index()
    if "metric" in curves:
        out["metric"] = metric_name(curves)
    return out.drop(columns=["_point"], errors="ignore")


def fixed_params(rule: dict[str, Any], method: str | None = None, policy: str | None = None) -> dict[str, Any]:
    """The parameters a ``fixed`` operating point names for one method: ``per_method[method]``, else
    ``per_policy[policy]``, else ``params`` — each method's policy sweeps different parameters, so one set rarely
    fits all."""
    if method in (rule.get("per_method") or {}):
        return dict(rule["per_method"][method])
    if policy in (rule.get("per_policy") or {}):
        return dict(rule["per_policy"][policy])
    return dict(rule.get("params") or {})


def operating_point(curve: pd.DataFrame, rule: dict[str, Any], method: str | None = None,
                    policy: str | None = None, reference: float | None = None) -> pd.Series | None:
    """Pick one row of a mean curve.

    ``max_speedup_within_drop``: the highest layer speed-up whose mean accuracy is at most ``max_drop`` points below
    the method's own full-depth accuracy (its slowest point), or below ``reference`` where the rule says
    ``against: reference`` (a board's "speed-up at ≤ 1-point drop against the backbone").
    ``retention``: the highest layer speed-up whose mean accuracy is at least ``retention`` % of ``reference``
    (EEformer's "X× while maintaining 99.0 % performance": the backbone row's full-depth metric,
    ``eebench.report.retention``), or of the method's own full-depth accuracy where ``reference`` is None; None where no point keeps that much (a reference above every point of the curve).
    ``fixed``: the point with the policy parameters :func:`fixed_params` gives for ``method`` and its ``policy``.
    """
    if len(curve) == 1 and rule["rule"] != "retention":
        return curve.iloc[0]
    if rule["rule"] == "fixed":
        sel = curve
        params = fixed_params(rule, method, policy)
        for key, value in params.items():
            if f"param_{key}" not in curve:
                raise fail(f"operating point fixes {key!r}, which this policy does not sweep",
                           f"swept parameters: {[c[6:] for c in param_columns(curve)]}")
            sel = sel[np.isclose(sel[f"param_{key}"].astype(float), float(value))]
        if sel.empty:
            raise fail(f"no swept point has {params}", "add it to the method's policy sweep")
        return sel.iloc[0]
    col = score_column(curve)
    own = curve.loc[curve["layer_speedup"].idxmin(), col]
    if rule["rule"] == "retention":
        floor = (own if reference is None else reference) * float(rule["retention"]) / 100
    else:
        base = reference if rule.get("against") == "reference" and reference is not None else own
        floor = base - rule.get("max_drop", 1.0) / 100
    ok = curve[curve[col] >= floor - 1e-12]
    return ok.loc[ok["layer_speedup"].idxmax()] if len(ok) else None


def curve_policy(per_seed: pd.DataFrame) -> str | None:
    return str(per_seed["policy"].iloc[0]) if "policy" in per_seed and len(per_seed) else None


def operating_params(per_seed: pd.DataFrame, report_cfg: dict[str, Any], method: str | None = None,
                     reference: float | None = None) -> dict[str, Any]:
    """The swept policy parameters of the operating point the tables report (the live latency job times it)."""
    mc = mean_curve(per_seed)
    rule = report_cfg["operating_point"]
    point = operating_point(mc, rule, method, curve_policy(per_seed), reference)
    if point is None:
        of = f"the backbone row's metric {reference:.4f}" if reference is not None else "its own full-depth metric"
        raise fail(f"method {method!r} has no operating point keeping {rule['retention']:g} % of {of} "
                   "(report.operating_point)",
                   "lower report.operating_point.retention, or set report.retention_reference: own")
    return {c[6:]: point[c] for c in param_columns(mc)}


def format_setting(params: dict[str, Any]) -> str:
    """An operating point as the tables name it (``threshold=0.3, patience=2``)."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k}={v}"
                     for k, v in params.items())


def describe_rule(rule: dict[str, Any], reference=None) -> str:
    """The operating-point rule in words; ``reference`` (an ``eebench.report.retention.Reference``) names what a
    retention is a percentage of (None: the method's own full-depth accuracy)."""
    if rule["rule"] == "fixed":
        extra = [f"{k} {rule[k]}" for k in ("per_method", "per_policy") if rule.get(k)]
        return (f"each method at a fixed policy setting ({rule.get('params') or {}}" + (", " if extra else "")
                + ", ".join(extra) + "; the 'Operating point' column names each row's)")
    if rule["rule"] == "retention":
        of = reference.describe() if reference is not None else "its own full-depth accuracy"
        return (f"each method at its highest layer speed-up whose mean accuracy keeps at least {rule['retention']:g} % "
                f"of {of} (mean over seeds; the threshold is chosen on the mean curve; '—' where no point keeps it)")
    of = (reference.describe() if rule.get("against") == "reference" and reference is not None
          else "its own full-depth accuracy")
    return (f"each method at its highest layer speed-up whose mean accuracy is within {rule.get('max_drop', 1.0):g} "
            f"point(s) of {of} (mean over seeds; the threshold is chosen on the mean curve)")


def curve_auc(curve: pd.DataFrame, lo: float, hi: float, x: str = "layer_speedup", samples: int = 4001) -> float:
    """Area under the accuracy envelope acc*(s) = best accuracy among points with speed-up ≥ s (0 where none reaches
    s), over s ∈ [lo, hi], divided by (hi − lo): a threshold-free score in accuracy units."""
    s = np.linspace(lo, hi, samples)
    xs, acc = curve[x].to_numpy(), curve[score_column(curve)].to_numpy()
    env = np.array([acc[xs >= v - 1e-12].max() if (xs >= v - 1e-12).any() else 0.0 for v in s])
    return float(np.trapezoid(env, s) / (hi - lo))


def summarize(per_seed: pd.DataFrame, report_cfg: dict[str, Any], has_exits: bool,
              method: str | None = None, reference=None) -> dict[str, Any]:
    """One method's row: every metric's mean and std at the operating point, its policy setting, and the AUC.
    ``reference`` (an ``eebench.report.retention.Reference``): what a ``retention`` rule reads R % of (None: the
    method's own full depth). Where no point keeps R %, the point's metrics are None and the setting says so."""
    mc = mean_curve(per_seed)
    rule = report_cfg["operating_point"]
    point = operating_point(mc, rule, method, curve_policy(per_seed),
                            reference.value(per_seed) if reference is not None else None)
    lo, hi = report_cfg["auc_speedup_range"]
    row = {f"{m}_{stat}": None if point is None else float(point[m if stat == "mean" else f"{m}_std"])
           for m in metrics_of(mc) for stat in ("mean", "std")}
    if point is None:
        row["setting"] = (f"none keeps {rule['retention']:g} %" if rule["rule"] == "retention" else
                          f"none within {rule.get('max_drop', 1.0):g} point(s)")
    else:
        row["setting"] = format_setting({c[6:]: point[c] for c in param_columns(mc)}) if has_exits else "full depth"
    if has_exits:
        aucs = pd.Series([curve_auc(g, lo, hi) for _, g in per_seed.groupby("seed")])
        row["auc_mean"], row["auc_std"] = float(aucs.mean()), float(aucs.std(ddof=0))
    else:
        row["auc_mean"] = row["auc_std"] = None
    row["seeds"] = int(per_seed["seed"].nunique())
    return row


def pm(mean: float | None, std: float | None, scale: float = 1.0, digits: int = 2, seeds: int = 2) -> str:
    """``mean ± std``; a single seed has no spread to show, so just the value."""
    if mean is None:
        return "—"
    return f"{mean * scale:.{digits}f}" + (f" ± {std * scale:.{digits}f}" if seeds > 1 else "")
