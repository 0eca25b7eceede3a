"""A run's Table 5 job: each method at the operating point its Table 1 row reports, timed live at batch 1 (and, with
``latency.batches``, in batches that samples leave as they exit) against its own plain backbone (same weights, no
heads) in the same process, under the protocol of ``eebench.inference.latency``, into one JSON that the report
renders. One job per run, methods one after another, so no two timings share the machine.

``latency.runtime`` names one runtime or a list (``[eager, onnxruntime]``): every method is timed under each, against
its backbone under the same one. The first runtime's results sit under ``methods`` (the one-runtime shape), the
others' under ``runtime_methods[<runtime>]``; ``runtimes`` lists them in order.

The job reads a spec (:func:`latency_spec`) holding only what the timings depend on — each method's policy, files and
the timing settings — so that editing another method or an ablation does not rerun it."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch

from ..errors import fail
from ..io import read_json, write_json
from ..plan import Plan, costs_path, latency_path
from .macs import CONVENTIONS, cumulative_macs
from .speedup import expected_macs


def latency_methods(plan: Plan) -> list[str]:
    """The methods Table 5 times: ``latency.methods``, else every Table 1 method, in the config's order."""
    wanted = (plan.config.get("latency") or {}).get("methods") or list(plan.methods)
    unknown = [m for m in wanted if m not in plan.methods]
    if unknown:
        raise fail(f"latency.methods names {unknown}, which the run does not report",
                   f"pick from the run's methods: {', '.join(plan.methods)}")
    return list(wanted)


def latency_seed(plan: Plan) -> int:
    seed = (plan.config.get("latency") or {}).get("seed", plan.seeds[0])
    if seed not in plan.seeds:
        raise fail(f"latency.seed {seed} is not one of the run's seeds {plan.seeds}", "pick one of them")
    return seed


def latency_checkpoint_path(plan: Plan, method: str) -> str:
    return plan.final_checkpoint(method, latency_seed(plan))


def latency_caches(plan: Plan, method: str) -> list[str]:
    """The exit-logit caches (one per seed) the operating point is chosen on."""
    return [plan.final_logits(method, s) for s in plan.seeds]


def check_latency_settings(plan: Plan) -> None:
    """What the schema cannot say: the runtime is registered, and graph mode (one captured input shape) is not asked
    of text, whose queries keep their own lengths."""
    from ..backbones import BACKBONES
    from ..inference.runtime import runtime_names

    cfg = plan.config["latency"]
    names = runtime_names(cfg["runtime"])
    if cfg["mode"] == "graph" and BACKBONES.get(plan.config["backbone"]["name"]).family == "bert":
        raise fail("latency.mode graph captures one input shape, but text queries are timed at their own lengths",
                   "use latency.mode: eager for a text run")
    if cfg["mode"] == "graph" and names != ["eager"]:
        raise fail(f"latency.mode graph replays the eager model's CUDA graphs, but latency.runtime is {names}",
                   "use latency.runtime: eager with mode graph, or mode eager for other runtimes")
    if "onnxruntime" in names and (cfg["device"] != "cpu" or cfg["dtype"] != "fp32"):
        raise fail(f"latency.runtime onnxruntime runs fp32 on the CPU, but latency has device {cfg['device']!r} and "
                   f"dtype {cfg['dtype']!r}", "set latency.device: cpu and latency.dtype: fp32, or drop onnxruntime")


def latency_spec(plan: Plan) -> dict[str, Any]:
    """Everything the Table 5 job of ``plan`` reads (the DAG passes it as the job's params). A ``retention`` operating
    point read against the backbone row (``report.retention_reference``) adds that row's caches as
    ``retention_base``: the job picks the points Table 1 picks."""
    check_latency_settings(plan)
    methods = latency_methods(plan)
    spec = {"run": plan.run, "seed": latency_seed(plan), "seeds": plan.seeds, "settings": plan.config["latency"],
            "operating_point": plan.config["report"]["operating_point"],
            "macs_convention": plan.config["report"].get("macs_convention", "paper"), "order": methods,
            "methods": {m: {"policy": plan.method(m)["policy"], "checkpoint": latency_checkpoint_path(plan, m),
                            "caches": latency_caches(plan, m), "costs": costs_path(plan.run, plan.cost_canonical[m])}
                        for m in methods}}
    if plan.config["report"]["operating_point"]["rule"] == "retention":
        spec["retention_base"] = retention_base(plan)
    return spec


def latency_items(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every method item whose caches and costs the job reads: the timed methods and the retention's backbone row."""
    return [*spec["methods"].values(), *([spec["retention_base"]] if spec.get("retention_base") else [])]


def retention_base(plan: Plan) -> dict[str, Any] | None:
    """The backbone row a retention is read against, as the caches and policy its curve is recomputed from; None
    where the reference is each method's own full depth (asked for, or no backbone row)."""
    from ..report.retention import backbone_row, requested

    row = backbone_row(plan.methods, lambda m: bool(plan.method(m)["exit_layers"]))
    if requested(plan.config["report"]) == "own" or row is None:
        return None
    return {"method": row, "policy": plan.method(row)["policy"], "caches": latency_caches(plan, row),
            "costs": costs_path(plan.run, plan.cost_canonical[row])}


def _as_swept(value: Any, candidates: list[Any]) -> Any:
    """The sweep's own value (its type: an int patience stays an int) for a value read back from a curve."""
    for c in candidates:
        if c == value or (isinstance(c, (int, float)) and isinstance(value, (int, float))
                          and math.isclose(float(c), float(value), rel_tol=1e-9, abs_tol=1e-12)):
            return c
    return value


def _curves(item: dict[str, Any], seeds: list[int]) -> pd.DataFrame:
    """A method's per-seed operating curves, recomputed from its exit-logit caches by the curves job's function."""
    from ..curves import operating_curve
    from ..evaluate import load_cache

    costs = read_json(item["costs"])
    return pd.concat([operating_curve(load_cache(path), item["policy"], costs).assign(seed=seed)
                      for seed, path in zip(seeds, item["caches"])], ignore_index=True)


def operating_policy(item: dict[str, Any], seeds: list[int], operating_point: dict[str, Any],
                     method: str | None = None, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"name", "params"}`` of a method's reported operating point: ``operating_point``'s rule on its mean curve
    over seeds, exactly as Table 1 picks it (a retention read against ``base``, the backbone row's
    :func:`retention_base`, where given). The curves are recomputed from the exit-logit caches with the function the
    curves job runs, so this job depends on its own methods' models (and that row's) only."""
    from ..report.retention import Reference
    from ..report.summary import operating_params

    spec = item["policy"]
    per_seed = _curves(item, seeds)
    reference = Reference("backbone", base["method"], _curves(base, seeds)).value(per_seed) if base else None
    point = operating_params(per_seed, {"operating_point": operating_point}, method, reference)
    sweep = spec.get("sweep") or {}
    params = {**(spec.get("params") or {}), **{k: _as_swept(v, sweep.get(k, [])) for k, v in point.items()}}
    return {"name": spec["name"], "params": params}


def add_macs(result: dict[str, Any], costs: dict[str, Any]) -> None:
    """Expected MACs and MAC speed-up of the timed queries' decisions, in every convention, into ``result``; text
    also at each query's real length (what a batch-1 query computes), as ``*_real``."""
    from ..curves import backbone_macs, per_sample_macs

    counts = torch.tensor(result["early_exit"]["compute_rows"])
    rows = torch.repeat_interleave(torch.arange(len(counts)), counts)
    ee = result["early_exit"]
    ee["expected_macs"] = {c: expected_macs(rows, cumulative_macs(costs, c)) for c in CONVENTIONS}
    ee["mac_speedup"] = {c: costs["macs"][c]["backbone"] / ee["expected_macs"][c] for c in CONVENTIONS}
    result["backbone"]["expected_macs"] = {c: costs["macs"][c]["backbone"] for c in CONVENTIONS}
    if result.get("tokens"):
        lengths = torch.tensor(result["tokens"])
        per_query = torch.tensor(ee["per_query_compute_row"])
        ee["expected_macs_real"], ee["mac_speedup_real"], result["backbone"]["expected_macs_real"] = {}, {}, {}
        for c in CONVENTIONS:
            spent = float(per_sample_macs(costs, c, lengths)[per_query, torch.arange(len(lengths))].mean())
            plain = float(backbone_macs(costs, c, lengths).mean())
            ee["expected_macs_real"][c], ee["mac_speedup_real"][c] = spent, plain / spent
            result["backbone"]["expected_macs_real"][c] = plain


def runtime_results(latency: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(runtime, {method: result}) for every runtime a latency JSON holds, in order (a JSON written before runtime
    lists holds one, under ``methods``)."""
    methods = latency["methods"]
    if not methods:
        return []
    names = latency.get("runtimes") or [next(iter(methods.values()))["runtime"]["name"]]
    return [(name, methods if k == 0 else latency["runtime_methods"][name]) for k, name in enumerate(names)]


def _log_result(result: dict[str, Any], conv: str, log) -> None:
    rt = result["runtime"]
    macs = result["early_exit"].get("mac_speedup_real", result["early_exit"]["mac_speedup"])[conv]
    log(f"  {rt['name']} ({rt['version']}, exit check: {rt['exit_check']})")
    for timing in result["timings"]:
        ee, bb = timing["early_exit"]["ms_per_query"], timing["backbone"]["ms_per_query"]
        log(f"    {timing['threads']} thread(s): {ee['mean']:.3f} ± {ee['std']:.3f} ms/query vs its backbone "
            f"{bb['mean']:.3f} ± {bb['std']:.3f} → {timing['wallclock_speedup']:.2f}× (MACs {macs:.2f}×; real ÷ MAC "
            f"{timing['wallclock_speedup'] / macs:.2f})")
    match = result["decisions_match"]
    log(f"    decisions match the offline replay: {match['matched']} / {match['total']}")
    for r in result["batched"]:
        log(f"    batch {r['batch']}, {r['threads']} thread(s): {r['early_exit_samples_per_s']['mean']:.1f} vs "
            f"{r['backbone_samples_per_s']['mean']:.1f} samples/s → {r['throughput_speedup']:.2f}×")


def timed_cache(item: dict[str, Any], seeds: list[int], seed: int) -> str:
    """The exit-logit cache of the timed seed's model (the decisions match replays it)."""
    return item["caches"][seeds.index(seed)]


def run_latency(spec: dict[str, Any], log=print, cores: int | None = None) -> dict[str, Any]:
    """Time every method of a :func:`latency_spec` and write ``latency_path(run)``; returns what it wrote.
    ``cores``: the job's cores, what thread setting ``all`` means (capped by the cores the process may run on)."""
    from ..inference.latency import latency_checkpoint, resolve_threads
    from ..inference.runtime import UnsupportedModel, runtime_names, runtime_version
    from ..provenance import provenance

    cfg, conv = spec["settings"], spec["macs_convention"]
    names = runtime_names(cfg["runtime"])
    out: dict[str, Any] = {"run": spec["run"], "seed": spec["seed"], "settings": cfg, "macs_convention": conv,
                           "order": spec["order"], "runtimes": names, "methods": {}}
    if len(names) > 1:
        out["runtime_methods"] = {name: {} for name in names[1:]}
    for i, method in enumerate(spec["order"], 1):
        item = spec["methods"][method]
        policy = operating_policy(item, spec["seeds"], spec["operating_point"], method, spec.get("retention_base"))
        log(f"[{i}/{len(spec['order'])}] {method}: {policy['name']} {policy['params']}")
        for k, runtime in enumerate(names):
            try:
                result = latency_checkpoint(item["checkpoint"], policy, device=cfg["device"], dtype=cfg["dtype"],
                                            passes=cfg["passes"], limit=cfg["limit"], mode=cfg["mode"],
                                            schedule=cfg["schedule"], decide=cfg["decide"],
                                            threads=resolve_threads(cfg["threads"], cores),
                                            runtime=runtime, batches=cfg["batches"], gate=cfg["gate"],
                                            cache=timed_cache(item, spec["seeds"], spec["seed"]))
            except UnsupportedModel as err:  # e.g. an operator the exporter cannot express: that pair is not run
                result = {"skipped": str(err), "runtime": {"name": runtime, "version": runtime_version(runtime)},
                          "policy_spec": policy}
                log(f"  {runtime}: not run ({err})")
            else:
                add_macs(result, read_json(item["costs"]))
                result["swept"] = sorted(item["policy"].get("sweep") or {})  # what Table 1's operating point names
                result.pop("provenance", None)  # one for the whole job, below
                _log_result(result, conv, log)
            (out["methods"] if k == 0 else out["runtime_methods"][runtime])[method] = result
    first = next((r for _, results in runtime_results(out) for r in results.values() if "skipped" not in r), {})
    out["provenance"] = provenance(device=first.get("device", "cpu"), dtype=cfg["dtype"], seed=spec["seed"])
    write_json(latency_path(spec["run"]), out)
    return out
