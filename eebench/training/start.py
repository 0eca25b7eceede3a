"""How every stage runner starts (the loop and any stage kind of ``runners``): the seeds, the spec hash that keys its
resume file, the checkpoint it starts from and the teacher its loss distils from."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from ..checkpoint_shape import apply_recorded_shape
from ..errors import fail
from ..io import load_torch


def resume_file(out: str | Path) -> Path:
    """The per-epoch resume state of the stage whose checkpoint is ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def seed_everything(seed: int) -> torch.Generator:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def load_init(model, path) -> None:
    """Start from a previous stage — of this method, or of another one whose model lacks some of these heads (e.g.
    DeeBERT's stage 2 on the fine-tuned backbone): heads absent from the checkpoint keep their fresh init. A
    width-pruned checkpoint first rebuilds its recorded shape (COST-EFF's recovery stages)."""
    ckpt = load_torch(path)
    apply_recorded_shape(model, ckpt, f"checkpoint {path}")
    missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
    backbone_missing = [k for k in missing if k.startswith("backbone.")]
    if unexpected or backbone_missing:
        raise fail(f"checkpoint {path} does not fit this model ({len(backbone_missing)} backbone weights missing, "
                   f"{len(unexpected)} unexpected)", "init a stage only from a stage of the same backbone")


def attach_teacher(loss_fn, teacher, device):
    """Losses that distil from another stage's model (COST-EFF) get it, loaded from the checkpoint ``teacher`` (or
    already loaded), frozen. Returns the teacher model (None where the loss needs none)."""
    if not getattr(loss_fn, "needs_teacher_model", False):
        return None
    if not teacher:
        raise fail(f"loss {loss_fn.name!r} distils from a teacher, but the stage names none",
                   "add teacher: <stage> (or <method>:<stage>) to the stage in the recipe")
    if isinstance(teacher, (str, Path)):
        from ..build import load_model

        teacher = load_model(teacher).to(device)
    loss_fn.attach_teacher(teacher)
    return teacher


FROZEN_BACKBONE_MODES = ("train", "eval")


def frozen_backbone_mode(stage: dict[str, Any]) -> str:
    """How a stage that trains only the heads runs its frozen backbone. ``train`` (the default): the whole model in
    train mode, the backbone under no_grad, as LGViT's official stage 2 does (spec methods §3.3; its ViT/DeiT
    backbones have no dropout, so the mode changes nothing there) and DeeBERT's stage 2. ``eval``: the backbone
    without dropout, so the heads and the teacher logits they distil from read the features the model answers with
    at inference rather than a noised copy (BERT's dropout 0.1; EEformer's text stage 2)."""
    mode = stage.get("frozen_backbone_mode", "train")
    if mode not in FROZEN_BACKBONE_MODES:
        raise fail(f"stage option frozen_backbone_mode={mode!r} is not valid", "use train or eval")
    if mode == "eval" and stage.get("train", "all") != "heads":
        raise fail(f"stage option frozen_backbone_mode=eval on stage {stage.get('name')!r}, which trains its backbone "
                   f"(train: {stage.get('train', 'all')})", "set it only on a stage with train: heads")
    return mode
