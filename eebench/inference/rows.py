"""The model cut at its exits. Row r = the blocks after row r-1's block up to row r's block, then row r's head (the
backbone's final norm + classifier for the last row); the embedding comes before row 0. Live inference, the CUDA
graph segments and the tests all use this one definition, so they compute what ``MultiExitModel.forward`` computes,
in pieces."""
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
    """The 1-based blocks row ``row`` runs (empty when its exit sits at the same block as the previous row's)."""
    layers = model.row_layers
    return range((layers[row - 1] if row else 0) + 1, layers[row] + 1)


def run_blocks(model: MultiExitModel, row: int, hidden: torch.Tensor, ctx: Context) -> torch.Tensor:
    for i in row_blocks(model, row):
        hidden = model.backbone.block(i, hidden, ctx)
    return hidden


def row_head(model: MultiExitModel, row: int, hidden: torch.Tensor,
             ctx: Context) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Row ``row``'s logits (and LTE output) from its last block's output. The last row is the model's final
    classifier: a method's own final head where it brings one (COST-EFF drops the backbone's), as in
    ``MultiExitModel.forward``."""
    layers = model.row_layers
    if row == len(layers) - 1:
        if model.final_head is not None:
            return model.final_head(hidden, ctx.mask).logits, None
        return model.backbone.classify(hidden, ctx), None
    out = model.heads[row](hidden, ctx.mask)
    check_logits(out.logits, model.num_classes, layers[row])
    lte = None
    if model.lte is not None:
        if out.pooled is None:
            raise fail("the learning-to-exit module needs heads that return a pooled vector",
                       "use 'mlp' or 'linear' heads")
        lte = torch.sigmoid(model.lte_for(model.backbone.layout(layers[row]).width)(out.pooled)).squeeze(-1)
    return out.logits, lte


def keep_samples(hidden: torch.Tensor, ctx: Context, keep: torch.Tensor) -> tuple[torch.Tensor, Context]:
    """The samples ``keep`` (bool or index) of the hidden states and of every per-sample tensor in ``ctx`` (the mask,
    and ``block_kwargs`` tensors whose first dimension is the batch)."""
    batch = hidden.shape[0]

    def pick(value):
        return value[keep] if torch.is_tensor(value) and value.dim() and value.shape[0] == batch else value

    return hidden[keep], Context(mask=pick(ctx.mask), block_kwargs={k: pick(v) for k, v in ctx.block_kwargs.items()})
