"""DeeBERT's exit rule (castorini/DeeBERT; spec: baselines §4(c))."""
from __future__ import annotations

from typing import Any

import torch

from .base import Decision, Policy, decide_at, entropy, first_exit, per_row, register_policy


class EntropyExit(Policy):
    """Shared part of DeeBERT and BERxiT: rows are the off-ramps at layers 1..L, then the final classifier; the
    first tested off-ramp with entropy (nats, stable log-softmax form) **<** ``entropy_threshold`` answers,
    otherwise the final classifier. The threshold is a scalar or a per-off-ramp list; the official default −1
    (like 0) never fires."""

    params = {"entropy_threshold": -1.0}

    def validate(self) -> None:
        self.check_number("entropy_threshold", allow_list=True)

    def tested_rows(self, rows: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def thresholds(self, rows: int, tested: int, device) -> torch.Tensor:
        return per_row(self, "entropy_threshold", rows, tested, device)

    def decide(self, logits: torch.Tensor, **extra: Any) -> Decision:
        logits = self.check_input(logits)
        rows = logits.shape[0]
        tested = self.tested_rows(rows)
        threshold = self.thresholds(rows, tested, logits.device)
        return decide_at(logits, first_exit(entropy(logits[:max(tested, 0)]) < threshold, tested, rows - 1))


@register_policy
class DeeBERTEntropy(EntropyExit):
    """DeeBERT: off-ramps i = 1..L are tested **including L** (``test_last_offramp=True``, official code): the
    untrained off-ramp at layer L (the last internal row) is tested before the final classifier. ``False`` is the
    paper's reading: the last internal row is skipped, the final classifier is the last exit."""

    name = "deebert_entropy"
    params = {"entropy_threshold": -1.0, "test_last_offramp": True}

    def validate(self) -> None:
        super().validate()
        self.check_choice("test_last_offramp", (True, False))

    def tested_rows(self, rows: int) -> int:
        return rows - 1 if self.test_last_offramp else rows - 2
