"""SDN's exit rule (yigitcankaya/Shallow-Deep-Networks; spec: baselines §3(c))."""
from __future__ import annotations

from typing import Any

import torch

from .base import Decision, Policy, decide_at, first_exit, first_true, max_prob, register_policy


@register_policy
class SDNConfidence(Policy):
    """SDN: exit at the first internal classifier with max softmax prob **>=** q (non-strict); the final classifier
    is never compared with q. If no IC fires the whole network has run (compute_index = last row, is_early False)
    and ``fallback`` picks the answer: ``most_confident`` (official code) = the most confident of ALL rows, ICs
    included, first on ties; ``final`` (paper reading) = the final classifier. ``q`` has no default (the
    official code sweeps it)."""

    name = "sdn_confidence"
    params = {"q": None, "fallback": "most_confident"}

    def validate(self) -> None:
        self.check_range("q", 0.0, 1.01, "a probability in [0, 1], or up to 1.01 (the official grid's never-exit "
                         "value)")
        self.check_choice("fallback", ("most_confident", "final"))

    def decide(self, logits: torch.Tensor, **extra: Any) -> Decision:
        logits = self.check_input(logits)
        rows = logits.shape[0]
        conf = max_prob(logits)
        early = first_exit(conf >= self.q, rows - 1, -1)
        is_early = early >= 0
        if self.fallback == "most_confident":
            late = first_true(conf == conf.amax(dim=0), rows - 1)
        else:
            late = torch.full_like(early, rows - 1)
        return decide_at(logits, torch.where(is_early, early, late), is_early=is_early,
                         compute_index=torch.where(is_early, early, torch.full_like(early, rows - 1)))
