"""Pretrained weights from a hub name or a local path; never a silent random init.

HF transformers and timm presets share the rules: ``pretrained`` None → random init (the config asked for it); a
string that looks like a path must exist; anything else is a hub name, and a hub that cannot be reached (offline) is
one error naming the weights and how to provide them locally, at once rather than after the hub client's retries
(``eebench.hub``).
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

from ..errors import EEBenchError, fail
from ..hub import hub_call

TIMM_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def local_path(pretrained: str, kind: str, holds: str) -> Path | None:
    """The local ``kind`` (folder, file) ``pretrained`` names, or None for a hub name; ``holds`` says what is valid."""
    path = Path(pretrained).expanduser()
    if not (pretrained.startswith((".", "/", "~")) or path.exists()):
        return None
    if not path.exists():
        raise fail(f"pretrained weights {kind} {pretrained!r} does not exist",
                   f"point backbone.pretrained at {holds}, or set it to false for random init")
    return path


def load_failed(pretrained: str, err: Exception, download: str, offline: bool = False) -> EEBenchError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if offline:
        first = f"the hub is offline (HF_HUB_OFFLINE set or no network) and the HF cache lacks them; {first}"
    return fail(f"could not load pretrained weights {pretrained!r} ({first})",
                f"download them once ({download}) and set backbone.pretrained to DIR, or set "
                "backbone.pretrained: false to train from random init")


def load_hf_model(model_cls: Any, config: Any, pretrained: str | None, **kwargs: Any):
    """An HF model from ``config`` (random init), a folder saved with ``save_pretrained()`` or a hub name. The keys
    the checkpoint lacked (initialised at random) are kept as ``model.eebench_missing_keys``."""
    if pretrained is None:
        model = model_cls(config, **kwargs)
        model.eebench_missing_keys = []
        return model
    path = local_path(pretrained, "folder", "a folder saved with save_pretrained()")
    offline = False
    try:
        with hub_call() if path is None else nullcontext(False) as offline:
            model, info = model_cls.from_pretrained(str(path) if path else pretrained, output_loading_info=True,
                                                    attn_implementation=config._attn_implementation, **kwargs)
        model.eebench_missing_keys = list(info.get("missing_keys", []))
        return model
    except (OSError, ValueError) as err:  # offline hub, missing files, corrupt weights
        raise load_failed(pretrained, err, f"huggingface-cli download {pretrained} --local-dir DIR", offline) from err


def load_timm_model(name: str, pretrained: str | None, eager: bool = False, **kwargs: Any):
    """``timm.create_model(name)`` with weights from a file (.safetensors/.pth), a folder holding one, or a hub id.

    ``eager`` turns fused attention off in every attention module (fvcore does not count fused SDPA), without
    touching timm's process-wide default.
    """
    import timm

    overlay = None
    if pretrained is not None:
        path = local_path(pretrained, "file or folder", "a timm weights file (.safetensors/.pth) or a folder "
                                                        f"holding {' or '.join(TIMM_WEIGHT_FILES)}")
        if path is not None and path.is_dir():
            found = [path / f for f in TIMM_WEIGHT_FILES if (path / f).exists()]
            if not found:
                raise fail(f"pretrained folder {pretrained!r} holds none of {', '.join(TIMM_WEIGHT_FILES)}",
                           "download the weights into it (hf download timm/<model>.<tag> --local-dir DIR)")
            path = found[0]
        # a file wins over the hub in timm's resolution; a hub id with no url never falls back to a raw download
        overlay = {"file": str(path)} if path else {"hf_hub_id": pretrained.removeprefix("hf-hub:"), "url": None}
    offline = False
    try:
        with hub_call() if overlay and "hf_hub_id" in overlay else nullcontext(False) as offline:
            model = timm.create_model(name, pretrained=overlay is not None, pretrained_cfg_overlay=overlay, **kwargs)
    except TypeError as err:
        raise fail(f"bad option for timm model {name!r}: {err}", "check the backbone section of the config") from err
    except (OSError, ValueError, RuntimeError) as err:  # offline hub, missing files, mismatched weights
        raise load_failed(pretrained, err, f"hf download {pretrained.removeprefix('hf-hub:')} --local-dir DIR",
                          offline) from err
    if eager:
        for module in model.modules():
            if hasattr(module, "fused_attn"):
                module.fused_attn = False
    return model
