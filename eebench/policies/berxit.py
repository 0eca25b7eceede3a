"""BERxiT's exit rules (castorini/berxit; spec: baselines §5(c))."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import fail
from .base import Decision, Policy, decide_at, first_exit, is_number, per_row, register_policy
from .deebert import EntropyExit


def tested_rows(policy: Policy, rows: int) -> int:
    """How many internal rows BERxiT tests. "Layer L is never tested" (spec baselines §5(c), §11.3) is decided from
    the rows' backbone layers (``exit_layers``: one per row, the final classifier's last): every off-ramp before
    layer L is tested — all of them with off-ramps at 1..L−1 plus the final classifier, the deepest real exit with
    positions that do not end at L (Swin, a ``positions`` override). Without ``exit_layers`` the official layout is
    assumed: off-ramps at 1..L, the last internal row at L."""
    layers = policy.exit_layers
    if layers is None:
        return rows - 2
    if len(layers) != rows:
        raise fail(f"policy {policy.name!r} got {len(layers)} exit_layers for {rows} rows",
                   "pass one 1-based backbone layer per row, the final classifier's included")
    return sum(1 for layer in layers[:-1] if layer < layers[-1])


def check_exit_layers(policy: Policy) -> None:
    layers = policy.exit_layers
    if layers is not None and not (isinstance(layers, (list, tuple)) and layers and all(
            is_number(v) and v == int(v) and v >= 1 for v in layers)):
        raise policy.reject("exit_layers", "a list of 1-based backbone layers, one per row (final included)")


def layer_thresholds(policy: Policy, key: str, rows: int, tested: int, device) -> torch.Tensor:
    """``per_row``, plus one value per backbone layer (the official ``v1,n1;v2,n2`` form, expanded) when the rows'
    layers are known: the off-ramp after layer ℓ gets entry ℓ."""
    value, layers = getattr(policy, key), policy.exit_layers
    if isinstance(value, (list, tuple)) and layers is not None and len(value) == layers[-1] \
            and len(value) not in (rows - 1, max(tested, 0)):
        picked = [value[int(layer) - 1] for layer in layers[:max(tested, 0)]]
        return torch.tensor(picked, dtype=torch.float32, device=device).reshape(-1, 1)
    if isinstance(value, (list, tuple)) and layers is not None \
            and len(value) not in (rows - 1, max(tested, 0), layers[-1]):
        raise fail(f"policy {policy.name!r} got {len(value)} values of {key}",
                   f"pass one number, or one per internal exit ({rows - 1}), per tested exit ({max(tested, 0)}) or "
                   f"per backbone layer ({layers[-1]})")
    return per_row(policy, key, rows, tested, device)


@register_policy
class BERxiTEntropy(EntropyExit):
    """BERxiT without LTE: DeeBERT's entropy rule, but only off-ramps 1..L−1 are tested (``i+1 < L``): the last
    internal row (off-ramp L) never is. Uses the stable entropy, not the official exp-based form (they differ only
    at saturated logits)."""

    name = "berxit_entropy"
    params = {"entropy_threshold": -1.0, "exit_layers": None}

    def validate(self) -> None:
        super().validate()
        check_exit_layers(self)

    def tested_rows(self, rows: int) -> int:
        return tested_rows(self, rows)

    def thresholds(self, rows: int, tested: int, device) -> torch.Tensor:
        return layer_thresholds(self, "entropy_threshold", rows, tested, device)


@register_policy
class BERxiTLTE(Policy):
    """BERxiT with learning-to-exit: ``lte_outputs[rows-1, batch]`` are the shared LTE's sigmoid outputs u at each
    off-ramp, which the official code trains as the probability of being WRONG. Off-ramps 1..L−1 are tested (never
    the last internal row; see :func:`tested_rows`). ``lte_semantics="error_below"`` (official): exit at the first u **<** lte_th.
    ``"certainty_above"`` (paper): the certainty 1−u must be **>** lte_th, i.e. lte_th_code = 1 − lte_th_paper.
    ``lte_th`` is a scalar or a per-off-ramp list and has no default; 0 with error_below never exits."""

    name = "berxit_lte"
    params = {"lte_th": None, "lte_semantics": "error_below", "exit_layers": None}

    def validate(self) -> None:
        check_exit_layers(self)
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
        tested = tested_rows(self, rows)
        threshold = layer_thresholds(self, "lte_th", rows, tested, logits.device)
        u = u[:max(tested, 0)]
        fires = u < threshold if self.lte_semantics == "error_below" else (1 - u) > threshold
        return decide_at(logits, first_exit(fires, tested, rows - 1))
