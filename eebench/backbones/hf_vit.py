"""HF transformers ViT and DeiT as numbered blocks.

One adapter serves three token layouts: the true ViT-B/16 (197 tokens, CLS classifier), DeiT-B distilled (198 tokens,
CLS and DIST classifiers averaged) and LGViT's "ViT" (the DeiT-distilled network read through its CLS classifier only,
spec methods §0). The classifiers live here, not in HF's ``*ForImageClassification`` heads, so the same adapter builds
every layout and the final classifier can also be applied to the pre-norm output (LGViT stage-2 teacher quirk).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import fail
from .base import Backbone, Context, TokenLayout, block_output, find_blocks
from .loading import load_hf_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class HFViTBackbone(Backbone):
    """``kind`` = ``vit`` (HF ViTModel) or ``deit`` (HF DeiTModel, CLS + DIST tokens); ``classifier`` = ``cls`` or ``cls+dist``."""

    def __init__(self, kind: str, config: Any, num_classes: int, classifier: str, pretrained: str | None,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        from transformers import DeiTModel, ViTModel

        model_cls = {"vit": ViTModel, "deit": DeiTModel}[kind]
        self.family = kind
        self.model = load_hf_model(model_cls, config, pretrained, add_pooling_layer=True)
        self.pretrained = pretrained
        # ViT and DeiT checkpoints store no pooler: HF then initialises it at random
        self.pooler_random = pretrained is not None and any(
            k.startswith("pooler.") for k in getattr(self.model, "eebench_missing_keys", []))
        cfg = self.model.config
        self.num_layers = cfg.num_hidden_layers
        self.image_size = cfg.image_size
        self.mean, self.std = tuple(mean), tuple(std)
        self.blocks_name, self.blocks = find_blocks(self.model, self.num_layers)
        side = cfg.image_size // cfg.patch_size
        prefix = ("cls", "dist") if kind == "deit" else ("cls",)
        self._layout = TokenLayout(width=cfg.hidden_size, prefix=prefix, grid=(side, side), classifier=classifier,
                                   num_heads=cfg.num_attention_heads)
        self.classifier = nn.Linear(cfg.hidden_size, num_classes)
        self.dist_classifier = nn.Linear(cfg.hidden_size, num_classes) if classifier == "cls+dist" else None
        for lin in filter(None, (self.classifier, self.dist_classifier)):  # HF init: trunc-normal(0.02), bias 0
            nn.init.trunc_normal_(lin.weight, std=cfg.initializer_range)
            nn.init.zeros_(lin.bias)

    def embed(self, inputs):
        return self.model.embeddings(inputs), Context()

    def block(self, index, hidden, ctx):
        return block_output(self.blocks[index - 1](hidden))

    def layout(self, index):
        return self._layout

    def classify(self, hidden, ctx, pre_norm=False):
        h = hidden if pre_norm else self.model.layernorm(hidden)
        logits = self.classifier(h[:, 0])
        if self.dist_classifier is not None:
            logits = (logits + self.dist_classifier(h[:, 1])) / 2
        return logits

    def pooler_dense(self):
        if self.pooler_random:
            raise fail(f"copy_pooler: checkpoint {self.pretrained!r} has no pooler weights (ViT and DeiT checkpoints "
                       "store none), so every exit would copy a random pooler",
                       "set copy_pooler: false (the LGViT port's randomly initialised exit pooler), or load a "
                       "checkpoint whose pooler was trained")
        pooler = getattr(self.model, "pooler", None)
        return getattr(pooler, "dense", None)

    def component_modules(self):
        comps = {"embed": ["model.embeddings"]}
        for i in range(1, self.num_layers + 1):
            comps[f"block{i}"] = [f"model.{self.blocks_name}.{i - 1}"]
        comps["final"] = ["model.layernorm", "classifier"] + (["dist_classifier"] if self.dist_classifier else [])
        return comps


def vit_config(kind: str, image_size: int = 224, patch_size: int = 16, num_channels: int = 3, hidden_size: int = 768,
               num_hidden_layers: int = 12, num_attention_heads: int = 12, intermediate_size: int | None = None,
               attn_implementation: str = "sdpa", **extra: Any):
    """An HF config for ``kind``; LGViT's backbones have no dropout and LayerNorm eps 1e-12 (spec methods §1.1)."""
    from transformers import DeiTConfig, ViTConfig

    cfg_cls = {"vit": ViTConfig, "deit": DeiTConfig}[kind]
    cfg = cfg_cls(image_size=image_size, patch_size=patch_size, num_channels=num_channels, hidden_size=hidden_size,
                  num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                  intermediate_size=intermediate_size or 4 * hidden_size, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12, **extra)
    cfg._attn_implementation = attn_implementation
    assert image_size % patch_size == 0 and math.isqrt((image_size // patch_size) ** 2)
    return cfg
