"""A paired bootstrap of the area score between two methods measured on the same test samples.

Each method is its operating points (``EntrySamples``: per-sample correctness and the row each sample paid for). A
resample of the test samples (N draws with replacement, the same draws for both methods: paired) gives every point an
accuracy (mean correctness) and a MAC speed-up (the plain backbone's MACs ÷ the mean MACs per sample), hence an
envelope (``scores.envelope``) and its area over [lo, hi] (``scores.area``) for each method. The difference of the two
areas over the resamples gives a percentile 95 % interval; the difference is significant where 0 lies outside it.
Pairing removes the test set's own sampling noise that two separate intervals would both carry, so a small but
consistent gain can be significant where the unpaired intervals overlap.

The score is accuracy, also on a board ranked by another metric (MCC, F1): correctness per sample is what pairs; a
regression task has none and is refused.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import fail
from . import scores


def _curves(points: Sequence, weights: np.ndarray, convention: str | None, real: bool):
    """[B, P] accuracies and MAC speed-ups of ``points`` under each resample's sample counts ``weights`` [B, N]."""
    for p in points:
        if p.correct is None:
            raise fail(f"entry {p.key.get('method')} ({p.key.get('run')}) has no per-sample correctness "
                       "(a regression task)", "the paired test compares accuracies; rank regression by the store")
    correct = np.stack([p.correct for p in points]).astype(float)  # [P, N]
    macs = np.stack([p.sample_macs(convention, real) for p in points])
    plain = np.stack([p.plain_sample_macs(convention, real) for p in points])
    n = correct.shape[1]
    acc = weights @ correct.T / n
    speed = (weights @ plain.T) / (weights @ macs.T)  # Σ w·plain / Σ w·macs = mean plain / mean MACs
    return acc, speed


def _check_pairs(a: Sequence, b: Sequence, convention: str | None) -> None:
    shas = {p.labels_sha256 for p in [*a, *b]}
    sizes = {p.n for p in [*a, *b]}
    if len(shas) > 1 or len(sizes) > 1:
        raise fail(f"the two methods were measured on different test samples ({len(sizes)} sizes, {len(shas)} label "
                   "sets)", "pair only entries of the same dataset and split (one board cell)")
    convs = {convention or p.convention for p in [*a, *b]}
    if len(convs) > 1:
        raise fail(f"the two methods count MACs under different conventions {sorted(convs)}",
                   "pass convention= to compare both under one")


def paired_area(entry_points_a: Sequence, entry_points_b: Sequence, lo: float, hi: float, n_boot: int = 1000,
                seed: int = 0, convention: str | None = None, real: bool = False) -> dict:
    """Area of A's accuracy-vs-MAC-speed-up envelope minus B's over [lo, hi] (``diff``, on the test set as it is),
    with the 2.5 and 97.5 percentiles of that difference over ``n_boot`` paired resamples (``ci_low``, ``ci_high``)
    and ``significant``: 0 outside [ci_low, ci_high]. ``convention``: the MAC convention (default: the entries'
    run's); ``real`` (text): MACs at each sample's own length. Deterministic given ``seed``."""
    if n_boot < 1:
        raise fail(f"n_boot is {n_boot}", "resample at least once (1000 is usual)")
    if not hi > lo:
        raise fail(f"speed-up range [{lo}, {hi}] is empty", "pass lo < hi, e.g. the board's auc_speedup_range")
    a, b = list(entry_points_a), list(entry_points_b)
    for name, points in (("A", a), ("B", b)):
        if not points:
            raise fail(f"method {name} has no operating points to compare",
                       "pass its EntrySamples (Samples.entries)")
    _check_pairs(a, b, convention)
    n = a[0].n
    rng = np.random.default_rng(seed)
    weights = np.vstack([np.ones(n), rng.multinomial(n, np.full(n, 1 / n), size=n_boot)])  # row 0: the sample as is
    acc_a, speed_a = _curves(a, weights, convention, real)
    acc_b, speed_b = _curves(b, weights, convention, real)
    diffs = np.array([scores.area(scores.envelope(speed_a[i], acc_a[i]), lo, hi)
                      - scores.area(scores.envelope(speed_b[i], acc_b[i]), lo, hi) for i in range(len(weights))])
    low, high = np.percentile(diffs[1:], [2.5, 97.5])
    return {"diff": float(diffs[0]), "ci_low": float(low), "ci_high": float(high),
            "significant": bool(low > 0 or high < 0), "n_boot": int(n_boot), "seed": int(seed), "n": int(n),
            "range": [float(lo), float(hi)]}
