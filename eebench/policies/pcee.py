"""PCEE-BERT's exit rule, mechanism V1 (michael-wzhu/PCEE-BERT; spec: baselines §7(c))."""
from __future__ import annotations

import math
from typing import Any

import torch

from .base import Decision, Policy, decide_at, entropy, first_exit, gather_rows, register_policy, run_length


@register_policy
class PCEEBert(Policy):
    """PCEE-BERT: every row is a classifier at layers 1..L (the last is the final one). The counter becomes +1 when
    a layer's entropy is **<** ``exiting_threshold`` (strict; layer 1 can count, classes need not agree), else 0;
    exit when it equals ``patience``, otherwise layer L. ``entropy="normalized"`` (official) divides by ln C,
    ``"raw"`` (LGViT port) keeps nats. Patience 0 (official default) returns the final classifier's logits.
    Output (``do_ensemble``): 0 = the exit's logits (what the scripts use); 1 = argparse default = mean softmax
    over the streak plus the last non-confident layer before it; 2 = mean softmax over every layer computed.
    Defaults follow the official argparse: patience 0, exiting_threshold 0.2, do_ensemble 1."""

    name = "pcee_bert"
    params = {"patience": 0, "exiting_threshold": 0.2, "do_ensemble": 1, "entropy": "normalized"}

    def validate(self) -> None:
        self.check_patience()
        self.check_choice("do_ensemble", (0, 1, 2))
        self.check_choice("entropy", ("normalized", "raw"))
        if self.entropy == "normalized":
            self.check_range("exiting_threshold", 0.0, 1.0, "a normalized entropy in [0, 1]")
        else:
            self.check_range("exiting_threshold", 0.0, None, "a raw entropy in nats >= 0")

    def decide(self, logits: torch.Tensor, **extra: Any) -> Decision:
        logits = self.check_input(logits)
        rows, batch, classes = logits.shape
        if self.patience == 0:
            return decide_at(logits, torch.full((batch,), rows - 1, dtype=torch.long, device=logits.device))
        h = entropy(logits)
        if self.entropy == "normalized":
            h = h / math.log(classes)
        counter = run_length(h < self.exiting_threshold)
        exit_index = first_exit(counter == self.patience, rows, rows - 1)
        if self.do_ensemble == 0:
            return decide_at(logits, exit_index)
        # the averaged list restarts at the last layer whose counter was 0 (do_ensemble=1) or at layer 1 (=2)
        start = (exit_index - gather_rows(counter, exit_index)).clamp(min=0) if self.do_ensemble == 1 \
            else torch.zeros_like(exit_index)
        row = torch.arange(rows, device=logits.device).unsqueeze(1)
        used = ((row >= start) & (row <= exit_index)).unsqueeze(-1).float()
        output = (torch.softmax(logits, dim=-1) * used).sum(dim=0) / used.sum(dim=0)
        return decide_at(logits, exit_index, output=output)
