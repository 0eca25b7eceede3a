"""Who executes a multi-exit model during live inference: the seam between the live loops (``live``), Table 5's
protocol (``latency``) and the library that runs the arithmetic.

A runtime sees the model cut at its exits (``rows``): segment k = row k's blocks (the embedding joins segment 0),
head k = row k's exit head (+ BERxiT's learning-to-exit output), the final classifier after the last segment. The
live loops call these pieces and make every exit decision themselves, with the offline policy code on the logits a
runtime returns, so a runtime never changes a decision rule, and a faster one (whole segments compiled or exported to
another engine) is timed by the same protocol against a plain backbone it runs itself (``run_backbone``), which
keeps the ratio fair. A runtime registers under a name (``latency.runtime`` in a config, ``--runtime`` on the
command line); third-party ones through the entry-point group ``eebench.runtimes``.

What a runtime passes between its own calls (``state``: hidden states, padding masks, engine buffers) is its own
business; the loops only hand it back. Logits come back as anything ``torch.as_tensor`` reads, ``[batch, classes]``.

``exit_check`` says how the batch-1 loop checks this runtime's exits: ``"policy"`` stores each row and runs the
vectorised torch policy on the rows so far (``causal``; tens of small torch operations per exit, the paper's
per-exit Python check), ``"rule"`` feeds each row to the numpy rule the policy compiles to (``rulecheck``; a few
microseconds). Both decide as the policy does (the export tests check the rules against every registered policy);
a policy without a compiled rule is checked by the policy itself. Batched exit always runs the policy.
``set_threads`` gives the pieces a thread count (the protocol's one thread / every core).
"""
from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch

from ..errors import EEBenchError, fail
from ..model import MultiExitModel
from ..registry import Registry
from .rows import exit_outputs, final_logits, keep_samples, plain_logits, run_blocks


class Runtime(Protocol):
    name: ClassVar[str]
    exit_check: ClassVar[str]  # "policy" or "rule": how the batch-1 loop checks exits (above)
    rows: int  # exits + the final classifier (set by ``prepare``)
    classes: int
    lte: bool  # the model has BERxiT's learning-to-exit module (heads return its output)

    def version(self) -> str:
        """The library and version that executes the pieces (every latency row records it)."""

    def prepare(self, model: MultiExitModel) -> None:
        """Take a model in eval mode, already on its device and dtype (compile, export, load an engine...)."""

    def set_threads(self, threads: int) -> None:
        """Run the pieces on ``threads`` CPU threads from now on."""

    def run_segment(self, k: int, state: Any) -> Any:
        """Segment k; for k = 0 ``state`` is the input batch (an image tensor or a text batch's dict)."""

    def run_head(self, k: int, state: Any) -> tuple[Any, Any | None]:
        """Internal row k's (logits [batch, classes], learning-to-exit output [batch] or None)."""

    def run_final(self, state: Any) -> Any:
        """The final classifier on the last segment's state → logits [batch, classes]."""

    def select(self, state: Any, keep: torch.Tensor) -> Any:
        """The samples ``keep`` (bool [batch]) of a state: the ones still running after an exit (batched exit)."""

    def run_backbone(self, inputs: Any) -> Any:
        """The model's own plain backbone (no exit head) on a batch → final logits."""


RUNTIMES: Registry[type] = Registry("runtimes")


class UnsupportedModel(EEBenchError):
    """A runtime cannot run this model faithfully (an operator its exporter cannot express, or graphs that disagree
    with the model): the latency job records the method as not run under that runtime instead of failing the table."""


class PreparedRuntime:
    """What every runtime records of the model it prepared."""

    name: ClassVar[str]
    exit_check: ClassVar[str] = "policy"

    @classmethod
    def check_available(cls) -> None:
        """Fail in one line, naming what installs it, where the library this runtime runs on is missing."""

    def set_threads(self, threads: int) -> None:
        torch.set_num_threads(threads)

    def prepare(self, model: MultiExitModel) -> None:
        if model.training:
            raise fail("live inference got a model in training mode (dropout, batch-norm statistics)",
                       "call model.eval() first")
        self.model = model
        self.rows, self.classes, self.lte = len(model.row_layers), model.num_classes, model.lte is not None


@RUNTIMES.register("eager")
class EagerRuntime(PreparedRuntime):
    """PyTorch eager mode, the pieces of ``rows`` called one by one (the paper's path). State: (hidden, context)."""

    name = "eager"
    description = "PyTorch eager mode, piece by piece, the exit check in Python (the paper's path)"

    @classmethod
    def library_version(cls) -> str:
        return f"torch {torch.__version__}"

    def version(self) -> str:
        return self.library_version()

    def run_segment(self, k, state):
        hidden, ctx = self.model.backbone.embed(state) if k == 0 else state
        return run_blocks(self.model, k, hidden, ctx), ctx

    def run_head(self, k, state):
        return exit_outputs(self.model, k, *state)

    def run_final(self, state):
        return final_logits(self.model, *state)

    def select(self, state, keep):
        hidden, ctx = keep_samples(*state, keep)
        return self.model.backbone.drop_padding(hidden, ctx)

    def run_backbone(self, inputs):
        return plain_logits(self.model, inputs)


def require_runtime(name: str) -> type:
    """The runtime registered as ``name``, with its library installed (each fails in one line)."""
    cls = RUNTIMES.get(name)
    check = getattr(cls, "check_available", None)
    if check is not None:
        check()
    return cls


def runtime_names(setting: str | list[str] | tuple[str, ...]) -> list[str]:
    """``latency.runtime`` (one name or a list) → distinct names in order, each registered and installed."""
    names = [setting] if isinstance(setting, str) else list(setting)
    if not names or not all(isinstance(n, str) for n in names):
        raise fail(f"latency runtime {setting!r}", "name a runtime or a list of them, e.g. [eager, onnxruntime]")
    out = list(dict.fromkeys(names))
    for name in out:
        require_runtime(name)
    return out


def runtime_version(name: str) -> str:
    """The version a runtime would record, without a model (for a row that could not be run)."""
    cls = require_runtime(name)
    return cls.library_version() if hasattr(cls, "library_version") else "?"


def build_runtime(name: str, model: MultiExitModel) -> Runtime:
    """The registered runtime ``name``, prepared on ``model``."""
    runtime = require_runtime(name)()
    runtime.prepare(model)
    return runtime


def as_runtime(model_or_runtime: MultiExitModel | Runtime) -> Runtime:
    """A model runs eagerly; a runtime is used as prepared."""
    if isinstance(model_or_runtime, MultiExitModel):
        return build_runtime("eager", model_or_runtime)
    return model_or_runtime


def runtime_info(runtime: Runtime, exit_check: str | None = None) -> dict[str, str]:
    """What every latency row records of the runtime: its name, version and the exit check that ran."""
    return {"name": runtime.name, "version": runtime.version(),
            "exit_check": exit_check or getattr(runtime, "exit_check", "policy")}
