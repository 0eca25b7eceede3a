"""Data-parallel training over N processes (one per device), launched by ``torchrun``.

How a DDP job stays equal to the one-process job with the same global batch:
- every rank draws the SAME global batches from the same seeded generator (today's sampler, unchanged) and keeps
  its contiguous share of each (``shard``): the order depends only on the seed, so a resumed run, which restores the
  generator, replays exactly, and the global batch size stays ``batch_size`` whatever the world size; the other
  generators (dropout's) do drift apart between ranks, so the resume file keeps each rank's (``eebench.rng``);
- the local mean loss is scaled by ``local / global`` samples × world size, so DDP's gradient average is the gradient
  of the global-batch mean even for a ragged last batch; the learning rate is therefore unchanged;
- checkpoints are written by rank 0 only (atomically, ``eebench.io``), the others wait at a barrier;
- evaluation batches are split round-robin over ranks and gathered back in dataset order.

The launcher: ``eebench train --nproc N`` re-executes itself under ``torchrun --standalone --nproc-per-node N``
(one node); torchrun sets RANK / WORLD_SIZE / LOCAL_RANK, read by ``init``. CUDA ranks use NCCL, CPU ranks gloo.
"""
from __future__ import annotations

import os
import shutil
import sys
from typing import Any, Iterable

import torch


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def active() -> bool:
    import torch.distributed as dist

    return world_size() > 1 and dist.is_available() and dist.is_initialized()


def init(device: torch.device) -> torch.device:
    """Join the process group torchrun describes (no-op for one process); each CUDA rank takes its local GPU."""
    if world_size() <= 1:
        return device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def backend() -> str:
    import torch.distributed as dist

    return str(dist.get_backend()) if active() else "none"


def shutdown() -> None:
    if active():
        import torch.distributed as dist

        dist.destroy_process_group()  # no barrier: after an error on one rank the others must not wait


def barrier() -> None:
    if active():
        import torch.distributed as dist

        dist.barrier()


def shard(x: Any, y: torch.Tensor) -> tuple[Any, torch.Tensor, float]:
    """This rank's contiguous share of one global batch (a tensor, or a dict of tensors for text), and the factor
    its mean loss is scaled by."""
    if not active():
        return x, y, 1.0
    n, w, r = len(y), world_size(), rank()
    bounds = [n * i // w for i in range(w + 1)]
    lo, hi = bounds[r], bounds[r + 1]
    part = {k: v[lo:hi] for k, v in x.items()} if isinstance(x, dict) else x[lo:hi]
    return part, y[lo:hi], (hi - lo) * w / n


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP over ``module`` when distributed (unused parameters allowed: frozen branches, teacher-only paths)."""
    if not active():
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)


def sum_all(values: list[float]) -> list[float]:
    """Element-wise sum over ranks (epoch statistics)."""
    if not active():
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def all_gather(obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order, on every rank (a list of one in a single process)."""
    if not active():
        return [obj]
    import torch.distributed as dist

    everything: list[Any] = [None] * world_size()
    dist.all_gather_object(everything, obj)
    return everything


def my_batches(batches: Iterable[Any]) -> Iterable[tuple[int, Any]]:
    """(index, batch) of the evaluation batches this rank computes: every ``world``-th, from its rank."""
    w, r = (world_size(), rank()) if active() else (1, 0)
    for i, batch in enumerate(batches):
        if i % w == r:
            yield i, batch


def gather_in_order(parts: list[tuple[int, Any]]) -> list[Any]:
    """Every rank's (index, result) pairs → all results in index (dataset) order, on every rank."""
    return [p for _, p in sorted((p for rank_parts in all_gather(parts) for p in rank_parts), key=lambda p: p[0])]


def relaunch(nproc: int, argv: list[str]) -> None:
    """Re-execute this command under torchrun with ``nproc`` ranks on this node (never returns)."""
    from ..errors import fail

    argv = list(argv)
    for i, arg in enumerate(argv):  # the ranks must not relaunch (and torchrun would take --nproc for its own)
        if arg.startswith("--nproc"):
            del argv[i:i + (1 if "=" in arg else 2)]
            break
    torchrun = shutil.which("torchrun")
    cmd = ([torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"])
    cmd += ["--standalone", f"--nproc-per-node={nproc}", "-m", "eebench.cli", *argv]
    try:
        os.execv(cmd[0], cmd)
    except OSError as err:
        raise fail(f"cannot start torchrun for {nproc} ranks ({err})", "install torch with torch.distributed") from err
