"""Job spec → model. One place turns the JSON a DAG job carries into modules, so training, evaluation, costs and
latency all build the same thing."""
from __future__ import annotations

from typing import Any

from .backbones import build_backbone
from .checkpoint_shape import apply_recorded_shape
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
    return MultiExitModel(bb, method["exit_layers"], method["heads"], num_classes, lte=method.get("lte", False),
                          final_head=method.get("final_head"),
                          gradient_equilibrium=method.get("gradient_equilibrium", False))


def load_model(checkpoint, device: str | None = None, attn_implementation: str | None = None) -> MultiExitModel:
    """The model a training checkpoint holds (its architecture from the job it records, pruned width included)."""
    from .data import num_classes_of
    from .io import load_torch

    ckpt = load_torch(checkpoint)
    if not isinstance(ckpt, dict) or "job" not in ckpt or "model" not in ckpt:
        raise fail(f"checkpoint {checkpoint} holds no training job", "delete it and rerun the stage that writes it")
    job = ckpt["job"]
    model = build_model(job["backbone"], job["method"], num_classes_of(job["dataset"]), pretrained=False,
                        attn_implementation=attn_implementation)
    apply_recorded_shape(model, ckpt, f"checkpoint {checkpoint}")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise fail(f"checkpoint {checkpoint} does not fit the model its job describes "
                   f"({str(err).splitlines()[0][:160]})", "delete it and rerun the stage that writes it") from err
    return model.to(device) if device else model
