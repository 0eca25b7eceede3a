"""``glh``: EEformer's global-local head — a reconstruction (only the paper's abstract is public; spec methods §6).

The abstract says a GLH "extracts global and local information from the hidden states produced by the backbone
layer". Read with LGViT (the same authors' conference version), that is one head fusing LGViT's two branches:

- local: the LPH path (spec §1.3) — PW-1 (width × ``ratio``, GELU, BN) → depth-wise conv (``kernel``, GELU, BN; none
  when ``kernel`` is 0) → PW-2 (BN) → + input tokens;
- global: the GAH path (spec §1.4) — token sub-sampling with ``stride`` (``pfc``) → 8-head MHSA (qkv without bias);

each branch is mean-pooled, the two vectors are fused (``fusion``) and the result goes through LGViT's CLS/DIST
classifier (spec §1.5: ``Linear(pooled + h_CLS)``; DeiT averages a CLS and a DIST classifier; Swin LN → mean → fc).

Defaults, argued: one head type at every exit, so each exit gets both kinds of information instead of LGViT's
local-low/global-high split (the abstract's "global-local" head, not "global or local"); ``kernel`` 3 and
``stride`` 2 are LGViT's choices for its earliest exits of each kind, the cheapest setting that still sees a
neighbourhood and keeps a quarter of the tokens; ``ratio`` 1 is LGViT's code (no expansion); ``fusion: sum`` is
parameter-free, like LGViT's own feature + CLS fusion, in keeping with the abstract's "efficiently". ``concat``
(Linear 2D→D on the concatenation) and ``gate`` (σ(Linear 2D→D) mixing the two) are the switches for other readings.

On text (``layout.grid is None``) the same head runs over the token sequence and respects padding: point-wise layers
are per token, the depth-wise conv sees zeros at padded positions (exactly the zero padding a lone sample gets at its
end), BatchNorm statistics use real tokens only, sub-sampling keeps every ``stride``-th *real* token, and padded
tokens are masked out of attention and pooling — so a sample's logits do not depend on what it is batched with.

``feature`` (for LGViT's stage-2 feature distillation) is the local branch's token matrix (``distill_feature:
local``, compared token-wise like an LPH's) or the global one's (``global``, compared through Gram matrices like a
GAH's).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import fail
from .base import ExitHead, FusedClassifier, HeadOutput, from_grid, init_like_hf, patch_tokens, register_head, to_grid
from .gah import SelfAttention, reduce_tokens
from .lph import conv_gelu_bn

FUSIONS = ("sum", "concat", "gate")


class LocalBranch2d(nn.Module):
    """LGViT's LPH body on the patch grid (``[B, N, D]`` → ``[B, N, D]``, residual included)."""

    def __init__(self, dim: int, hidden: int, kernel: int):
        super().__init__()
        layers = conv_gelu_bn(dim, hidden, 1)
        if kernel > 0:
            layers += conv_gelu_bn(hidden, hidden, kernel, groups=hidden)
        layers += [nn.Conv2d(hidden, dim, 1), nn.BatchNorm2d(dim)]
        self.body = nn.Sequential(*layers)

    def forward(self, tokens, grid, mask=None):
        return from_grid(self.body(to_grid(tokens, grid))) + tokens


def masked_norm(bn: nn.BatchNorm1d, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BatchNorm over the real tokens only ([B, N, C] with mask [B, N]); padded positions come out 0."""
    out = torch.zeros_like(x)
    out[mask] = bn(x[mask])
    return out


class LocalBranch1d(nn.Module):
    """The same path over a padded token sequence: per-token point-wise layers, a masked 1-D depth-wise conv."""

    def __init__(self, dim: int, hidden: int, kernel: int):
        super().__init__()
        self.pw1, self.bn1 = nn.Linear(dim, hidden), nn.BatchNorm1d(hidden)
        self.dw = nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2, groups=hidden) if kernel > 0 else None
        self.bn_dw = nn.BatchNorm1d(hidden) if kernel > 0 else None
        self.pw2, self.bn2 = nn.Linear(hidden, dim), nn.BatchNorm1d(dim)
        self.act = nn.GELU()

    def forward(self, tokens, grid, mask):
        m = mask.unsqueeze(-1).to(tokens.dtype)
        h = masked_norm(self.bn1, self.act(self.pw1(tokens)), mask)
        if self.dw is not None:
            h = self.dw((h * m).transpose(1, 2)).transpose(1, 2)
            h = masked_norm(self.bn_dw, self.act(h), mask)
        h = masked_norm(self.bn2, self.pw2(h), mask)
        return (h + tokens) * m


def subsample_sequence(tokens: torch.Tensor, mask: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep real tokens 0, s, 2s, … of each sequence (counted among real tokens, whatever the padding side), packed to
    the front: ``[B, N, D]`` → ``[B, K, D]`` and the new mask ``[B, K]``, K = the largest count kept."""
    rank = mask.long().cumsum(dim=1) - 1
    keep = mask & (rank % stride == 0)
    counts = keep.sum(dim=1)
    k = int(counts.max()) if counts.numel() else 0
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :k]
    packed = torch.gather(tokens, 1, order.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
    new_mask = torch.arange(k, device=mask.device)[None, :] < counts[:, None]
    return packed, new_mask


@register_head("glh")
class GlobalLocalHead(ExitHead):
    def __init__(self, layout, num_classes, exit_layer, kernel: int = 3, stride: int = 2, ratio: float = 1.0,
                 fusion: str = "sum", num_heads: int = 8, pfc: str = "subsample", distill_feature: str = "local"):
        super().__init__(layout, num_classes, exit_layer)
        for bad, problem in [(fusion not in FUSIONS, f"fusion {fusion!r} is not one of {', '.join(FUSIONS)}"),
                             (distill_feature not in ("local", "global"),
                              f"distill_feature {distill_feature!r} is not local or global"),
                             (kernel < 0 or (kernel > 0 and kernel % 2 == 0),
                              f"kernel {kernel} is not 0 (no depth-wise conv) or an odd size"),
                             (stride < 1, f"stride {stride} is below 1"), (ratio <= 0, f"ratio {ratio} is not > 0")]:
            if bad:
                raise fail(f"glh head: {problem}", "fix the method recipe's heads (see eebench/heads/glh.py)")
        reduce_tokens(torch.zeros(1, 1, 1, 1), 2, pfc)  # validate the mode early
        d = layout.width
        hidden = int(round(d * ratio))
        self.grid, self.global_stride, self.pfc, self.fusion = layout.grid, stride, pfc, fusion
        self.distill_group = distill_feature  # "local" | "global": which LGViT feature-distillation family it joins
        branch = LocalBranch1d if layout.grid is None else LocalBranch2d
        self.local = branch(d, hidden, kernel)
        self.attention = SelfAttention(d, num_heads)
        self.fuse = nn.Linear(2 * d, d) if fusion != "sum" else None
        self.classifier = FusedClassifier(layout, num_classes)
        init_like_hf(self)

    @property
    def stride(self) -> int:
        """Token stride of ``feature`` relative to the block output (what LGViT's stage-2 aligner sub-samples by)."""
        return self.global_stride if self.distill_group == "global" else 1

    @property
    def length_period(self) -> int:
        """On text the global branch attends over ⌈(L − prefix)/stride⌉ tokens: one quadratic in L per residue class
        of L modulo the stride (the patch grid's size is fixed)."""
        return self.global_stride if self.grid is None else 1

    def global_tokens(self, tokens, mask):
        if self.grid is None:
            reduced, mask = subsample_sequence(tokens, mask, self.global_stride)
            return self.attention(reduced, mask) * mask.unsqueeze(-1).to(tokens.dtype), mask  # filler rows → 0
        reduced = from_grid(reduce_tokens(to_grid(tokens, self.grid), self.global_stride, self.pfc))
        return self.attention(reduced), None

    def forward(self, hidden, mask=None):
        tokens = patch_tokens(hidden, self.layout)
        tmask = None
        if self.grid is None:
            tmask = (torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device) if mask is None
                     else mask[:, self.layout.num_prefix:].bool())
        local = self.local(tokens, self.grid, tmask)
        glob, gmask = self.global_tokens(tokens, tmask)
        p_local, p_global = self.classifier.pool(local, tmask), self.classifier.pool(glob, gmask)
        if self.fusion == "sum":
            pooled = p_local + p_global
        elif self.fusion == "concat":
            pooled = self.fuse(torch.cat([p_local, p_global], dim=-1))
        else:
            gate = torch.sigmoid(self.fuse(torch.cat([p_local, p_global], dim=-1)))
            pooled = gate * p_local + (1 - gate) * p_global
        feature = local if self.distill_group == "local" else glob
        return HeadOutput(self.classifier.classify(pooled, hidden), feature, pooled=pooled)
