"""`eebench plan`: what a config will run, and its estimated GPU-hours."""
from __future__ import annotations


def cmd_plan(args) -> None:
    from ..budget import THROUGHPUT, run_budget
    from ..plan import Plan, expand_grid, load_config

    totals: dict[str, float] = {}
    hours_total = 0.0
    config = load_config(args.configfile)
    config["smoke"] = config.get("smoke") or args.smoke
    for name, cfg in expand_grid(config).items():
        plan = Plan(cfg)
        b = run_budget(plan)
        hours = sum(b["gpu_hours"].values())
        hours_total += hours
        for rule, n in b["jobs"].items():
            totals[rule] = totals.get(rule, 0) + n
        print(f"run {name}: {cfg['dataset']['name']} on {cfg['backbone']['name']} ({plan.num_layers} blocks), "
              f"{len(plan.methods)} methods × seeds {plan.seeds}"
              + (f", {len(plan.all_methods) - len(plan.methods)} ablation variants × seeds {plan.ablation_seeds}"
                 if plan.tables else "")
              + "; jobs " + ", ".join(f"{r} {n}" for r, n in b["jobs"].items())
              + shared_note(plan)
              + (f"; ≈ {hours:.1f} GPU-h, wall ≈ {b['wall_hours']['serial']:.1f} h one job at a time / "
                 f"≥ {b['wall_hours']['critical_path']:.1f} h critical path ({b['devices']} GPU"
                 f"{'s' if b['devices'] > 1 else ''} per training job)"
                 if b["known_size"] else "; GPU-h unknown (dataset size not tabulated)"))
        if args.verbose:
            for mname, m in plan.all_methods.items():
                shared = "" if plan.canonical[mname] == mname else f" (trained as {plan.canonical[mname]})"
                print(f"  {mname:24s} exits {m['exit_layers'] or '—'}; "
                      + ", ".join(f"{s['name']} ({s['loss']}, train {s['train']}, {s['epochs']} ep, lr {s['lr']:g})"
                                  for s in m["stages"]) + f"; policy {m['policy']['name']}{shared}")
    print("total jobs: " + ", ".join(f"{r} {n}" for r, n in totals.items())
          + f"; ≈ {hours_total:.1f} GPU-hours (assumed training throughput img/s per GPU: "
          + ", ".join(f"{k} {v:g}" for k, v in THROUGHPUT.items()) + "; see eebench/budget.py)")


def shared_note(plan) -> str:
    """How many training stages run in shared processes (Plan.train_groups), for `eebench plan`."""
    groups = plan.train_groups()
    stages = sum(len(jobs) for jobs in groups.values())
    return f" ({stages} of the train stages in {len(groups)} shared processes)" if groups else ""


def add_plan(sub) -> None:
    s = sub.add_parser("plan", help="what a config will run: jobs per rule, estimated GPU-hours, methods and stages")
    s.add_argument("--configfile", default="config/default.yaml")
    s.add_argument("-v", "--verbose", action="store_true", help="list every method and variant with its stages")
    s.add_argument("--smoke", action="store_true", help="plan the config's smoke run (see `eebench smoke`)")
    s.set_defaults(func=cmd_plan)
