"""From a checkpoint to operating curves: its exit-logit cache (`evaluate`), a policy's sweep over a cache
(`curve`), and every curve of a run (`run-curves`)."""
from __future__ import annotations

import json

from .args import json_arg, run_plan


def cmd_evaluate(args) -> None:
    from ..evaluate import evaluate_checkpoint

    info = evaluate_checkpoint(args.checkpoint, args.out, batch_size=args.batch_size, threads=args.threads)
    print("per-row accuracy:", ", ".join(f"L{l}: {a:.4f}" for l, a in zip(info["row_layers"], info["row_accuracy"])))


def add_evaluate(sub) -> None:
    s = sub.add_parser("evaluate", help="logits of every exit for every test sample of a checkpoint → .npz cache")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=cmd_evaluate)


def write_curve(cache: str, costs: str, policy: dict, method: str, seed: int, out: str) -> None:
    """Policy × sweep grid on one exit-logit cache → an operating-curve CSV (switches recorded as columns)."""
    from ..curves import operating_curve
    from ..evaluate import load_cache
    from ..io import atomic_path, read_json

    curve = operating_curve(load_cache(cache), policy, read_json(costs))
    curve.insert(0, "seed", seed)
    curve.insert(0, "method", method)
    for key, value in sorted((policy.get("params") or {}).items()):
        curve[f"switch_{key}"] = json.dumps(value)
    with atomic_path(out) as tmp:
        curve.to_csv(tmp, index=False)


def cmd_curve(args) -> None:
    write_curve(args.cache, args.costs, json_arg(args.policy), args.method, args.seed, args.out)


def add_curve(sub) -> None:
    s = sub.add_parser("curve", help="(DAG step) policy × sweep grid on a logit cache → operating curve CSV")
    s.add_argument("--cache", required=True)
    s.add_argument("--costs", required=True)
    s.add_argument("--policy", required=True, help='policy JSON: {"name":…, "params":{…}, "sweep":{param:[…]}}')
    s.add_argument("--method", required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_curve)


def cmd_run_curves(args) -> None:
    from ..plan import costs_path, curve_path

    plan = run_plan(args)
    for method, seed in plan.reported():
        write_curve(plan.final_logits(method, seed),
                    costs_path(plan.run, plan.cost_canonical[method]), plan.method(method)["policy"], method, seed,
                    curve_path(plan.run, method, seed))
    print(f"{len(plan.reported())} operating curves of run {plan.run}")


def add_run_curves(sub) -> None:
    s = sub.add_parser("run-curves", help="(DAG step) every operating curve of a run from its logit caches → CSVs")
    s.add_argument("--config-json", required=True, help="the run's validated config as JSON")
    s.set_defaults(func=cmd_run_curves)
