"""Statistics of Table 5's protocol: per-query latency percentiles, the paper's mean ± std over passes, and the
MLPerf-style quality gate.

Percentiles follow MLPerf Inference's LoadGen (``PerformanceSummary::ProcessLatencies``): the latencies sorted
ascending, the p-th percentile is the one at 0-based index floor(n · p) (p in [0, 1)). That is a nearest-rank rule,
never an interpolation: every reported percentile is a latency some query really had (numpy's default "linear"
would interpolate between two of them).
"""
from __future__ import annotations

import math
import statistics
from typing import Any, Sequence

PERCENTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99}
PERCENTILE_RULE = "LoadGen's nearest rank: sorted latencies, 0-based index floor(n·p)"
GATE = 0.99  # MLPerf's accuracy target: 99 % of the reference model's metric


def loadgen_percentile(values: Sequence[float], p: float) -> float:
    if not values:
        raise ValueError("no latencies")
    if not 0 <= p < 1:
        raise ValueError(f"percentile {p} outside [0, 1)")
    ordered = sorted(values)
    return float(ordered[int(len(ordered) * p)])  # LoadGen: sample_latencies[sample_count * percentile]


def latency_summary(per_pass: Sequence[Sequence[float]]) -> dict[str, Any]:
    """``per_pass[pass][query]`` in ms → the paper's figure (each pass's mean ms per query; mean and std over passes)
    and the per-query distribution over every pass × query (mean and LoadGen percentiles)."""
    pass_means = [statistics.fmean(times) for times in per_pass]
    every = [t for times in per_pass for t in times]
    return {"ms_per_query": {"mean": statistics.fmean(pass_means),
                             "std": statistics.stdev(pass_means) if len(pass_means) > 1 else 0.0},
            "query_ms": {"mean": statistics.fmean(every),
                         **{name: loadgen_percentile(every, p) for name, p in PERCENTILES.items()}},
            "timed_queries": len(every)}


def quality_gate(metric: float, reference: float, target: float = GATE) -> dict[str, Any]:
    """``metric`` against ``target`` × ``reference`` (higher is better). A reference <= 0 (an MCC or a correlation
    at chance) has no meaningful fraction: retention and pass are None. The 1e-12 slack keeps an exact boundary
    (99 of 100 against 100 of 100) on the passing side despite binary rounding of target × reference."""
    if not (math.isfinite(metric) and math.isfinite(reference)) or reference <= 0:
        return {"target": target, "retention": None, "pass": None}
    return {"target": target, "retention": metric / reference, "pass": bool(metric >= target * reference - 1e-12)}
