"""Threshold-free scores of an operating curve (pure functions of its points; hand-checked in tests/test_leaderboard).

A method's *envelope* is the upper Pareto front of its (speed-up, metric) points joined by straight lines: E(s) is the
best metric reachable at speed-up s, flat to the left of its slowest front point (a faster point reaches that metric)
and undefined past its fastest point (the method cannot go that fast).

A point with a non-finite coordinate (NaN, ±inf) is no measurement: it is on no envelope or front and beats nothing.
"""
from __future__ import annotations

import numpy as np


def envelope(speedups, metrics) -> tuple[np.ndarray, np.ndarray]:
    """Front points sorted by speed-up (metric strictly decreasing): those no faster-or-equal point beats."""
    s, m = np.asarray(speedups, float), np.asarray(metrics, float)
    finite = np.isfinite(s) & np.isfinite(m)
    s, m = s[finite], m[finite]
    order = np.lexsort((-m, -s))  # fastest first; at equal speed-up the best metric first
    xs, ys, best = [], [], -np.inf
    for i in order:
        if m[i] > best:
            xs.append(s[i])
            ys.append(m[i])
            best = m[i]
    return np.array(xs[::-1]), np.array(ys[::-1])


def value_at(front: tuple[np.ndarray, np.ndarray], s: float) -> float | None:
    """E(s): None past the fastest point."""
    xs, ys = front
    if not len(xs) or s > xs[-1] + 1e-12:
        return None
    return float(np.interp(s, xs, ys))  # np.interp is flat left of xs[0]


def _breaks(fronts, lo: float, hi: float) -> np.ndarray:
    pts = {lo, hi} | {float(x) for xs, _ in fronts for x in xs if lo < x < hi}
    return np.array(sorted(pts))


def area(front, lo: float, hi: float) -> float:
    """(a) ∫ E(s) ds over [lo, hi] / (hi − lo), counting 0 past the fastest point: exact (E is piecewise linear)."""
    xs, _ = front
    if not len(xs) or xs[-1] <= lo:
        return 0.0
    top = min(hi, xs[-1])
    b = _breaks([front], lo, top)
    vals = np.array([value_at(front, v) for v in b])
    return float(np.trapezoid(vals, b) / (hi - lo))


def max_speedup_at(front, target: float) -> float | None:
    """(c) The highest s with E(s) ≥ target (the crossing found on the segment), None if no point reaches it."""
    xs, ys = front
    if not len(xs) or ys[0] < target - 1e-12:
        return None
    if ys[-1] >= target - 1e-12:
        return float(xs[-1])
    j = int(np.nonzero(ys >= target - 1e-12)[0][-1])
    return float(xs[j] + (ys[j] - target) / (ys[j] - ys[j + 1]) * (xs[j + 1] - xs[j]))


def elue_gain(macs, metrics, ref_macs, ref_metrics) -> float | None:
    """(d) ELUE-style: mean of metric − R(MACs) over the method's points inside the reference's MAC range, where R
    joins the reference curve's best points (metric vs MACs, lower MACs better) by straight lines and stays flat
    past its best point (that metric is reachable with fewer MACs) up to the reference's largest MACs."""
    rx, ry = envelope(-np.asarray(ref_macs, float), ref_metrics)  # 'faster' = fewer MACs
    if not len(rx):
        return None
    rx, ry = -rx[::-1], ry[::-1]  # MACs increasing, metric increasing
    x, y = np.asarray(macs, float), np.asarray(metrics, float)
    ref_x = np.asarray(ref_macs, float)
    top = np.max(ref_x[np.isfinite(ref_x) & np.isfinite(np.asarray(ref_metrics, float))])
    inside = np.isfinite(x) & np.isfinite(y) & (x >= rx[0] - 1e-9) & (x <= top + 1e-9)
    if not inside.any():
        return None
    return float(np.mean(y[inside] - np.interp(x[inside], rx, ry)))


def pareto_mask(macs, metrics) -> np.ndarray:
    """(e) Points no other point beats on both fewer-or-equal MACs and higher-or-equal metric (one strictly)."""
    x, y = np.asarray(macs, float), np.asarray(metrics, float)
    finite = np.isfinite(x) & np.isfinite(y)
    no_worse = (x[None, :] <= x[:, None]) & (y[None, :] >= y[:, None]) & finite[None, :]
    better = no_worse & ((x[None, :] < x[:, None]) | (y[None, :] > y[:, None]))  # [i, j]: j beats i
    return finite & ~better.any(axis=1)


def area_between(front_a, front_b, lo: float, hi: float) -> dict[str, float] | None:
    """BERxiT-style area between two envelopes over the speed-up range both reach, [lo, min(hi, reach_a, reach_b)],
    divided by its width: ``signed`` (A above B counts +), and its ``above``/``below`` parts, split at every
    crossing."""
    top = min(hi, front_a[0][-1] if len(front_a[0]) else lo, front_b[0][-1] if len(front_b[0]) else lo)
    if top <= lo:
        return None
    b = _breaks([front_a, front_b], lo, top)
    d = np.array([value_at(front_a, v) - value_at(front_b, v) for v in b])
    above = below = 0.0
    for x0, x1, d0, d1 in zip(b[:-1], b[1:], d[:-1], d[1:]):
        if d0 * d1 < 0:  # a crossing inside the segment: split there (the difference is linear on it)
            xc = x0 + d0 / (d0 - d1) * (x1 - x0)
            parts = [(x0, xc, d0, 0.0), (xc, x1, 0.0, d1)]
        else:
            parts = [(x0, x1, d0, d1)]
        for u0, u1, e0, e1 in parts:
            a = (e0 + e1) / 2 * (u1 - u0)
            if a >= 0:
                above += a
            else:
                below -= a
    width = top - lo
    return {"signed": (above - below) / width, "above": above / width, "below": below / width, "range": [lo, top]}
