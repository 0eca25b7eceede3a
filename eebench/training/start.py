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
