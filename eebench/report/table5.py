"""Table 5: wall-clock latency at batch 1, each method at its Table 1 operating point against its own plain backbone,
beside the MACs and layer speed-ups it was expected to buy (and the real ÷ MAC ratio: how much of the MAC saving
reached the clock), with the protocol's percentiles, quality gate and decisions match; ``table5_breakdown`` (where
the time goes) and ``table5_batched`` (batched-exit throughput) beside it. One row per method, thread setting and
runtime (``latency.runtime`` may list several: each method against its backbone under the same runtime). The
measurements come from ``eebench.measure.wallclock`` (protocol: ``eebench.inference.latency``)."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from ..errors import fail
from ..measure.wallclock import runtime_results
from .figures import finish_axes, save_figure
from .style import method_style
from .summary import format_setting
from .tables import write_table

GATE_TEXT = {True: "pass", False: "FAIL", None: "n/a"}
CHECK_TEXT = {"policy": "the policy's own torch code on the rows so far, per exit (the paper's per-exit Python check)",
              "rule": "the policy compiled to a numpy rule fed row by row (the exported runner's check, eebench "
                      "export), which decides as the policy does"}


def _runtime(r: dict[str, Any]) -> str:
    return f"{r['runtime']['name']} ({r['runtime']['version']})"


def _macs(r: dict[str, Any], conv: str) -> tuple[float, float, bool]:
    """(expected MACs, MAC speed-up, real length?): text at each query's real length, as it was timed."""
    ee = r["early_exit"]
    if "expected_macs_real" in ee:
        return ee["expected_macs_real"][conv], ee["mac_speedup_real"][conv], True
    return ee["expected_macs"][conv], ee["mac_speedup"][conv], False


def _passes(n: int) -> str:
    return f"{n} timed pass{'' if n == 1 else 'es'}"


def _percentiles(q: dict[str, float]) -> str:
    return f"{q['p50']:.3f} / {q['p90']:.3f} / {q['p99']:.3f}"


def _common(method: str, r: dict[str, Any], point: str) -> dict[str, Any]:
    """The columns every raw row of every Table 5 file carries."""
    return {"method": method, "policy": r["policy"], "setting": point, "device": r["device"], "dtype": r["dtype"],
            "mode": r["mode"], "runtime": r["runtime"]["name"], "runtime_version": r["runtime"]["version"],
            "exit_check": r["runtime"].get("exit_check", "policy")}


def table5(latency: dict[str, Any], titles: dict[str, str], out_dir, scale: str,
           order: list[str] | None = None) -> pd.DataFrame:
    """``order``: the methods' order (the JSON's keys are sorted). Rows: every runtime in turn, every thread setting
    in it, every method in that."""
    conv = latency["macs_convention"]
    methods = order or list(latency["methods"])
    groups = [(name, {m: by_method[m] for m in methods}) for name, by_method in runtime_results(latency)]
    timed = [next((r for r in g.values() if "skipped" not in r), None) for _, g in groups]
    if not any(timed):
        raise fail("the latency job timed no method under any runtime",
                   "read results/<run>/logs/latency.log: each method says why it was not run")
    first = next(r for r in timed if r)
    display, raw, breakdown, breakdown_raw, batched, batched_raw, skipped = [], [], [], [], [], [], []
    real = False
    quality0 = first.get("quality") or {}
    metric = quality0.get("metric", "accuracy")
    metric_col = f"{metric[0].upper()}{metric[1:]} (%)"
    gate_col = f"Gate ≥ {quality0.get('target', 0.99) * 100:g} %"
    blocks = [(results, slot) for _, results in groups for slot in range(len(first["timings"]))]
    for results, slot in blocks:
        for method, r in results.items():
            if "skipped" in r:  # a runtime that cannot run this model: one row saying so, under every setting
                if slot == 0:
                    display.append({"Method": titles.get(method, method), "Runtime": _runtime(r), "Threads": "—",
                                    "Operating point": "not run (note)"})
                    raw.append({"method": method, "runtime": r["runtime"]["name"],
                                "runtime_version": r["runtime"]["version"], "skipped": r["skipped"]})
                    skipped.append(f"Not run: {titles.get(method, method)} under {r['runtime']['name']}: "
                                   f"{r['skipped']}")
                continue
            timing = r["timings"][slot]
            ee, bb = timing["early_exit"], timing["backbone"]
            has_exits = len(r["row_layers"]) > 1
            params = r["policy_spec"].get("params") or {}
            point = format_setting({k: params[k] for k in r.get("swept", params) if k in params})
            point = point if has_exits else "full depth"
            macs, mac_speedup, real = _macs(r, conv)
            quality, match = r.get("quality"), r.get("decisions_match")
            display.append({
                "Method": titles.get(method, method), "Runtime": _runtime(r), "Threads": str(timing["threads"]),
                f"MACs (G, {conv}{', real length' if real else ''})": f"{macs / 1e9:.4f}",
                metric_col: f"{quality['early_exit'] * 100:.2f}" if quality else "—",
                "Retention (%)": "—" if not quality or quality["retention"] is None
                else f"{quality['retention'] * 100:.2f}",
                gate_col: GATE_TEXT[quality["pass"]] if quality else "—",
                "Decisions match": f"{match['matched']} / {match['total']}" if match else "—",
                "Latency (ms/query)": f"{ee['ms_per_query']['mean']:.3f} ± {ee['ms_per_query']['std']:.3f}",
                "p50 / p90 / p99 (ms)": _percentiles(ee["query_ms"]),
                "Its backbone (ms/query)": f"{bb['ms_per_query']['mean']:.3f} ± {bb['ms_per_query']['std']:.3f}",
                "Its backbone p50 / p90 / p99 (ms)": _percentiles(bb["query_ms"]),
                "Wall-clock speed-up (×)": f"{timing['wallclock_speedup']:.2f}",
                "MAC speed-up (×)": f"{mac_speedup:.2f}",
                "Real ÷ MAC": f"{timing['wallclock_speedup'] / mac_speedup:.2f}",
                "Layer speed-up (×)": f"{r['early_exit']['layer_speedup']:.2f}",
                "Operating point": point})
            raw.append({**_common(method, r, point), "policy_params": json.dumps(params, sort_keys=True),
                        "threads": timing["threads"], "queries": r["protocol"]["queries"],
                        "timed_passes": r["protocol"]["timed_passes"], "seeds": 1,
                        "latency_ms": ee["ms_per_query"]["mean"], "latency_std_ms": ee["ms_per_query"]["std"],
                        **{f"latency_{k}_ms": ee["query_ms"][k] for k in ("p50", "p90", "p99")},
                        "backbone_latency_ms": bb["ms_per_query"]["mean"],
                        "backbone_latency_std_ms": bb["ms_per_query"]["std"],
                        **{f"backbone_latency_{k}_ms": bb["query_ms"][k] for k in ("p50", "p90", "p99")},
                        "wallclock_speedup": timing["wallclock_speedup"], "mac_speedup": mac_speedup,
                        "real_over_mac": timing["wallclock_speedup"] / mac_speedup,
                        "mac_speedup_real_length": real, "layer_speedup_mean": r["early_exit"]["layer_speedup"],
                        "accuracy_mean": r["early_exit"].get("accuracy"),
                        "metric": quality["metric"] if quality else None,
                        "metric_value": quality["early_exit"] if quality else None,
                        "backbone_metric_value": quality["backbone"] if quality else None,
                        "retention": quality["retention"] if quality else None,
                        "gate": quality["target"] if quality else None,
                        "gate_pass": quality["pass"] if quality else None,
                        "decisions_matched": match["matched"] if match else None,
                        "decisions_total": match["total"] if match else None,
                        **{f"expected_macs_{c}_mean": v for c, v in r["early_exit"]["expected_macs"].items()},
                        **{f"expected_macs_{c}_real_mean": v
                           for c, v in r["early_exit"].get("expected_macs_real", {}).items()},
                        "macs_convention": conv})
            if slot == 0:
                breakdown_rows(method, r, point, titles, breakdown, breakdown_raw)
                batched_rows(method, r, point, titles, mac_speedup, batched, batched_raw)
    raw_df = pd.DataFrame(raw)
    if skipped:  # counts stay integers beside the not-run rows' blanks
        for col in ("threads", "queries", "timed_passes", "seeds"):
            raw_df[col] = raw_df[col].astype("Int64")
    # a runtime's exit check is stated from a method with exits: a model without any answers at its one row, no check
    checked = [next((r for r in g.values() if "skipped" not in r and len(r.get("row_layers", ())) > 1), t)
               for (_, g), t in zip(groups, timed)]
    notes = protocol_notes(latency, first, scale, conv, real, metric, [r for r in checked if r]) + skipped
    write_table(pd.DataFrame(display).fillna("—"), raw_df, out_dir / "table5", "Table 5: execution time at batch 1",
                notes)
    if breakdown:
        write_table(pd.DataFrame(breakdown), pd.DataFrame(breakdown_raw), out_dir / "table5_breakdown",
                    "Table 5 (breakdown): where a batch-1 query's time goes", [
                        f"Scale: {scale}; the models, operating points and queries of Table 5.",
                        f"One profiled pass over the timed queries after the timed passes, at "
                        f"{first['breakdown']['threads']} thread(s); timer: {first['breakdown']['timer']}. "
                        "Segments: the backbone's blocks between exits (the embedding in the first); heads: the exit "
                        "heads (and BERxiT's learning-to-exit module); final: the final classifier; exit checks: "
                        "storing an exit's logits and running the policy on the rows so far, with the read of its "
                        "decision; other: the rest of the profiled pass (the loop, and the probe's own cost).",
                        "The profiled pass is slower than a timed one by the probe's synchronisations and clock "
                        "reads; compare the components with one another and with the timed mean beside them.",
                        "Per runtime: eager times each piece as a PyTorch call; onnxruntime runs each row as one "
                        "graph (the segment, the embedding in the first, and its head in one session run), so its "
                        "heads are counted in Segments, and its exit checks are the numpy rule's (Table 5's note)."])
    if batched:
        write_table(pd.DataFrame(batched), pd.DataFrame(batched_raw), out_dir / "table5_batched",
                    "Table 5 (batched): early-exit throughput with samples leaving the batch", batched_notes(first,
                                                                                                        scale))
    shown = raw_df[raw_df["wallclock_speedup"].notna()]
    plot_wallclock(shown[shown["threads"] == shown["threads"].iloc[0]], titles, out_dir / "fig5_wallclock",
                   f"{scale}; {first['device']}, {first['mode']}, {shown['threads'].iloc[0]} thread(s)")
    return raw_df


def breakdown_rows(method, r, point, titles, display, raw) -> None:
    b = r.get("breakdown")
    if not b:
        return
    ms = b["ms_per_query"]
    timed = next(t for t in r["timings"] if t["threads"] == b["threads"])["early_exit"]["ms_per_query"]["mean"]
    display.append({"Method": titles.get(method, method), "Runtime": _runtime(r), "Threads": str(b["threads"]),
                    **{label: "in segments" if key in ("heads", "final") and b.get("heads_in_segments")
                       else f"{ms[key]:.3f}" for key, label in (
                        ("segments", "Segments (ms)"), ("heads", "Exit heads (ms)"), ("final", "Final classifier (ms)"),
                        ("checks", "Exit checks (ms)"), ("other", "Other (ms)"))},
                    "Profiled total (ms/query)": f"{b['total_ms_per_query']:.3f}",
                    "Timed mean (ms/query)": f"{timed:.3f}", "Operating point": point})
    raw.append({**_common(method, r, point), "threads": b["threads"], **{f"{k}_ms": v for k, v in ms.items()},
                "profiled_total_ms": b["total_ms_per_query"], "timed_mean_ms": timed, "timer": b["timer"]})


def batched_rows(method, r, point, titles, mac_speedup, display, raw) -> None:
    for b in r.get("batched", []):
        ee, bb, same = b["early_exit_samples_per_s"], b["backbone_samples_per_s"], b["same_as_batch1"]
        display.append({"Method": titles.get(method, method), "Runtime": _runtime(r), "Batch": str(b["batch"]),
                        "Threads": str(b["threads"]),
                        "Early exit (samples/s)": f"{ee['mean']:.1f} ± {ee['std']:.1f}",
                        "Its backbone (samples/s)": f"{bb['mean']:.1f} ± {bb['std']:.1f}",
                        "Throughput speed-up (×)": f"{b['throughput_speedup']:.2f}",
                        "MAC speed-up (×)": f"{mac_speedup:.2f}",
                        "Same as batch 1": f"{same['matched']} / {same['total']}",
                        "Operating point": point})
        raw.append({**_common(method, r, point), "batch": b["batch"], "threads": b["threads"],
                    "queries": b["queries"], "batches": b["batches"], "samples_per_s": ee["mean"],
                    "samples_per_s_std": ee["std"], "backbone_samples_per_s": bb["mean"],
                    "backbone_samples_per_s_std": bb["std"], "throughput_speedup": b["throughput_speedup"],
                    "mac_speedup": mac_speedup, "same_as_batch1": same["matched"], "queries_compared": same["total"]})


def protocol_notes(latency: dict[str, Any], first: dict[str, Any], scale: str, conv: str, real: bool,
                   metric: str, per_runtime: list[dict[str, Any]] | None = None) -> list[str]:
    """``per_runtime``: one result of each runtime (the first method's), for the runtime lines."""
    proto, prov = first["protocol"], latency.get("provenance", {})
    threads = ", ".join(str(t["threads"]) for t in first["timings"])
    tokens = first.get("tokens")
    size = (f"text at each sentence's own length ({min(tokens)}–{max(tokens)} tokens, mean "
            f"{sum(tokens) / len(tokens):.1f}; no padding at batch 1)" if tokens
            else "images at the model's input size")
    match = first.get("decisions_match")
    gate = (first.get("quality") or {}).get("target", 0.99)
    return [
        f"Scale: {scale}; seed {latency['seed']}'s models.",
        f"Queries: the first {proto['queries']} evaluation samples in the split's own order (the same for every "
        f"method and its backbone), {size}.",
        f"Protocol: batch 1; warm-up of every exit depth (the first {proto['warmup_queries_per_depth']} queries with "
        "the exit forced at each row in turn), then one pass of every query through the method and through its "
        f"backbone; then {_passes(proto['timed_passes'])}, the method's and its backbone's interleaved, each "
        "query timed on its own (perf_counter, the device synchronised around it). Latency: mean ± std over passes "
        "of each pass's mean ms per query (the paper's figure: 50 passes over CIFAR-100's test set on an RTX 3090); "
        f"p50 / p90 / p99 over every timed query ({proto['percentiles']}, as MLPerf Inference reports). Thread "
        f"settings: {threads} (each timed in turn).",
        f"Device: {first['device']} ({prov.get('device', '?')}), {first['dtype']}, {first['mode']} mode.",
        *runtime_notes(per_runtime or [first]),
        "Its backbone: the same weights without exit heads, full depth, run by the same runtime in the same job; "
        "wall-clock speed-up = its backbone's mean ms / the method's; real ÷ MAC = wall-clock speed-up / MAC "
        "speed-up (1: every MAC saved shows up in milliseconds).",
        f"Quality: {metric} of the timed queries at the operating point; retention = that / its backbone's {metric} "
        f"on the same queries; gate: pass when retention ≥ {gate * 100:g} % (MLPerf's accuracy target), n/a when "
        "the backbone's metric is ≤ 0.",
        "Decisions match: queries whose live exit row and prediction, in every timed pass, equal the offline replay "
        "(the policy at the same operating point on the exit-logit cache of the same samples"
        + (f", {match['total']} queries" if match else "") + "); a mismatch is a query whose score sits within "
        "rounding of the threshold (the cache was computed in padded batches, under the training job's precision: "
        "a cache written under bf16 autocast can differ from the fp32 live logits of either runtime; onnxruntime's "
        "fp32 graphs differ from eager's logits by about 1e-6).",
        f"MAC speed-up: its backbone's MACs / expected MACs of the timed queries ({conv} convention, heads charged"
        + ("; each query at its own token count, as timed" if real else "") + "); layer speed-up: Eq. 17.",
        "Where the time goes: table5_breakdown; throughput with samples leaving the batch: table5_batched "
        "(when latency.batches is set).",
        "Batch-1 latency of a small model is dominated by per-layer overhead, not arithmetic: compare the "
        "wall-clock column with the MAC column, and read absolute times only at the scale stated here."]


def runtime_notes(results: list[dict[str, Any]]) -> list[str]:
    """One line per runtime: its version and the batch-1 exit check it ran."""
    lines = []
    for r in results:
        rt = r["runtime"]
        what = {"eager": "the pieces in PyTorch eager mode, one module call at a time (the paper's path)",
                "onnxruntime": "each row (its segment, the embedding in the first, and its head) as one ONNX "
                               "graph run by an onnxruntime session on the CPU, the plain backbone as one graph, "
                               "intra-op threads = the thread setting"}.get(rt["name"], "a registered runtime (eebench list runtimes)")
        check = rt.get("exit_check", "policy")
        lines.append(f"Runtime {_runtime(r)}: {what}; batch-1 exit check: {CHECK_TEXT.get(check, check)}.")
    return lines


def batched_notes(first: dict[str, Any], scale: str) -> list[str]:
    b = first["batched"][0]
    return [
        f"Scale: {scale}; the models, operating points and {b['queries']} queries of Table 5.",
        "Batching policy: consecutive queries in the fixed order, in batches of B (the last one partial), each "
        "padded to its longest query (text); after every exit the samples whose decision settled leave the batch "
        "(live.batched_exit: the hidden states, the padding mask and the attention mask keep the remaining rows, "
        "and positions no remaining row uses are cut), the rest run on. Its backbone runs the same batches at full "
        "depth, by the same runtime.",
        "Protocol: per batch size and thread setting, warm-up (the first batch with the exit forced at each row, "
        f"then one pass), then {_passes(first['protocol']['timed_passes'])}, the method's and its backbone's "
        "interleaved; samples/s = queries / mean pass time (± the std of each pass's rate); throughput speed-up = "
        "its backbone's mean pass time / the method's.",
        "Same as batch 1: queries whose batched exit row and prediction equal the batch-1 live run's.",
        "MAC speed-up: as in Table 5 (the same decisions)."]


def plot_wallclock(raw: pd.DataFrame, titles: dict[str, str], stem, scale: str) -> None:
    """Where each method's MAC saving went: wall-clock speed-up against MAC speed-up, with the line where every
    saved MAC would show up in milliseconds. Several runtimes: the first's markers filled, the others' open."""
    import matplotlib.pyplot as plt

    runtimes = list(dict.fromkeys(raw["runtime"]))

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=150)
    top = max(1.0, float(raw["mac_speedup"].max()), float(raw["wallclock_speedup"].max())) * 1.08
    ax.plot([0, top], [0, top], color="grey", lw=1, label="real = MAC speed-up")
    ax.plot([0, top], [0, 0.9 * top], color="grey", lw=1, ls=":", label="real = 0.9 × MAC")
    ax.axhline(1.0, color="black", lw=0.6, ls="--")
    for r in raw.itertuples():
        style = method_style(r.method)
        # relative spread of a ratio of two timed means, from their std over passes
        rel = ((r.latency_std_ms / r.latency_ms) ** 2 + (r.backbone_latency_std_ms / r.backbone_latency_ms) ** 2) ** 0.5
        label = titles.get(r.method, r.method) + (f" ({r.runtime})" if len(runtimes) > 1 else "")
        ax.errorbar(r.mac_speedup, r.wallclock_speedup, yerr=rel * r.wallclock_speedup, color=style["color"],
                    marker=style["marker"] or "o", ms=6, capsize=2, ls="none", label=label,
                    mfc=style["color"] if r.runtime == runtimes[0] else "none")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    finish_axes(ax, "MAC speed-up (×, heads charged)", "wall-clock speed-up at batch 1 (×, vs its own backbone)",
                "Figure 5: MAC savings vs milliseconds saved", scale, "upper left")
    save_figure(fig, stem)
