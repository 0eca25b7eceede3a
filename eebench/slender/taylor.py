"""First-order Taylor importance of heads and FFN neurons (spec methods §7.2 step 3).

Over a with-replacement resample of the training set, with dropout off, accumulate |∂L/∂W| per batch of the
attention-output dense and the two FFN dense weights, L being the Taylor loss of every exit (``costeff_taylor``);
importance = |accumulated |grad| ⊙ W|. Head score: the attention-output importance summed over its output rows, then
over each head's input columns; FFN neuron score: the intermediate importance summed over its row + the output
importance summed over its column. (Q/K/V importances are computed by the official code but unused, so not here.)
"""
from __future__ import annotations

import torch

from ..device import to_device
from .prune import blocks


def tracked(model) -> list[tuple[torch.nn.Parameter, torch.nn.Parameter, torch.nn.Parameter]]:
    return [(layer.attention.output.dense.weight, layer.intermediate.dense.weight, layer.output.dense.weight)
            for layer in blocks(model)]


def taylor_importance(model, loss_fn, batches, device) -> list[dict[str, torch.Tensor]]:
    """Per layer ``{"heads": [h], "ffn": [f]}`` scores, computed with dropout off; the model's mode is restored."""
    was_training = model.training
    model.eval()
    weights = tracked(model)
    acc = [[torch.zeros_like(w) for w in ws] for ws in weights]
    for x, y in batches:
        x, y = to_device(x, device), y.to(device)
        model.zero_grad(set_to_none=True)
        out = model(x, with_hidden=getattr(loss_fn, "needs_hidden", False))
        loss_fn(out, y).backward()
        for ws, sums in zip(weights, acc):
            for w, s in zip(ws, sums):
                if w.grad is not None:
                    s += w.grad.detach().abs()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    scores = []
    for layer, ws, sums in zip(blocks(model), weights, acc):
        attn_out, inter, output = ((s * w.detach()).abs() for w, s in zip(ws, sums))
        d = layer.attention.self.attention_head_size
        scores.append({"heads": attn_out.sum(0).view(-1, d).sum(1), "ffn": inter.sum(1) + output.sum(0)})
    return scores


def top_k(scores: torch.Tensor, k: int) -> list[int]:
    """Indices of the k highest scores (ties: the lower index), ascending."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:k])
