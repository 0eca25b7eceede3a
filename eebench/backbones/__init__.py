"""Backbone presets: ``build_backbone(name, num_classes, pretrained=..., **overrides)``.

Paper presets default to their hub checkpoint (offline: a clear error, see ``loading``); tiny presets are random-init
models sized for the embedded CPU run. ``pretrained: false`` in a config asks for random init explicitly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import fail
from ..registry import Registry
from .base import Backbone, Context, TokenLayout  # noqa: F401
from .hf_vit import HFViTBackbone, vit_config


@dataclass
class Preset:
    build: Callable[..., Backbone]
    description: str
    pretrained: str | None = None  # default weights (hub name); None = random init
    defaults: dict[str, Any] = field(default_factory=dict)


BACKBONES: Registry[Preset] = Registry("backbones")

DIGITS = dict(image_size=8, patch_size=2, num_channels=1, hidden_size=128, num_hidden_layers=6, num_attention_heads=4,
              mean=(0.5,), std=(0.5,))


def _hf_vit(kind: str, classifier: str):
    def build(num_classes: int, pretrained: str | None, attn_implementation: str = "sdpa", mean=None, std=None,
              **cfg: Any) -> Backbone:
        extra = {k: v for k, v in (("mean", mean), ("std", std)) if v is not None}
        return HFViTBackbone(kind, vit_config(kind, attn_implementation=attn_implementation, **cfg), num_classes,
                             classifier, pretrained, **extra)

    return build


for _name, _kind, _clf, _weights, _defaults, _desc in [
    ("vit_b16", "vit", "cls", "google/vit-base-patch16-224", {}, "ViT-B/16 at 224, 197 tokens (true ViT layout)"),
    ("deit_b", "deit", "cls+dist", "facebook/deit-base-distilled-patch16-224", {},
     "DeiT-B distilled at 224, 198 tokens, CLS and DIST classifiers averaged"),
    ("vit_lgvit_v0", "deit", "cls", "facebook/deit-base-distilled-patch16-224", {},
     "LGViT's 'ViT-B/16': the DeiT-distilled network (198 tokens) read through its CLS classifier (spec methods §0)"),
    ("vit_tiny_digits", "vit", "cls", None, DIGITS, "tiny ViT for 8x8 digits: d128, 6 blocks, 4 heads, patch 2"),
    ("deit_tiny_digits", "deit", "cls+dist", None, DIGITS, "tiny DeiT (CLS+DIST) for 8x8 digits"),
]:
    BACKBONES.register(_name)(Preset(_hf_vit(_kind, _clf), _desc, _weights, _defaults))


def build_backbone(name: str, num_classes: int, pretrained: str | bool | None = True,
                   attn_implementation: str = "sdpa", **overrides: Any) -> Backbone:
    """``pretrained``: True → the preset's default weights, False/None → random init, str → hub name or local path."""
    preset = BACKBONES.get(name)
    if pretrained is True:
        weights = preset.pretrained
    elif pretrained in (False, None):
        weights = None
    else:
        weights = str(pretrained)
    kwargs = {**preset.defaults, **overrides}
    try:
        return preset.build(num_classes, weights, attn_implementation=attn_implementation, **kwargs)
    except TypeError as err:
        raise fail(f"bad option for backbone {name!r}: {err}", "check the backbone section of the config") from err
