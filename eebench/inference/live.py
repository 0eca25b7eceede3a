"""Live early-exit inference driven by the offline policy code (see ``causal`` for why it is exact).

``early_exit``: batch 1 as in the paper (spec methods §4.1) — blocks run in order and computation stops at the first
exit where the decision settles. ``batched_exit``: any batch; settled samples leave the batch and the rest continue,
and answers come back in input order. Both return the same ``Decision`` the offline replay returns.
"""
from __future__ import annotations

import torch

from ..errors import fail
from ..model import MultiExitModel
from ..policies import Decision, Policy
from .causal import RowBuffer
from .rows import keep_samples, run_row


def _check(model: MultiExitModel, x: torch.Tensor) -> None:
    if model.training:
        raise fail("live inference got a model in training mode (dropout, batch-norm statistics)",
                   "call model.eval() first")
    if not torch.is_tensor(x) or x.dim() < 2:
        raise fail(f"live inference got input of type {type(x).__name__}", "pass a batched input tensor [batch, ...]")


def _unsettled(row: int, rows: int) -> "Exception":
    return fail(f"the policy left samples unsettled after the last row ({row + 1} of {rows})",
                "a policy's compute_index must be a row of its input")


@torch.no_grad()
def early_exit(model: MultiExitModel, policy: Policy, x: torch.Tensor) -> Decision:
    """Batch-1 inference with early return: embed, then row by row (blocks + head), stopping as soon as the policy's
    decision settles. Reading ``settled`` is one host sync per exit, as in the official code's Python ``if``."""
    _check(model, x)
    if x.shape[0] != 1:
        raise fail(f"early_exit got a batch of {x.shape[0]}", "pass one sample ([1, ...]) or use batched_exit")
    rows = len(model.row_layers)
    hidden, ctx = model.backbone.embed(x)
    buffer = None
    for row in range(rows):
        out = run_row(model, row, hidden, ctx)
        hidden = out.hidden
        if buffer is None:
            buffer = RowBuffer(rows, 1, out.logits.shape[-1], out.logits.device, lte=model.lte is not None)
        buffer.put(row, out.logits, out.lte)
        decision, settled = buffer.decide(policy, row)
        if bool(settled[0]):
            return decision
    raise _unsettled(rows - 1, rows)


@torch.no_grad()
def batched_exit(model: MultiExitModel, policy: Policy, x: torch.Tensor) -> Decision:
    """Batched inference with per-sample exits: after each row the settled samples leave the batch, the rest
    continue. The decision fields come back in input order."""
    _check(model, x)
    rows, batch = len(model.row_layers), x.shape[0]
    hidden, ctx = model.backbone.embed(x)
    active = torch.arange(batch, device=hidden.device)
    buffer = None
    done: list[tuple[torch.Tensor, Decision, torch.Tensor]] = []  # (sample indices, decision, settled mask)
    for row in range(rows):
        out = run_row(model, row, hidden, ctx)
        if buffer is None:
            buffer = RowBuffer(rows, batch, out.logits.shape[-1], out.logits.device, lte=model.lte is not None)
        buffer.put(row, out.logits, out.lte, index=active)
        decision, settled = buffer.decide(policy, row, index=active)
        done.append((active[settled], decision, settled))
        if bool(settled.all()):
            return _in_input_order(done)
        active = active[~settled]
        hidden, ctx = keep_samples(out.hidden, ctx, ~settled)
    raise _unsettled(rows - 1, rows)


def _in_input_order(done: list[tuple[torch.Tensor, Decision, torch.Tensor]]) -> Decision:
    order = torch.cat([idx for idx, _, _ in done]).argsort()

    def field(name: str) -> torch.Tensor | None:
        parts = [getattr(d, name) for _, d, _ in done]
        if parts[0] is None:
            return None
        return torch.cat([p[mask] for p, (_, _, mask) in zip(parts, done)])[order]

    return Decision(exit_index=field("exit_index"), prediction=field("prediction"),
                    compute_index=field("compute_index"), output=field("output"), is_early=field("is_early"))
