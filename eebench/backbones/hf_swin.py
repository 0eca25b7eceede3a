"""HF transformers Swin as 24 numbered blocks (Swin-B: 2+2+18+2), LGViT's Swin backbone (spec methods §1.1).

The final classifier is LayerNorm → mean over tokens → Linear(1024 → C), kept here rather than in HF's
``SwinForImageClassification`` so it can also read the pre-norm output. Stochastic depth follows the LGViT code's
transformers 4.26, where every block drops paths at ``drop_path_rate`` (``drop_path="uniform"``); current releases
ramp it linearly from 0 (``"linear"``).
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import fail
from .base import Backbone, Context, block_output
from .hf_vit import IMAGENET_MEAN, IMAGENET_STD
from .loading import load_hf_model
from .stages import StageMap, find_stages


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class HFSwinBackbone(Backbone):
    family = "swin"

    def __init__(self, config: Any, num_classes: int, pretrained: str | None, drop_path: str = "uniform",
                 num_hidden_layers: int | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        from transformers import SwinModel

        self.model = load_hf_model(SwinModel, config, pretrained, add_pooling_layer=False)
        cfg = self.model.config
        depths = list(cfg.depths)
        check_depth(depths, num_hidden_layers)
        self.num_layers = sum(depths)
        self.image_size = _pair(cfg.image_size)[0]
        self.mean, self.std = tuple(mean), tuple(std)
        grid = tuple(i // p for i, p in zip(_pair(cfg.image_size), _pair(cfg.patch_size)))
        widths = [int(cfg.embed_dim * 2 ** s) for s in range(len(depths))]
        self.stages = StageMap(find_stages(self.model, depths, widths, grid, merge_at="end"))
        set_drop_path(self.stages, drop_path, cfg.drop_path_rate)
        self.classifier = nn.Linear(widths[-1], num_classes)
        nn.init.normal_(self.classifier.weight, std=cfg.initializer_range)  # HF Swin init: normal(0.02), bias 0
        nn.init.zeros_(self.classifier.bias)

    def embed(self, inputs):
        hidden, _ = self.model.embeddings(inputs)
        return hidden, Context()

    def block(self, index, hidden, ctx):
        stage, j = self.stages.locate(index)
        if j == 0 and stage.merge is not None:
            hidden = stage.merge(hidden, stage.in_grid)
        return block_output(stage.blocks[j](hidden, stage.layout.grid))

    def layout(self, index):
        return self.stages.layout(index)

    def classify(self, hidden, ctx, pre_norm=False):
        h = hidden if pre_norm else self.model.layernorm(hidden)
        return self.classifier(h.mean(dim=1))

    def component_modules(self):
        return {"embed": ["model.embeddings"], **self.stages.components(), "final": ["model.layernorm", "classifier"]}


def check_depth(depths: list[int], num_hidden_layers: int | None) -> None:
    """Run plans read a preset's depth from ``num_hidden_layers`` without building it; it must match the stages."""
    if num_hidden_layers is not None and num_hidden_layers != sum(depths):
        raise fail(f"stage depths {depths} make {sum(depths)} blocks, not num_hidden_layers={num_hidden_layers}",
                   f"set backbone.num_hidden_layers: {sum(depths)} along with the depths")


def set_drop_path(stages: StageMap, mode: str, rate: float) -> None:
    from transformers.models.swin.modeling_swin import SwinDropPath

    if mode == "linear":
        return
    if mode != "uniform":
        raise fail(f"unknown drop_path mode {mode!r}", "use 'uniform' (LGViT's transformers 4.26) or 'linear'")
    for stage in stages.stages:
        for blk in stage.blocks:
            if not hasattr(blk, "drop_path"):
                raise RuntimeError(f"{type(blk).__name__} has no drop_path module to make uniform")
            blk.drop_path = SwinDropPath(rate) if rate > 0 else nn.Identity()


def swin_config(image_size: int = 224, patch_size: int = 4, num_channels: int = 3, embed_dim: int = 128,
                depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size: int = 7, drop_path_rate: float = 0.1,
                attn_implementation: str = "sdpa", **extra: Any):
    """microsoft/swin-base-patch4-window7-224's architecture (LN eps 1e-5, no dropout, drop path 0.1)."""
    from transformers import SwinConfig

    cfg = SwinConfig(image_size=image_size, patch_size=patch_size, num_channels=num_channels, embed_dim=embed_dim,
                     depths=list(depths), num_heads=list(num_heads), window_size=window_size,
                     drop_path_rate=drop_path_rate, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                     layer_norm_eps=1e-5, **extra)
    cfg._attn_implementation = attn_implementation
    return cfg
