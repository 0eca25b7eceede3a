"""The fast CUDA path for batch-1 early exit: one CUDA graph per segment. UNMEASURED: written on a machine without a
GPU; nothing here has been run on CUDA yet (``workflow/scripts/latency_gpu.py`` is the script that measures it).

Why: at batch 1 a ViT-B block is a few dozen tiny kernels, so eager PyTorch is bound by kernel-launch and Python
overhead. Each segment (row r of ``rows.run_row``: the blocks between two exits plus that exit's head; the embedding
joins row 0) is captured once for a fixed input shape and replayed as one launch. After each segment the exit's logits
(and its LTE output) are copied to the host in ONE small copy, and the same policy code decides on the CPU. The eager
path (``live.early_exit``, decision computed on the device, "as in the paper") stays for comparison.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import fail
from ..model import MultiExitModel
from ..policies import Decision, Policy
from .causal import RowBuffer
from .rows import run_row


def require_cuda(example: torch.Tensor) -> None:
    if not torch.cuda.is_available() or example.device.type != "cuda":
        raise fail("CUDA graphs need a CUDA GPU and an input on it", "use --mode eager (or run on a GPU machine)")


def _warm_up(fn: Callable[[], object], iters: int) -> None:
    """Run eagerly on a side stream first (lazy init, cuBLAS/cuDNN autotuning), as graph capture requires."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(iters):
            fn()
    torch.cuda.current_stream().wait_stream(stream)


class GraphedForward:
    """``fn(x)`` captured as one CUDA graph for ``example``'s shape and dtype (the plain backbone's full forward)."""

    @torch.no_grad()
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], example: torch.Tensor, warmup: int = 3):
        require_cuda(example)
        self.static_input = example.detach().clone()
        _warm_up(lambda: fn(self.static_input), warmup)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_output = fn(self.static_input)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the static output tensor: read (or clone) it before the next call."""
        self.static_input.copy_(x)
        self.graph.replay()
        return self.static_output


class GraphedExits:
    """Batch-1 early exit, one CUDA graph per row (``example``: one input of the shape and dtype to serve)."""

    @torch.no_grad()
    def __init__(self, model: MultiExitModel, example: torch.Tensor, warmup: int = 3):
        require_cuda(example)
        if example.shape[0] != 1:
            raise fail(f"GraphedExits got an example batch of {example.shape[0]}", "capture with one sample ([1, ...])")
        self.model, self.rows = model.eval(), len(model.row_layers)
        self.static_input = example.detach().clone()
        _warm_up(self._eager_chain, warmup)
        pool = torch.cuda.graph_pool_handle()  # one pool: a segment's output stays alive as the next one's input
        self.graphs, self.exit_vectors = [], []
        hidden = ctx = None
        for row in range(self.rows):
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                if row == 0:
                    hidden, ctx = model.backbone.embed(self.static_input)
                out = run_row(model, row, hidden, ctx)
                vector = _exit_vector(out.logits, out.lte)
            hidden = out.hidden
            self.graphs.append(graph)
            self.exit_vectors.append(vector)
        self.classes = model.num_classes
        self.host = [torch.empty(v.shape, dtype=v.dtype, pin_memory=True) for v in self.exit_vectors]

    def _eager_chain(self) -> None:
        hidden, ctx = self.model.backbone.embed(self.static_input)
        for row in range(self.rows):
            hidden = run_row(self.model, row, hidden, ctx).hidden

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, policy: Policy) -> Decision:
        self.static_input.copy_(x)
        buffer = RowBuffer(self.rows, 1, self.classes, "cpu", lte=self.model.lte is not None)
        for row, graph in enumerate(self.graphs):
            graph.replay()
            host = self.host[row]
            host.copy_(self.exit_vectors[row], non_blocking=True)  # the one device→host copy per exit
            torch.cuda.current_stream().synchronize()
            lte = host[:, self.classes] if host.shape[-1] > self.classes else None
            buffer.put(row, host[:, :self.classes], lte)
            decision, settled = buffer.decide(policy, row)
            if bool(settled[0]):
                return decision
        raise fail("the policy left the sample unsettled after the last row", "a policy's compute_index must be a row")


def _exit_vector(logits: torch.Tensor, lte: torch.Tensor | None) -> torch.Tensor:
    """What the host needs to decide, in one fp32 tensor: the logits, then the LTE output if any."""
    vector = logits.float()
    return vector if lte is None else torch.cat([vector, lte.float().unsqueeze(-1)], dim=-1)
