"""``gah``: LGViT's global aggregation head, exactly as the official code builds it (spec methods §1.4).

PFC token reduction with stride ``stride`` → 8-head self-attention (fused qkv without bias, output projection with
bias; no LayerNorm, residual or MLP). ``pfc="subsample"`` is the code's AvgPool2d(kernel 1, stride s), i.e. it keeps
rows/cols 0, s, 2s…; ``pfc="average"`` is the paper's s×s window average (ceil mode, so token counts match).
"""
import torch
from torch import nn

from .base import (ExitHead, FusedClassifier, HeadOutput, from_grid, init_like_hf, patch_tokens, register_head,
                   require_grid, to_grid)


def reduce_tokens(x: torch.Tensor, stride: int, mode: str = "subsample") -> torch.Tensor:
    """[B, D, H, W] → [B, D, ⌊(H−1)/s⌋+1, ⌊(W−1)/s⌋+1]; shared by the PFC and the distillation aligner."""
    if stride <= 1:
        return x
    if mode == "subsample":
        return x[:, :, ::stride, ::stride]
    if mode == "average":
        return nn.functional.avg_pool2d(x, stride, stride, ceil_mode=True)
    raise ValueError(f"unknown PFC mode {mode!r} (subsample | average)")


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection; no norm, residual or MLP around it."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} attention heads")
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, key_mask: torch.Tensor | None = None):
        """``key_mask`` [B, tokens] (1 = real) keeps padded tokens out of every softmax (text)."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-2, -1)).mul(self.scale)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask.bool()[:, None, None, :], float("-inf"))
        attn = scores.softmax(dim=-1)
        return self.proj(torch.matmul(attn, v).transpose(1, 2).reshape(b, n, d))


@register_head("gah")
class GlobalAggregationHead(ExitHead):
    distill_group = "global"

    def __init__(self, layout, num_classes, exit_layer, stride: int = 2, num_heads: int = 8, pfc: str = "subsample"):
        super().__init__(layout, num_classes, exit_layer)
        self.grid = require_grid(layout, "gah")
        self.stride, self.pfc = stride, pfc
        reduce_tokens(torch.zeros(1, 1, 1, 1), 2, pfc)  # validate the mode early
        self.attention = SelfAttention(layout.width, num_heads)
        self.classifier = FusedClassifier(layout, num_classes)
        init_like_hf(self)

    def forward(self, hidden, mask=None):
        tokens = patch_tokens(hidden, self.layout)
        reduced = from_grid(reduce_tokens(to_grid(tokens, self.grid), self.stride, self.pfc))
        feature = self.attention(reduced)
        return HeadOutput(self.classifier(feature, hidden), feature)
