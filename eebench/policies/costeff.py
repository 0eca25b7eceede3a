"""COST-EFF's exit rule (spec methods §7.4): the first exit 1..L−1 whose softmax entropy (nats) is **<** S answers,
otherwise the final classifier. The shared entropy code is DeeBERT's; COST-EFF's model has no off-ramp after block L,
so every internal row is tested. Its own name keeps its sweep — {0.6, 0.55, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0} on
binary tasks, {1.0, 0.9, 0.8, 0.6, 0.4, 0.2, 0.0} on MNLI — apart from DeeBERT's grid in comparisons."""
from __future__ import annotations

from .base import register_policy
from .deebert import EntropyExit


@register_policy
class CostEffEntropy(EntropyExit):
    name = "costeff_entropy"

    def tested_rows(self, rows: int) -> int:
        return rows - 1
