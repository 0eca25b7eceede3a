"""What one segment of batch-1 early exit computes, written once for the eager runners (CPU tests, any device) and for
CUDA-graph capture (``graphs``), whatever the schedule (``pipeline``): one graph per segment, or the body of an IF
node in the one-graph ``conditional`` program (``conditional``, which reads the settled flag of the packed vector).

Segment k = row k of ``rows.run_row`` (the embedding joins segment 0), then the one small vector the host reads:

* ``decide="host"``: the exit's logits, then its LTE output if any; the policy runs on the host (``pipeline``).
* ``decide="device"``: the row goes into a device-resident ``RowBuffer``, ``policy.decide`` runs on the whole buffer
  (the causal prefix rule of ``causal``: rows not computed yet hold the placeholder), and the outcome is packed into
  one fp32 vector ``[settled, exit_index, compute_index, is_early, prediction, *output]`` (integers are exact in
  fp32). Segment 0 first refills the buffer with the placeholder, so a captured chain needs no host work per image.

A chain's state (the input, hidden states, context, row buffer) lives on the ``SegmentChain`` object, so what a
capture reads and writes stays alive for its replays; the segment code itself is static-shape tensor work that
never reads a device value on the host (the model's and the policy's code must be too: the tests check it op by op).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import fail
from ..model import MultiExitModel
from ..policies import Decision, Policy
from .causal import PLACEHOLDER, RowBuffer
from .rows import run_row

DECIDE = ("host", "device")
SETTLED, EXIT, COMPUTE, EARLY, PREDICTION, HEADER = range(6)  # slots of a packed decision; the output follows


@dataclass(frozen=True)
class PackedFormat:
    """What a packed vector does not say itself (fixed per policy and model)."""

    prediction_dtype: torch.dtype  # long for classes, float for regression values
    output_dtype: torch.dtype
    has_is_early: bool  # False: the policy leaves ``Decision.is_early`` as None (its slot is filler)


def pack(decision: Decision, settled: torch.Tensor) -> tuple[torch.Tensor, PackedFormat]:
    """A batch-1 decision as one fp32 vector (tensor ops only: no host sync) and the format to read it back."""
    early = settled if decision.is_early is None else decision.is_early
    fields = (settled, decision.exit_index, decision.compute_index, early, decision.prediction)
    vector = torch.cat([f.reshape(1).float() for f in fields] + [decision.output.reshape(-1).float()])
    return vector, PackedFormat(decision.prediction.dtype, decision.output.dtype, decision.is_early is not None)


def is_settled(vector: torch.Tensor) -> bool:
    return float(vector[SETTLED]) > 0.5


def unpack(vector: torch.Tensor, fmt: PackedFormat) -> Decision:
    """The ``Decision`` (CPU tensors, batch 1) a host copy of a packed vector holds; copies, so the buffer may be
    reused at once."""
    head = vector[:HEADER].tolist()

    def index(slot: int) -> torch.Tensor:
        return torch.tensor([int(head[slot])], dtype=torch.long)

    return Decision(exit_index=index(EXIT), compute_index=index(COMPUTE),
                    prediction=torch.tensor([head[PREDICTION]], dtype=fmt.prediction_dtype),
                    output=vector[HEADER:].to(fmt.output_dtype, copy=True).reshape(1, -1),
                    is_early=torch.tensor([head[EARLY] > 0.5]) if fmt.has_is_early else None)


def exit_vector(logits: torch.Tensor, lte: torch.Tensor | None) -> torch.Tensor:
    """What the host needs to decide (``decide="host"``), as one fp32 vector: the logits, then the LTE output."""
    vector = logits.reshape(-1).float()
    return vector if lte is None else torch.cat([vector, lte.reshape(1).float()])


class SegmentChain:
    """The segments of one model (and, for ``decide="device"``, one policy) over the static input ``static_input``
    ([1, ...]); ``chain(k)`` runs segment k and returns its vector. Segments must run in order from 0 for each image
    (segment k reads segment k-1's hidden state)."""

    def __init__(self, model: MultiExitModel, static_input: torch.Tensor, policy: Policy | None = None):
        self.model, self.static_input, self.policy = model, static_input, policy
        self.rows, self.classes = len(model.row_layers), model.num_classes
        self.has_lte = model.lte is not None
        self.hidden: list[torch.Tensor | None] = [None] * self.rows  # output of each row (input of the next)
        self.ctx = None
        self.format: PackedFormat | None = None  # set by the first device-decision segment that runs
        self.buffer = None
        if policy is not None:  # allocated here, outside any capture: the segments only write into it
            self.buffer = RowBuffer(self.rows, 1, self.classes, static_input.device, lte=self.has_lte)

    @property
    def decide(self) -> str:
        return "host" if self.policy is None else "device"

    def __call__(self, k: int) -> torch.Tensor:
        if k == 0:
            if self.buffer is not None:  # a new image: placeholders again, inside segment 0 (and its graph)
                self.buffer.logits.fill_(PLACEHOLDER)
                if self.buffer.lte is not None:
                    self.buffer.lte.fill_(PLACEHOLDER)
            hidden, self.ctx = self.model.backbone.embed(self.static_input)
        else:
            hidden = self.hidden[k - 1]
            if hidden is None:
                raise fail(f"segment {k} ran before segment {k - 1}", "run the segments of an image in order from 0")
        out = run_row(self.model, k, hidden, self.ctx)
        self.hidden[k] = out.hidden
        if self.buffer is None:
            return exit_vector(out.logits, out.lte)
        self.buffer.put(k, out.logits, out.lte)
        decision, settled = self.buffer.decide(self.policy, k)
        vector, self.format = pack(decision, settled)
        return vector


class EagerSegments:
    """The segment runner that computes a segment when it is launched (no graphs; waiting is a no-op)."""

    def __init__(self, chain: SegmentChain):
        self.chain, self.rows = chain, chain.rows
        self.vectors: list[torch.Tensor | None] = [None] * chain.rows

    def load(self, x: torch.Tensor) -> None:
        self.chain.static_input.copy_(x)

    def launch(self, k: int) -> None:
        self.vectors[k] = self.chain(k)

    def result(self, k: int) -> torch.Tensor:
        return self.vectors[k].cpu()
