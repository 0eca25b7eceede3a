"""Table 5's wall-clock protocol: the paper's (spec methods §4.5: batch 1, a warm-up, then ``passes`` timed passes,
per-query ms as mean ± std over passes) with MLPerf Inference's single-stream reporting added. For one model at one
operating point, against its own plain backbone (same weights, no exit head, run by the same runtime):

1. Per thread setting (``threads``, e.g. one thread and every core): warm-up of every exit depth — the first
   ``WARMUP_QUERIES`` queries with the exit forced at each row in turn, so every segment, head and exit check has
   run whatever the policy picks — then one pass of every query through the live model and through the plain
   backbone; then ``passes`` timed passes, the two interleaved (drift hits both alike). Each query is timed on its
   own (``perf_counter``; the device synchronised before and after it): mean ± std over passes of each pass's mean,
   and p50/p90/p99 over every timed query (``measure.latency_stats``: LoadGen's nearest rank).
2. Quality: the task metric of the timed queries (live predictions) and of the plain backbone on the same queries,
   the retention and the gate (>= 99 % of the backbone's metric, as MLPerf's accuracy target).
3. Decisions match (``replay``): with an exit-logit cache, the policy replayed offline on the cached rows of the
   timed queries, against the live exit row and prediction of each query in every timed pass (N / N).
4. Breakdown (eager): one extra pass, at the first thread setting, with a ``live.Probe``: ``perf_counter`` around
   every segment (embedding in segment 0), exit head, final classifier and exit check, the device synchronised around
   each; "other" is the rest of the profiled pass (the loop itself, and the probe's own cost).
5. Batched exit (``batches``): consecutive queries in batches of B, samples leaving the batch once their exit settles
   (``live.batched_exit``), against the plain backbone on the same batches (forced depths on the first batch and a
   warm-up pass first, then timed passes, interleaved): samples/s at the mean pass time, per thread setting; its
   decisions are checked against the batch-1 live ones.

``dtype`` casts weights and image inputs (pure low-precision inference, unlike training's autocast). ``mode="eager"``
runs the pieces through ``runtime`` (``runtime.Runtime``: ``eager`` PyTorch, ``onnxruntime`` graphs; each thread
setting reaches it through ``set_threads``, and the batch-1 exit check is the runtime's ``exit_check``, recorded
with its name and version); ``"graph"`` replays each segment as a CUDA graph (``graphs``; ``schedule`` and
``decide`` pick how exits are checked) and the plain backbone as one whole-model graph.
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..device import DTYPES, resolve_device
from ..errors import fail
from ..measure.latency_stats import GATE, PERCENTILE_RULE, latency_summary, quality_gate
from ..measure.speedup import layer_speedup
from ..metrics import get_metric
from ..model import MultiExitModel
from ..policies import Decision, Policy, build_policy, policy_for_rows
from ..policies.base import decide_at
from .live import COMPONENTS, Probe, batched_exit, early_exit, exit_check_of
from .queries import Queries, eval_queries, tensor_queries
from .replay import agreement, offline_decisions
from .runtime import Runtime, build_runtime, runtime_info

MODES = ("eager", "graph")
WARMUP_QUERIES = 8  # queries run at every forced exit depth before timing
TIMER = ("perf_counter around every segment, exit head, final classifier and exit check of one extra pass "
         "(live.Probe), the device synchronised around each")


def resolve_dtype(name: str) -> torch.dtype:
    if name == "fp32":
        return torch.float32
    if name not in DTYPES:
        raise fail(f"unknown dtype {name!r}", "use fp32, bf16 or fp16")
    return DTYPES[name]


def available_cores() -> int:
    """The cores this process may run on (a cluster job's allocation, not the whole node)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_threads(threads: int | str | Sequence[int | str] | None, cores: int | None = None) -> list[int]:
    """``1``, ``"all"`` or a list of them → distinct thread counts, in order. ``"all"``: ``cores`` (a job's share),
    capped by :func:`available_cores`; every available core without ``cores``."""
    items = [1] if threads is None else list(threads) if isinstance(threads, (list, tuple)) else [threads]
    every = min(cores, available_cores()) if cores else available_cores()
    out: list[int] = []
    for t in items:
        n = every if t == "all" else t
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise fail(f"latency threads {t!r} is not a thread count", 'use an integer >= 1 or "all" (or a list)')
        if n not in out:
            out.append(n)
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ExitAt(Policy):
    """Warm-up only (not registered): every sample answers at row ``row``."""

    name = "exit_at"
    params = {"row": 0}

    def decide(self, logits: torch.Tensor, **extra: Any) -> Decision:
        logits = self.check_logits(logits)
        row = torch.full((logits.shape[1],), min(self.row, logits.shape[0] - 1), dtype=torch.long,
                         device=logits.device)
        return decide_at(logits, row, regression=logits.shape[-1] == 1)


def predict(logits: torch.Tensor) -> torch.Tensor:
    """Classes (argmax), or the value of a one-output regression model."""
    logits = torch.as_tensor(logits)
    return logits[..., 0] if logits.shape[-1] == 1 else logits.argmax(-1)


def time_queries(run: Callable[[Any], Any], inputs: list[Any], device: torch.device) -> tuple[list[float], list[Any]]:
    """Each query timed on its own → (ms per query, outputs)."""
    times, outputs = [], []
    for x in inputs:
        sync(device)
        start = time.perf_counter()
        out = run(x)
        sync(device)
        times.append((time.perf_counter() - start) * 1e3)
        outputs.append(out)
    return times, outputs


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def _cat(decisions: list[Decision]) -> Decision:
    fields = {}
    for f in ("exit_index", "prediction", "compute_index", "output", "is_early"):
        parts = [getattr(d, f) for d in decisions]
        fields[f] = None if parts[0] is None else torch.cat([p.cpu() for p in parts])
    return Decision(**fields)


def _runners(rt: Runtime, model: MultiExitModel, policy: Policy, example: Any, mode: str, schedule: str, decide: str):
    if mode == "eager":
        return (lambda x: early_exit(rt, policy, x)), (lambda x: predict(rt.run_backbone(x)))
    from .graphs import GraphedExits, GraphedForward

    exits = GraphedExits(model, example, schedule=schedule, decide=decide)
    plain = GraphedForward(rt.run_backbone, example)
    return (lambda x: exits(x, policy)), (lambda x: predict(plain(x)).clone())


def _warm_up(rt: Runtime, run_exits, run_plain, q: Queries, mode: str) -> None:
    if mode == "eager":  # graph mode: capture already ran every segment
        for row in range(rt.rows):
            forced = ExitAt(row=row)
            for x in q.inputs[:WARMUP_QUERIES]:
                early_exit(rt, forced, x)
    for x in q.inputs:
        run_exits(x)
        run_plain(x)


def _breakdown(rt: Runtime, policy: Policy, q: Queries, device: torch.device, threads: int) -> dict[str, Any]:
    probe = Probe(lambda: sync(device))
    total = 0.0
    for x in q.inputs:
        sync(device)
        start = time.perf_counter()
        early_exit(rt, policy, x, probe)
        sync(device)
        total += time.perf_counter() - start
    n = len(q)
    ms = {c: probe.seconds[c] * 1e3 / n for c in COMPONENTS}
    ms["other"] = total * 1e3 / n - sum(ms.values())
    return {"threads": threads, "timer": TIMER, "ms_per_query": ms, "total_ms_per_query": total * 1e3 / n,
            "heads_in_segments": bool(getattr(rt, "fused_heads", False))}


def _time_batches(run, batches: list[Any], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    for b in batches:
        run(b)
    sync(device)
    return time.perf_counter() - start


def _throughput(rt: Runtime, policy: Policy, q: Queries, size: int, passes: int, device: torch.device,
                threads: int, batch1: Decision) -> dict[str, Any]:
    n = len(q)
    batches = [q.batch(i, min(i + size, n)) for i in range(0, n, size)]

    def run_exits(b):
        return batched_exit(rt, policy, b)

    def run_plain(b):
        return rt.run_backbone(b)

    for row in range(rt.rows):
        batched_exit(rt, ExitAt(row=row), batches[0])
    decided = _cat([run_exits(b) for b in batches])
    for b in batches:
        run_plain(b)
    ee, bb = [], []
    for _ in range(passes):
        ee.append(_time_batches(run_exits, batches, device))
        bb.append(_time_batches(run_plain, batches, device))
    def rate(seconds: list[float]) -> dict[str, float]:  # at the mean pass time, so the two rates' ratio is the speed-up
        return {"mean": n / statistics.fmean(seconds), "std": mean_std([n / s for s in seconds])["std"]}

    return {"batch": size, "threads": threads, "queries": n, "batches": len(batches),
            "early_exit_samples_per_s": rate(ee), "backbone_samples_per_s": rate(bb),
            "throughput_speedup": statistics.fmean(bb) / statistics.fmean(ee),
            "same_as_batch1": agreement([(decided.exit_index, decided.prediction)], batch1)}


def _batch1(rt: Runtime, run_exits, run_plain, q: Queries, passes: int, device: torch.device, settings: list[int],
            mode: str) -> tuple[list[dict[str, Any]], list[tuple[torch.Tensor, torch.Tensor]], Decision, torch.Tensor]:
    """Warm-up and timed passes at every thread setting → (timings, (exit rows, predictions) of every timed pass,
    the first timed pass's decisions, the plain backbone's predictions)."""
    timings, decided, first, plain = [], [], None, None
    for t in settings:
        rt.set_threads(t)
        _warm_up(rt, run_exits, run_plain, q, mode)
        ee_ms, bb_ms = [], []
        for _ in range(passes):
            times, outs = time_queries(run_exits, q.inputs, device)
            ee_ms.append(times)
            one = _cat(outs)
            first = one if first is None else first
            decided.append((one.exit_index, one.prediction))
            times, outs = time_queries(run_plain, q.inputs, device)
            bb_ms.append(times)
            plain = plain if plain is not None else torch.cat([p.cpu() for p in outs])
        ee, bb = latency_summary(ee_ms), latency_summary(bb_ms)
        timings.append({"threads": t, "early_exit": ee, "backbone": bb,
                        "wallclock_speedup": bb["ms_per_query"]["mean"] / ee["ms_per_query"]["mean"]})
    return timings, decided, first, plain


def _quality(q: Queries, live: torch.Tensor, plain: torch.Tensor, gate: float) -> dict[str, Any] | None:
    if q.labels is None:
        return None
    metric = get_metric(q.metric)
    labels = q.labels.cpu().numpy()
    ee, bb = metric.score(live.numpy(), labels), metric.score(plain.numpy(), labels)
    return {"metric": metric.name, "early_exit": ee, "backbone": bb, **quality_gate(ee, bb, gate)}


@torch.no_grad()
def table5_latency(model: MultiExitModel, policy: Policy, queries: Queries | torch.Tensor,
                   labels: torch.Tensor | None = None, device: str = "auto", dtype: str = "fp32", passes: int = 50,
                   mode: str = "eager", schedule: str = "overlap", decide: str = "device",
                   threads: int | str | Sequence[int | str] = 1, runtime: str = "eager", batches: Sequence[int] = (),
                   cache: dict[str, Any] | None = None, gate: float = GATE) -> dict[str, Any]:
    """The protocol above for ``model`` at ``policy`` on ``queries`` (``Queries``, or an image tensor [N, ...] with
    ``labels``). Moves and casts ``model`` in place; ``cache``: a loaded exit-logit cache (``evaluate.load_cache``)
    for the decisions match."""
    q = queries if isinstance(queries, Queries) else tensor_queries(queries, labels)
    if passes < 1 or len(q) < 1:
        raise fail(f"latency needs at least one query and one timed pass (got {len(q)}, {passes})",
                   "pass --passes >= 1 and --limit >= 1")
    if mode not in MODES:
        raise fail(f"unknown latency mode {mode!r}", f"use one of {list(MODES)}")
    if mode == "graph" and (q.is_text or runtime != "eager"):
        raise fail("graph mode captures one input shape from the eager model (images)",
                   "use mode eager for text queries (their lengths vary) and for other runtimes")
    settings = resolve_threads(threads)
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    model.to(device=dev, dtype=dt).eval()
    q = q.to(dev, dt)
    rt = build_runtime(runtime, model)
    run_exits, run_plain = _runners(rt, model, policy, q.inputs[0], mode, schedule, decide)

    before = torch.get_num_threads()
    try:
        timings, decided, first, plain = _batch1(rt, run_exits, run_plain, q, passes, dev, settings, mode)
        breakdown = None
        if mode == "eager":
            rt.set_threads(settings[0])
            breakdown = _breakdown(rt, policy, q, dev, settings[0])
        batched = []
        for t in settings:
            rt.set_threads(t)
            batched += [_throughput(rt, policy, q, size, passes, dev, t, first) for size in batches]
    finally:
        torch.set_num_threads(before)

    layers = torch.tensor(model.row_layers)
    num_layers = model.backbone.num_layers
    exit_rows, compute_rows = first.exit_index, first.compute_index
    ee_stats = {"mean_exit_layer": float(layers[exit_rows].double().mean()),
                "mean_executed_layers": float(layers[compute_rows].double().mean()),
                "layer_speedup": layer_speedup(layers[compute_rows], num_layers),
                "exit_histogram": dict(zip(model.row_layers,
                                           torch.bincount(exit_rows, minlength=len(layers)).tolist())),
                "compute_rows": torch.bincount(compute_rows, minlength=len(layers)).tolist(),
                "per_query_compute_row": compute_rows.tolist()}
    bb_stats = {"mean_exit_layer": float(num_layers), "mean_executed_layers": float(num_layers), "layer_speedup": 1.0}
    if q.labels is not None and not q.labels.is_floating_point():
        ee_stats["accuracy"] = float((first.prediction == q.labels.cpu()).double().mean())
        bb_stats["accuracy"] = float((plain == q.labels.cpu()).double().mean())
    match = None
    if cache is not None:
        match = agreement(decided, offline_decisions(cache, policy, q.cache_index.cpu(), model.row_layers))
    lengths = q.lengths()
    return {"protocol": {"batch": 1, "queries": len(q), "timed_passes": passes, "warmup_queries_per_depth":
                         min(WARMUP_QUERIES, len(q)) if mode == "eager" else 0,
                         "order": "the evaluation split's own order, its first queries; each at its real size",
                         "percentiles": PERCENTILE_RULE},
            "runtime": runtime_info(rt, exit_check_of(rt, policy)), "device": str(dev), "dtype": dtype,
            "mode": mode if mode == "eager" else f"graph/{schedule}/{decide}",
            "policy": getattr(policy, "name", type(policy).__name__), "row_layers": model.row_layers,
            **({"tokens": lengths} if lengths else {}),  # text: each query's token count
            "early_exit": ee_stats, "backbone": bb_stats, "quality": _quality(q, first.prediction, plain, gate),
            "decisions_match": match, "timings": timings, "breakdown": breakdown, "batched": batched}


def latency_checkpoint(checkpoint: str | Path, policy: dict[str, Any], device: str = "auto", dtype: str = "fp32",
                       passes: int = 50, limit: int | None = None, mode: str = "eager", schedule: str = "overlap",
                       decide: str = "device", threads: int | str | Sequence[int | str] = 1, runtime: str = "eager",
                       batches: Sequence[int] = (), cache: str | Path | None = None,
                       gate: float = GATE) -> dict[str, Any]:
    """Table 5 for a checkpoint written by ``eebench train`` on its dataset's evaluation split (first ``limit``);
    ``cache``: that checkpoint's exit-logit cache, for the decisions match."""
    from ..build import build_model
    from ..checkpoint_shape import apply_recorded_shape
    from ..data import load_dataset
    from ..evaluate import load_cache
    from ..io import load_torch
    from ..provenance import provenance
    from .runtime import require_runtime

    if not isinstance(policy, dict) or "name" not in policy or "sweep" in policy:
        raise fail(f"latency needs one operating point, got policy {policy!r}",
                   'pass --policy \'{"name": ..., "params": {...}}\' (no "sweep": pick its values into params)')
    build_policy(policy["name"], **(policy.get("params") or {}))  # a bad policy fails before any loading
    require_runtime(runtime)
    settings = resolve_threads(threads)
    ckpt = load_torch(checkpoint)
    job = ckpt["job"]
    data = load_dataset(job["dataset"])
    model = build_model(job["backbone"], job["method"], data.num_classes)
    apply_recorded_shape(model, ckpt, f"checkpoint {checkpoint}")  # a width-pruned model (COST-EFF)
    model.load_state_dict(ckpt["model"])
    # a model without exits answers with its final output, no exit rule (as its operating curve does, curves.py):
    # a regression backbone's one output is no class distribution for a confidence rule to read
    exit_policy = (ExitAt(row=0) if len(model.row_layers) == 1 else
                   policy_for_rows(policy["name"], policy.get("params") or {}, model.row_layers))
    queries = eval_queries(data, model.backbone, limit)
    result = table5_latency(model, exit_policy, queries, device=device, dtype=dtype, passes=passes, mode=mode,
                            schedule=schedule, decide=decide, threads=settings, runtime=runtime, batches=batches,
                            cache=load_cache(cache) if cache else None, gate=gate)
    result["checkpoint"] = str(checkpoint)
    result["cache"] = str(cache) if cache else None
    result["policy_spec"] = policy
    result["provenance"] = provenance(device=result["device"], dtype=dtype, mode=mode, seed=job.get("seed"))
    return result


def format_table(result: dict[str, Any]) -> str:
    """The small table ``eebench latency`` prints."""
    rt, proto = result["runtime"], result["protocol"]
    lines = [f"{result['policy']} on {result['device']} ({result['dtype']}, {result['mode']}, {rt['name']}: "
             f"{rt['version']}, exit check: {rt.get('exit_check', 'policy')}): batch 1, {proto['queries']} queries × "
             f"{proto['timed_passes']} timed passes",
             f"{'model':12s} {'threads':>7s} {'ms/query (mean ± std)':>22s} {'p50':>8s} {'p90':>8s} {'p99':>8s} "
             f"{'speed-up':>9s}"]
    for timing in result["timings"]:
        for name, key in (("early exit", "early_exit"), ("backbone", "backbone")):
            r = timing[key]
            ms, qms = f"{r['ms_per_query']['mean']:.3f} ± {r['ms_per_query']['std']:.3f}", r["query_ms"]
            speed = f"{timing['wallclock_speedup']:.2f}×" if key == "early_exit" else ""
            lines.append(f"{name:12s} {timing['threads']:>7d} {ms:>22s} {qms['p50']:>8.3f} {qms['p90']:>8.3f} "
                         f"{qms['p99']:>8.3f} {speed:>9s}")
    ee = result["early_exit"]
    lines.append(f"mean exit layer {ee['mean_exit_layer']:.2f}, layer speed-up {ee['layer_speedup']:.2f}×")
    quality = result.get("quality")
    if quality:
        gate = {True: "pass", False: "FAIL", None: "n/a"}[quality["pass"]]
        retention = "—" if quality["retention"] is None else f"{quality['retention'] * 100:.2f} %"
        lines.append(f"{quality['metric']}: {quality['early_exit']:.4f} vs its backbone {quality['backbone']:.4f} "
                     f"(retention {retention}; gate ≥ {quality['target'] * 100:g} %: {gate})")
    match = result.get("decisions_match")
    if match:
        lines.append(f"decisions match the offline replay: {match['matched']} / {match['total']}")
    if result.get("breakdown"):
        b = result["breakdown"]
        lines.append("breakdown (ms/query, one profiled pass): " + ", ".join(
            f"{k} {v:.3f}" for k, v in b["ms_per_query"].items()) + f"; total {b['total_ms_per_query']:.3f}")
    for r in result.get("batched", []):
        lines.append(f"batch {r['batch']} × {r['threads']} thread(s): early exit "
                     f"{r['early_exit_samples_per_s']['mean']:.1f} samples/s vs its backbone "
                     f"{r['backbone_samples_per_s']['mean']:.1f} → {r['throughput_speedup']:.2f}×")
    return "\n".join(lines)
