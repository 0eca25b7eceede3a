"""Batch-1 early exit as one program per image with the exit checks on the device: the ``conditional`` schedule.

Segment 0 always runs; each later segment k is the body of an IF on a device bool ``go`` (not settled yet):

    body(k) = packed vector v_k of segment k (``segments``, ``decide="device"``); answer ← v_k; go ← v_k[settled] ≤ 0.5
    program = body(0); IF(go) body(1); IF(go) body(2); …          (flat: a skipped body leaves go False)

so the host launches the image once and reads one packed vector (``answer``) once: no round trip per exit and no
wasted segment, hence ``executed`` = compute_index + 1. ``program`` is written once over ``when(pred, body)``: the
eager runner here emulates IF with ``if bool(go)`` on the host (the CPU tests), ``graphs.GraphConditional`` opens a
CUDA-graph IF node instead and captures the whole program as one graph. A body reads no device value on the host, so
it captures into an IF node's body graph unchanged.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol

import torch

from ..errors import fail
from ..policies import Decision
from .segments import HEADER, SETTLED, SegmentChain, is_settled, unpack

When = Callable[[torch.Tensor, Callable[[], object]], None]  # when(pred, body): run body iff pred (a bool scalar)


class ConditionalChain:
    """A device-decision ``SegmentChain`` with the two static tensors the program passes between bodies: ``go`` (bool
    scalar: run the next segment) and ``answer`` (the packed vector of the last segment that ran). Both are allocated
    here, before any capture; the chain keeps the hidden states, and ``vectors`` each body's packed vector, alive."""

    def __init__(self, chain: SegmentChain):
        if chain.policy is None:
            raise fail('schedule "conditional" got a segment chain without a policy',
                       'build it with the policy (decide="device")')
        device = chain.static_input.device
        self.chain, self.rows = chain, chain.rows
        self.go = torch.zeros((), dtype=torch.bool, device=device)
        self.answer = torch.zeros(HEADER + chain.classes, device=device)
        self.vectors: list[torch.Tensor | None] = [None] * chain.rows

    def body(self, k: int) -> None:
        """Segment k, then its vector into ``answer`` and its settled flag into ``go`` (tensor ops only)."""
        vector = self.vectors[k] = self.chain(k)
        self.answer.copy_(vector)
        self.go.copy_(vector[SETTLED] <= 0.5)


def program(cond: ConditionalChain, when: When) -> None:
    """One image: segment 0, then every later segment under ``when(go, …)``."""
    cond.body(0)
    for k in range(1, cond.rows):
        when(cond.go, partial(cond.body, k))


def always(pred: torch.Tensor, body: Callable[[], object]) -> None:
    """Every body, whatever ``pred`` (warm-up: each segment's kernels and constants are seen once)."""
    body()


class Conditional(Protocol):
    cond: ConditionalChain

    def load(self, x: torch.Tensor) -> None: ...

    def run(self) -> torch.Tensor: ...  # the program on the loaded input → host copy of ``answer``


class EagerConditional:
    """The conditional runner without graphs: IF is a host branch on ``go`` (a sync per exit on a GPU: this runner is
    for testing the control logic). ``ran`` = bodies run for the last image."""

    def __init__(self, cond: ConditionalChain):
        self.cond, self.ran = cond, 0

    def load(self, x: torch.Tensor) -> None:
        self.cond.chain.static_input.copy_(x)

    def when(self, pred: torch.Tensor, body: Callable[[], object]) -> None:
        if bool(pred):
            body()
            self.ran += 1

    def run(self) -> torch.Tensor:
        self.ran = 1
        program(self.cond, self.when)
        return self.cond.answer.cpu()


def run_conditional(runner: Conditional, x: torch.Tensor) -> Decision:
    """One image through a conditional runner → its decision (the last segment that ran must have settled it)."""
    runner.load(x)
    vector = runner.run()
    if not is_settled(vector):
        raise fail(f"the policy left the sample unsettled after the last row ({runner.cond.rows} rows)",
                   "a policy's compute_index must be a row of its input")
    return unpack(vector, runner.cond.chain.format)
