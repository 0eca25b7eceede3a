"""BERxiT's exit rules (castorini/berxit; spec: baselines §5(c))."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import fail
from .base import Decision, Policy, decide_at, first_exit, per_row, register_policy
from .deebert import EntropyExit


@register_policy
class BERxiTEntropy(EntropyExit):
    """BERxiT without LTE: DeeBERT's entropy rule, but only off-ramps 1..L−1 are tested (``i+1 < L``): the last
    internal row (off-ramp L) never is. Uses the stable entropy, not the official exp-based form (they differ only
    at saturated logits)."""

    name = "berxit_entropy"
    params = {"entropy_threshold": -1.0}

    def tested_rows(self, rows: int) -> int:
        return rows - 2


@register_policy
class BERxiTLTE(Policy):
    """BERxiT with learning-to-exit: ``lte_outputs[rows-1, batch]`` are the shared LTE's sigmoid outputs u at each
    off-ramp, which the official code trains as the probability of being WRONG. Off-ramps 1..L−1 are tested (never
    the last internal row). ``lte_semantics="error_below"`` (official): exit at the first u **<** lte_th.
    ``"certainty_above"`` (paper): the certainty 1−u must be **>** lte_th, i.e. lte_th_code = 1 − lte_th_paper.
    ``lte_th`` is a scalar or a per-off-ramp list and has no default; 0 with error_below never exits."""

    name = "berxit_lte"
    params = {"lte_th": None, "lte_semantics": "error_below"}

    def validate(self) -> None:
        self.check_range("lte_th", 0.0, 1.0, "a probability in [0, 1] (the LTE output is a sigmoid), or a list of them",
                         allow_list=True)
        self.check_choice("lte_semantics", ("error_below", "certainty_above"))

    def decide(self, logits: torch.Tensor, lte_outputs: Any = None, **extra: Any) -> Decision:
        logits = self.check_input(logits)
        rows, batch, _ = logits.shape
        if lte_outputs is None:
            raise fail(f"policy {self.name!r} needs lte_outputs",
                       f"pass decide(logits, lte_outputs=<tensor [{rows - 1}, {batch}]>), the LTE output per off-ramp")
        u = torch.as_tensor(lte_outputs, device=logits.device).float()
        if tuple(u.shape) != (rows - 1, batch):
            raise fail(f"policy {self.name!r} got lte_outputs of shape {tuple(u.shape)}",
                       f"pass one LTE output per off-ramp and sample, shape [{rows - 1}, {batch}]")
        tested = rows - 2
        threshold = per_row(self, "lte_th", rows, tested, logits.device)
        u = u[:max(tested, 0)]
        fires = u < threshold if self.lte_semantics == "error_below" else (1 - u) > threshold
        return decide_at(logits, first_exit(fires, tested, rows - 1))
