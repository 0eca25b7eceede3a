"""Exit settings for the latency benchmarks (workflow/scripts/latency_gpu.py, bench_cpu_runtimes.py): a real policy,
DeeBERT's entropy rule with one threshold per exit, set so that every query exits at one chosen row (``forced``) or
so that given fractions of the queries exit at each row (``calibrated``, on the model's own entropies). Timing goes
through the same policy code as every measured run, so a benchmark never times a shortcut the runs do not take."""
from __future__ import annotations

import torch

NEVER = -1.0  # an entropy threshold that never fires
ALWAYS = 1e9  # one that always fires


def forced(rows: int, row: int):
    """Every query answers at ``row`` (the last row: the full model)."""
    from ..policies import build_policy

    return build_policy("deebert_entropy", entropy_threshold=[ALWAYS if j == row else NEVER for j in range(rows - 1)])


def calibrated(entropies: torch.Tensor, fractions: list[float]):
    """deebert_entropy with per-exit thresholds that make ``fractions`` of these samples answer at each row
    (``entropies``: [exits, samples]; a threshold halfway between the k-th and (k+1)-th smallest remaining value)."""
    from ..policies import build_policy

    n = entropies.shape[1]
    remaining = torch.ones(n, dtype=torch.bool)
    thresholds = []
    for j, frac in enumerate(fractions[:-1]):
        values = entropies[j][remaining].sort().values
        k = min(round(frac * n), len(values))
        if k == 0:
            th = NEVER
        elif k == len(values):
            th = float(values[-1]) + 1.0
        else:
            th = float(values[k - 1] + values[k]) / 2
        thresholds.append(th)
        remaining &= ~(entropies[j] < th)
    return build_policy("deebert_entropy", entropy_threshold=thresholds)
