"""The ``onnxruntime`` runtime: the model's pieces as ONNX graphs run by onnxruntime ``InferenceSession``s on the CPU,
behind the runtime seam (``runtime``), so Table 5's protocol times it exactly as it times eager PyTorch.

At ``prepare`` the model is exported (``export.graphs.export_runtime_graphs``) into a temporary folder: one graph per
row — its segment (row 0: the embedding first) and its head (the final classifier for the last row) — and the plain
model in one graph (what the method is timed against: the same weights, one graph, the same runtime). Batch and text
length are dynamic axes; images have the model's size. The folder is deleted once the graphs are read into memory,
so sessions for another thread count (``set_threads``: one thread, every core) can be opened later from the same
bytes. A query's inputs and states stay numpy arrays between the graphs; logits come back as numpy.

A row is one graph because every row the loop reaches runs its head before the check anyway, and each session run
costs a few microseconds of its own: ``run_segment`` runs the row and keeps its head's outputs in the state, which
``run_head`` / ``run_final`` hand back (so a profiled pass charges the heads to the segments: ``fused_heads``).

Why it is faster than eager at batch 1: a graph runs its operators without Python between them, fuses what it can
(attention, GELU, LayerNorm) and plans its buffers once, and the live loops check its exits with the numpy rule the
policy compiles to (``exit_check = "rule"``: ``export.rules`` + the exported runner's ``ExitCheck``, the code a
shipped export folder decides with), not with the vectorised torch policy that eager runs per exit.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from ..backbones.base import Context
from ..errors import EEBenchError, fail
from ..model import MultiExitModel
from .runtime import RUNTIMES, PreparedRuntime, UnsupportedModel

EXTRA_HINT = "pip install 'eebench[export]' (onnx and onnxruntime)"
PROVIDERS = ("CPUExecutionProvider",)
# blocking, not spinning, worker threads: several sessions (one per row) share the cores (``set_threads``)
NO_SPIN = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}
CHECK_TOLERANCE = 1e-3  # graphs vs the eager model's logits at prepare (fp32 graphs agree to ~1e-6)


def require_onnxruntime():
    """The ``onnxruntime`` module, or the one-line error naming the extra that installs it (and onnx, which the
    exporter needs)."""
    for module in ("onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError as err:
            raise fail(f"the onnxruntime runtime needs the Python package {module!r}, which is not installed",
                       f"{EXTRA_HINT}, or time with runtime eager") from err
    import onnxruntime

    return onnxruntime


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)


class _Graph:
    """One session and the inputs it takes (the exporter drops an input a graph does not read, e.g. the mask of a
    row whose head pools the [CLS] token only and that has no blocks)."""

    def __init__(self, session):
        self.session = session
        self.names = {i.name for i in session.get_inputs()}
        self.takes_mask = "attention_mask" in self.names

    def hidden(self, hidden: np.ndarray, mask: np.ndarray | None) -> list[np.ndarray]:
        feeds = {"hidden": hidden}
        if self.takes_mask:
            feeds["attention_mask"] = mask
        return self.session.run(None, feeds)

    def raw(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, {k: v for k, v in feeds.items() if k in self.names})


class _State(NamedTuple):
    hidden: np.ndarray | None  # the last segment's output (None after the last row)
    mask: np.ndarray | None  # text: int64 [batch, tokens]; images: None
    logits: np.ndarray | None = None  # the row's head outputs, computed with its segment
    lte: np.ndarray | None = None


@RUNTIMES.register("onnxruntime")
class OrtRuntime(PreparedRuntime):
    """State between the pieces: ``_State`` (numpy). ``threads``: intra-op threads of the sessions until
    ``set_threads`` (default: torch's current count)."""

    name = "onnxruntime"
    description = ("ONNX Runtime on the CPU (fp32): one graph per row (its segment, the embedding in the first, and "
                   "its head), the plain backbone as one graph; exit check in numpy (the exported runner's). "
                   f"Needs {EXTRA_HINT}")
    exit_check: ClassVar[str] = "rule"
    fused_heads: ClassVar[bool] = True  # a row's head runs in its segment's graph (a profile charges it there)

    def __init__(self, threads: int | None = None, opset: int | None = None):
        self.ort = require_onnxruntime()
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise fail(f"onnxruntime threads {threads!r}", "pass an integer >= 1")
        self.opset, self.threads = opset, threads
        self._bytes: dict[str, bytes] = {}
        self._sessions: dict[int, dict[str, _Graph]] = {}
        self._graphs: dict[str, _Graph] | None = None

    @classmethod
    def check_available(cls) -> None:
        require_onnxruntime()

    @classmethod
    def library_version(cls) -> str:
        return f"onnxruntime {require_onnxruntime().__version__}"

    def version(self) -> str:
        return self.library_version()

    # --- set-up ---------------------------------------------------------------------------------------------------
    def prepare(self, model: MultiExitModel) -> None:
        from ..export.graphs import OPSET, example_input, export_runtime_graphs  # export imports inference

        super().prepare(model)
        param = next(model.parameters())
        if param.device.type != "cpu" or param.dtype != torch.float32:
            raise fail(f"the onnxruntime runtime runs fp32 models on the CPU, got {param.dtype} on {param.device}",
                       "set latency.device: cpu and latency.dtype: fp32 (--device cpu --dtype fp32), or time "
                       "with runtime eager")
        folder = Path(tempfile.mkdtemp(prefix="eebench-ort-"))
        try:
            self.layout = export_runtime_graphs(model, folder, example_input(model.backbone),
                                                opset=self.opset or OPSET)
            files = [r["file"] for r in self.layout["rows"]] + [self.layout["backbone"]]
            self._bytes = {f: (folder / f).read_bytes() for f in files}
        except EEBenchError as err:
            raise UnsupportedModel(f"the onnxruntime runtime cannot run this model: {str(err).split(' — ')[0]} — "
                                   "time it with runtime eager") from err
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.text = self.layout["text"]
        self._sessions.clear()
        self.set_threads(self.threads or torch.get_num_threads())
        self._verify()

    def _verify(self) -> None:
        """Every row's logits and the plain model's against the eager model on inputs the graphs were not traced on
        (text: another length, and a padded batch of two lengths; images: a batch of two), so a graph that baked a
        traced value into a constant fails here, not as a wrong decision in a table."""
        model = self.model
        if self.text:  # 13 tokens (traced at 8), then 13 and 5 tokens right-padded with id 0
            ids = torch.arange(2000, 2013)[None]
            short = (torch.arange(13) < 5)[None].long()
            inputs = [{"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                      {"input_ids": torch.cat([ids, ids * short]), "attention_mask": torch.cat([ids > 0, short]).long()}]
        else:
            from ..export.graphs import example_input

            first = example_input(model.backbone)
            inputs = [torch.cat([first, torch.randn(first.shape, generator=torch.Generator().manual_seed(1))])]
        worst = 0.0
        with torch.no_grad():
            for x in inputs:
                want = model(x).stacked()
                state = x
                for k in range(self.rows):
                    state = self.run_segment(k, state)
                    worst = max(worst, float((torch.from_numpy(state.logits) - want[k]).abs().max()))
                worst = max(worst, float((torch.from_numpy(self.run_backbone(x)) - want[-1]).abs().max()))
        if not worst <= CHECK_TOLERANCE:
            raise UnsupportedModel(f"the onnxruntime graphs of this model differ from it by {worst:.3g} in the logits "
                                   "on inputs they were not traced on — time it with runtime eager")

    def set_threads(self, threads: int) -> None:
        """Sessions with ``threads`` intra-op threads (opened once per count), one inter-op thread, sequential
        execution, every graph optimisation; torch (the batched exit check) follows the same count.

        Worker threads do not spin (``NO_SPIN``). Each session owns its pool, and onnxruntime's workers spin-wait
        after a run by default: with one graph per row, the pools of the rows just run kept spinning on the cores the
        next row needed. On 2 cores, MiniLM-L6's early-exit rows then took 17 ms per query against 3 ms for the
        one-graph backbone. The plain model's one session gets the same setting, so the comparison stays fair."""
        super().set_threads(threads)
        if threads not in self._sessions:
            opts = self.ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            for key, value in NO_SPIN.items():
                opts.add_session_config_entry(key, value)
            opts.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._sessions[threads] = {f: _Graph(self.ort.InferenceSession(b, sess_options=opts,
                                                                           providers=list(PROVIDERS)))
                                       for f, b in self._bytes.items()}
        self._graphs = self._sessions[threads]

    def _ready(self) -> dict[str, _Graph]:
        if self._graphs is None:
            raise fail("the onnxruntime runtime was not prepared", "call runtime.prepare(model) first")
        return self._graphs

    # --- inputs ---------------------------------------------------------------------------------------------------
    def feeds(self, inputs: Any) -> dict[str, np.ndarray]:
        """A batch as the first graph's inputs: text → int64 ids, segment ids (zeros where missing) and mask (ones
        where missing); images → float32 pixels."""
        if not self.text:
            x = inputs["pixel_values"] if isinstance(inputs, dict) else inputs
            return {"pixel_values": _numpy(x).astype(np.float32, copy=False)}
        if not isinstance(inputs, dict) or "input_ids" not in inputs:
            raise fail(f"a text model got input of type {type(inputs).__name__}",
                       "pass {'input_ids': ..., 'attention_mask': ...} (token_type_ids optional)")
        ids = _numpy(inputs["input_ids"]).astype(np.int64, copy=False)
        out = {"input_ids": ids}
        for name, fill in (("token_type_ids", 0), ("attention_mask", 1)):
            value = inputs.get(name)
            out[name] = np.full_like(ids, fill) if value is None else _numpy(value).astype(np.int64, copy=False)
        return out

    # --- the seam -------------------------------------------------------------------------------------------------
    def run_segment(self, k, state):
        """Row ``k``'s graph: the segment, and the head whose outputs ``run_head`` / ``run_final`` return."""
        row = self.layout["rows"][k]
        graph = self._ready()[row["file"]]
        if k == 0:
            feeds = self.feeds(state)
            hidden, mask = None, feeds.get("attention_mask")
            out = graph.raw(feeds)
        else:
            hidden, mask = state.hidden, state.mask
            out = graph.hidden(hidden, mask)
        if row["hidden"]:
            hidden, out = out[0], out[1:]
        return _State(hidden, mask, out[0], out[1] if row["lte"] else None)

    def run_head(self, k, state):
        return state.logits, state.lte

    def run_final(self, state):
        return state.logits

    def select(self, state, keep):
        """The kept samples; text positions no kept sample uses are cut by the backbone's own ``drop_padding`` (the
        eager runtime's rule), on zero-copy torch views."""
        keep = _numpy(keep)
        hidden = state.hidden[keep]
        if state.mask is None:
            return _State(hidden, None)
        kept, ctx = self.model.backbone.drop_padding(torch.from_numpy(hidden), Context(mask=torch.from_numpy(
            state.mask[keep])))
        return _State(np.ascontiguousarray(kept.numpy()), np.ascontiguousarray(ctx.mask.numpy()))

    def run_backbone(self, inputs):
        return self._ready()[self.layout["backbone"]].raw(self.feeds(inputs))[0]
