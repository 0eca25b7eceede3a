"""Batch-1 early exit on ONNX Runtime: the model's per-segment graphs (``eebench.export``) run by onnxruntime
``InferenceSession``s, the exit check in numpy (the exported runner's ``ExitCheck``, so a timed run and a shipped
export decide with the same code). The plain model (every block, final classifier) is one graph run by the same
runtime, so a wall-clock ratio compares like with like.

A runtime is what a latency harness needs from an execution back-end: ``prepare`` from a ``MultiExitModel``, then
``embed``, ``segment`` (the blocks between two exits), ``head`` (exit head k, or the final classifier for the last
row) and ``final``, each on numpy or torch inputs, plus ``name`` and ``version`` for the latency rows.
:func:`time_queries` times a list of queries with it.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import fail
from ..export import run_early_exit
from ..export.bundle import require_onnx, write_graphs
from ..export.graphs import OPSET, example_input
from ..io import write_json
from ..model import MultiExitModel
from ..policies import Decision, Policy, policy_for_rows

Array = np.ndarray


def _numpy(value) -> Array | None:
    if value is None:
        return None
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class OrtRuntime:
    """``threads``: onnxruntime intra-op threads (graph optimisation: all; one inter-op thread, sequential).
    ``workdir``: keep the exported graphs there (default: a temporary folder, deleted once the sessions hold them)."""

    name = "onnxruntime"

    def __init__(self, threads: int = 1, workdir: str | Path | None = None, opset: int = OPSET):
        require_onnx()
        import onnxruntime

        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise fail(f"onnxruntime threads {threads!r}", "pass an integer >= 1")
        self.threads, self.workdir, self.opset = threads, workdir, opset
        self.version = f"onnxruntime {onnxruntime.__version__}"
        self.model: MultiExitModel | None = None
        self.graphs: run_early_exit.ExportedModel | None = None
        self._checks: dict[str, run_early_exit.ExitCheck] = {}

    def __repr__(self) -> str:
        return f"OrtRuntime({self.version}, threads={self.threads})"

    # --- set-up ---------------------------------------------------------------------------------------------------
    def prepare(self, model: MultiExitModel, example=None) -> "OrtRuntime":
        """Export ``model`` to per-segment graphs and the plain model, and open them. The model is put in fp32 on
        the CPU in eval mode, in place (what is exported; the runtime runs on the CPU)."""
        model = model.float().cpu().eval()
        example = example_input(model.backbone) if example is None else example
        if self.workdir is not None:
            folder = Path(self.workdir)
            folder.mkdir(parents=True, exist_ok=True)
            self._open(model, folder, example)
        else:
            with tempfile.TemporaryDirectory(prefix="eebench-ort-") as tmp:
                self._open(model, Path(tmp), example)
        self.model = model
        self._checks.clear()
        return self

    def _open(self, model: MultiExitModel, folder: Path, example) -> None:
        manifest = write_graphs(model, folder, example, plain=True, opset=self.opset)
        write_json(folder / run_early_exit.MANIFEST, manifest)
        self.graphs = run_early_exit.ExportedModel(folder, threads=self.threads)  # sessions read the files now

    def _ready(self) -> run_early_exit.ExportedModel:
        if self.graphs is None:
            raise fail("the onnxruntime runtime was not prepared", "call runtime.prepare(model) first")
        return self.graphs

    # --- inputs ---------------------------------------------------------------------------------------------------
    def feeds(self, inputs) -> dict[str, Array]:
        """One query as graph inputs: an image ``[1, C, H, W]`` (or ``[C, H, W]``), or a text dict with
        ``input_ids`` (``attention_mask``, ``token_type_ids``), torch or numpy."""
        graphs = self._ready()
        if isinstance(inputs, dict):
            inputs = {k: _numpy(v) for k, v in inputs.items()}
        else:
            inputs = _numpy(inputs)
        return graphs.feeds(inputs)

    def queries(self, inputs) -> list[dict[str, Array]]:
        """``inputs`` as a list of batch-1 queries: a batched image tensor/array ``[N, ...]`` is cut into samples; a
        list holds one query per item."""
        if isinstance(inputs, (list, tuple)):
            return [self.feeds(q) for q in inputs]
        if isinstance(inputs, dict):
            return [self.feeds(inputs)]
        return [self.feeds(inputs[i:i + 1]) for i in range(len(inputs))]

    # --- the pieces (numpy in, numpy out) -------------------------------------------------------------------------
    def embed(self, inputs) -> tuple[Array, Array | None]:
        """The embedding's output and the padding mask (None on images), for ``segment``/``head``/``final``."""
        feeds = self.feeds(inputs)
        return self._ready().embed(feeds), feeds.get("attention_mask")

    def segment(self, k: int, hidden, mask=None) -> Array:
        """Row ``k``'s blocks: after row k-1's exit block up to row k's (the embedding's output for k = 0)."""
        return self._ready().segment(k, _numpy(hidden), _numpy(mask))

    def head(self, k: int, hidden, mask=None) -> tuple[Array, Array | None]:
        """Row ``k``'s logits ``[batch, classes]`` and learning-to-exit output (None without one); the last row is
        the final classifier."""
        return self._ready().head(k, _numpy(hidden), _numpy(mask))

    def final(self, hidden, mask=None) -> Array:
        """The final norm + classifier (the method's own final head where it has one) on the last block's output."""
        return self._ready().final(_numpy(hidden), _numpy(mask))

    def plain(self, inputs) -> Array:
        """The model without exits, one graph: the backbone the early-exit model is timed against."""
        feeds = self.feeds(inputs)
        return self._ready().plain_feeds(feeds)

    # --- early exit -----------------------------------------------------------------------------------------------
    def exit_check(self, policy: Policy | dict[str, Any]) -> run_early_exit.ExitCheck:
        """The numpy exit check of ``policy`` (a ``Policy``, or ``{"name", "params"}``) on this model's rows."""
        from ..export.rules import compile_rule

        model = self._prepared_model()
        if isinstance(policy, dict):
            policy = policy_for_rows(policy["name"], policy.get("params") or {}, model.row_layers)
        key = json.dumps([policy.name, vars(policy)], sort_keys=True, default=str)
        if key not in self._checks:
            rule = compile_rule(policy, len(model.row_layers), model.num_classes, lte=model.lte is not None)
            self._checks[key] = run_early_exit.ExitCheck(rule, len(model.row_layers))
        return self._checks[key]

    def _prepared_model(self) -> MultiExitModel:
        if self.model is None:
            raise fail("the onnxruntime runtime was not prepared", "call runtime.prepare(model) first")
        return self.model

    def run_exits(self, feeds: dict[str, Array], check: run_early_exit.ExitCheck) -> dict[str, Any]:
        """One query (graph inputs) with a ready exit check → the runner's answer (numpy)."""
        return self._ready().early_exit_feeds(feeds, check)

    def early_exit(self, inputs, policy: Policy | dict[str, Any]) -> Decision:
        """Batch-1 early exit, returned as the ``Decision`` live inference returns (CPU tensors)."""
        feeds = self.feeds(inputs)
        return as_decision(self.run_exits(feeds, self.exit_check(policy)))


def as_decision(answer: dict[str, Any]) -> Decision:
    """The runner's answer for one sample as eebench's ``Decision`` (batch 1)."""
    pred = answer["prediction"]
    prediction = torch.tensor([pred], dtype=torch.float32 if isinstance(pred, float) else torch.long)
    early = answer.get("is_early")
    return Decision(exit_index=torch.tensor([answer["exit_index"]]), prediction=prediction,
                    compute_index=torch.tensor([answer["compute_index"]]),
                    output=torch.from_numpy(np.asarray(answer["output"], dtype=np.float32)).reshape(1, -1),
                    is_early=None if early is None else torch.tensor([bool(early)]))


def time_queries(runtime: OrtRuntime, inputs, policy: Policy | dict[str, Any] | None = None,
                 warmup: int = 1) -> list[float]:
    """Seconds per query, in input order, of one timed pass over ``inputs`` (batch 1 each), after ``warmup``
    untimed passes over all of them (so every exit depth the inputs reach is warmed up). ``policy`` None times the
    plain model. Inputs are put in graph form before timing, as a harness has them on the device already."""
    queries = runtime.queries(inputs)
    if not queries:
        raise fail("no queries to time", "pass at least one input")
    if policy is None:
        def run(q):
            runtime.plain(q)
    else:
        check = runtime.exit_check(policy)

        def run(q):
            runtime.run_exits(q, check)
    for _ in range(max(int(warmup), 0)):
        for q in queries:
            run(q)
    times = []
    clock = time.perf_counter
    for q in queries:
        start = clock()
        run(q)
        times.append(clock() - start)
    return times


def decisions(runtime: OrtRuntime, inputs, policy: Policy | dict[str, Any]) -> list[Decision]:
    """Each query's ``Decision`` (for a decisions-match count against the offline replay)."""
    check = runtime.exit_check(policy)
    return [as_decision(runtime.run_exits(q, check)) for q in runtime.queries(inputs)]


__all__: Sequence[str] = ("OrtRuntime", "time_queries", "decisions", "as_decision")
