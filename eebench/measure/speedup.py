"""Layer-based speed-up (LGViT Eq. 17) and expected MACs under early exiting."""
from __future__ import annotations

import torch


def layer_speedup(executed_layers: torch.Tensor, num_layers: int) -> float:
    """Eq. 17: L·N / Σ_n executed_layers(n) = L / mean exit layer (blocks only; heads are ignored)."""
    return float(num_layers / executed_layers.double().mean())


def speedup_from_histogram(histogram: dict[int, int], num_layers: int) -> float:
    """Σ_i L·m_i / Σ_i i·m_i for m_i samples exiting after block i."""
    total = sum(histogram.values())
    return num_layers * total / sum(layer * m for layer, m in histogram.items())


def expected_macs(compute_rows: torch.Tensor, cumulative: torch.Tensor) -> float:
    """Mean over samples of the MACs spent up to the row where each stopped (``cumulative[r]``, see measure.macs)."""
    return float(cumulative[compute_rows].mean())
