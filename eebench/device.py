"""Where and in which precision a job computes: ``device: auto | cpu | cuda[:N]``, ``precision: fp32 | bf16 | fp16``
(mixed precision through autocast on CUDA; master weights stay fp32). CPU always runs fp32: bf16 autocast is ~100×
slower on the CPU machines this suite is developed on."""
from __future__ import annotations

from contextlib import nullcontext

import torch

from .errors import fail

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str | None) -> torch.device:
    name = name or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise fail(f"device {name!r} was asked for but no CUDA GPU is visible", "set training.device: auto or cpu")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise fail(f"unknown device {name!r}", "use auto, cpu or cuda[:N]") from err


def autocast(device: torch.device, precision: str | None):
    precision = precision or "fp32"
    if precision not in ("fp32", *DTYPES):
        raise fail(f"unknown precision {precision!r}", "use fp32, bf16 or fp16")
    if precision == "fp32" or device.type != "cuda":
        return nullcontext()
    return torch.autocast("cuda", dtype=DTYPES[precision])


def to_device(inputs, device: torch.device):
    """A batch's inputs on ``device``: an image tensor, or a text batch's dict of tensors."""
    if isinstance(inputs, dict):
        return {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
    return inputs.to(device, non_blocking=True)
