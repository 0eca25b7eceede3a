"""The fast CUDA paths for batch-1 early exit, scheduled by ``pipeline``: every segment of ``segments`` as one CUDA
graph (``GraphSegments``: schedules ``sync``/``overlap``), or the whole image as one CUDA graph with the exit checks
as conditional IF nodes (``GraphConditional``: schedule ``conditional``). UNMEASURED: written on a machine without
a GPU; nothing in this module has run on CUDA yet (the schedules, checks, segment functions and the conditional
program are tested on CPU through the eager runners; ``workflow/scripts/latency_gpu.py`` is the script that
measures these paths).

Why: at batch 1 a ViT-B block is a few dozen tiny kernels, so eager PyTorch is bound by kernel-launch and Python
overhead; graph replays remove it. What is left is the exit check between segments, which ``GraphedExits`` makes
cheap in three ways (``pipeline`` has the details of the schedules):

* ``decide="device"`` (default): the policy runs inside each segment's graph on a device ``RowBuffer``; the host
  copies one packed vector (pinned memory, ``non_blocking``) and reads one flag. A policy's Python parameters
  (thresholds, patience) are baked into the captured kernels, so the chain is captured per (model, policy) and
  cached by policy identity. A policy that cannot be captured (data-dependent shapes, host reads of device values)
  fails with one line pointing to ``decide="host"``: the logits go to the host and the policy runs there.
* ``schedule="overlap"`` (default): segment k+1 is enqueued before the host waits for segment k's event, so the GPU
  does not idle during checks; an exit at k wastes segment k+1 (``executed`` counts it). ``"sync"`` waits first.
* ``schedule="conditional"`` (``decide="device"`` only): ``conditional.program`` captured as ONE graph, segment
  k >= 1 inside an IF node on the device flag ``go`` (CUDA >= 12.4 conditional nodes, exposed by torch as
  ``CUDAGraph.begin_capture_to_if_node``): one replay, one pinned copy and one sync per image, no wasted segment and
  no host round trip per exit. Where this torch lacks the API, or the capture fails, it fails with one line pointing
  to ``overlap``/``sync``.

The device decision adds the policy's kernels (a few dozen tiny ones, on all rows) to every segment, overlap spends
a wasted segment per image, and conditional pays a condition-setting kernel per later exit (and whatever the driver
charges to evaluate IF nodes): which combination wins is what the benchmark script measures.

Capture rules followed here: one side stream for warm-up and capture; one memory pool per chain, its graphs
replayed in capture order (each image restarts at segment 0, and a graph only reads what earlier graphs of the same
image wrote, or static tensors allocated before capture); the chain object keeps every captured hidden state and
output vector alive; the device buffer is reset inside segment 0's graph; pinned host vectors and events are
allocated once per chain; host→device constants a policy builds from Python numbers (``torch.tensor(thresholds,
device=...)``, which is not capturable) are made during warm-up and copied on the device during capture
(``DeviceConstants``). For the conditional graph, in addition: warm-up runs every body (so every segment's kernels
and constants are seen, whatever the flags); ``go`` and ``answer`` are allocated before capture; ``go`` is written
on the capture stream (segment 0) or inside the previous body, so the node's condition kernel, enqueued behind it
by ``begin_capture_to_if_node``, reads the right value; inside a body, torch makes a fresh capturing stream current,
so the body's kernels (and ``DeviceConstants``' device-side copies, a thread-local mode unaffected by the stream)
land in the body graph; the body's hidden state and vector are kept on the chain; bodies contain kernels and
device-to-device copies only (no events, no host copies, no RNG: the model is in eval mode); the capture stream
comes from torch's high-priority stream pool, because torch takes each body's stream from the normal-priority pool,
which can hand back a pool stream that is still capturing the parent graph (pytorch/pytorch#185836).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from ..errors import EEBenchError, fail
from ..model import MultiExitModel
from ..policies import Policy
from .conditional import ConditionalChain, always, program
from .pipeline import StagedExits
from .segments import SegmentChain


def require_cuda(example: torch.Tensor) -> None:
    if not torch.cuda.is_available() or not torch.is_tensor(example) or example.device.type != "cuda":
        raise fail("CUDA graphs need a CUDA GPU and an input on it", "use --mode eager (or run on a GPU machine)")


def _warm_up(fn: Callable[[], object], iters: int, stream: torch.cuda.Stream) -> None:
    """Run eagerly on the capture's side stream first (lazy init, cuBLAS workspaces, autotuning), as capture needs."""
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(iters):
            fn()
    torch.cuda.current_stream().wait_stream(stream)


class DeviceConstants(TorchFunctionMode):
    """Makes ``torch.tensor``/``torch.as_tensor`` of Python data on ``device`` capturable. Recording (warm-up): each
    such constant is made as usual and a copy is kept. Serving (``serving = True``, capture): the same call returns a
    device-side copy of the kept constant, with no host→device transfer. A constant first seen while serving
    fails (its values would differ from warm-up, so the policy is not a pure function of its inputs)."""

    def __init__(self, device: torch.device | str):
        super().__init__()
        self.device_type = torch.device(device).type
        self.serving = False
        self.kept: dict[tuple, torch.Tensor] = {}  # _constant_key → the constant as warm-up made it

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in (torch.tensor, torch.as_tensor) or not args or torch.is_tensor(args[0]):
            return func(*args, **kwargs)
        named = dict(kwargs)
        device = named.pop("device", None)
        if device is None or torch.device(device).type != self.device_type:
            return func(*args, **kwargs)
        key = _constant_key(args[0], named)
        if not self.serving:
            value = func(*args, **kwargs)
            self.kept.setdefault(key, value.detach().clone())
            return value
        if key not in self.kept:
            raise fail(f"the policy built a device constant from {repr(args[0])[:60]} during capture but not during "
                       "warm-up", "make the policy a pure function of its inputs")
        return self.kept[key].clone()


def _constant_key(data: Any, named: dict[str, Any]) -> tuple:
    """Identity of a constant from the Python data it is built from (no tensor op: nothing to capture or sync)."""
    raw = (str(data.dtype), data.shape, data.tobytes()) if hasattr(data, "tobytes") else repr(data)
    return raw, tuple(sorted((k, repr(v)) for k, v in named.items()))


class GraphedForward:
    """``fn(x)`` captured as one CUDA graph for ``example``'s shape and dtype (the plain backbone's full forward)."""

    @torch.no_grad()
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], example: torch.Tensor, warmup: int = 3):
        require_cuda(example)
        self.static_input = example.detach().clone()
        stream = torch.cuda.Stream()
        _warm_up(lambda: fn(self.static_input), warmup, stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=stream):
            self.static_output = fn(self.static_input)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the static output tensor: read (or clone) it before the next call."""
        self.static_input.copy_(x)
        self.graph.replay()
        return self.static_output


class GraphSegments:
    """A chain's segments as CUDA graphs: ``launch`` = replay + copy of the vector to pinned memory + event;
    ``result`` = wait for that event."""

    @torch.no_grad()
    def __init__(self, chain: SegmentChain, warmup: int, stream: torch.cuda.Stream):
        self.chain, self.rows = chain, chain.rows  # the chain keeps the captured hidden states and buffer alive
        self.constants = constants = DeviceConstants(chain.static_input.device)  # graphs read its kept tensors
        with constants:
            _warm_up(lambda: [chain(k) for k in range(chain.rows)], warmup, stream)
        constants.serving = True
        pool = torch.cuda.graph_pool_handle()  # one pool per chain: a segment's output stays alive as the next input
        self.graphs: list[torch.cuda.CUDAGraph] = []
        self.vectors: list[torch.Tensor] = []  # static outputs, alive as long as the graphs
        current = torch.cuda.current_stream()
        try:
            with constants:
                for k in range(chain.rows):
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph, pool=pool, stream=stream):
                        vector = chain(k)
                    self.graphs.append(graph)
                    self.vectors.append(vector)
        except Exception as error:  # a failed capture can leave the side stream current
            torch.cuda.set_stream(current)
            if chain.policy is None:
                raise
            raise capture_failure(chain.policy, error) from error
        self.host = [torch.empty(v.shape, dtype=v.dtype, pin_memory=True) for v in self.vectors]
        self.events = [torch.cuda.Event() for _ in self.vectors]

    def load(self, x: torch.Tensor) -> None:
        self.chain.static_input.copy_(x)

    def launch(self, k: int) -> None:
        self.graphs[k].replay()
        self.host[k].copy_(self.vectors[k], non_blocking=True)  # the one device→host copy per segment
        self.events[k].record()

    def result(self, k: int) -> torch.Tensor:
        self.events[k].synchronize()
        return self.host[k]


def _root_line(error: BaseException) -> str:
    """``Type: first line`` of the innermost cause of ``error`` (what went wrong, without the CUDA stack dump)."""
    root = error
    while (root.__cause__ or root.__context__) is not None:
        root = root.__cause__ or root.__context__
    return f"{type(root).__name__}: {(str(root).strip().splitlines() or [''])[0]}"


def capture_failure(policy: Policy, error: BaseException) -> EEBenchError:
    """The one-line error for a policy whose decision could not be captured on the device."""
    name = getattr(policy, "name", type(policy).__name__)
    return fail(f"policy {name!r} could not be captured in a CUDA graph with its decision on the device "
                f"({_root_line(error)})", 'use decide="host" (the policy then runs on the host)')


def require_if_nodes() -> None:
    """Fails (one line) where this torch cannot capture CUDA-graph IF nodes."""
    if not hasattr(torch.cuda.CUDAGraph, "begin_capture_to_if_node"):
        raise fail(f"torch {torch.__version__} has no CUDA-graph conditional nodes "
                   "(CUDAGraph.begin_capture_to_if_node), which schedule \"conditional\" needs",
                   'use schedule "overlap" or "sync" (or a torch that has them, built with CUDA >= 12.4)')


def conditional_failure(error: BaseException) -> EEBenchError:
    """The one-line error for a conditional graph that could not be captured or replayed."""
    return fail(f"the early-exit program could not be captured as one CUDA graph with IF nodes ({_root_line(error)})",
                'use schedule "overlap" or "sync" (with decide="host" if the policy itself cannot be captured)')


def if_node(graph: torch.cuda.CUDAGraph) -> Callable[[torch.Tensor, Callable[[], object]], None]:
    """``when(pred, body)`` for ``conditional.program`` during ``graph``'s capture: ``body`` is captured into the body
    graph of an IF node on ``pred`` (a bool scalar on the device, written earlier on the capture stream or in an
    earlier body). The node is closed even when the body raises, so the capture can end and report the error."""

    def when(pred: torch.Tensor, body: Callable[[], object]) -> None:
        graph.begin_capture_to_if_node(pred)
        try:
            body()
        finally:
            graph.end_capture_to_conditional_node()

    return when


class GraphConditional:
    """A conditional chain's program as ONE CUDA graph: ``run`` = replay + copy of ``answer`` to pinned memory +
    one sync."""

    @torch.no_grad()
    def __init__(self, cond: ConditionalChain, warmup: int, stream: torch.cuda.Stream):
        require_cuda(cond.chain.static_input)
        require_if_nodes()
        self.cond = cond  # keeps go, answer, the hidden states and every body's vector alive
        self.constants = constants = DeviceConstants(cond.chain.static_input.device)  # the graph reads its tensors
        with constants:
            _warm_up(lambda: program(cond, always), warmup, stream)
        constants.serving = True
        self.graph = torch.cuda.CUDAGraph()
        current = torch.cuda.current_stream()
        try:
            with constants, torch.cuda.graph(self.graph, pool=torch.cuda.graph_pool_handle(), stream=stream):
                program(cond, if_node(self.graph))
            self.graph.replay()  # once here, so a graph the driver refuses to launch fails here, in one line
            torch.cuda.current_stream().synchronize()
        except Exception as error:  # a failed capture can leave the side stream current
            torch.cuda.set_stream(current)
            raise conditional_failure(error) from error
        self.host = torch.empty(cond.answer.shape, dtype=cond.answer.dtype, pin_memory=True)

    def load(self, x: torch.Tensor) -> None:
        self.cond.chain.static_input.copy_(x)

    def run(self) -> torch.Tensor:
        self.graph.replay()
        self.host.copy_(self.cond.answer, non_blocking=True)  # the one device→host copy per image
        torch.cuda.current_stream().synchronize()
        return self.host


class GraphedExits(StagedExits):
    """Batch-1 early exit with CUDA graphs (``example``: one input of the shape and dtype to serve): one graph per
    segment (``sync``/``overlap``) or one graph per image (``conditional``). ``exits(x, policy)`` → ``Decision``
    (CPU tensors); ``schedule`` may be overridden per call, and ``executed`` is the number of segments the last call
    ran. Graphs are captured on a policy's first call under a schedule kind (``decide="device"``) or on the first
    call at all (``"host"``)."""

    def __init__(self, model: MultiExitModel, example: torch.Tensor, warmup: int = 3, schedule: str = "overlap",
                 decide: str = "device"):
        require_cuda(example)
        super().__init__(model, example, schedule=schedule, decide=decide)
        if schedule == "conditional":
            require_if_nodes()
        self.warmup = warmup
        self.stream = torch.cuda.Stream()
        self.conditional_stream = torch.cuda.Stream(priority=-1)  # not the pool IF bodies draw from (see above)

    def runner(self, chain: SegmentChain) -> Any:
        return GraphSegments(chain, self.warmup, self.stream)

    def conditional_runner(self, cond: ConditionalChain) -> Any:
        return GraphConditional(cond, self.warmup, self.conditional_stream)
