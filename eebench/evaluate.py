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
from .checkpoint_shape import apply_recorded_shape
from .device import autocast, effective_precision, resolve_device, to_device
from .data import load_dataset
from .errors import fail
from .io import atomic_path, load_torch


@torch.no_grad()
def exit_logits(model, data, batch_size: int,
                precision: str | None = None, lengths: list | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """[rows, N, C] logits of the evaluation split, its [N] labels in the same order, and [exits, N]
    learning-to-exit outputs where the model has that module. Text batches also append each sample's real
    (unpadded) token count to ``lengths``: text MACs are charged per sample from it. In a distributed job each rank
    computes every world-th batch and all ranks get the results gathered back in dataset order."""
    from .training.distributed import gather_in_order, my_batches

    model.eval()
    device = next(model.parameters()).device
    parts = []
    for i, (xb, yb) in my_batches(data.eval_batches(model.backbone, batch_size)):
        with autocast(device, precision):
            out = model(to_device(xb, device))
        n = xb["attention_mask"].sum(1) if isinstance(xb, dict) else None
        parts.append((i, (out.stacked().float().cpu(), yb,
                          None if out.lte_outputs is None else out.lte_outputs.float().cpu(), n)))
    logits, labels, lte, lens = (list(c) for c in zip(*gather_in_order(parts))) if parts else ([], [], [], [])
    if lengths is not None:
        lengths.extend(n for n in lens if n is not None)
    return (torch.cat(logits, dim=1), torch.cat(labels),
            torch.cat(lte, dim=1) if lte and lte[0] is not None else None)


def evaluate_checkpoint(checkpoint: str | Path, out: str | Path, batch_size: int = 256, threads: int = 1) -> dict:
    torch.set_num_threads(threads)
    ckpt = load_torch(checkpoint)
    job: dict[str, Any] = ckpt["job"]
    data = load_dataset(job["dataset"])
    model = build_model(job["backbone"], job["method"], data.num_classes)
    apply_recorded_shape(model, ckpt, f"checkpoint {checkpoint}")  # a width-pruned model (COST-EFF)
    model.load_state_dict(ckpt["model"])
    device = resolve_device(job.get("device"))
    model.to(device)
    return write_cache(model, data, out, batch_size, effective_precision(job, device))


def write_cache(model, data, out: str | Path, batch_size: int = 256, precision: str | None = None,
                write: bool = True) -> dict:
    """Evaluate ``model`` once on the evaluation split and store every exit's logits (atomically; only when
    ``write``: the other ranks of a distributed job compute their share and leave the file to rank 0)."""
    lengths: list = []
    logits, labels, lte = exit_logits(model, data, batch_size, precision, lengths)
    extra = {} if lte is None else {"lte_outputs": lte.numpy()}
    if lengths:  # text: per-sample token counts and the task's metric (absent for images: caches stay as they were)
        extra.update(lengths=torch.cat(lengths).numpy(), metric=np.array(data.metric))
    acc = (logits.argmax(-1) == labels).float().mean(dim=1)
    if not write:
        return {"row_layers": model.row_layers, "row_accuracy": acc.tolist()}
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:  # np.savez would append .npz to a temp name
            np.savez(fh, logits=logits.numpy(), labels=labels.numpy(),
                     row_layers=np.array(model.row_layers), num_layers=model.backbone.num_layers, **extra)
    return {"row_layers": model.row_layers, "row_accuracy": acc.tolist()}


def load_cache(path: str | Path) -> dict[str, Any]:
    try:
        with np.load(path) as z:
            return {"logits": torch.from_numpy(z["logits"]), "labels": torch.from_numpy(z["labels"]),
                    "row_layers": z["row_layers"].tolist(), "num_layers": int(z["num_layers"]),
                    "extra": {k: torch.from_numpy(z[k]) for k in ("lte_outputs",) if k in z},
                    "lengths": torch.from_numpy(z["lengths"]) if "lengths" in z else None,
                    "metric": str(z["metric"]) if "metric" in z else "accuracy"}
    except FileNotFoundError as err:
        raise fail(f"exit-logit cache {path} does not exist", "run the evaluate step first") from err
    except (ValueError, KeyError, OSError) as err:
        raise fail(f"exit-logit cache {path} is corrupt ({err})", "delete it and rerun the evaluate step") from err
