"""Pretrained weights from a hub name or a local folder; never a silent random init."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import fail


def load_hf_model(model_cls: Any, config: Any, pretrained: str | None, **kwargs: Any):
    """``pretrained`` None → random init (the config asked for it); else a local folder or a hub name."""
    if pretrained is None:
        return model_cls(config, **kwargs)
    looks_local = pretrained.startswith((".", "/", "~")) or Path(pretrained).expanduser().exists()
    if looks_local and not Path(pretrained).expanduser().exists():
        raise fail(f"pretrained weights folder {pretrained!r} does not exist",
                   "point backbone.pretrained at a folder saved with save_pretrained(), or set it to false for random init")
    try:
        return model_cls.from_pretrained(str(Path(pretrained).expanduser()) if looks_local else pretrained,
                                         attn_implementation=config._attn_implementation, **kwargs)
    except (OSError, ValueError) as err:  # offline hub, missing files, corrupt weights
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise fail(f"could not load pretrained weights {pretrained!r} ({first})",
                   "download them once (huggingface-cli download NAME --local-dir DIR) and set backbone.pretrained "
                   "to DIR, or set backbone.pretrained: false to train from random init") from err
