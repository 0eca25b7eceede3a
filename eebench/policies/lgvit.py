"""Exit strategies of the LGViT port (falcon-xu/LGViT), used by every ViT/DeiT/Swin baseline (spec: baselines §9).

Rows 0..R-2 are the highways, tested in depth order; the final classifier (row R-1) is the fallback and is never
tested. Thresholds and patience are separate parameters (the port's CLI ``--threshold`` override is a bug, §9.1);
the defaults are the port's per-strategy DeiT/ViT values, which the shipped CLI never lets through.
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import fail
from .base import (Decision, Policy, decide_at, entropy, first_exit, is_number, max_prob, register_policy,
                   run_length, same_as_previous)


class LGViTPolicy(Policy):
    """Shared part: the first highway whose rule fires answers; otherwise the final classifier."""

    params = {"threshold": None, "exit_layers": None}
    threshold_domain = (None, None, "a number")

    def validate(self) -> None:
        if "threshold" in self.params:
            self.check_range("threshold", *self.threshold_domain)
        if "patience" in self.params:
            self.check_patience()
        layers = self.exit_layers
        if layers is not None and not (isinstance(layers, (list, tuple)) and all(
                is_number(v) and v == int(v) and v >= 1 for v in layers)):
            raise self.reject("exit_layers", "a list of 1-based backbone layers, one per row (final included)")

    def fires(self, highways: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """bool[highways, batch]: where the strategy exits, given the highway logits."""
        raise NotImplementedError

    def decide(self, logits: torch.Tensor, **extra: Any) -> Decision:
        logits = self.check_input(logits)
        rows = logits.shape[0]
        if self.exit_layers is not None and len(self.exit_layers) != rows:
            raise fail(f"policy {self.name!r} got {len(self.exit_layers)} exit_layers for {rows} rows",
                       "pass one 1-based backbone layer per row, the final classifier's included")
        return decide_at(logits, first_exit(self.fires(logits[:-1]), rows - 1, rows - 1))


@register_policy
class LGViTConfidence(LGViTPolicy):
    """LGViT ``confidence``: exit at the first highway with max softmax prob **>** threshold (strict, unlike SDN)."""

    name = "lgvit_confidence"
    params = {"threshold": 0.865, "exit_layers": None}
    threshold_domain = (0.0, 1.0, "a probability in [0, 1] (1 never exits)")

    def fires(self, highways: torch.Tensor) -> torch.Tensor:
        return max_prob(highways) > self.threshold


@register_policy
class LGViTEntropy(LGViTPolicy):
    """LGViT ``entropy`` (DeeBERT's rule, on highways only): exit at the first highway whose softmax entropy
    (nats) is **<** threshold (strict)."""

    name = "lgvit_entropy"
    params = {"threshold": 0.6, "exit_layers": None}
    threshold_domain = (0.0, None, "an entropy in nats >= 0 (0 never exits)")

    def fires(self, highways: torch.Tensor) -> torch.Tensor:
        return entropy(highways) < self.threshold


@register_policy
class LGViTPatience(LGViTPolicy):
    """LGViT ``patience``: run length of identical highway argmaxes, 1 at the first highway and reset to 1 on a
    change; exit when it equals ``patience``. So LGViT t ≡ PABEE t−1 (t = 1 exits at the first highway, t = 0
    never exits); the final classifier is not part of the run."""

    name = "lgvit_patience"
    params = {"patience": 7, "exit_layers": None}

    def fires(self, highways: torch.Tensor) -> torch.Tensor:
        run = run_length(same_as_previous(highways.argmax(dim=-1))) + 1
        return run == self.patience


@register_policy
class LGViTPCEE(LGViTPolicy):
    """LGViT ``patient_and_confident`` (PCEE port): counter +1 when the highway's **raw** entropy (nats, not divided
    by ln C, unlike official PCEE) < threshold, else 0; exit when it equals ``patience``. Degenerate case: patience 0
    exits at the first non-confident highway."""

    name = "lgvit_pcee"
    params = {"threshold": 0.5, "patience": 2, "exit_layers": None}
    threshold_domain = (0.0, None, "a raw entropy in nats >= 0")

    def fires(self, highways: torch.Tensor) -> torch.Tensor:
        return run_length(entropy(highways) < self.threshold) == self.patience
