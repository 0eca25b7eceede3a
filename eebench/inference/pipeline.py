"""Batch-1 early exit as a schedule of segments, whatever runs a segment.

A segment runner enqueues segment k (``launch(k)``: must not wait) and hands back its small host vector
(``result(k)``: waits for it); ``segments.EagerSegments`` computes at launch, ``graphs`` replays a CUDA graph, copies
the vector to pinned memory and records an event. A check turns segment k's vector into the sample's ``Decision``
once it is settled: ``HostCheck`` (``decide="host"``: the vector is the exit's logits and the policy runs on a CPU
``RowBuffer``) or ``PackedCheck`` (``decide="device"``: the decision was taken inside the segment; the host reads a
flag).

Schedules (``SCHEDULES``):

* ``sync`` (``run_image``): launch k, wait, check, then launch k+1. Nothing is wasted, but the device idles for
  every host round trip (wait + check + next launch): wins where that round trip is small next to a segment.
* ``overlap`` (``run_image``): launch k+1 before waiting for k, so the device never idles on the host; a sample
  settled at k wastes segment k+1 (stream-ordered: the next image queues behind it). Still exact (``causal``):
  decision k reads rows 0..k only. On the device it was taken inside segment k, before k+1 was enqueued behind it; on
  the host, row k+1 enters the CPU buffer only at check k+1, and each segment has its own host vector. Wins over
  sync where exits are mostly late (the waste is a small share) and the round trip is not.
* ``conditional`` (``conditional.run_conditional``, ``decide="device"`` only): the whole image is one program whose
  later segments run only while the device-side decision says "not settled" (one CUDA graph with IF nodes in
  ``graphs``): one launch and one host read per image, nothing wasted. Should win wherever conditional graph nodes
  exist (torch with ``CUDAGraph.begin_capture_to_if_node``, CUDA >= 12.4); what it still pays over one whole-model
  graph is the device decision in every segment and a tiny condition kernel per later exit.

``run_image`` returns how many segments were launched: k+1 (sync) or min(k+2, rows) (overlap) for a sample whose
``compute_index`` is k, which is what the hardware spent; ``conditional`` spends k+1.
"""
from __future__ import annotations

from typing import Protocol

import torch

from ..errors import fail
from ..model import MultiExitModel
from ..policies import Decision, Policy
from .causal import PLACEHOLDER, RowBuffer
from .conditional import (
    Conditional,
    ConditionalChain,
    EagerConditional,
    run_conditional,
)
from .segments import DECIDE, EagerSegments, SegmentChain, is_settled, unpack

SCHEDULES = ("sync", "overlap", "conditional")
STAGED = ("sync", "overlap")  # the schedules ``run_image`` runs segment by segment from the host


def check_schedule(schedule: str, decide: str) -> None:
    """Fails (one line) on an unknown schedule, or ``conditional`` without the decision on the device."""
    if schedule not in SCHEDULES:
        raise fail(f"unknown schedule {schedule!r}", f"use one of {list(SCHEDULES)}")
    if schedule == "conditional" and decide != "device":
        raise fail(f'schedule "conditional" needs the exit decision on the device, got decide={decide!r}',
                   'use decide="device", or schedule "overlap"/"sync" to decide on the host')


class Segments(Protocol):
    rows: int

    def load(self, x: torch.Tensor) -> None: ...

    def launch(self, k: int) -> None: ...

    def result(self, k: int) -> torch.Tensor: ...


class Check(Protocol):
    def reset(self) -> None: ...

    def __call__(self, k: int, vector: torch.Tensor) -> Decision | None: ...


class HostCheck:
    """``decide="host"``: segment vectors are logits (+ LTE output); the policy decides on a CPU ``RowBuffer``."""

    def __init__(self, policy: Policy, rows: int, classes: int, lte: bool):
        self.policy, self.classes = policy, classes
        self.buffer = RowBuffer(rows, 1, classes, "cpu", lte=lte)

    def reset(self) -> None:
        self.buffer.logits.fill_(PLACEHOLDER)
        if self.buffer.lte is not None:
            self.buffer.lte.fill_(PLACEHOLDER)

    def __call__(self, k: int, vector: torch.Tensor) -> Decision | None:
        lte = vector[self.classes:].reshape(1) if vector.numel() > self.classes else None
        self.buffer.put(k, vector[:self.classes].reshape(1, -1), lte)
        decision, settled = self.buffer.decide(self.policy, k)
        return decision if bool(settled[0]) else None


class PackedCheck:
    """``decide="device"``: segment vectors are packed decisions (``segments.pack``) of ``chain``'s policy."""

    def __init__(self, chain: SegmentChain):
        self.chain = chain

    def reset(self) -> None:
        """Nothing to do: segment 0 resets the device buffer itself."""

    def __call__(self, k: int, vector: torch.Tensor) -> Decision | None:
        if not is_settled(vector):
            return None
        return unpack(vector, self.chain.format)  # the format is known once the chain has run


def run_image(segments: Segments, check: Check, x: torch.Tensor, schedule: str) -> tuple[Decision, int]:
    """One image through the segments under ``schedule`` (``sync`` or ``overlap``) → (decision, segments launched)."""
    if schedule not in STAGED:
        raise fail(f"run_image got schedule {schedule!r}", f"use one of {list(STAGED)} (conditional: run_conditional)")
    ahead = schedule == "overlap"
    rows = segments.rows
    segments.load(x)
    check.reset()
    segments.launch(0)
    launched = 1
    for k in range(rows):
        if k + 1 < rows and ahead:
            segments.launch(k + 1)  # speculation: queued before the host waits for k
            launched += 1
        decision = check(k, segments.result(k))
        if decision is not None:
            return decision, launched
        if k + 1 < rows and not ahead:
            segments.launch(k + 1)
            launched += 1
    raise fail(f"the policy left the sample unsettled after the last row ({rows} rows)",
               "a policy's compute_index must be a row of its input")


class StagedExits:
    """Batch-1 early exit by segments: ``exits(x, policy) -> Decision`` for inputs shaped like ``example`` ([1, ...]).

    ``decide="device"`` prepares one segment chain per policy (its parameters are baked into the segments; the chain
    is cached by policy identity, so reuse the policy object), ``"host"`` one chain for every policy; the
    ``conditional`` schedule has a chain of its own per policy (a captured program owns its chain's state).
    ``executed`` is the number of segments the last call ran (``conditional``: compute_index + 1, which is all it
    runs). Segments run eagerly here; ``graphs.GraphedExits`` overrides :meth:`runner` and
    :meth:`conditional_runner` to capture them."""

    def __init__(self, model: MultiExitModel, example: torch.Tensor, schedule: str = "overlap",
                 decide: str = "device"):
        if decide not in DECIDE:
            raise fail(f"unknown decide={decide!r}", f"use one of {list(DECIDE)}")
        check_schedule(schedule, decide)
        if not torch.is_tensor(example) or example.dim() < 2 or example.shape[0] != 1:
            shape = tuple(example.shape) if torch.is_tensor(example) else type(example).__name__
            raise fail(f"{type(self).__name__} got an example of shape {shape}", "pass one sample ([1, ...])")
        if model.training:
            raise fail("staged early exit got a model in training mode", "call model.eval() first")
        self.model, self.schedule, self.decide = model, schedule, decide
        self.rows = len(model.row_layers)
        self.static_input = example.detach().clone()
        self.executed = 0
        self._host_runner: Segments | None = None
        self._prepared: dict[int, tuple[Policy, Segments, Check]] = {}  # id(policy) → (policy kept alive, ...)
        self._conditional: dict[int, tuple[Policy, Conditional]] = {}

    def runner(self, chain: SegmentChain) -> Segments:
        """How a chain's segments run (here: eagerly)."""
        return EagerSegments(chain)

    def conditional_runner(self, cond: ConditionalChain) -> Conditional:
        """How a chain's conditional program runs (here: eagerly, IF on the host)."""
        return EagerConditional(cond)

    def prepare(self, policy: Policy) -> tuple[Segments, Check]:
        """The runner and check for ``policy`` (built on first use)."""
        entry = self._prepared.get(id(policy))
        if entry is None:
            check: Check
            if self.decide == "device":
                chain = SegmentChain(self.model, self.static_input, policy)
                runner, check = self.runner(chain), PackedCheck(chain)
            else:
                if self._host_runner is None:
                    self._host_runner = self.runner(SegmentChain(self.model, self.static_input))
                runner = self._host_runner
                check = HostCheck(policy, self.rows, self.model.num_classes, self.model.lte is not None)
            entry = self._prepared[id(policy)] = (policy, runner, check)
        return entry[1], entry[2]

    def prepare_conditional(self, policy: Policy) -> Conditional:
        """The conditional runner for ``policy`` (built on first use; ``decide="device"`` only)."""
        entry = self._conditional.get(id(policy))
        if entry is None:
            chain = SegmentChain(self.model, self.static_input, policy)
            entry = self._conditional[id(policy)] = (policy, self.conditional_runner(ConditionalChain(chain)))
        return entry[1]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, policy: Policy, schedule: str | None = None) -> Decision:
        if x.shape != self.static_input.shape:
            raise fail(f"{type(self).__name__} was built for inputs {tuple(self.static_input.shape)}, got "
                       f"{tuple(x.shape)}", "build one per input shape (batch 1)")
        schedule = schedule or self.schedule
        check_schedule(schedule, self.decide)
        if schedule == "conditional":
            decision = run_conditional(self.prepare_conditional(policy), x)
            self.executed = int(decision.compute_index[0]) + 1  # segments 0..settling one (the host cannot see it)
            return decision
        runner, check = self.prepare(policy)
        decision, self.executed = run_image(runner, check, x, schedule)
        return decision
