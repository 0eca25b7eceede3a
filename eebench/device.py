"""Where and in which precision a job computes: ``device: auto | cpu | cuda[:N]``; ``precision: fp32 | bf16 | fp16``
is the autocast dtype on CUDA (master weights stay fp32) and ``cpu_precision: fp32 | bf16`` the one on CPU.
They are separate because bf16 on a CPU pays only for matrices large enough and on cores with native bf16
arithmetic (AVX512-BF16 or AMX): about 2× faster for MiniLM-L6 there, but slower for the embedded run's d96 ViT, and
~100× slower where the CPU emulates it. A CPU without native bf16 runs fp32 and the job's provenance says so."""
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


def cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def effective_precision(job: dict, device: torch.device) -> str:
    """The autocast dtype a job computes in on ``device``: ``precision`` on CUDA, ``cpu_precision`` on a CPU that has
    native bf16 arithmetic, else fp32."""
    if device.type == "cuda":
        return job.get("precision") or "fp32"
    wanted = job.get("cpu_precision") or "fp32"
    if wanted not in ("fp32", "bf16"):
        raise fail(f"unknown cpu_precision {wanted!r}", "use fp32 or bf16")
    if wanted == "bf16" and not cpu_has_native_bf16():
        print("cpu_precision bf16: this CPU has no native bf16 arithmetic; training in fp32", flush=True)
        return "fp32"
    return wanted


def autocast(device: torch.device, precision: str | None):
    """Autocast to ``precision`` as returned by :func:`effective_precision` (fp32: none)."""
    precision = precision or "fp32"
    if precision not in ("fp32", *DTYPES):
        raise fail(f"unknown precision {precision!r}", "use fp32, bf16 or fp16")
    if precision == "fp32":
        return nullcontext()
    if device.type != "cuda":
        return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    return torch.autocast("cuda", dtype=DTYPES[precision])


def to_device(inputs, device: torch.device):
    """A batch's inputs on ``device``: an image tensor, or a text batch's dict of tensors."""
    if isinstance(inputs, dict):
        return {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
    return inputs.to(device, non_blocking=True)
