"""Real structured width pruning of an HF BERT inside a ``MultiExitModel`` (spec methods §7.1): weights are sliced
and smaller modules rebuilt, never masked.

Per layer: attention heads (the Q/K/V output rows and the attention-output input columns of each kept head; layers
may keep different heads), FFN neurons (rows of the intermediate dense, columns of the output dense), and the word
embedding factorised by truncated SVD into a vocab×r table (U_r·Σ_r) and a bias-free Linear r→hidden (V_r). The
residual width, position/type embeddings and LayerNorms are untouched. A pruned model's ``shape`` (heads and FFN width
per layer, embedding rank, which original heads each layer kept) goes into its checkpoint, and ``apply_shape`` rebuilds
that architecture on a freshly built model before the weights are loaded.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..errors import fail


class FactorisedEmbedding(nn.Module):
    """vocab×r embedding followed by a bias-free r→hidden projection (COST-EFF's SVD-factorised word embedding)."""

    def __init__(self, vocab: int, rank: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, rank)
        self.project = nn.Linear(rank, hidden, bias=False)

    @property
    def rank(self) -> int:
        return self.embed.embedding_dim

    def matrix(self) -> torch.Tensor:
        return self.project(self.embed.weight)

    def forward(self, ids):
        return self.project(self.embed(ids))


def blocks(model) -> nn.ModuleList:
    bb = model.backbone
    if getattr(bb, "family", None) != "bert":
        raise fail(f"structured width pruning needs a BERT-family backbone, not {bb.family!r}",
                   "use bert_base_uncased, minilm_l6 or bert_tiny_test")
    return bb.blocks


def dims(model) -> dict[str, int]:
    cfg = model.backbone.model.config
    return {"heads": cfg.num_attention_heads, "ffn": cfg.intermediate_size, "hidden": cfg.hidden_size,
            "head_size": cfg.hidden_size // cfg.num_attention_heads, "vocab": cfg.vocab_size}


def slice_linear(linear: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A new Linear keeping output rows (``dim`` 0, bias sliced too) or input columns (``dim`` 1) ``index``."""
    index = index.to(linear.weight.device)
    weight = linear.weight.detach().index_select(dim, index).clone()
    bias = None if linear.bias is None else (linear.bias.detach()[index] if dim == 0 else linear.bias.detach()).clone()
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None).to(weight.device, weight.dtype)
    new.weight.data.copy_(weight)
    if bias is not None:
        new.bias.data.copy_(bias)
    return new


def kept_heads(layer) -> list[int]:
    """The original indices of the heads this layer still has."""
    attn = layer.attention.self
    return list(getattr(attn, "kept_heads", range(attn.num_attention_heads)))


def prune_heads(layer, keep: Sequence[int]) -> None:
    """Keep the heads ``keep`` (current positions, any order; they stay in ascending order)."""
    attn, out = layer.attention.self, layer.attention.output
    keep = sorted(int(k) for k in keep)
    if not keep or keep[-1] >= attn.num_attention_heads or keep[0] < 0:
        raise fail(f"cannot keep heads {keep} of a layer with {attn.num_attention_heads}", "keep at least one head")
    d = attn.attention_head_size
    index = torch.tensor([h * d + j for h in keep for j in range(d)])
    for name in ("query", "key", "value"):
        setattr(attn, name, slice_linear(getattr(attn, name), index, 0))
    out.dense = slice_linear(out.dense, index, 1)
    original = kept_heads(layer)
    attn.kept_heads = [original[k] for k in keep]
    attn.num_attention_heads = len(keep)
    attn.all_head_size = len(keep) * d


def prune_ffn(layer, keep: Sequence[int]) -> None:
    index = torch.tensor(sorted(int(k) for k in keep))
    if index.numel() == 0:
        raise fail("cannot keep 0 FFN neurons", "keep at least one")
    layer.intermediate.dense = slice_linear(layer.intermediate.dense, index, 0)
    layer.output.dense = slice_linear(layer.output.dense, index, 1)


def word_matrix(model) -> torch.Tensor:
    emb = model.backbone.model.embeddings.word_embeddings
    return emb.matrix() if isinstance(emb, FactorisedEmbedding) else emb.weight


def embedding_rank(model) -> int | None:
    emb = model.backbone.model.embeddings.word_embeddings
    return emb.rank if isinstance(emb, FactorisedEmbedding) else None


@torch.no_grad()
def factorise_embedding(model, rank: int) -> None:
    """Truncated SVD of the (effective) word-embedding matrix to ``rank``: E ≈ (U_r Σ_r) V_rᵀ."""
    d = dims(model)
    if not 1 <= rank <= d["hidden"]:
        raise fail(f"embedding rank {rank} is outside 1..{d['hidden']}", "choose a rank up to the hidden width")
    matrix = word_matrix(model).detach().float()
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    emb = model.backbone.model.embeddings
    dtype, device = matrix.dtype, matrix.device
    new = FactorisedEmbedding(d["vocab"], rank, d["hidden"]).to(device, dtype)
    new.embed.weight.copy_(u[:, :rank] * s[:rank])
    new.project.weight.copy_(vh[:rank].T)
    emb.word_embeddings = new


def shape_of(model) -> dict[str, Any]:
    """What a checkpoint must record to rebuild this model's width."""
    layers = blocks(model)
    return {"heads": [layer.attention.self.num_attention_heads for layer in layers],
            "ffn": [layer.intermediate.dense.out_features for layer in layers],
            "rank": embedding_rank(model),
            "kept_heads": [kept_heads(layer) for layer in layers]}


def is_pruned(model) -> bool:
    d = dims(model)
    shape = shape_of(model)
    return shape["rank"] is not None or any(h != d["heads"] for h in shape["heads"]) or any(
        f != d["ffn"] for f in shape["ffn"])


def check_shape(shape: Any, model, where: str) -> None:
    """One clear line when a recorded shape does not fit this backbone (a wrong or corrupt checkpoint)."""
    d, n = dims(model), len(blocks(model))
    ok = isinstance(shape, dict) and all(isinstance(shape.get(k), list) and len(shape[k]) == n for k in ("heads", "ffn"))
    ok = ok and all(isinstance(h, int) and 1 <= h <= d["heads"] for h in shape["heads"])
    ok = ok and all(isinstance(f, int) and 1 <= f <= d["ffn"] for f in shape["ffn"])
    ok = ok and (shape.get("rank") is None or (isinstance(shape["rank"], int) and 1 <= shape["rank"] <= d["hidden"]))
    if not ok:
        raise fail(f"{where} records a pruned shape that does not fit this backbone ({n} layers, {d['heads']} heads, "
                   f"FFN {d['ffn']}, hidden {d['hidden']}): {shape!r}",
                   "load it with the backbone it was trained on, or delete the corrupt checkpoint and rerun its stage")


def apply_shape(model, shape: dict[str, Any], where: str = "the checkpoint") -> None:
    """Rebuild a freshly built full model at ``shape`` (weights are placeholders until a state dict is loaded)."""
    check_shape(shape, model, where)
    for layer, h, f in zip(blocks(model), shape["heads"], shape["ffn"]):
        if h != layer.attention.self.num_attention_heads:
            prune_heads(layer, range(h))
        if f != layer.intermediate.dense.out_features:
            prune_ffn(layer, range(f))
    for layer, kept in zip(blocks(model), shape.get("kept_heads") or [None] * len(shape["heads"])):
        if kept is not None:
            layer.attention.self.kept_heads = list(kept)
    if shape.get("rank") is not None:
        factorise_embedding(model, shape["rank"])


class SlenderShape:
    """A width-pruned BERT's shape as its checkpoint records it (``slender_shape``, ``eebench.checkpoint_shape``)."""

    def record(self, model) -> dict[str, Any] | None:
        if getattr(model.backbone, "family", None) != "bert" or not is_pruned(model):
            return None
        return shape_of(model)

    def apply(self, model, value: dict[str, Any], where: str) -> None:
        apply_shape(model, value, where)
