"""timm Swin as numbered blocks (cross-check of the HF Swin adapter).

timm's Swin runs channels-last ``[B, H, W, C]`` and applies each patch merging at the *start* of a stage; the adapter
hands heads ``[B, H·W, C]`` like every backbone and shares the stage bookkeeping with the HF adapter (``stages``).
"""
from __future__ import annotations

from typing import Any

from .base import Backbone, Context
from .hf_swin import check_depth
from .hf_vit import IMAGENET_MEAN, IMAGENET_STD
from .loading import load_timm_model
from .stages import StageMap, find_stages


class TimmSwinBackbone(Backbone):
    family = "swin"

    def __init__(self, name: str, num_classes: int, pretrained: str | None, attn_implementation: str = "sdpa",
                 image_size: int | None = None, num_hidden_layers: int | None = None, mean=IMAGENET_MEAN,
                 std=IMAGENET_STD, **model_kwargs: Any):
        super().__init__()
        if image_size:
            model_kwargs["img_size"] = image_size
        self.model = load_timm_model(name, pretrained, eager=attn_implementation == "eager", num_classes=num_classes,
                                     **model_kwargs)
        m = self.model
        depths = [len(stage.blocks) for stage in m.layers]
        check_depth(depths, num_hidden_layers)
        self.num_layers = sum(depths)
        self.image_size = m.patch_embed.img_size[0]
        self.num_channels = m.patch_embed.proj.in_channels
        self.mean, self.std = tuple(mean), tuple(std)
        widths = [info["num_chs"] for info in m.feature_info]
        self.stages = StageMap(find_stages(m, depths, widths, tuple(m.patch_embed.grid_size), merge_at="start"))

    def embed(self, inputs):
        return self.model.patch_embed(inputs).flatten(1, 2), Context()

    def block(self, index, hidden, ctx):
        stage, j = self.stages.locate(index)
        x = hidden.unflatten(1, stage.in_grid if j == 0 else stage.layout.grid)
        if j == 0 and stage.merge is not None:
            x = stage.merge(x)
        return stage.blocks[j](x).flatten(1, 2)

    def layout(self, index):
        return self.stages.layout(index)

    def classify(self, hidden, ctx, pre_norm=False):
        x = hidden.unflatten(1, self.stages.stages[-1].layout.grid)
        return self.model.forward_head(x if pre_norm else self.model.norm(x))

    def component_modules(self):
        return {"embed": ["model.patch_embed"], **self.stages.components(), "final": ["model.norm", "model.head"]}
