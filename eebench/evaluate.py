"""Evaluate once, keep everything: the logits of EVERY exit for EVERY test sample (the exit-logit cache).

Every policy is causal in the exits (spec baselines §1), so replaying a policy on these logits gives exactly the
decisions of live early-exit inference, for every threshold, at no further cost.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .build import build_model
from .data import batches, load_dataset
from .errors import fail
from .io import atomic_path, load_torch


@torch.no_grad()
def exit_logits(model, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[rows, N, C] logits, and [exits, N] learning-to-exit outputs where the model has that module."""
    model.eval()
    logits, lte = [], []
    for xb, _ in batches(x, y, batch_size, model.backbone.mean, model.backbone.std):
        out = model(xb)
        logits.append(out.stacked())
        lte.append(out.lte_outputs)
    return torch.cat(logits, dim=1), (torch.cat(lte, dim=1) if lte and lte[0] is not None else None)


def evaluate_checkpoint(checkpoint: str | Path, out: str | Path, batch_size: int = 256, threads: int = 1) -> dict:
    torch.set_num_threads(threads)
    ckpt = load_torch(checkpoint)
    job: dict[str, Any] = ckpt["job"]
    data = load_dataset(job["dataset"])
    model = build_model(job["backbone"], job["method"], data.num_classes)
    model.load_state_dict(ckpt["model"])
    logits, lte = exit_logits(model, data.x_test, data.y_test, batch_size)
    extra = {} if lte is None else {"lte_outputs": lte.numpy()}
    acc = (logits.argmax(-1) == data.y_test).float().mean(dim=1)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:  # np.savez would append .npz to a temp name
            np.savez(fh, logits=logits.numpy(), labels=data.y_test.numpy(),
                     row_layers=np.array(model.row_layers), num_layers=model.backbone.num_layers, **extra)
    return {"row_layers": model.row_layers, "row_accuracy": acc.tolist()}


def load_cache(path: str | Path) -> dict[str, Any]:
    try:
        with np.load(path) as z:
            return {"logits": torch.from_numpy(z["logits"]), "labels": torch.from_numpy(z["labels"]),
                    "row_layers": z["row_layers"].tolist(), "num_layers": int(z["num_layers"]),
                    "extra": {k: torch.from_numpy(z[k]) for k in ("lte_outputs",) if k in z}}
    except FileNotFoundError as err:
        raise fail(f"exit-logit cache {path} does not exist", "run the evaluate step first") from err
    except (ValueError, KeyError, OSError) as err:
        raise fail(f"exit-logit cache {path} is corrupt ({err})", "delete it and rerun the evaluate step") from err
