"""The exit-head contract: built from (token layout, number of classes, exit position), returns logits and a feature.

A head is one file that subclasses ``ExitHead`` and registers itself with ``@register_head("name")``; third-party heads
register through the entry-point group ``eebench.heads``. Heads read the raw block output (before the backbone's final
norm). ``HeadOutput.feature`` is the token matrix the distillation losses compare (None where a head has none).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..backbones.base import TokenLayout
from ..errors import fail
from ..registry import Registry


@dataclass
class HeadOutput:
    logits: torch.Tensor  # [batch, classes]
    feature: torch.Tensor | None = None  # [batch, tokens, width]
    pooled: torch.Tensor | None = None  # [batch, width]: the vector BERxiT's learning-to-exit module reads


class ExitHead(nn.Module):
    # which family of LGViT's stage-2 feature distillation a head's feature joins: "local" (LPH-like, compared
    # token-wise), "global" (GAH-like, compared through Gram matrices) or None (no feature: prediction distillation only)
    distill_group: str | None = None

    def __init__(self, layout: TokenLayout, num_classes: int, exit_layer: int):
        super().__init__()
        self.layout, self.num_classes, self.exit_layer = layout, num_classes, exit_layer

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> HeadOutput:  # pragma: no cover
        raise NotImplementedError

    @property
    def length_period(self) -> int:
        """On text, a head's MACs are one quadratic in the sequence length L on each residue class of L modulo this
        period; a head that keeps every s-th token costs a different quadratic per class, and the text cost count
        (``eebench.measure.macs``) fits one per class."""
        return 1

    def adopt(self, backbone) -> None:
        """Hook run once the head sits on its backbone (e.g. DeeBERT copies the pre-trained pooler)."""


HEADS: Registry[type[ExitHead]] = Registry("heads")


def register_head(name: str):
    return HEADS.register(name)


def build_head(spec: dict[str, Any], layout: TokenLayout, num_classes: int, exit_layer: int) -> ExitHead:
    spec = dict(spec)
    head_cls = HEADS.get(spec.pop("type"))
    try:
        head = head_cls(layout, num_classes, exit_layer, **spec)
    except TypeError as err:
        from ..loaded_plugins import plugin_frame

        if plugin_frame(err) is not None:  # raised inside a plugin head's own code, not by its signature
            raise
        raise fail(f"bad options for head {head_cls.__name__} {spec}: {err}", "check the method recipe's heads") from err
    return head


def init_like_hf(module: nn.Module, std: float = 0.02) -> None:
    """Heads are absent from checkpoints, so HF's ``_init_weights`` initialises them: trunc-normal(0, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def patch_tokens(hidden: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
    return hidden[:, layout.num_prefix:]


def additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """Padding mask [B, N] (1 = real token) → [B, 1, 1, N] scores offset: 0 on real keys, dtype-min on padding."""
    return None if mask is None else (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over tokens [B, N, D] → [B, D], over real tokens only where a padding mask is given."""
    if mask is None:
        return tokens.mean(dim=1)
    m = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def to_grid(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """[B, H·W, D] (row-major) → [B, D, H, W]."""
    b, n, d = tokens.shape
    if n != grid[0] * grid[1]:
        raise ValueError(f"{n} patch tokens do not fill a {grid[0]}x{grid[1]} grid")
    return tokens.transpose(1, 2).reshape(b, d, grid[0], grid[1])


def from_grid(x: torch.Tensor) -> torch.Tensor:
    """[B, D, H, W] → [B, H·W, D]."""
    return x.flatten(2).transpose(1, 2)


def require_grid(layout: TokenLayout, head: str) -> tuple[int, int]:
    if layout.grid is None:
        raise fail(f"head {head!r} needs a patch grid, but this backbone's tokens have none (text?)",
                   "use a head that works on sequences, such as 'mlp'")
    return layout.grid


class FusedClassifier(nn.Module):
    """LGViT's exit classifier (spec methods §1.5): mean-pooled head feature fused with the block's special tokens.

    ``cls``: Linear(pooled + h_CLS); ``cls+dist``: ½[Linear_cls(pooled + h_CLS) + Linear_dist(pooled + h_DIST)];
    ``mean`` (Swin, no CLS): LayerNorm → mean over tokens → Linear. The special tokens are the raw (pre-LN) block output.
    """

    def __init__(self, layout: TokenLayout, num_classes: int):
        super().__init__()
        self.mode = layout.classifier
        d = layout.width
        if self.mode == "mean":
            self.norm = nn.LayerNorm(d, eps=1e-5)
        self.fc = nn.Linear(d, num_classes)
        self.fc_dist = nn.Linear(d, num_classes) if self.mode == "cls+dist" else None

    def mean_pooled(self, feature: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mean`` mode's pooled vector, LayerNorm → mean over (real) tokens (what BERxiT's LTE reads on Swin)."""
        return masked_mean(self.norm(feature), mask)

    def forward(self, feature: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: padding mask of ``feature``'s tokens (text), so padding never enters the mean."""
        return self.classify(self.pool(feature, mask), hidden)

    def pool(self, feature: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean over (real) tokens, after the LayerNorm in ``mean`` mode (Swin)."""
        return self.mean_pooled(feature, mask) if self.mode == "mean" else masked_mean(feature, mask)

    def classify(self, pooled: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Pooled feature (+ the raw special tokens, §1.5) → logits."""
        if self.mode == "mean":
            return self.fc(pooled)
        logits = self.fc(pooled + hidden[:, 0])
        if self.fc_dist is not None:
            logits = (logits + self.fc_dist(pooled + hidden[:, 1])) / 2
        return logits
