#!/usr/bin/env python
"""GPU latency benchmark of live early exit on ViT-B/16-size models (random init; no weights needed).

UNMEASURED: written on a machine without a GPU; its numbers, and the CUDA-graph paths it exercises, have not been seen
yet. For LGViT heads and for ``mlp`` heads at LGViT's exits (blocks 4..11) it measures, at batch 1 (Table 5 protocol:
one warm-up pass, then timed passes; ms/img mean ± std over passes):

1. the plain backbone, eager and as one whole-model CUDA graph (the reference of every real speed-up below);
2. exits forced at each row, the full model, and a realistic mixed exit histogram, on each path: ``eager`` (as in
   the paper), and ``GraphedExits`` as ``graph/<schedule>/<decide>``: one CUDA graph per segment, where ``sync``
   waits for each exit check and ``overlap`` runs one segment ahead, or ``conditional``: the whole image as one
   CUDA graph whose later segments sit in IF nodes on the device decision (one launch and one sync per image);
   ``host`` copies the exit logits and decides on the CPU, ``device`` decides inside the graph and copies one packed
   vector. Each gets the real speed-up (graph backbone ms / path ms), the MAC speed-up of the policy's decisions
   (``cost_summary`` + ``cumulative_macs``, heads charged), the MAC speed-up of the segments actually executed
   (speculation included) and the layer speed-up. A path this torch cannot capture (``conditional`` needs CUDA-graph
   conditional nodes) is reported as skipped, with the reason, and left out of the comparison;
3. batched throughput (batch 64 and 256) with per-sample exits (mixed histogram) vs the plain backbone.

The last lines name, per model, the path with the best real speed-up at the mixed histogram and its real ÷ MAC
speed-up (target 0.9).

Exits are set with a real policy: DeeBERT's entropy rule with one threshold per exit, calibrated on the model's own
scores (forced: fire at one row only; mixed: per-row quantiles that give the target histogram). The histogram that
live inference actually realised is what the MAC speed-up is computed from.

    python workflow/scripts/latency_gpu.py [--dtype fp16] [--images 100] [--passes 10] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from eebench.measure.forced_exits import calibrated, forced

# LGViT's 8 exits + final classifier; mean exit layer 6.69 → 1.79× layer speed-up (near the paper's 1.72× point)
MIXED = [0.30, 0.15, 0.12, 0.10, 0.08, 0.06, 0.05, 0.04, 0.10]


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--images", type=int, default=100, help="batch-1 images per pass")
    p.add_argument("--passes", type=int, default=10, help="timed passes after one warm-up pass (paper: 50)")
    p.add_argument("--batches", type=int, nargs="+", default=[64, 256], help="batch sizes for throughput")
    p.add_argument("--iters", type=int, default=10, help="timed batches per throughput point")
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--histogram", type=json.loads, default=MIXED,
                   help="JSON list: fraction of samples answering at each row (8 exits + final)")
    p.add_argument("--heads", nargs="+", default=["lgvit", "mlp"], choices=["lgvit", "mlp"])
    p.add_argument("--backbone", default="vit_b16", type=backbone_arg,
                   help='a 12-block backbone preset (random init), or a JSON backbone spec: {"name": ..., overrides}')
    p.add_argument("--cpu-dry-run", action="store_true",
                   help="check the script's plumbing on a CPU: graph paths run their eager stand-ins (same schedules "
                        "and segment code, no CUDA graphs), so every timing is meaningless")
    p.add_argument("--json", help="write every number (with provenance) here")
    return p.parse_args(argv)


def backbone_arg(text: str) -> dict:
    spec = json.loads(text) if text.lstrip().startswith("{") else {"name": text}
    if "name" not in spec:
        raise argparse.ArgumentTypeError('a JSON backbone spec needs a "name"')
    return spec


def entropy_rows(model, x: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """[rows-1, N] softmax entropies of the internal exits (offline, full-depth)."""
    from eebench.policies.base import entropy

    with torch.no_grad():
        return torch.cat([entropy(model(x[i:i + chunk]).stacked()[:-1].float()) for i in range(0, len(x), chunk)],
                         dim=1).cpu()


def timed(run, inputs, passes, device) -> tuple[dict, list]:
    """Table 5's timing of the images one at a time: a warm-up pass (its outputs are returned), then ``passes``
    timed passes → ms per image (mean ± std over passes) and p50/p90/p99 over every timed image."""
    from eebench.inference.latency import time_queries
    from eebench.measure.latency_stats import latency_summary

    queries = [inputs[i:i + 1] for i in range(len(inputs))]
    _, outs = time_queries(run, queries, device)
    summary = latency_summary([time_queries(run, queries, device)[0] for _ in range(passes)])
    return {**summary["ms_per_query"], **{k: summary["query_ms"][k] for k in ("p50", "p90", "p99")}}, outs


def throughput(run, x: torch.Tensor, iters: int) -> float:
    from eebench.inference.latency import sync

    run(x)  # warm-up
    sync(x.device)
    start = time.perf_counter()
    for _ in range(iters):
        run(x)
    sync(x.device)
    return iters * len(x) / (time.perf_counter() - start)


# the CUDA-graph paths: name → (schedule, decide) of GraphedExits
GRAPH_PATHS = {"graph/sync/host": ("sync", "host"), "graph/sync/device": ("sync", "device"),
               "graph/overlap/device": ("overlap", "device"), "graph/overlap/host": ("overlap", "host"),
               "graph/conditional/device": ("conditional", "device")}
TARGET = 0.9  # acceptance: real speed-up ÷ MAC speed-up at the mixed histogram


@torch.no_grad()
def bench(heads: str, args, device, dtype) -> dict:
    from eebench.build import build_model
    from eebench.errors import EEBenchError
    from eebench.inference import batched_exit, early_exit
    from eebench.inference.graphs import GraphedExits, GraphedForward
    from eebench.measure.macs import cost_summary, cumulative_macs, example_input
    from eebench.measure.speedup import expected_macs
    from eebench.recipes import resolve_method

    method = resolve_method("lgvit", {} if heads == "lgvit" else {"heads": {"type": "mlp"}}, 12, {}, family="vit")
    backbone = args.backbone
    costs = cost_summary(build_model(backbone, method, args.classes, pretrained=False, attn_implementation="eager"))
    cumulative = {conv: cumulative_macs(costs, conv) for conv in ("paper", "full")}
    plain_macs = {conv: costs["macs"][conv]["backbone"] for conv in ("paper", "full")}
    model = build_model(backbone, method, args.classes, pretrained=False).to(device=device, dtype=dtype).eval()
    layers, rows, depth = model.row_layers, len(model.row_layers), model.backbone.num_layers
    if len(args.histogram) != rows:
        sys.exit(f"latency_gpu.py: --histogram has {len(args.histogram)} entries for {rows} rows — give one per row")
    g = torch.Generator(device="cpu").manual_seed(0)
    shape = tuple(example_input(model).shape[1:])
    x = torch.randn(args.images, *shape, generator=g).to(device=device, dtype=dtype)
    mixed = calibrated(entropy_rows(model, x), args.histogram)
    points = [(f"forced row {r} (block {layers[r]})", forced(rows, r)) for r in range(rows - 1)]
    points += [("full model (every head, no exit)", forced(rows, rows - 1)), ("mixed", mixed)]

    if args.cpu_dry_run:  # eager stand-ins with the graph classes' interfaces
        from eebench.inference.pipeline import StagedExits

        exits_class, forward_class = StagedExits, (lambda fn, example: fn)
    else:
        exits_class, forward_class = GraphedExits, GraphedForward
    plain_graph = forward_class(model.backbone, x[:1])
    backbone_ms = {"eager": timed(lambda xi: model.backbone(xi), x, args.passes, device)[0],
                   "graph": timed(plain_graph, x, args.passes, device)[0]}
    graphed = {decide: exits_class(model, x[:1], decide=decide) for decide in ("host", "device")}

    def eager_path(policy):
        return lambda xi: (early_exit(model, policy, xi), None)

    def graph_path(schedule, decide):
        exits = graphed[decide]
        return lambda policy: (lambda xi: (exits(xi, policy, schedule=schedule), exits.executed))

    paths = {"eager": eager_path, **{name: graph_path(*how) for name, how in GRAPH_PATHS.items()}}
    out: dict = {"backbone": backbone["name"], "backbone_spec": backbone, "row_layers": layers, "macs_backbone": plain_macs,
                 "batch1": {"backbone_ms": backbone_ms, "paths": {}, "skipped": {}}, "throughput": {}}
    eager_compute: dict[str, torch.Tensor] = {}
    for name, path in paths.items():
        res = {}
        for label, policy in points:
            try:
                ms, outs = timed(path(policy), x, args.passes, device)
            except EEBenchError as error:  # e.g. no conditional graph nodes in this torch: skip the whole path
                out["batch1"]["skipped"][name] = str(error)
                print(f"latency_gpu.py: skipping {name}: {error}", file=sys.stderr)
                break
            compute = torch.cat([d.compute_index.cpu() for d, _ in outs])
            executed = torch.tensor([int(c) + 1 if e is None else e for (_, e), c in zip(outs, compute)])
            eager_compute.setdefault(label, compute)
            res[label] = {"ms": ms, "real_speedup": backbone_ms["graph"]["mean"] / ms["mean"],
                          "layer_speedup": float(depth / torch.tensor(layers)[compute].double().mean()),
                          **{f"mac_speedup_{c}": plain_macs[c] / expected_macs(compute, cumulative[c])
                             for c in cumulative},
                          **{f"executed_mac_speedup_{c}": plain_macs[c] / expected_macs(executed - 1, cumulative[c])
                             for c in cumulative},
                          "mean_segments": float(executed.double().mean()),
                          "same_exits_as_eager": float((compute == eager_compute[label]).double().mean()),
                          "histogram": torch.bincount(compute, minlength=rows).tolist()}
            if name == "eager":  # the paper's figure: eager early exit against the eager backbone
                res[label]["real_speedup_vs_eager_backbone"] = backbone_ms["eager"]["mean"] / ms["mean"]
        if name not in out["batch1"]["skipped"]:
            out["batch1"]["paths"][name] = res
    for batch in args.batches:
        xb = torch.randn(batch, *shape, generator=g).to(device=device, dtype=dtype)
        policy = calibrated(entropy_rows(model, xb), args.histogram)
        compute = batched_exit(model, policy, xb).compute_index.cpu()
        plain_ips = throughput(model.backbone, xb, args.iters)
        ee_ips = throughput(lambda v, p=policy: batched_exit(model, p, v), xb, args.iters)
        mac = plain_macs["paper"] / expected_macs(compute, cumulative["paper"])
        out["throughput"][batch] = {"backbone_img_s": plain_ips, "early_exit_img_s": ee_ips,
                                    "real_speedup": ee_ips / plain_ips, "mac_speedup_paper": mac,
                                    "histogram": torch.bincount(compute, minlength=rows).tolist()}
    out["mixed_best"] = best_mixed(out["batch1"]["paths"])
    return out


def best_mixed(paths: dict) -> dict:
    """The path with the highest real speed-up at the mixed histogram, and its real ÷ MAC (paper convention)."""
    name = max(paths, key=lambda p: paths[p]["mixed"]["real_speedup"])
    mixed = paths[name]["mixed"]
    return {"path": name, "real_speedup": mixed["real_speedup"], "mac_speedup_paper": mixed["mac_speedup_paper"],
            "real_over_mac": mixed["real_speedup"] / mixed["mac_speedup_paper"], "target": TARGET}


def report(name: str, res: dict) -> None:
    fmt = lambda m: f"{m['mean']:.3f} ± {m['std']:.3f}"
    b1 = res["batch1"]
    print(f"\n== {res['backbone']} with {name} heads at blocks {res['row_layers'][:-1]} ==")
    print(f"plain backbone, batch 1: eager {fmt(b1['backbone_ms']['eager'])} ms, one CUDA graph "
          f"{fmt(b1['backbone_ms']['graph'])} ms (real× below is against the graph)")
    paths = b1["paths"]
    labels = list(paths["eager"])
    print(f"{'batch 1: ms/img (real×)':34s} {'MAC×':>6s}" + "".join(f" {p:>22s}" for p in paths))
    for label in labels:
        cells = "".join(f" {paths[p][label]['ms']['mean']:>13.3f} ({paths[p][label]['real_speedup']:5.2f}×)"
                        for p in paths)
        print(f"{label:34s} {paths['eager'][label]['mac_speedup_paper']:6.2f}{cells}")
    print(f"{'mixed histogram':24s} {'real×':>6s} {'MAC×':>6s} {'exec MAC×':>9s} {'real÷MAC':>8s} "
          f"{'real÷exec':>9s} {'segments':>8s} {'same exits':>10s}")
    for p, r in paths.items():
        m = r["mixed"]
        print(f"{p:24s} {m['real_speedup']:6.2f} {m['mac_speedup_paper']:6.2f} {m['executed_mac_speedup_paper']:9.2f} "
              f"{m['real_speedup'] / m['mac_speedup_paper']:8.2f} "
              f"{m['real_speedup'] / m['executed_mac_speedup_paper']:9.2f} {m['mean_segments']:8.2f} "
              f"{m['same_exits_as_eager']:10.2%}")
    for p, why in b1.get("skipped", {}).items():
        print(f"{p}: skipped ({why})")
    eager = paths["eager"]["mixed"]
    print(f"eager as in the paper (against the eager backbone): {eager['real_speedup_vs_eager_backbone']:.2f}×")
    for batch, t in res["throughput"].items():
        print(f"batch {batch}: backbone {t['backbone_img_s']:.0f} img/s, early exit {t['early_exit_img_s']:.0f} img/s "
              f"(real {t['real_speedup']:.2f}× vs MAC {t['mac_speedup_paper']:.2f}×; histogram {t['histogram']})")


def main(argv=None) -> int:
    args = parse(argv)
    if not torch.cuda.is_available() and not args.cpu_dry_run:
        sys.exit("latency_gpu.py: no CUDA GPU is visible — run it on a GPU machine "
                 "(on CPU, use `eebench latency --checkpoint … --limit N`, or --cpu-dry-run to check this script)")
    from eebench.inference.latency import resolve_dtype
    from eebench.provenance import provenance

    kind = "cpu" if args.cpu_dry_run else "cuda"
    device, dtype = torch.device(kind), resolve_dtype(args.dtype)
    results = {"provenance": provenance(device=kind, dtype=args.dtype, images=args.images, passes=args.passes,
                                        cpu_dry_run=args.cpu_dry_run), "models": {}}
    if args.cpu_dry_run:
        print("CPU DRY RUN: graph paths are eager stand-ins; no timing below means anything", file=sys.stderr)
    for heads in args.heads:
        results["models"][heads] = bench(heads, args, device, dtype)
        report(heads, results["models"][heads])
    if args.json:
        from eebench.io import write_json

        write_json(args.json, results)
    print()
    for heads, res in results["models"].items():
        best = res["mixed_best"]
        print(f"mixed histogram: best path {best['path']}, real ÷ MAC = {best['real_over_mac']:.2f} "
              f"(target {TARGET}) [{heads} heads: real {best['real_speedup']:.2f}× vs MAC "
              f"{best['mac_speedup_paper']:.2f}×]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
