"""Resume state of COST-EFF's pruning stage, so a killed stage continues across pruning events to the bits of an
uninterrupted one.

It is written (atomically, plain data: ``eebench.io``) at every epoch end and right after every pruning event — an
event costs a Taylor pass over the training set, so a kill never repeats one — and holds the weights at their pruned
shape (``shape_of``, rebuilt with ``apply_shape`` before the weights load), the events done (the rest are pending),
the optimiser and LR schedule of the current period (each event starts fresh ones), the global step, the position in
the epoch, the data generator and every global RNG.

An event falls between fetching a batch and training on it, mid-epoch. A text epoch draws its whole order from the
data generator when its first batch is fetched (``length_buckets``), so the position is (epoch, batches trained,
the generator's state at the epoch's start): replaying the epoch from that state and skipping the trained batches
yields the same batch in hand, after which the generator takes its saved state (the Taylor resample's draws
included).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import torch

from .. import rng
from ..io import load_torch
from .prune import is_pruned, shape_of


def capture(key: str, model, losses, opt, lr_sched, gen: torch.Generator, done: list, step: int, log: list,
            epoch: int, batch: int | None = None, epoch_generator: torch.Tensor | None = None,
            sums: tuple[float, int] = (0.0, 0)) -> dict[str, Any]:
    """The stage's state. ``batch``: None at an epoch boundary (``epoch`` is the next to run); else ``batch`` batches
    of epoch ``epoch`` are trained and the next is in hand, ``epoch_generator`` the generator at the epoch's start and
    ``sums`` its (loss × samples, samples) so far."""
    return {"spec_hash": key, "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "shape": shape_of(model) if is_pruned(model) else None,
            "losses": [fn.state_dict() for fn in losses], "optimizer": opt.state_dict(),
            "scheduler": lr_sched.state_dict(), "events": list(done), "step": step, "log": list(log),
            "epoch": epoch, "batch": batch, "epoch_generator": epoch_generator, "sums": list(sums),
            "generator": gen.get_state(), "rng": rng.capture()}


def read(path, key: str) -> dict[str, Any] | None:
    """The saved state of this very job (same spec hash), or None."""
    if not path.exists():
        return None
    state = load_torch(path)
    return state if isinstance(state, dict) and state.get("spec_hash") == key else None


def restore_model(model, state: dict[str, Any]) -> None:
    if state["shape"] is not None:
        from .prune import apply_shape

        apply_shape(model, state["shape"], "the resume file")
    model.load_state_dict(state["model"])


def replay_epoch(make_batches: Callable[[], Iterable], gen: torch.Generator, state: dict[str, Any]) -> Iterator:
    """The rest of the epoch a mid-epoch ``state`` stopped in, from the batch that was in hand."""
    gen.set_state(state["epoch_generator"])
    batches = iter(make_batches())
    for _ in range(state["batch"]):
        next(batches)
    in_hand = next(batches, None)  # fetching the first batch draws the epoch's order
    gen.set_state(state["generator"])
    if in_hand is not None:
        yield in_hand
    yield from batches
