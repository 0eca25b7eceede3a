"""``MultiExitModel``: a backbone with exit heads after some of its blocks.

Rows of every output follow evaluation order: one row per internal exit (by depth), then the backbone's own final
classifier as the last row. ``row_layers`` gives the 1-based block after which each row answers.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from .backbones.base import Backbone
from .errors import fail
from .heads import build_head


@dataclass
class MultiExitOutput:
    exit_logits: list[torch.Tensor]  # one [B, C] per internal exit, by depth
    final_logits: torch.Tensor  # [B, C]
    features: list[torch.Tensor | None] = field(default_factory=list)
    lte_outputs: torch.Tensor | None = None  # [exits, B]: BERxiT's learning-to-exit output ("probability wrong")
    last_hidden: torch.Tensor | None = None  # raw output of the last block (pre-norm)
    teacher_logits: torch.Tensor | None = None  # final classifier on the pre-norm output (LGViT quirk)
    references: dict[int, torch.Tensor] = field(default_factory=dict)  # block → raw output (stage-2 references)
    mask: torch.Tensor | None = None  # [B, N] padding mask of the input tokens (text), None on images
    hidden_states: list[torch.Tensor] | None = None  # embedding output, then every block's (``with_hidden``)

    def stacked(self) -> torch.Tensor:
        """[rows, B, C]: the layout every policy consumes."""
        return torch.stack([*self.exit_logits, self.final_logits])


class MultiExitModel(nn.Module):
    def __init__(self, backbone: Backbone, exit_layers: Sequence[int], head_specs: Sequence[dict[str, Any]],
                 num_classes: int, lte: bool = False, final_head: dict[str, Any] | None = None,
                 gradient_equilibrium: bool = False):
        """``final_head``: a head spec that replaces the backbone's own final classifier (COST-EFF's tanh-CLS one; the
        backbone's pooler and classifier are then dropped, not left unused). ``gradient_equilibrium``: COST-EFF's
        backward re-scaling at every exit (``eebench.slender.equilibrium``)."""
        super().__init__()
        exit_layers = list(exit_layers)
        if len(exit_layers) != len(head_specs):
            raise fail(f"{len(exit_layers)} exit positions but {len(head_specs)} head specs",
                       "give one head per exit position")
        if exit_layers != sorted(set(exit_layers)) or any(not 1 <= p <= backbone.num_layers for p in exit_layers):
            raise fail(f"exit positions {exit_layers} are not increasing blocks in 1..{backbone.num_layers}",
                       "list each block after which an exit sits once, in order")
        self.backbone = backbone
        self.exit_layers = exit_layers
        self.num_classes = num_classes
        self.heads = nn.ModuleList(build_head(spec, backbone.layout(p), num_classes, p)
                                   for p, spec in zip(exit_layers, head_specs))
        self._head_at = {p: i for i, p in enumerate(exit_layers)}
        # LGViT stage 2's reference of an exit: the deepest block of the exit's own width (the last block on ViT/DeiT;
        # on Swin, the end of the exit's stage — spec methods §3.4: a head distils from a teacher of its own width)
        self.reference_layers = {w: max(i for i in range(1, backbone.num_layers + 1) if backbone.layout(i).width == w)
                                 for w in {backbone.layout(p).width for p in exit_layers}}
        for head in self.heads:
            head.adopt(backbone)
        self.final_head = None
        if final_head:
            self.final_head = build_head(final_head, backbone.layout(backbone.num_layers), num_classes,
                                         backbone.num_layers)
            backbone.drop_classifier()
        self.gradient_equilibrium = bool(gradient_equilibrium)
        # BERxiT's learning-to-exit module: one Linear(width → 1) + sigmoid shared by every exit. Swin's exits come in
        # up to three widths (256/512/1024 on Swin-B): one module per width, shared by the exits of that width
        # (``lte`` is the first exit's, ``lte_by_width`` the others', so one-width models keep their parameters)
        self._exit_widths = [backbone.layout(p).width for p in exit_layers]
        widths = list(dict.fromkeys(self._exit_widths))
        self.lte = nn.Linear(widths[0], 1) if lte and exit_layers else None
        self.lte_by_width = nn.ModuleDict({str(w): nn.Linear(w, 1) for w in widths[1:]} if self.lte else {})

    @property
    def row_layers(self) -> list[int]:
        return [*self.exit_layers, self.backbone.num_layers]

    def forward(self, inputs, frozen_backbone: bool = False, with_teacher: bool = False,
                with_hidden: bool = False) -> MultiExitOutput:
        """Full-depth pass evaluating every head. ``frozen_backbone`` runs the backbone without autograd (stage 2);
        ``with_hidden`` also returns the embedding output and every block's (hidden-state distillation)."""
        from .slender.equilibrium import equilibrium_split

        grad = torch.no_grad() if frozen_backbone else nullcontext()
        with grad:
            hidden, ctx = self.backbone.embed(inputs)
        num_layers = self.backbone.num_layers
        states = [hidden] if with_hidden else None
        exit_logits, features, pooled, references = [], [], [], {}
        keep = set(self.reference_layers.values()) if with_teacher else set()
        for i in range(1, num_layers + 1):
            with grad:
                hidden = self.backbone.block(i, hidden, ctx)
            if i in keep:
                references[i] = hidden
            exit_in = hidden
            if (i in self._head_at and self.gradient_equilibrium and i < num_layers
                    and not frozen_backbone):
                exit_in, hidden = equilibrium_split(hidden, i, num_layers)
            if states is not None:
                # The state after the 1/(L−i) rescale, as the official code appends it to all_hidden_states: the
                # block's own hidden-state loss is then equilibrated like its exit's loss (same forward value).
                states.append(exit_in)
            if i in self._head_at:
                self._exit(i, exit_in, ctx.mask, exit_logits, features, pooled)
        if self.final_head is not None:
            final = self.final_head(hidden, ctx.mask).logits
            teacher = final if with_teacher else None
        else:
            with grad:
                final = self.backbone.classify(hidden, ctx)
                teacher = self.backbone.classify(hidden, ctx, pre_norm=True) if with_teacher else None
        return MultiExitOutput(exit_logits, final, features=features, last_hidden=hidden, teacher_logits=teacher,
                               lte_outputs=self._lte(pooled), references=references, mask=ctx.mask,
                               hidden_states=states)

    def forward_frozen(self, exit_states: dict[int, torch.Tensor], mask: torch.Tensor | None,
                       final_logits: torch.Tensor) -> MultiExitOutput:
        """The heads on block outputs a frozen backbone produced earlier (``eebench.training.features``): the same
        head, logit check and learning-to-exit code as :meth:`forward`, with the backbone's final logits as given.
        Only the block outputs at the exit positions are needed; there is no last hidden state or teacher."""
        if self.final_head is not None:
            raise fail("cached block outputs serve a model whose final classifier is the backbone's",
                       "train this method's stages without the feature cache")
        exit_logits, features, pooled = [], [], []
        for i in self.exit_layers:
            self._exit(i, exit_states[i], mask, exit_logits, features, pooled)
        return MultiExitOutput(exit_logits, final_logits, features=features, lte_outputs=self._lte(pooled),
                               mask=mask)

    def _exit(self, layer: int, hidden: torch.Tensor, mask, exit_logits: list, features: list, pooled: list) -> None:
        out = self.heads[self._head_at[layer]](hidden, mask)
        check_logits(out.logits, self.num_classes, layer)
        exit_logits.append(out.logits)
        features.append(out.feature)
        pooled.append(out.pooled)

    def _lte(self, pooled: list) -> torch.Tensor | None:
        if self.lte is None:
            return None
        if any(p is None for p in pooled):
            raise fail("the learning-to-exit module needs heads that return a pooled vector",
                       "use 'mlp' or 'linear' heads")
        return torch.sigmoid(torch.stack([self.lte_for(w)(p) for w, p in zip(self._exit_widths, pooled)])).squeeze(-1)

    def lte_for(self, width: int) -> nn.Linear:
        """The learning-to-exit module of exits ``width`` wide."""
        return self.lte if width == self.lte.in_features else self.lte_by_width[str(width)]

    def head_parameters(self):
        """Everything that is not the backbone: exit heads and the learning-to-exit module."""
        return [p for name, p in self.named_parameters() if not name.startswith("backbone.")]


def check_logits(logits: torch.Tensor, num_classes: int, layer: int) -> None:
    if logits.dim() != 2 or logits.shape[1] != num_classes:
        raise fail(f"the exit head after block {layer} returned shape {tuple(logits.shape)}",
                   f"an exit head must return logits of shape [batch, {num_classes}]")


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
