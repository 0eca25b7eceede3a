"""timm ViT and DeiT-distilled as numbered blocks, for cross-checking the HF adapters' costs against timm's models.

timm has no public "embed only" call, so ``embed`` repeats the head of ``forward_features`` (patch embedding, prefix
tokens + position embedding, patch dropout, pre-norm); the final norm and timm's own classifier head(s) do the rest
(DeiT-distilled: CLS and DIST heads averaged, as in timm's inference path).
"""
from __future__ import annotations

from typing import Any

from ..errors import fail
from .base import Backbone, Context, TokenLayout
from .hf_vit import IMAGENET_MEAN, IMAGENET_STD
from .loading import load_timm_model


class TimmViTBackbone(Backbone):
    def __init__(self, name: str, num_classes: int, pretrained: str | None, attn_implementation: str = "sdpa",
                 image_size: int | None = None, num_hidden_layers: int | None = None, mean=IMAGENET_MEAN,
                 std=IMAGENET_STD, **model_kwargs: Any):
        super().__init__()
        model_kwargs.update({k: v for k, v in (("img_size", image_size), ("depth", num_hidden_layers)) if v})
        self.model = load_timm_model(name, pretrained, eager=attn_implementation == "eager", num_classes=num_classes,
                                     **model_kwargs)
        m = self.model
        distilled = getattr(m, "dist_token", None) is not None
        if m.cls_token is None or m.global_pool != "token" or getattr(m, "reg_token", None) is not None:
            raise fail(f"timm model {name!r} does not classify from its CLS token",
                       "use a ViT/DeiT with a class token and global_pool='token'")
        self.family = "deit" if distilled else "vit"
        self.num_layers = len(m.blocks)
        self.image_size = m.patch_embed.img_size[0]
        self.num_channels = m.patch_embed.proj.in_channels
        self.mean, self.std = tuple(mean), tuple(std)
        self._layout = TokenLayout(m.embed_dim, ("cls", "dist") if distilled else ("cls",),
                                   tuple(m.patch_embed.grid_size), "cls+dist" if distilled else "cls",
                                   num_heads=m.blocks[0].attn.num_heads)

    def embed(self, inputs):
        m = self.model
        return m.norm_pre(m.patch_drop(m._pos_embed(m.patch_embed(inputs)))), Context()

    def block(self, index, hidden, ctx):
        return self.model.blocks[index - 1](hidden)

    def layout(self, index):
        return self._layout

    def classify(self, hidden, ctx, pre_norm=False):
        return self.model.forward_head(hidden if pre_norm else self.model.norm(hidden))

    def component_modules(self):
        # the prefix tokens and position table are bare parameters of the timm model, not modules
        distilled = self.family == "deit"
        return {"embed": ["model.patch_embed", "model.cls_token", "model.pos_embed"]
                + (["model.dist_token"] if distilled else []),
                **{f"block{i}": [f"model.blocks.{i - 1}"] for i in range(1, self.num_layers + 1)},
                "final": ["model.norm", "model.fc_norm", "model.head"] + (["model.head_dist"] if distilled else [])}
