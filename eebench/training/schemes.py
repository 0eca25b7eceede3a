"""Named training schemes as stage lists — the rows of LGViT's Tables 4 and 6 (spec methods §2.2, §3).

A method recipe spells its own stages; ablations swap them for one of these by name (``scheme: weighted``), which is
how the same heads are compared under every scheme. ``two_stage`` is LGViT's (stage 1 alternating with weights, stage
2 self-distillation on the frozen backbone); the others are the LGViT port's one-stage joint schemes; ``progressive*`` are EEformer's three stages (reconstructed).
"""
from __future__ import annotations

import copy

from ..errors import fail

SCHEMES: dict[str, list[dict]] = {
    "normal": [{"name": "train", "loss": "normal"}],
    "weighted": [{"name": "train", "loss": "weighted", "loss_params": {"schedule": "static"}}],
    "distillation": [{"name": "train", "loss": "distillation"}],
    "alternating": [{"name": "train", "loss": "alternating", "loss_params": {"reduce": "mean", "parity": "global"}}],
    "two_stage": [{"name": "stage1", "loss": "alternating_weighted"},
                  {"name": "stage2", "loss": "lgvit_distillation", "train": "heads", "init": "stage1",
                   "loss_params": {"alpha": 0.01, "beta": 0.01, "gamma": 0.3, "temperature": 2.0}}],
}
# EEformer's progressive fine-tuning, reconstructed (spec methods §6): LGViT's two stages, then joint fine-tuning of
# everything at a tenth of the learning rate, distilling every exit from a frozen copy of the stage-2 model. The
# variants are the other readings the abstract allows: stage 3 as exit calibration only (heads train, backbone
# frozen), or the joint stage before the frozen-backbone one.
_STAGE3 = {"name": "stage3", "loss": "progressive_distillation", "train": "all", "init": "stage2", "lr_scale": 0.1,
           "loss_params": {"gamma": 0.5, "temperature": 2.0}}
SCHEMES["progressive"] = SCHEMES["two_stage"] + [_STAGE3]
SCHEMES["progressive_calibration"] = SCHEMES["two_stage"] + [{**_STAGE3, "train": "heads"}]
SCHEMES["progressive_swapped"] = [SCHEMES["two_stage"][0], {**_STAGE3, "name": "joint", "init": "stage1"},
                                  {**SCHEMES["two_stage"][1], "name": "frozen", "init": "joint"}]
TITLES = {"normal": "Normal", "weighted": "Weighted", "distillation": "Distillation", "alternating": "Alternating",
          "two_stage": "Ours (two-stage)", "progressive": "Progressive (three-stage)",
          "progressive_calibration": "Progressive, stage 3 = calibration", "progressive_swapped": "Progressive, swapped"}


def scheme_stages(name: str) -> list[dict]:
    if name not in SCHEMES:
        raise fail(f"unknown training scheme {name!r}", f"choose one of: {', '.join(SCHEMES)}")
    return copy.deepcopy(SCHEMES[name])
