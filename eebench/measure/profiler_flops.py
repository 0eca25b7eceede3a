"""FLOPs as COST-EFF's official code counts them (spec methods §7.4): ``torch.profiler`` with ``with_flops=True`` on a
128-token padded input, per sample. The profiler counts matrix products (attention's included under eager attention)
at 2 FLOPs per multiply-add. Each component (embedding, every block, every exit, the final classifier) is profiled on
its own real input, so an early-exited sample is charged the components it ran, as with the fvcore MACs.
"""
from __future__ import annotations

from typing import Any

import torch

from .macs import cumulative_macs, example_input

COUNTER = "torch.profiler with_flops (CPU, eager attention, batch 1)"


def _flops(fn) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        fn()
    return int(sum(e.flops or 0 for e in prof.key_averages()))


@torch.no_grad()
def profiler_flops(model, seq_length: int = 128) -> dict[str, Any]:
    """{"components": {name: FLOPs}, "cumulative": [FLOPs of a sample answered at each row], ...}."""
    model = model.eval()
    bb = model.backbone
    inputs = example_input(model, seq_length)
    comps = {"embed": _flops(lambda: bb.embed(inputs))}
    hidden, ctx = bb.embed(inputs)
    heads = {layer: i for i, layer in enumerate(model.exit_layers)}
    for i in range(1, bb.num_layers + 1):
        comps[f"block{i}"] = _flops(lambda: bb.block(i, hidden, ctx))
        hidden = bb.block(i, hidden, ctx)
        if i in heads:
            comps[f"head{heads[i] + 1}"] = _flops(lambda: model.heads[heads[i]](hidden, ctx.mask))
    final = (lambda: model.final_head(hidden, ctx.mask)) if model.final_head is not None else (
        lambda: bb.classify(hidden, ctx))
    comps["final"] = _flops(final)
    summary = {"components": {n: {"macs": {"profiler": v}} for n, v in comps.items()}, "row_layers": model.row_layers}
    return {"components": comps, "cumulative": cumulative_macs(summary, "profiler").tolist(),
            "seq_length": seq_length, "counter": COUNTER, "padded": True}
