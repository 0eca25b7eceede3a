"""The check that live early exit and the offline sweeps agree: the policy at the timed operating point replayed on
the exit-logit cache (``results/<run>/logits/<method>/seed<s>/<stage>.npz``) of the timed queries, against the exit
row and prediction the live run gave each of them in every timed pass.

Where they differ, the live logits and the cached ones led the policy to different sides of its threshold: the
cache was computed in batches (text: padded; possibly under the training job's autocast precision) and the live run
one query at a time in the latency dtype, so a query whose score sits within rounding of the threshold can flip.
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import fail
from ..policies import Decision, Policy


def offline_decisions(cache: dict[str, Any], policy: Policy, cache_index: torch.Tensor,
                      row_layers: list[int]) -> Decision:
    """``policy.decide`` on the cached rows of the samples ``cache_index``."""
    if list(cache["row_layers"]) != list(row_layers):
        raise fail(f"the exit-logit cache has rows after blocks {cache['row_layers']}, the timed model {row_layers}",
                   "rerun the evaluate step of this checkpoint (the cache is from another model)")
    count = cache["logits"].shape[1]
    if len(cache_index) and int(cache_index.max()) >= count:
        raise fail(f"the exit-logit cache holds {count} samples, the timed queries reach sample "
                   f"{int(cache_index.max()) + 1}", "rerun the evaluate step on the same dataset")
    extra = {k: v[:, cache_index] for k, v in cache.get("extra", {}).items()}
    return policy.decide(cache["logits"][:, cache_index], **extra)


def same_predictions(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per sample: equal classes, or regression values within 1e-4 (the cache and a live run round differently)."""
    if a.is_floating_point() or b.is_floating_point():
        return torch.isclose(a.double(), b.double(), rtol=1e-4, atol=1e-4)
    return a == b


def agreement(passes: list[tuple[torch.Tensor, torch.Tensor]], reference: Decision) -> dict[str, int]:
    """``passes``: (exit rows, predictions) of every timed pass → how many queries had the reference's exit row, its
    prediction, and both, in every pass."""
    exit_ok = torch.ones(len(reference.exit_index), dtype=torch.bool)
    pred_ok = exit_ok.clone()
    for rows, preds in passes:
        exit_ok &= rows.cpu() == reference.exit_index.cpu()
        pred_ok &= same_predictions(preds.cpu(), reference.prediction.cpu())
    return {"matched": int((exit_ok & pred_ok).sum()), "total": len(exit_ok), "exit_row": int(exit_ok.sum()),
            "prediction": int(pred_ok.sum())}
