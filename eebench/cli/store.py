"""Results stores: a run's store (`run-store`), its leaderboard, merging stores and validating one."""
from __future__ import annotations

from .args import json_arg, run_plan


def cmd_run_store(args) -> None:
    from ..leaderboard.store import store_rows, write_store
    from ..plan import store_path

    plan = run_plan(args)
    df = store_rows(plan)
    write_store(df, store_path(plan.run), store_path(plan.run, "csv"))
    print(f"{len(df)} store rows of run {plan.run}: {store_path(plan.run)}")


def add_run_store(sub) -> None:
    s = sub.add_parser("run-store", help="(DAG step) every operating point of a run → results/<run>/store.parquet")
    s.add_argument("--config-json", required=True, help="the run's validated config as JSON")
    s.set_defaults(func=cmd_run_store)


def _samples(plan) -> dict:
    """Per-sample replays of every method's sweep (the bootstrap's input), from the run's logit caches."""
    from ..evaluate import load_cache
    from ..leaderboard.board import per_sample

    return {m: {s: per_sample(load_cache(plan.final_logits(m, s)), plan.method(m)["policy"]) for s in plan.seeds}
            for m in plan.methods if plan.method(m)["exit_layers"]}


def cmd_leaderboard(args) -> None:
    from ..leaderboard.board import leaderboard, options
    from ..leaderboard.render import write_leaderboard
    from ..leaderboard.store import read_store, validate
    from ..plan import Plan, load_config, validate_config

    config = validate_config(json_arg(args.config_json)) if args.config_json else load_config(args.configfile)
    store = read_store(args.store)
    validate(store)
    opts = options(config)
    samples = None
    # the interval resamples per-sample correctness: defined for accuracy, left out for other metrics
    per_sample_metric = set(store["metric"]) == {"accuracy"}
    if (args.config_json or args.bootstrap_from_run) and per_sample_metric:
        plan = Plan(config)
        samples = _samples(plan) if opts["bootstrap"] else None
    res = leaderboard(store, opts, samples)
    out = args.out_dir or f"reports/{config['run']}"
    write_leaderboard(res, store, opts, out, config["run"])
    print(res["board"][["rank", "method", "area_mean"]].to_string(index=False))
    print(f"wrote leaderboard.md, leaderboard.csv, leaderboard.html to {out}")


def add_leaderboard(sub) -> None:
    s = sub.add_parser("leaderboard", help="(DAG step) a results store → leaderboard.{md,csv,html}")
    s.add_argument("--store", required=True, help="a store (.parquet or .csv), e.g. one written by eebench merge")
    s.add_argument("--configfile", default="config/default.yaml", help="the run whose report options apply")
    s.add_argument("--config-json", help="the validated config as JSON (what the DAG passes)")
    s.add_argument("--bootstrap-from-run", action="store_true",
                   help="read the run's logit caches for the bootstrap interval (the DAG does)")
    s.add_argument("--out-dir", help="default: reports/<run>")
    s.set_defaults(func=cmd_leaderboard)


def cmd_merge(args) -> None:
    from pathlib import Path

    from ..leaderboard.store import merge, read_store, store_format, write_store

    out = Path(args.out)
    csv = out.with_suffix(".csv") if store_format(out) == ".parquet" else None  # before reading anything
    df = merge([read_store(p) for p in args.stores])
    write_store(df, out, csv)
    print(f"{len(df)} rows from {len(args.stores)} stores → {out}" + (f" (and {csv})" if csv else ""))


def add_merge(sub) -> None:
    s = sub.add_parser("merge", help="combine results stores (keep the last row per key)")
    s.add_argument("stores", nargs="+", help="stores in order; later ones win")
    s.add_argument("--out", required=True,
                   help="merged store: .parquet (a .csv mirror is written beside it) or .csv (CSV only)")
    s.set_defaults(func=cmd_merge)


def cmd_validate(args) -> None:
    from ..leaderboard.store import read_store, validate

    df = read_store(args.store)
    validate(df, read_store(args.against) if args.against else None)
    print(f"{args.store}: {len(df)} rows, one protocol")


def add_validate(sub) -> None:
    s = sub.add_parser("validate", help="refuse a store with missing or mistyped columns, non-finite numbers, "
                                        "unparseable JSON fields, duplicate keys, or rows measured under another "
                                        "protocol (one line naming the field)")
    s.add_argument("store")
    s.add_argument("--against", help="the leaderboard's store whose protocol the rows must share")
    s.set_defaults(func=cmd_validate)
