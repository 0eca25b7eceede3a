"""Live early-exit inference driven by the offline policy code (see ``causal`` for why it is exact).

``early_exit``: batch 1 as in the paper (spec methods §4.1) — segments run in order and computation stops at the
first exit where the decision settles. ``batched_exit``: any batch; settled samples leave the batch and the rest
continue (text: their padding mask and attention mask keep only the remaining rows, and positions no remaining row
uses are cut), answers coming back in input order. Both return the same ``Decision`` the offline replay returns, and
take a model (run eagerly) or a prepared ``runtime.Runtime``.

The exit check after row k stores the row's logits into a ``RowBuffer`` and runs ``policy.decide`` on the rows so
far: patience policies (PABEE, PCEE, LGViT's) read their history of predictions from the buffer, as they do from the
cache offline. At batch 1 a runtime may ask for the policy's compiled numpy rule instead (``rulecheck``), which
decides the same at a fraction of the cost. A ``Probe`` adds up the wall time of each piece (segments, heads, the final classifier, checks).
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable

import torch

from ..errors import fail
from ..model import MultiExitModel
from ..policies import Decision, Policy
from .causal import RowBuffer
from .rulecheck import observe, rule_check, rule_decision
from .runtime import Runtime, as_runtime

COMPONENTS = ("segments", "heads", "final", "checks")
CHECKS = ("policy", "rule")  # batch-1 exit checks: the torch policy on the rows so far, or its compiled numpy rule


class Probe:
    """Wall time per component of the calls it wraps (``time.perf_counter``; ``sync`` — the device's
    synchronisation — runs before each reading, so asynchronous work is charged to the call that queued it)."""

    def __init__(self, sync: Callable[[], None] = lambda: None):
        self.sync, self.seconds = sync, defaultdict(float)

    def __call__(self, component: str, fn: Callable, *args: Any) -> Any:
        self.sync()
        start = time.perf_counter()
        out = fn(*args)
        self.sync()
        self.seconds[component] += time.perf_counter() - start
        return out


def _direct(component: str, fn: Callable, *args: Any) -> Any:
    return fn(*args)


def batch_size(x: Any) -> int:
    """Samples in an input batch: an image tensor ``[batch, ...]`` or a text batch's dict of ``[batch, tokens]``."""
    if isinstance(x, dict) and torch.is_tensor(x.get("input_ids")) and x["input_ids"].dim() == 2:
        return x["input_ids"].shape[0]
    if torch.is_tensor(x) and x.dim() >= 2:
        return x.shape[0]
    raise fail(f"live inference got input of type {type(x).__name__}",
               "pass a batched input: a tensor [batch, ...] or a text batch {input_ids: [batch, tokens], ...}")


def _unsettled(row: int, rows: int) -> "Exception":
    return fail(f"the policy left samples unsettled after the last row ({row + 1} of {rows})",
                "a policy's compute_index must be a row of its input")


def _raw_row(rt: Runtime, row: int, state: Any, call) -> tuple[Any, Any, Any | None]:
    """Segment ``row`` then its head (the final classifier for the last row) → (state, logits, lte), as the runtime
    returns them."""
    state = call("segments", rt.run_segment, row, state)
    if row == rt.rows - 1:
        return state, call("final", rt.run_final, state), None
    logits, lte = call("heads", rt.run_head, row, state)
    return state, logits, lte


def _row(rt: Runtime, row: int, state: Any, call) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
    state, logits, lte = _raw_row(rt, row, state, call)
    return state, torch.as_tensor(logits), None if lte is None else torch.as_tensor(lte)


def exit_check_of(rt: Runtime, policy: Policy, check: str | None = None) -> str:
    """The check the batch-1 loop runs for ``policy`` on ``rt``: ``check`` (default: the runtime's own), "rule" only
    where the policy compiles to one."""
    kind = _check_kind(rt, check)
    return "policy" if kind == "rule" and rule_check(policy, rt.rows, rt.classes, rt.lte) is None else kind


def _check_kind(rt: Runtime, check: str | None) -> str:
    kind = check or getattr(rt, "exit_check", "policy")
    if kind not in CHECKS:
        raise fail(f"unknown exit check {kind!r}", f"use one of {list(CHECKS)}")
    return kind


@torch.no_grad()
def early_exit(model: MultiExitModel | Runtime, policy: Policy, x: Any, probe: Probe | None = None,
               check: str | None = None) -> Decision:
    """Batch-1 inference with early return: row by row (segment + head), stopping as soon as the policy's decision
    settles. Reading ``settled`` is one host sync per exit, as in the official code's Python ``if``. ``check``: how
    exits are checked (``CHECKS``; default: the runtime's ``exit_check``)."""
    rt = as_runtime(model)
    if batch_size(x) != 1:
        raise fail(f"early_exit got a batch of {batch_size(x)}", "pass one sample ([1, ...]) or use batched_exit")
    call = probe or _direct
    if _check_kind(rt, check) == "rule":
        rule = rule_check(policy, rt.rows, rt.classes, rt.lte)
        if rule is not None:
            return _early_exit_rule(rt, rule, x, call)
    state, buffer = x, None
    for row in range(rt.rows):
        state, logits, lte = _row(rt, row, state, call)
        if buffer is None:
            buffer = RowBuffer(rt.rows, 1, logits.shape[-1], logits.device, lte=rt.lte)
        decision, settled = call("checks", _check_row, buffer, policy, row, logits, lte, None)
        if bool(settled[0]):
            return decision
    raise _unsettled(rt.rows - 1, rt.rows)


def _early_exit_rule(rt: Runtime, rule, x: Any, call) -> Decision:
    """``early_exit`` with the policy's compiled numpy rule as the check (``rulecheck``)."""
    rule.reset()
    state = x
    for row in range(rt.rows):
        state, logits, lte = _raw_row(rt, row, state, call)
        if call("checks", observe, rule, row, logits, lte):
            return call("checks", rule_decision, rule)
    raise _unsettled(rt.rows - 1, rt.rows)


def _check_row(buffer: RowBuffer, policy: Policy, row: int, logits: torch.Tensor, lte: torch.Tensor | None,
               index: torch.Tensor | None) -> tuple[Decision, torch.Tensor]:
    buffer.put(row, logits, lte, index=index)
    return buffer.decide(policy, row, index=index)


@torch.no_grad()
def batched_exit(model: MultiExitModel | Runtime, policy: Policy, x: Any, probe: Probe | None = None) -> Decision:
    """Batched inference with per-sample exits: after each row the settled samples leave the batch, the rest
    continue. The decision fields come back in input order."""
    rt = as_runtime(model)
    batch = batch_size(x)
    call = probe or _direct
    state, buffer, active = x, None, None
    done: list[tuple[torch.Tensor, Decision, torch.Tensor]] = []  # (sample indices, decision, settled mask)
    for row in range(rt.rows):
        state, logits, lte = _row(rt, row, state, call)
        if buffer is None:
            buffer = RowBuffer(rt.rows, batch, logits.shape[-1], logits.device, lte=rt.lte)
            active = torch.arange(batch, device=logits.device)
        decision, settled = call("checks", _check_row, buffer, policy, row, logits, lte, active)
        done.append((active[settled], decision, settled))
        if bool(settled.all()):
            return _in_input_order(done)
        active = active[~settled]
        state = rt.select(state, ~settled)
    raise _unsettled(rt.rows - 1, rt.rows)


def _in_input_order(done: list[tuple[torch.Tensor, Decision, torch.Tensor]]) -> Decision:
    order = torch.cat([idx for idx, _, _ in done]).argsort()

    def field(name: str) -> torch.Tensor | None:
        parts = [getattr(d, name) for _, d, _ in done]
        if parts[0] is None:
            return None
        return torch.cat([p[mask] for p, (_, _, mask) in zip(parts, done)])[order]

    return Decision(exit_index=field("exit_index"), prediction=field("prediction"),
                    compute_index=field("compute_index"), output=field("output"), is_early=field("is_early"))
