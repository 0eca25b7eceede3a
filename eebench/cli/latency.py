"""Table 5 wall-clock: one checkpoint timed live (`latency`), and every method of a run (`run-latency`)."""
from __future__ import annotations

from .args import int_arg, json_arg


def cmd_latency(args) -> None:
    from ..inference.latency import format_table, latency_checkpoint
    from ..io import write_json

    threads = [t if t == "all" else int_arg(t, "--threads") for t in args.threads.split(",")]
    batches = [int_arg(b, "--batches") for b in args.batches.split(",")] if args.batches else []
    result = latency_checkpoint(args.checkpoint, json_arg(args.policy), device=args.device, dtype=args.dtype,
                                passes=args.passes, limit=args.limit, mode=args.mode, schedule=args.schedule,
                                decide=args.decide, threads=threads, runtime=args.runtime, batches=batches,
                                cache=args.cache, gate=args.gate)
    print(format_table(result))
    if args.json:
        write_json(args.json, result)


def add_latency(sub) -> None:
    s = sub.add_parser("latency", help="Table 5 wall-clock: batch-1 live early exit vs the plain backbone (ms/img)")
    s.add_argument("--checkpoint", required=True, help="a checkpoint written by eebench train")
    s.add_argument("--policy", required=True, help='one operating point: {"name": ..., "params": {...}}')
    s.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    s.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32", help="weights and inputs cast to it")
    s.add_argument("--passes", type=int, default=50, help="timed passes after one warm-up pass (paper: 50)")
    s.add_argument("--limit", type=int, help="time only the first N evaluation images (CPU)")
    s.add_argument("--mode", choices=["eager", "graph"], default="eager",
                   help="eager = as in the paper; graph = one CUDA graph per segment (CUDA only)")
    s.add_argument("--schedule", choices=["overlap", "sync", "conditional"], default="overlap",
                   help="graph mode: overlap = queue the next segment before checking an exit; sync = check first; "
                        "conditional = the whole image as one graph, later segments in device-side IF nodes")
    s.add_argument("--decide", choices=["device", "host"], default="device",
                   help="graph mode: device = the policy runs inside each segment's graph; host = on the CPU "
                        "(for a policy that cannot be captured)")
    s.add_argument("--threads", default="1",
                   help='CPU thread settings, timed in turn: a count, "all" (every core this process may use) or a '
                        'comma list, e.g. 1,all')
    s.add_argument("--runtime", default="eager", help="what executes the model (eebench list runtimes)")
    s.add_argument("--batches", help="also batched-exit throughput at these batch sizes, e.g. 32,64")
    s.add_argument("--cache", help="the checkpoint's exit-logit cache (.npz): count the live decisions that match "
                                   "its offline replay")
    s.add_argument("--gate", type=float, default=0.99, help="quality gate: fraction of the backbone's metric to keep")
    s.add_argument("--json", help="also write the result with provenance to this JSON file")
    s.set_defaults(func=cmd_latency)


def cmd_run_latency(args) -> None:
    from ..measure.wallclock import run_latency

    out = run_latency(json_arg(args.spec), log=lambda line: print(line, flush=True), cores=args.cores)
    print(f"Table 5 timings of {len(out['methods'])} methods of run {out['run']}")


def add_run_latency(sub) -> None:
    s = sub.add_parser("run-latency", help="(DAG step) Table 5: every method of a run timed live at its operating point")
    s.add_argument("--spec", required=True, help="job spec JSON (see eebench.measure.wallclock.latency_spec)")
    s.add_argument("--cores", type=int, help='the cores the job was given: what threads "all" means (default: every '
                                             "core this process may run on)")
    s.set_defaults(func=cmd_run_latency)
