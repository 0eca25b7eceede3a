"""The model cut at its exits. Row r = the blocks after row r-1's block up to row r's block (the segment), then row
r's head (the final classifier for the last row: the method's own final head where it has one, as COST-EFF does,
else the backbone's final norm + classifier); the embedding comes before row 0. Live inference, every runtime's eager
pieces, the CUDA graph segments and the tests all use this one definition, so they compute what
``MultiExitModel.forward`` computes, in pieces."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..backbones.base import Context
from ..errors import fail
from ..model import MultiExitModel, check_logits


@dataclass
class RowOutput:
    hidden: torch.Tensor  # raw output of the row's last block (input of the next row)
    logits: torch.Tensor  # [batch, classes]
    lte: torch.Tensor | None  # [batch] BERxiT learning-to-exit output; None for the final row or without LTE


def run_row(model: MultiExitModel, row: int, hidden: torch.Tensor, ctx: Context) -> RowOutput:
    """Compute row ``row`` from the output of the previous row's last block (the embedding for row 0)."""
    hidden = run_blocks(model, row, hidden, ctx)
    logits, lte = row_head(model, row, hidden, ctx)
    return RowOutput(hidden, logits, lte)


def row_blocks(model: MultiExitModel, row: int) -> range:
    """The 1-based blocks row ``row`` runs: its segment. Empty where an exit sits at the last block (that exit's row
    and the final row read the same block)."""
    layers = model.row_layers
    return range((layers[row - 1] if row else 0) + 1, layers[row] + 1)


def run_blocks(model: MultiExitModel, row: int, hidden: torch.Tensor, ctx: Context) -> torch.Tensor:
    for i in row_blocks(model, row):
        hidden = model.backbone.block(i, hidden, ctx)
    return hidden


def row_head(model: MultiExitModel, row: int, hidden: torch.Tensor,
             ctx: Context) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Row ``row``'s logits (and LTE output) from its last block's output; the last row is the final classifier."""
    if row == len(model.row_layers) - 1:
        return final_logits(model, hidden, ctx), None
    return exit_outputs(model, row, hidden, ctx)


def exit_outputs(model: MultiExitModel, row: int, hidden: torch.Tensor,
                 ctx: Context) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Internal row ``row``'s exit head on its segment's output → (logits, learning-to-exit output or None)."""
    layers = model.row_layers
    out = model.heads[row](hidden, ctx.mask)
    check_logits(out.logits, model.num_classes, layers[row])
    if model.lte is None:
        return out.logits, None
    if out.pooled is None:
        raise fail("the learning-to-exit module needs heads that return a pooled vector", "use 'mlp' or 'linear' heads")
    lte = torch.sigmoid(model.lte_for(model.backbone.layout(layers[row]).width)(out.pooled)).squeeze(-1)
    return out.logits, lte


def final_logits(model: MultiExitModel, hidden: torch.Tensor, ctx: Context) -> torch.Tensor:
    """The last row's answer: the method's own final head (COST-EFF drops the backbone's classifier for one), else
    the backbone's final norm + classifier — what ``MultiExitModel.forward`` returns as ``final_logits``."""
    if model.final_head is not None:
        return model.final_head(hidden, ctx.mask).logits
    return model.backbone.classify(hidden, ctx)


def plain_logits(model: MultiExitModel, inputs) -> torch.Tensor:
    """The model's own plain backbone: embedding, every block, the final classifier; no exit head runs (Table 5's
    baseline: the same weights without exits)."""
    hidden, ctx = model.backbone.embed(inputs)
    for i in range(1, model.backbone.num_layers + 1):
        hidden = model.backbone.block(i, hidden, ctx)
    return final_logits(model, hidden, ctx)


def keep_samples(hidden: torch.Tensor, ctx: Context, keep: torch.Tensor) -> tuple[torch.Tensor, Context]:
    """The samples ``keep`` (bool or index) of the hidden states and of every per-sample tensor in ``ctx`` (the mask,
    and ``block_kwargs`` tensors whose first dimension is the batch)."""
    batch = hidden.shape[0]

    def pick(value):
        return value[keep] if torch.is_tensor(value) and value.dim() and value.shape[0] == batch else value

    return hidden[keep], Context(mask=pick(ctx.mask), block_kwargs={k: pick(v) for k, v in ctx.block_kwargs.items()})
