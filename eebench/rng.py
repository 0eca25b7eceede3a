"""Every random generator a training step draws from, as plain data, so that a resumed stage replays the exact
draws an uninterrupted one makes (dropout reads torch's global generator; augmentation may read numpy's or Python's).

A data-parallel job keeps one set per rank: the ranks start from the same seed but do not stay equal. Dropout over a
ragged last shard of a global batch (25 rows on one rank, 26 on the other) draws a different amount, and each CUDA
rank advances only its own device's generator. Restoring rank 0's set on every rank would give the others draws they
never made in the uninterrupted run.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)},
            "python": {"version": version, "internal": list(internal), "gauss": gauss}}


def restore(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))


def capture_ranks() -> list[dict[str, Any]]:
    """``capture()`` of every rank, in rank order, on every rank (a list of one in a single process)."""
    from .training import distributed as dist

    return dist.all_gather(capture())


def restore_rank(saved: list[dict[str, Any]] | dict[str, Any]) -> bool:
    """Restore this rank's entry of ``capture_ranks()``. A single state (a resume file written before states were
    kept per rank) or a list from another number of ranks cannot replay every rank's draws: each rank then gets the
    first state, and the answer is False (the run continues, but not bit for bit)."""
    from .training import distributed as dist

    states = [saved] if isinstance(saved, dict) else list(saved)
    exact = len(states) == dist.world_size()
    restore(states[dist.rank()] if exact else states[0])
    return exact
