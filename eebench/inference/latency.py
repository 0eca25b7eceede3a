"""Table 5 wall-clock protocol (spec methods §4.5): batch 1, one warm-up pass over the images, then ``passes`` timed
passes; per-image latency = pass time / images, reported as mean ± std over the passes, for the live early-exit model
and for the plain backbone (full depth, no heads) in the same run. The device is synchronised around every pass.

``dtype`` casts weights and inputs (pure low-precision inference, unlike training's autocast). ``mode="eager"`` is
the paper's path; ``"graph"`` replays each segment as a CUDA graph (``graphs``; ``schedule`` and ``decide`` pick how
exits are checked) and the plain backbone as one whole-model graph, i.e. at its fastest.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..device import DTYPES, resolve_device
from ..errors import fail
from ..measure.speedup import layer_speedup
from ..model import MultiExitModel
from ..policies import Policy, build_policy, policy_for_rows
from .live import early_exit

MODES = ("eager", "graph")


def resolve_dtype(name: str) -> torch.dtype:
    if name == "fp32":
        return torch.float32
    if name not in DTYPES:
        raise fail(f"unknown dtype {name!r}", "use fp32, bf16 or fp16")
    return DTYPES[name]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_passes(run: Callable[[torch.Tensor], Any], inputs: torch.Tensor, passes: int,
                device: torch.device) -> tuple[list[float], list[Any]]:
    """One warm-up pass (its outputs are returned), then ``passes`` timed passes → ms per image of each pass."""
    outputs = [run(inputs[i:i + 1]) for i in range(len(inputs))]
    times = []
    for _ in range(passes):
        sync(device)
        start = time.perf_counter()
        for i in range(len(inputs)):
            run(inputs[i:i + 1])
        sync(device)
        times.append((time.perf_counter() - start) * 1e3 / len(inputs))
    return times, outputs


def mean_std(times: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(times), "std": statistics.stdev(times) if len(times) > 1 else 0.0}


def _runners(model: MultiExitModel, policy: Policy, example: torch.Tensor, mode: str, schedule: str, decide: str):
    if mode == "eager":
        return (lambda x: early_exit(model, policy, x)), (lambda x: model.backbone(x).argmax(-1))
    from .graphs import GraphedExits, GraphedForward

    exits = GraphedExits(model, example, schedule=schedule, decide=decide)
    plain = GraphedForward(model.backbone, example)
    return (lambda x: exits(x, policy)), (lambda x: plain(x).argmax(-1))


@torch.no_grad()
def table5_latency(model: MultiExitModel, policy: Policy, inputs: torch.Tensor, labels: torch.Tensor | None = None,
                   device: str = "auto", dtype: str = "fp32", passes: int = 50, mode: str = "eager",
                   schedule: str = "overlap", decide: str = "device") -> dict[str, Any]:
    """Latency of live early exit vs the plain backbone on ``inputs`` ([N, ...], run one at a time). Moves and casts
    ``model`` in place. Accuracy (when ``labels`` are given) and exit statistics come from the warm-up pass."""
    if passes < 1 or len(inputs) < 1:
        raise fail(f"latency needs at least one image and one timed pass (got {len(inputs)}, {passes})",
                   "pass --passes >= 1 and --limit >= 1")
    if mode not in MODES:
        raise fail(f"unknown latency mode {mode!r}", f"use one of {list(MODES)}")
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    model.to(device=dev, dtype=dt).eval()
    inputs = inputs.to(device=dev, dtype=dt)
    run_exits, run_plain = _runners(model, policy, inputs[:1], mode, schedule, decide)
    ee_times, decisions = time_passes(run_exits, inputs, passes, dev)
    bb_times, plain_preds = time_passes(run_plain, inputs, passes, dev)

    layers = torch.tensor(model.row_layers)
    exit_rows = torch.cat([d.exit_index.cpu() for d in decisions])
    compute_rows = torch.cat([d.compute_index.cpu() for d in decisions])
    predictions = torch.cat([d.prediction.cpu() for d in decisions])
    plain = torch.cat([p.cpu() for p in plain_preds])
    num_layers = model.backbone.num_layers
    ee = {"ms_per_image": mean_std(ee_times), "mean_exit_layer": float(layers[exit_rows].double().mean()),
          "mean_executed_layers": float(layers[compute_rows].double().mean()),
          "layer_speedup": layer_speedup(layers[compute_rows], num_layers),
          "exit_histogram": dict(zip(model.row_layers, torch.bincount(exit_rows, minlength=len(layers)).tolist())),
          "compute_rows": torch.bincount(compute_rows, minlength=len(layers)).tolist()}
    bb = {"ms_per_image": mean_std(bb_times), "mean_exit_layer": float(num_layers),
          "mean_executed_layers": float(num_layers), "layer_speedup": 1.0}
    if labels is not None:
        labels = labels.cpu()
        ee["accuracy"] = float((predictions == labels).double().mean())
        bb["accuracy"] = float((plain == labels).double().mean())
    return {"protocol": {"batch": 1, "warmup_passes": 1, "timed_passes": passes, "images": len(inputs),
                         "statistic": "per-image ms of each pass (pass time / images), mean and std over passes"},
            "device": str(dev), "dtype": dtype, "mode": mode if mode == "eager" else f"graph/{schedule}/{decide}",
            "policy": getattr(policy, "name", type(policy).__name__),
            "row_layers": model.row_layers, "early_exit": ee, "backbone": bb,
            "wallclock_speedup": bb["ms_per_image"]["mean"] / ee["ms_per_image"]["mean"]}


def latency_checkpoint(checkpoint: str | Path, policy: dict[str, Any], device: str = "auto", dtype: str = "fp32",
                       passes: int = 50, limit: int | None = None, mode: str = "eager", schedule: str = "overlap",
                       decide: str = "device", threads: int | None = None) -> dict[str, Any]:
    """Table 5 for a checkpoint written by ``eebench train`` on its dataset's evaluation split (first ``limit``)."""
    from ..build import apply_recorded_shape, build_model
    from ..data import load_dataset
    from ..io import load_torch
    from ..provenance import provenance

    if not isinstance(policy, dict) or "name" not in policy or "sweep" in policy:
        raise fail(f"latency needs one operating point, got policy {policy!r}",
                   'pass --policy \'{"name": ..., "params": {...}}\' (no "sweep": pick its values into params)')
    if threads:
        torch.set_num_threads(threads)
    build_policy(policy["name"], **(policy.get("params") or {}))  # a bad policy fails before any loading
    ckpt = load_torch(checkpoint)
    job = ckpt["job"]
    data = load_dataset(job["dataset"])
    model = build_model(job["backbone"], job["method"], data.num_classes)
    apply_recorded_shape(model, ckpt, f"checkpoint {checkpoint}")  # a width-pruned model (COST-EFF)
    model.load_state_dict(ckpt["model"])
    exit_policy = policy_for_rows(policy["name"], policy.get("params") or {}, model.row_layers)
    xs, ys, n = [], [], 0
    for xb, yb in data.eval_batches(model.backbone, 256):
        xs.append(xb)
        ys.append(yb)
        n += len(xb)
        if limit is not None and n >= limit:
            break
    inputs, labels = torch.cat(xs)[:limit], torch.cat(ys)[:limit]
    result = table5_latency(model, exit_policy, inputs, labels, device=device, dtype=dtype, passes=passes, mode=mode,
                            schedule=schedule, decide=decide)
    result["checkpoint"] = str(checkpoint)
    result["policy_spec"] = policy
    result["provenance"] = provenance(device=result["device"], dtype=dtype, mode=mode, seed=job.get("seed"))
    return result


def format_table(result: dict[str, Any]) -> str:
    """The small table ``eebench latency`` prints."""
    lines = [f"{result['policy']} on {result['device']} ({result['dtype']}, {result['mode']}): batch 1, "
             f"{result['protocol']['images']} images × {result['protocol']['timed_passes']} timed passes",
             f"{'model':12s} {'ms/img (mean ± std)':>22s} {'accuracy':>9s} {'mean exit layer':>16s} "
             f"{'layer speed-up':>15s}"]
    for name, key in (("early exit", "early_exit"), ("backbone", "backbone")):
        r = result[key]
        ms = f"{r['ms_per_image']['mean']:.3f} ± {r['ms_per_image']['std']:.3f}"
        acc = f"{r['accuracy']:.4f}" if "accuracy" in r else "—"
        lines.append(f"{name:12s} {ms:>22s} {acc:>9s} {r['mean_exit_layer']:>16.2f} {r['layer_speedup']:>14.2f}×")
    lines.append(f"wall-clock speed-up: {result['wallclock_speedup']:.2f}×")
    return "\n".join(lines)
