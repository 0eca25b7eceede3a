"""The contract every exit policy follows.

A policy is a pure function of the per-exit outputs of a batch, ``logits[rows, batch, classes]`` in
evaluation order (the last row is the backbone's final classifier). Because it never looks at anything
else, the same code replays decisions offline on cached logits and drives live early-exit inference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar, Sequence

import torch

from ..errors import EEBenchError, fail
from ..registry import Registry


@dataclass
class Decision:
    """Per-sample outcome of a policy (all LongTensor[batch], 0-based rows)."""

    exit_index: torch.Tensor  # row whose output answers
    prediction: torch.Tensor  # predicted class (or value, for regression)
    compute_index: torch.Tensor  # deepest row whose backbone prefix (and head) had to run
    output: torch.Tensor  # the returned logits / probabilities / values, [batch, classes]
    is_early: torch.Tensor | None = None  # bool[batch] where the method defines it


class Policy:
    """Base class: subclasses declare ``name`` and ``params`` (name → default) and implement ``decide``."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}

    def __init__(self, **kwargs: Any):
        unknown = set(kwargs) - set(self.params)
        if unknown:
            raise fail(f"policy {self.name!r} got unknown parameter(s) {sorted(unknown)}",
                       f"its parameters are {sorted(self.params)}")
        for key, default in self.params.items():
            setattr(self, key, kwargs.get(key, default))
        self.validate()

    def validate(self) -> None:
        """Check the parameters (called once by ``__init__``); raise with :meth:`reject`."""

    def reject(self, key: str, expected: str) -> "EEBenchError":
        """The one-line error for a bad parameter value."""
        return fail(f"policy {self.name!r} got {key}={getattr(self, key)!r}", f"pass {key} as {expected}")

    def check_patience(self, key: str = "patience") -> None:
        value = getattr(self, key)
        if not (isinstance(value, Integral) and not isinstance(value, bool) and value >= 0):
            raise self.reject(key, "an integer >= 0")

    def check_number(self, key: str, allow_list: bool = False) -> None:
        value = getattr(self, key)
        if is_number(value) or (allow_list and isinstance(value, (list, tuple)) and value
                                and all(is_number(v) for v in value)):
            return
        raise self.reject(key, "a number" + (" or a non-empty list of numbers, one per exit" if allow_list else ""))

    def check_range(self, key: str, lo: float | None, hi: float | None, expected: str,
                    allow_list: bool = False) -> None:
        """A number (or, with ``allow_list``, a list of numbers) within [lo, hi]: a probability outside [0, 1] or a
        negative entropy can never mean what the user wanted, so it is refused, not silently swept."""
        self.check_number(key, allow_list)
        value = getattr(self, key)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise self.reject(key, expected)

    def check_choice(self, key: str, choices: Sequence[Any]) -> None:
        if getattr(self, key) not in choices:
            raise self.reject(key, f"one of {list(choices)}")

    def check_input(self, logits: torch.Tensor, regression: bool = False) -> torch.Tensor:
        """``check_logits`` plus: at least one row, and 1 output (regression) or >= 2 classes."""
        logits = self.check_logits(logits)
        rows, _, classes = logits.shape
        if rows < 1:
            raise fail(f"policy {self.name!r} got logits with 0 rows", "pass at least the final classifier's row")
        if regression and classes != 1:
            raise fail(f"policy {self.name!r} is for regression but got {classes} outputs per exit",
                       "pass values as a tensor [rows, batch, 1], or use the classification policy")
        if not regression and classes < 2:
            raise fail(f"policy {self.name!r} got {classes} class(es) per exit",
                       "pass logits with >= 2 classes (for regression use pabee_patience_regression)")
        return logits

    def decide(self, logits: torch.Tensor, **extra: Any) -> Decision:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def check_logits(logits: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(logits) or logits.dim() != 3:
            shape = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
            raise fail(f"policy input has shape {shape}", "pass logits as a tensor [rows, batch, classes]")
        return logits.float()


POLICIES: Registry[type[Policy]] = Registry("policies")


def register_policy(cls: type[Policy]) -> type[Policy]:
    return POLICIES.register(cls.name)(cls)


def first_true(mask: torch.Tensor, default: int) -> torch.Tensor:
    """Index of the first True along dim 0 of ``mask[rows, batch]``; ``default`` where none is True."""
    rows = mask.shape[0]
    idx = torch.arange(rows, device=mask.device).unsqueeze(1).expand_as(mask)
    big = torch.full_like(idx, rows)
    first = torch.where(mask, idx, big).min(dim=0).values
    return torch.where(first == rows, torch.full_like(first, default), first)


def gather_rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[index[b], b, ...]`` for every sample b."""
    b = torch.arange(values.shape[1], device=values.device)
    return values[index, b]


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Softmax entropy in nats, in the numerically stable log-softmax form (spec: baselines §12)."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(value)


def max_prob(logits: torch.Tensor) -> torch.Tensor:
    """Largest softmax entry ("confidence") of every row and sample, ``[rows, batch]``."""
    return torch.softmax(logits, dim=-1).amax(dim=-1)


def first_exit(fires: torch.Tensor, tested: int, fallback: int) -> torch.Tensor:
    """First of the first ``tested`` rows of ``fires[rows, batch]`` that fires, ``fallback`` where none does."""
    if tested <= 0:
        return torch.full((fires.shape[1],), fallback, dtype=torch.long, device=fires.device)
    return first_true(fires[:tested], fallback)


def run_length(hits: torch.Tensor) -> torch.Tensor:
    """Counter of ``hits[rows, batch]``: +1 on a True row, reset to 0 on a False row (LongTensor[rows, batch])."""
    counts = torch.zeros(hits.shape, dtype=torch.long, device=hits.device)
    run = torch.zeros(hits.shape[1:], dtype=torch.long, device=hits.device)
    for i in range(hits.shape[0]):
        run = (run + 1) * hits[i]
        counts[i] = run
    return counts


def same_as_previous(values: torch.Tensor, tolerance: float | None = None) -> torch.Tensor:
    """Row i agrees with row i-1 (row 0 never does): equal labels, or ``|Δ| < tolerance`` for real values."""
    agree = torch.zeros(values.shape, dtype=torch.bool, device=values.device)
    if tolerance is None:
        agree[1:] = values[1:] == values[:-1]
    else:
        agree[1:] = (values[1:] - values[:-1]).abs() < tolerance
    return agree


def per_row(policy: Policy, key: str, rows: int, tested: int, device: torch.device) -> torch.Tensor:
    """A scalar or per-exit threshold as ``[tested, 1]``; a list has one entry per internal exit (``rows - 1``)
    or per tested exit (``tested``), entries past ``tested`` being unused."""
    value = getattr(policy, key)
    if isinstance(value, (list, tuple)):
        if len(value) not in (rows - 1, max(tested, 0)):
            raise fail(f"policy {policy.name!r} got {len(value)} values of {key} for {rows - 1} internal exits",
                       f"pass one number, or a list of {rows - 1} (one per internal exit) or {max(tested, 0)} "
                       "(one per tested exit)")
        value = list(value)[:max(tested, 0)]
    else:
        value = [value] * max(tested, 0)
    return torch.tensor(value, dtype=torch.float32, device=device).reshape(-1, 1)


def decide_at(logits: torch.Tensor, exit_index: torch.Tensor, *, output: torch.Tensor | None = None,
              compute_index: torch.Tensor | None = None, is_early: torch.Tensor | None = None,
              regression: bool = False) -> Decision:
    """The decision that answers with row ``exit_index`` (its logits unless ``output`` is given); the backbone ran
    to ``compute_index`` (default: the exit itself)."""
    out = gather_rows(logits, exit_index) if output is None else output
    prediction = out[..., 0] if regression else out.argmax(dim=-1)
    return Decision(exit_index=exit_index, prediction=prediction,
                    compute_index=exit_index if compute_index is None else compute_index,
                    output=out, is_early=is_early)
