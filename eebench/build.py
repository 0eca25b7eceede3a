"""Job spec → model. One place turns the JSON a DAG job carries into modules, so training, evaluation, costs and
latency all build the same thing."""
from __future__ import annotations

from typing import Any

from .backbones import build_backbone
from .errors import fail
from .model import MultiExitModel


def backbone_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    bb = dict(spec)
    bb.pop("name")
    return bb


def build_model(backbone: dict[str, Any], method: dict[str, Any], num_classes: int, pretrained: bool | None = None,
                attn_implementation: str | None = None) -> MultiExitModel:
    """``pretrained``/``attn_implementation`` override the spec (costs use random init and eager attention)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise fail(f"number of classes {num_classes!r} is not a positive integer",
                   "pass the data set's class count (e.g. --num-classes 100 for CIFAR-100)")
    from .plugins import load_recorded

    load_recorded(method.get("plugins"))  # a user head's file, as the run plan recorded it
    kw = backbone_kwargs(backbone)
    if pretrained is not None:
        kw["pretrained"] = pretrained
    if attn_implementation is not None:
        kw["attn_implementation"] = attn_implementation
    bb = build_backbone(backbone["name"], num_classes, **kw)
    return MultiExitModel(bb, method["exit_layers"], method["heads"], num_classes, lte=method.get("lte", False))
