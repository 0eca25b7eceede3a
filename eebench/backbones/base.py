"""The backbone-adapter contract.

A backbone is seen as ``embed → block 1 … block L → final norm + classifier``. Blocks are numbered from 1 and
flattened across stages (Swin), and every block says what its output looks like (a ``TokenLayout``), because exit
heads read the raw block output and must know where the prefix tokens and the patch grid are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class TokenLayout:
    """What one block output ``[batch, tokens, width]`` holds.

    ``prefix`` names the special tokens in front (``("cls",)``, ``("cls", "dist")``, or ``()`` for Swin); ``grid`` is
    the row-major patch grid ``(H, W)`` of the remaining tokens, or ``None`` for text (a padded sequence with a mask);
    ``classifier`` is how an exit turns pooled features into logits on this backbone: ``"cls"`` (one classifier on the
    CLS-fused feature), ``"cls+dist"`` (DeiT: CLS and DIST classifiers averaged) or ``"mean"`` (Swin: LN → mean → fc).
    """

    width: int
    prefix: tuple[str, ...]
    grid: tuple[int, int] | None
    classifier: str
    # the backbone's attention-head count at this block (the ``attention`` exit copies it, as LGViT's does);
    # None where a backbone does not say
    num_heads: int | None = None

    @property
    def num_prefix(self) -> int:
        return len(self.prefix)

    @property
    def num_tokens(self) -> int | None:
        return None if self.grid is None else self.num_prefix + self.grid[0] * self.grid[1]


@dataclass
class Context:
    """Per-batch state that blocks and heads may need beyond the hidden states (text: the padding mask)."""

    mask: torch.Tensor | None = None  # [batch, tokens], 1 = real token
    block_kwargs: dict[str, Any] = field(default_factory=dict)


class Backbone(nn.Module):
    """Base class of every adapter. Subclasses set ``num_layers``, ``mean``/``std`` and implement the methods."""

    num_layers: int
    family: str  # vit | deit | swin | bert
    image_size: int | None = None
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def embed(self, inputs: torch.Tensor | dict[str, torch.Tensor]) -> tuple[torch.Tensor, Context]:
        raise NotImplementedError

    def block(self, index: int, hidden: torch.Tensor, ctx: Context) -> torch.Tensor:
        """Run block ``index`` (1-based)."""
        raise NotImplementedError

    def layout(self, index: int) -> TokenLayout:
        """Layout of the output of block ``index`` (1-based)."""
        raise NotImplementedError

    def classify(self, hidden: torch.Tensor, ctx: Context, pre_norm: bool = False) -> torch.Tensor:
        """Final norm + classifier on the last block's output. ``pre_norm`` skips the norm (LGViT's teacher quirk)."""
        raise NotImplementedError

    def pooler_dense(self) -> nn.Linear | None:
        """The backbone's own pooler projection (HF models keep one), for heads that start from a copy of it."""
        return None

    def drop_classifier(self) -> None:
        """Remove the backbone's own final pooler and classifier (a method brings its own final head)."""
        from ..errors import fail

        raise fail(f"the {self.family} backbone cannot drop its final classifier", "use a BERT-family backbone")

    def drop_padding(self, hidden: torch.Tensor, ctx: Context) -> tuple[torch.Tensor, Context]:
        """The token positions some sample of the batch still uses (text: after the samples that exited left a
        batch padded to its longest, the rest need no longer be padded to it); no padding (images): unchanged."""
        return hidden, ctx

    def component_modules(self) -> dict[str, list[str]]:
        """Component name (``embed``, ``block1``…, ``final``) → submodule names, for per-component cost counting."""
        raise NotImplementedError

    def forward(self, inputs):  # plain full-depth forward
        hidden, ctx = self.embed(inputs)
        for i in range(1, self.num_layers + 1):
            hidden = self.block(i, hidden, ctx)
        return self.classify(hidden, ctx)


def find_blocks(model: nn.Module, num_layers: int) -> tuple[str, nn.ModuleList]:
    """Locate the list of encoder blocks through the model's public structure.

    Module names moved between transformers releases (``encoder.layer`` → ``layers``), so instead of a fixed path this
    takes the shallowest ``ModuleList`` holding exactly ``num_layers`` modules.
    """
    candidates = [(name, mod) for name, mod in model.named_modules()
                  if isinstance(mod, nn.ModuleList) and len(mod) == num_layers]
    if not candidates:
        raise RuntimeError(f"no list of {num_layers} blocks found in {type(model).__name__}")
    return min(candidates, key=lambda item: item[0].count("."))


def block_output(out: Any) -> torch.Tensor:
    """HF blocks return a tensor in recent releases and a tuple in older ones."""
    return out[0] if isinstance(out, (tuple, list)) else out
