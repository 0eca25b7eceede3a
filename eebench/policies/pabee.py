"""PABEE's patience rule (JetRunner/PABEE = HF research_projects/bert-loses-patience; spec: baselines §6(c))."""
from __future__ import annotations

from typing import Any

import torch

from .base import Decision, Policy, decide_at, first_exit, register_policy, run_length, same_as_previous


@register_policy
class PABEEPatience(Policy):
    """PABEE: every row is a classifier at layers 1..L, the last being the final one. The counter starts at 0 on
    layer 1, becomes +1 when a layer's argmax equals the previous layer's and 0 otherwise; exit right after it
    first equals ``patience`` (t+1 identical consecutive predictions, earliest exit at row t). Patience 0
    (official default) runs the full model; patience >= rows never fires. For LGViT's run-length variant
    (LGViT t ≡ PABEE t−1) use ``lgvit_patience``."""

    name = "pabee_patience"
    params = {"patience": 0}
    regression = False

    def validate(self) -> None:
        self.check_patience()

    def agreement(self, logits: torch.Tensor) -> torch.Tensor:
        return same_as_previous(logits.argmax(dim=-1))

    def decide(self, logits: torch.Tensor, **extra: Any) -> Decision:
        logits = self.check_input(logits, regression=self.regression)
        rows, batch, _ = logits.shape
        if self.patience == 0:
            exit_index = torch.full((batch,), rows - 1, dtype=torch.long, device=logits.device)
        else:
            exit_index = first_exit(run_length(self.agreement(logits)) == self.patience, rows, rows - 1)
        return decide_at(logits, exit_index, regression=self.regression)


@register_policy
class PABEEPatienceRegression(PABEEPatience):
    """PABEE for regression (``[rows, batch, 1]`` values): "same prediction" means |ŷ_i − ŷ_{i−1}| **<**
    ``regression_threshold`` (strict); the official default 0 never counts, so the full model always runs."""

    name = "pabee_patience_regression"
    params = {"patience": 0, "regression_threshold": 0.0}
    regression = True

    def validate(self) -> None:
        super().validate()
        self.check_number("regression_threshold")

    def agreement(self, logits: torch.Tensor) -> torch.Tensor:
        return same_as_previous(logits[..., 0], tolerance=self.regression_threshold)
