"""The eebench command line: one subcommand per DAG step, plus tools for people (list, costs, plan).

Run ``snakemake --cores all`` to regenerate a whole run; the subcommands below are what its jobs call, and each can
be run by hand. Errors a user can act on end in one line (``eebench: error: …``) and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from contextlib import contextmanager, redirect_stderr, redirect_stdout

from .errors import EEBenchError, fail


def _json_arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise fail(f"argument is not valid JSON ({err})", "pass a JSON object") from err


def _int_arg(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError as err:
        raise fail(f"{option} got {text!r}, not an integer", f"pass {option} as integers separated by commas") from err


def cmd_list(args) -> None:
    from . import recipes
    from .backbones import BACKBONES
    from .data import DATASETS
    from .heads import HEADS
    from .inference.runtime import RUNTIMES
    from .policies import POLICIES
    from .training import LOSSES

    if args.what == "methods":
        for name, path in recipes.available().items():
            r = recipes.load_recipe(name)
            print(f"{name:14s} {r.get('title', name)} — {r.get('citation', '')} [{path}]")
        return
    reg = {"heads": HEADS, "policies": POLICIES, "backbones": BACKBONES, "datasets": DATASETS, "losses": LOSSES,
           "runtimes": RUNTIMES}[args.what]
    for name in reg.names():
        item = reg.get(name)
        doc = getattr(item, "description", None) or (getattr(item, "__doc__", None) or "").strip().splitlines()[0:1]
        print(f"{name:22s} {doc if isinstance(doc, str) else (doc[0] if doc else '')}")


def cmd_costs(args) -> None:
    from .build import build_model
    from .measure.macs import cost_summary
    from .recipes import resolve_method

    overrides = {"image_size": args.image_size} if args.image_size else {}
    backbone = {"name": args.backbone, **overrides}
    from .backbones import BACKBONES

    depth = int(BACKBONES.get(args.backbone).defaults.get("num_hidden_layers", 12))
    overrides = {}
    if args.heads:
        overrides["heads"] = {"type": args.heads}
    if args.positions:
        overrides["positions"] = [int(p) for p in args.positions.split(",")]
    if args.slender:
        overrides["slender"] = args.slender
    method = resolve_method(args.method, overrides, depth, {}, family=BACKBONES.get(args.backbone).family)
    model = build_model(backbone, method, args.num_classes, pretrained=False, attn_implementation="eager")
    if "slender" in method:  # COST-EFF: counted at its width target (h heads, f neurons, rank r in every layer)
        from .model import count_params
        from .slender.presets import resolve_target, target_shape
        from .slender.prune import apply_shape

        target = resolve_target(method["slender"], backbone, args.method)
        apply_shape(model, target_shape(target, depth), "the width target")
        print(f"width target: {target}; encoder (embeddings + blocks): "
              f"{count_params(model.backbone.model.embeddings) + count_params(model.backbone.blocks):,d} parameters")
    summary = cost_summary(model)
    convs = ["paper", "full"] if args.convention == "both" else [args.convention]
    if args.json:
        from .io import write_json

        write_json(args.json, summary)
    print(f"{args.method} on {args.backbone}, {args.num_classes} classes, input {summary['macs_config']['input_shape']}"
          f" (fvcore, eager attention, batch 1)")
    header = f"{'component':>10s} {'layer':>5s} {'params':>12s} " + " ".join(f"{'GMACs ' + c:>12s}" for c in convs)
    print(header)
    layers = {f"head{i + 1}": p for i, p in enumerate(summary["row_layers"][:-1])}
    for comp, c in summary["components"].items():
        print(f"{comp:>10s} {str(layers.get(comp, '')):>5s} {c['params']:>12,d} "
              + " ".join(f"{c['macs'][v] / 1e9:>12.4f}" for v in convs))
    p = summary["params"]
    print(f"params: total {p['total']:,d} = backbone {p['backbone']:,d} (incl. {p['unused']:,d} unused, e.g. the HF "
          f"pooler) + heads {p['heads']:,d}")
    for v in convs:
        m = summary["macs"][v]
        print(f"MACs [{v}]: backbone {m['backbone'] / 1e9:.2f} G, all heads {m['heads'] / 1e9:.4f} G, "
              f"full model with every exit {(m['backbone'] + m['heads']) / 1e9:.2f} G")


def cmd_train(args) -> None:
    import os

    if args.nproc < 1:
        raise fail(f"--nproc {args.nproc} is not a number of processes", "pass 1 or more")
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:  # not yet under torchrun: start the ranks
        from .training.distributed import relaunch

        relaunch(args.nproc, sys.argv[1:] if args.argv is None else args.argv)
    from .training.loop import train_stage

    try:
        train_stage(_json_arg(args.spec), args.out, init=args.init, logits_out=args.logits,
                    eval_batch_size=args.eval_batch_size, epochs_csv=args.epochs_csv,
                    tensorboard_dir=args.tensorboard, teacher=args.teacher)
    finally:
        from .training.distributed import shutdown

        shutdown()


def cmd_train_group(args) -> None:
    """Several stages in one process, in the given order (eebench.plan.Plan.train_groups): one startup for all. Each
    stage's output goes to its own log (``log``), as if it were its own job; the group's log keeps one line per stage."""
    import os
    import time

    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        from .training.distributed import relaunch

        relaunch(args.nproc, sys.argv[1:] if args.argv is None else args.argv)
    from .training.distributed import is_main, shutdown
    from .training.loop import resume_file, train_stage

    spec = _json_arg(args.spec)
    try:
        for i, item in enumerate(spec["jobs"]):
            job = item["job"]
            if is_main():
                print(f"== {job['method']['name']} seed {job['seed']} stage {job['stage']['name']} "
                      f"({i + 1} of {len(spec['jobs'])})" + (f": {item['log']}" if item.get("log") else ""), flush=True)
            with _output_to(item.get("log") if is_main() else None):
                train_stage(job, item["out"], init=item.get("init"), logits_out=item["logits"],
                            eval_batch_size=spec.get("eval_batch_size", 256), epochs_csv=item.get("epochs_csv"),
                            tensorboard_dir=item.get("tensorboard"), started=None if i == 0 else time.time(),
                            keep_resume=True, teacher=item.get("teacher"))
        if is_main():
            for item in spec["jobs"]:
                resume_file(item["out"]).unlink(missing_ok=True)
    finally:
        shutdown()


@contextmanager
def _output_to(path):
    """Send this process's stdout and stderr (file descriptors too: library and C-level output) to ``path``."""
    if not path:
        yield
        return
    import os
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(path, "w", buffering=1) as fh, redirect_stdout(fh), redirect_stderr(fh):
            os.dup2(fh.fileno(), 1)
            os.dup2(fh.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def cmd_evaluate(args) -> None:
    from .evaluate import evaluate_checkpoint

    info = evaluate_checkpoint(args.checkpoint, args.out, batch_size=args.batch_size, threads=args.threads)
    print("per-row accuracy:", ", ".join(f"L{l}: {a:.4f}" for l, a in zip(info["row_layers"], info["row_accuracy"])))


def write_costs(dataset: dict, backbone: dict, method: dict, out: str, checkpoint: str | None = None) -> None:
    """Per-component params and MACs of one architecture (random init, eager attention) → JSON. A width-pruned method
    (COST-EFF) is counted on its trained ``checkpoint``, rebuilt at the shape it records, plus its FLOPs as the
    official code counts them (torch.profiler, padded 128-token inputs)."""
    from .build import build_model, load_model
    from .data import num_classes_of
    from .io import write_json
    from .measure.macs import cost_summary
    from .provenance import provenance

    if checkpoint:
        from .slender.presets import check_reached

        model = load_model(checkpoint, attn_implementation="eager")
        shape = check_reached(model, method, checkpoint)
    else:
        model = build_model(backbone, method, num_classes_of(dataset), pretrained=False, attn_implementation="eager")
        shape = None
    summary = cost_summary(model, seq_length=int(dataset.get("max_seq_length", 128)))  # text: the padded convention
    from .measure.macs import is_text

    if shape is not None:
        summary["slender_shape"] = shape
    if is_text(model):  # COST-EFF's own FLOPs count, for every text method (its ratios are against the backbone's)
        from .measure.profiler_flops import profiler_flops

        summary["profiler_flops"] = profiler_flops(model, int(dataset.get("max_seq_length", 128)))
    summary["provenance"] = provenance(**({"checkpoint": checkpoint} if checkpoint else {}))
    write_json(out, summary)


def write_curve(cache: str, costs: str, policy: dict, method: str, seed: int, out: str) -> None:
    """Policy × sweep grid on one exit-logit cache → an operating-curve CSV (switches recorded as columns)."""
    from .curves import operating_curve
    from .evaluate import load_cache
    from .io import atomic_path, read_json

    curve = operating_curve(load_cache(cache), policy, read_json(costs))
    curve.insert(0, "seed", seed)
    curve.insert(0, "method", method)
    for key, value in sorted((policy.get("params") or {}).items()):
        curve[f"switch_{key}"] = json.dumps(value)
    with atomic_path(out) as tmp:
        curve.to_csv(tmp, index=False)


def cmd_measure_costs(args) -> None:
    job = _json_arg(args.spec)
    write_costs(job["dataset"], job["backbone"], job["method"], args.out)


def cmd_curve(args) -> None:
    write_curve(args.cache, args.costs, _json_arg(args.policy), args.method, args.seed, args.out)


def _run_plan(args):
    from .plan import Plan, validate_config

    return Plan(validate_config(_json_arg(args.config_json)))


def cmd_run_costs(args) -> None:
    from .plan import costs_path

    spec = _json_arg(args.spec)  # {run, items: [{dataset, backbone, method}]}: architectures only, not training
    for item in spec["items"]:
        out = costs_path(spec["run"], item["method"]["name"])
        write_costs(item["dataset"], item["backbone"], item["method"], out, item.get("checkpoint"))
        print(f"costs of {item['method']['name']}: {out}", flush=True)


def cmd_run_curves(args) -> None:
    from .plan import costs_path, curve_path

    plan = _run_plan(args)
    for method, seed in plan.reported():
        write_curve(plan.final_logits(method, seed),
                    costs_path(plan.run, plan.cost_canonical[method]), plan.method(method)["policy"], method, seed,
                    curve_path(plan.run, method, seed))
    print(f"{len(plan.reported())} operating curves of run {plan.run}")


def cmd_run_latency(args) -> None:
    from .measure.wallclock import run_latency

    out = run_latency(_json_arg(args.spec), log=lambda line: print(line, flush=True), cores=args.cores)
    print(f"Table 5 timings of {len(out['methods'])} methods of run {out['run']}")


def cmd_report(args) -> None:
    from .plan import Plan, load_config, validate_config
    from .report.run import render_run

    config = validate_config(_json_arg(args.config_json)) if args.config_json else load_config(args.configfile)
    plan = Plan(config)
    out_dir = args.out_dir or f"reports/{plan.run}"
    tables = render_run(plan, out_dir)
    print(f"wrote {', '.join(sorted(tables))} to {out_dir}")


def cmd_report_glue(args) -> None:
    from pathlib import Path

    import pandas as pd

    from .plan import Plan, expand_grid, validate_config
    from .report.departures import text_notes
    from .report.glue import glue_table, nlp_paper_vs_ours, task_of
    from .report.run import scale_note

    config = validate_config(_json_arg(args.config_json))
    cells, titles, scale, notes, costeff = {}, {}, "", [], {}
    for run, cfg in expand_grid(config).items():
        task = task_of(cfg)
        if task is None:
            continue
        plan = Plan(cfg)
        cells[task] = pd.read_csv(f"reports/{run}/table1.csv")
        teachers = Path(f"reports/{run}/costeff.csv")  # COST-EFF's table: its retention's teacher score
        costeff[task] = pd.read_csv(teachers) if teachers.exists() else None
        titles.update({m: plan.method(m)["title"] for m in plan.methods})
        scale = scale_note(cfg)
        notes += [n for n in text_notes(cfg, plan.methods) if n not in notes]
    out = Path(args.out_dir)
    glue_table(cells, titles, out, scale, notes)
    nlp_paper_vs_ours(cells, out / "paper_vs_ours_glue.md", scale, costeff)
    print(f"wrote table1_glue and paper_vs_ours_glue ({len(cells)} tasks) to {out}")


def cmd_plan(args) -> None:
    from .budget import THROUGHPUT, run_budget
    from .plan import Plan, expand_grid, load_config

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


def cmd_smoke(args) -> None:
    """The whole config at miniature scale through the real DAG: ``snakemake --configfile C --config smoke=true``."""
    import subprocess
    from pathlib import Path

    from .plan import expand_grid, load_config

    repo = Path(__file__).resolve().parents[1]
    config = load_config(args.config)  # a bad path or config is one line before Snakemake starts
    expand_grid({**config, "smoke": True})
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--configfile",
           str(Path(args.config).resolve()), "--config", "smoke=true", "--cores", str(args.cores),
           *(["-d", args.directory] if args.directory else []), *args.snakemake_args]
    print("running: " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    if rc:
        raise fail(f"the smoke run of {args.config} failed (snakemake exit code {rc})",
                   "read the failing job's log named above; the same job fails in the full-scale run")


def cmd_latency(args) -> None:
    from .inference.latency import format_table, latency_checkpoint
    from .io import write_json

    threads = [t if t == "all" else _int_arg(t, "--threads") for t in args.threads.split(",")]
    batches = [_int_arg(b, "--batches") for b in args.batches.split(",")] if args.batches else []
    result = latency_checkpoint(args.checkpoint, _json_arg(args.policy), device=args.device, dtype=args.dtype,
                                passes=args.passes, limit=args.limit, mode=args.mode, schedule=args.schedule,
                                decide=args.decide, threads=threads, runtime=args.runtime, batches=batches,
                                cache=args.cache, gate=args.gate)
    print(format_table(result))
    if args.json:
        write_json(args.json, result)


def cmd_export(args) -> None:
    from .export.bundle import export_checkpoint, parse_params

    manifest = export_checkpoint(args.checkpoint, args.out, policy=args.policy, params=parse_params(args.param),
                                 curves=args.curve, plain=args.plain,
                                 operating_point=_json_arg(args.operating_point) if args.operating_point else None)
    graphs = len(manifest["order"]) + (1 if manifest["backbone"] else 0)
    print(f"exported {manifest['policy']['name']} {manifest['policy']['params']} with exits after blocks "
          f"{manifest['row_layers'][:-1]} → {args.out} ({graphs} ONNX graphs, opset {manifest['opset']}; exported vs "
          f"eager logits within {manifest['check']['max_abs_logit_diff']:.1e})")
    print(f"run it: python {args.out}/run_early_exit.py --help")


def cmd_run_store(args) -> None:
    from .leaderboard.store import store_rows, write_store
    from .plan import store_path

    plan = _run_plan(args)
    df = store_rows(plan)
    write_store(df, store_path(plan.run), store_path(plan.run, "csv"))
    print(f"{len(df)} store rows of run {plan.run}: {store_path(plan.run)}")


def _samples(plan) -> dict:
    """Per-sample replays of every method's sweep (the bootstrap's input), from the run's logit caches."""
    from .evaluate import load_cache
    from .leaderboard.board import per_sample

    return {m: {s: per_sample(load_cache(plan.final_logits(m, s)), plan.method(m)["policy"]) for s in plan.seeds}
            for m in plan.methods if plan.method(m)["exit_layers"]}


def cmd_leaderboard(args) -> None:
    from .leaderboard.board import leaderboard, options
    from .leaderboard.render import write_leaderboard
    from .leaderboard.store import read_store, validate
    from .plan import Plan, load_config, validate_config

    config = validate_config(_json_arg(args.config_json)) if args.config_json else load_config(args.configfile)
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


def cmd_merge(args) -> None:
    from pathlib import Path

    from .leaderboard.store import merge, read_store, store_format, write_store

    out = Path(args.out)
    csv = out.with_suffix(".csv") if store_format(out) == ".parquet" else None  # before reading anything
    df = merge([read_store(p) for p in args.stores])
    write_store(df, out, csv)
    print(f"{len(df)} rows from {len(args.stores)} stores → {out}" + (f" (and {csv})" if csv else ""))


def cmd_validate(args) -> None:
    from .leaderboard.store import read_store, validate

    df = read_store(args.store)
    validate(df, read_store(args.against) if args.against else None)
    print(f"{args.store}: {len(df)} rows, one protocol")


def cmd_new_head(args) -> None:
    from .leaderboard.scaffold import new_head

    for f in new_head(args.name, args.dir):
        print(f"wrote {f}")
    print(f"next: eebench check-head {args.name} --plugin {args.dir}/{args.name}.py")


def cmd_check_head(args) -> None:
    from .leaderboard.headcheck import check_head
    from .plugins import load_plugin_files

    load_plugin_files(args.plugin)
    check_head(args.name)


def cmd_compare(args) -> None:
    from .leaderboard.compare import compare, compare_board

    if args.board and args.configfile:
        raise fail("--board and --configfile both given", "compare against a board, or within a config's run")
    if args.task and not args.board:
        raise fail("--task picks a task of a board", "give --board too")
    if args.board:
        rc = compare_board(args.head, args.board, args.protocol, args.scheme, args.policy, args.plugin, args.profile,
                           args.cores, args.snakemake_args, args.task)
    else:
        rc = compare(args.head, args.configfile or "config/default.yaml", args.scheme, args.policy, args.plugin,
                     args.profile, args.cores, args.snakemake_args, args.protocol)
    if rc:
        raise fail(f"snakemake exited with code {rc}", "see its log above (results/<run>/logs/)")


def cmd_reproduce(args) -> None:
    from .leaderboard.reproduce import reproduce

    rc = reproduce(args.board, args.method, args.task, args.profile, args.cores, args.snakemake_args)
    if rc:
        raise fail(f"snakemake exited with code {rc}", "see its log above (results/<run>/logs/)")


COMPARE_HELP = """\
Train a new exit head and rank it. The head sits at every exit position of the template mlp_normal (after every
block but the last), trained with that recipe's loss and swept with its confidence grid.

  --board B       the board's config fixes the protocol: backbone and checkpoint, data, exits, seeds, training
                  defaults, sweep grids, MAC convention. A run of its own, results/<board run>-vs-<head>[-frozen]/,
                  trains only the head (a run of the board itself is never written to); its store is validated
                  against the board's (another protocol is refused in one line), merged with it and ranked.
  --configfile C  the head joins C's run as one more method; every cached result of the run is reused (the head
                  trains in shares of its own when C has training.jobs), and reports/<run>/leaderboard.* is
                  rebuilt.

Protocols:
  joint   the heads are fine-tuned together with the backbone, from the pretrained weights (one stage).
  frozen  the heads train alone on the backbone fine-tuned under the board's config (its 'backbone' method),
          frozen and without dropout, as DeeBERT's stage 2 trains its off-ramps. A board ships no checkpoints:
          the one your run of the board trained (results/<board run>/train/backbone/) is used when its job spec is
          the board's; otherwise it is trained once into results/<board run>-backbone/ and reused after that.
          The frozen backbone's block outputs are computed once and cached ($EEBENCH_CACHE/features/, default
          ~/.cache/eebench; bf16 under bf16 autocast, ~3.4 GB for sst2-minilm), so the heads train in seconds per
          epoch. Augmented image data (image folders: random crop and flip) runs the backbone every batch instead.

Outputs (--board): reports/<board run>-vs-<head>[-frozen]/ holds leaderboard.md|csv|html (the board with the head
highlighted, unpaired 95 % bootstrap intervals of the area), paired.md|csv (the head's area minus every entry's,
with its 95 % paired bootstrap interval and whether it is significant) and the merged store (store.parquet|csv).

Time, on 2 CPU cores (measured here, another job beside it): digits, seconds per job; sst2-minilm frozen: the
backbone's fine-tune once if your run of the board has none (~32 min, as the board's backbone row), the block
outputs once (~310 phrases/s in bf16 on one core: ~3.6 min for the 67,349 phrases, 3.4 GB), then ~25 s per epoch;
later heads on the same backbone skip both. sst2-minilm joint: one fine-tuning of MiniLM-L6 with exits, as long as
the board's one-stage methods (SDN 15 min, PABEE 24 min). The issue's targets, as ratios to
../shared/bench/calibrate.py (4.6 s here): digits <= 20x, frozen on sst2-minilm <= 20x, joint <= 150x."""
COMPARE_EXAMPLES = """\
examples:
  eebench new-head gated && eebench check-head gated --plugin my_heads/gated.py
  eebench compare --head gated --plugin my_heads/gated.py --board sst2-minilm --protocol frozen --cores 2
  eebench compare --head gated --plugin my_heads/gated.py --board glue-minilm --task mrpc
  eebench compare --head gated --plugin my_heads/gated.py --configfile config/tiny.yaml -- -n   # dry run"""
REPRODUCE_HELP = """\
Re-train one board entry in a run of its own, results/<board run>-reproduce-<method>/ (as the board's config trains
it, per task for a grid board; what it starts from too), then print its deltas against the board: the metric at
full depth (its slowest point), the layer speed-up at the board's operating point (report.operating_point) and the
area (scores.area over report.auc_speedup_range), means over seeds. Written to reports/<that run>/reproduce.md|csv.

Both machines are named (the board's provenance and this one's: CPU model and flags, library versions). On the
board's machine and versions the deltas are 0; elsewhere they are not expected to be: CPU kernels, thread counts
and library versions change floating-point sums, and training amplifies them.

Time: that entry's training jobs as the board ran them (e.g. deebert on sst2-minilm: its two stages, ~40 min on 2
cores; on digits: under a minute)."""

def cmd_board_build(args) -> None:
    from .leaderboard.boards import BOARDS_DIR, build_board
    from .leaderboard.site import write_site

    board = build_board(args.name, args.configfile, args.results_root, args.out)
    if args.out is None and (BOARDS_DIR / "boards.yaml").is_file():
        print(f"site: {write_site()}")
    print(f"board {board.name}: runs {', '.join(board.cells)}")


def cmd_board_site(args) -> None:
    from .leaderboard.boards import load_board
    from .leaderboard.site import write_site

    boards = [load_board(b) for b in args.board] if args.board else None
    print(f"wrote {write_site(args.out, boards)}")


def cmd_board_list(args) -> None:
    from .leaderboard.boards import describe, registry

    for name, entry in registry().items():
        print(describe(name, entry))


def cmd_board_make(args) -> None:
    from .leaderboard.boards import make_board

    from .leaderboard.site import write_site

    rc = make_board(args.name, args.cores, args.profile, args.snakemake_args)
    if rc:
        raise fail(f"snakemake exited with code {rc}",
                   "see its log above (results/<run>/logs/); the board was not built")
    print(f"site: {write_site()}")


BOARD_HELP = """Reference boards: a config plus its committed results under leaderboards/<board>/ (registry:
leaderboards/boards.yaml). Run these from the repository root, where the configs' data paths resolve.

  eebench board list                         the registered boards, their configs, whether built
  eebench board make NAME [--cores N | --profile P] [-- SNAKEMAKE ARGS]
                                             run the board's config through Snakemake here, then build the board
                                             and the site: one command regenerates a board (from scratch where
                                             nothing is cached; `-- --forceall` retrains everything)
  eebench board build NAME [--configfile C] [--results-root R] [--out DIR]
                                             build the board from a finished run (results/ and reports/ under R)
  eebench board site [--out leaderboards/index.html] [--board DIR ...]
                                             the static offline page over every built board
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eebench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    p.add_argument("--version", action="version", version=f"eebench {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("list", help="list registered heads, policies, methods, backbones, datasets, losses or runtimes")
    s.add_argument("what", choices=["heads", "policies", "methods", "backbones", "datasets", "losses", "runtimes"])
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("costs", help="params and MACs per component of a method on a backbone (fvcore, random init)")
    s.add_argument("--backbone", required=True, help="backbone preset, e.g. vit_lgvit_v0, deit_b, vit_b16")
    s.add_argument("--method", required=True, help="method recipe, e.g. lgvit, mlp_normal, backbone")
    s.add_argument("--num-classes", type=int, required=True)
    s.add_argument("--convention", choices=["paper", "full", "both"], default="both",
                   help="paper = Linear+Conv MACs only (the LGViT tables); full = every op, eager attention")
    s.add_argument("--image-size", type=int, help="override the preset's input size")
    s.add_argument("--heads", help="put this head type at every exit of the method (Table 3: mlp, conv, attention)")
    s.add_argument("--positions", help="comma-separated exit blocks, overriding the recipe's (e.g. 4,6,8,10)")
    s.add_argument("--slender", type=_json_arg,
                   help='a width-pruned method\'s target, e.g. \'{"preset": "8x"}\' (COST-EFF; default: its recipe\'s)')
    s.add_argument("--json", help="also write the full cost summary to this JSON file")
    s.set_defaults(func=cmd_costs)

    s = sub.add_parser("plan", help="what a config will run: jobs per rule, estimated GPU-hours, methods and stages")
    s.add_argument("--configfile", default="config/default.yaml")
    s.add_argument("-v", "--verbose", action="store_true", help="list every method and variant with its stages")
    s.add_argument("--smoke", action="store_true", help="plan the config's smoke run (see `eebench smoke`)")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("smoke", help="run a config's whole DAG at miniature scale (tiny models, local fixtures, "
                                     "1 epoch): every table, in minutes on a CPU")
    s.add_argument("config", help="a config file, e.g. config/paper.yaml")
    s.add_argument("--cores", default="2", help="snakemake --cores (default 2)")
    s.add_argument("-d", "--directory", help="snakemake working directory (default: the current one)")
    s.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="further snakemake arguments, e.g. -n or a target")
    s.set_defaults(func=cmd_smoke)

    s = sub.add_parser("train", help="(DAG step) train one stage from a JSON job spec (+ its exit-logit cache)")
    s.add_argument("--spec", required=True, help="job spec JSON (see eebench.plan.Plan.train_job)")
    s.add_argument("--out", required=True, help="checkpoint to write")
    s.add_argument("--init", help="checkpoint of the previous stage")
    s.add_argument("--teacher", help="checkpoint of the model a distillation loss reads (a stage's teacher:)")
    s.add_argument("--logits", help="also write the trained model's exit-logit cache here (.npz)")
    s.add_argument("--eval-batch-size", type=int, default=256)
    s.add_argument("--epochs-csv", help="per-epoch record (losses per exit, lr, seconds, samples/s, eval accuracy)")
    s.add_argument("--tensorboard", help="TensorBoard event directory (written when tensorboard is installed)")
    s.add_argument("--nproc", type=int, default=1,
                   help="data-parallel processes (devices) on this node: >1 relaunches under torchrun (DDP)")
    s.set_defaults(func=cmd_train, argv=None)

    s = sub.add_parser("train-group", help="(DAG step) train several stages one after another in one process")
    s.add_argument("--spec", required=True,
                   help='{"eval_batch_size": N, "jobs": [{"job", "out", "init", "logits", "log", "epochs_csv", '
                        '"tensorboard"}]}')
    s.add_argument("--nproc", type=int, default=1, help="data-parallel processes (see train)")
    s.set_defaults(func=cmd_train_group, argv=None)

    s = sub.add_parser("evaluate", help="logits of every exit for every test sample of a checkpoint → .npz cache")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("measure-costs", help="(DAG step) per-component params and MACs of a run's method → JSON")
    s.add_argument("--spec", required=True, help="job spec JSON (backbone, dataset, method)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_measure_costs)

    s = sub.add_parser("curve", help="(DAG step) policy × sweep grid on a logit cache → operating curve CSV")
    s.add_argument("--cache", required=True)
    s.add_argument("--costs", required=True)
    s.add_argument("--policy", required=True, help='policy JSON: {"name":…, "params":{…}, "sweep":{param:[…]}}')
    s.add_argument("--method", required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_curve)

    s = sub.add_parser("run-costs", help="(DAG step) costs of every distinct architecture of a run → JSON files")
    s.add_argument("--spec", required=True, help='{"run": RUN, "items": [{"dataset", "backbone", "method"}]}')
    s.set_defaults(func=cmd_run_costs)

    s = sub.add_parser("run-curves", help="(DAG step) every operating curve of a run from its logit caches → CSVs")
    s.add_argument("--config-json", required=True, help="the run's validated config as JSON")
    s.set_defaults(func=cmd_run_curves)

    s = sub.add_parser("run-latency", help="(DAG step) Table 5: every method of a run timed live at its operating point")
    s.add_argument("--spec", required=True, help="job spec JSON (see eebench.measure.wallclock.latency_spec)")
    s.add_argument("--cores", type=int, help='the cores the job was given: what threads "all" means (default: every '
                                             "core this process may run on)")
    s.set_defaults(func=cmd_run_latency)

    s = sub.add_parser("report", help="(DAG step) Table 1 (md/csv/tex) and Figure 1 of a run from its curves")
    s.add_argument("--configfile", default="config/default.yaml")
    s.add_argument("--config-json", help="the validated config as JSON (what the DAG passes)")
    s.add_argument("--out-dir", help="default: reports/<run>")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("run-store", help="(DAG step) every operating point of a run → results/<run>/store.parquet")
    s.add_argument("--config-json", required=True, help="the run's validated config as JSON")
    s.set_defaults(func=cmd_run_store)

    s = sub.add_parser("leaderboard", help="(DAG step) a results store → leaderboard.{md,csv,html}")
    s.add_argument("--store", required=True, help="a store (.parquet or .csv), e.g. one written by eebench merge")
    s.add_argument("--configfile", default="config/default.yaml", help="the run whose report options apply")
    s.add_argument("--config-json", help="the validated config as JSON (what the DAG passes)")
    s.add_argument("--bootstrap-from-run", action="store_true",
                   help="read the run's logit caches for the bootstrap interval (the DAG does)")
    s.add_argument("--out-dir", help="default: reports/<run>")
    s.set_defaults(func=cmd_leaderboard)

    s = sub.add_parser("merge", help="combine results stores (keep the last row per key)")
    s.add_argument("stores", nargs="+", help="stores in order; later ones win")
    s.add_argument("--out", required=True,
                   help="merged store: .parquet (a .csv mirror is written beside it) or .csv (CSV only)")
    s.set_defaults(func=cmd_merge)

    s = sub.add_parser("validate", help="refuse a store with missing or mistyped columns, non-finite numbers, "
                                        "unparseable JSON fields, duplicate keys, or rows measured under another "
                                        "protocol (one line naming the field)")
    s.add_argument("store")
    s.add_argument("--against", help="the leaderboard's store whose protocol the rows must share")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("new-head", help="scaffold a head file, its recipe stanza and a test")
    s.add_argument("name")
    s.add_argument("--dir", default="my_heads", help="where to write NAME.py, NAME.yaml, test_NAME.py")
    s.set_defaults(func=cmd_new_head)

    s = sub.add_parser("check-head", help="build a head on tiny ViT/DeiT/Swin: shapes, backward, determinism, MACs")
    s.add_argument("name")
    s.add_argument("--plugin", action="append", default=[], help="a head file to import first (repeatable)")
    s.set_defaults(func=cmd_check_head)

    s = sub.add_parser("compare", help="train a new exit head under a board's (or a config's) protocol and rank it "
                                       "against its entries; only the head's own jobs train",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=COMPARE_HELP,
                       epilog=COMPARE_EXAMPLES)
    s.add_argument("--head", required=True, help="the head's registered name (its @register_head)")
    s.add_argument("--board", help="a board: a name from leaderboards/boards.yaml (digits, sst2-minilm, glue-minilm) "
                                   "or a board folder")
    s.add_argument("--configfile", help="instead of --board: add the head to this config's run (default "
                                        "config/default.yaml)")
    s.add_argument("--protocol", choices=["joint", "frozen"], default="joint",
                   help="joint (default): the heads fine-tuned together with the backbone from the pretrained "
                        "weights; frozen: the heads alone, on the fine-tuned backbone held frozen")
    s.add_argument("--task", help="a grid board's one task to compare on (e.g. mrpc of glue-minilm; default: every "
                                  "task; STS-B is a regression, where the template's confidence rule does not apply)")
    s.add_argument("--scheme", help="joint protocol: training scheme (normal, weighted, distillation, alternating, "
                                    "two_stage)")
    s.add_argument("--policy", help="exit policy, with the sweep grid of the baseline recipe that uses it")
    s.add_argument("--plugin", action="append", default=[], help="the head's file (added to the config's plugins)")
    s.add_argument("--profile", help="a Snakemake profile, e.g. profiles/slurm (instead of --cores)")
    s.add_argument("--cores", default="all", help="snakemake --cores (default all)")
    s.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after --: passed to snakemake")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("reproduce", help="re-train one board entry on this machine and print its deltas against the "
                                         "board (metric, speed-up, area)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=REPRODUCE_HELP)
    s.add_argument("--board", required=True, help="a board name (leaderboards/boards.yaml) or a board folder")
    s.add_argument("--method", required=True, help="the board entry (its method name, e.g. deebert)")
    s.add_argument("--task", help="a grid board's task (e.g. mrpc of glue-minilm); required there")
    s.add_argument("--profile", help="a Snakemake profile, e.g. profiles/slurm (instead of --cores)")
    s.add_argument("--cores", default="all", help="snakemake --cores (default all)")
    s.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after --: passed to snakemake")
    s.set_defaults(func=cmd_reproduce)

    s = sub.add_parser("board", help="reference boards: list, make (run + build), build (from a finished run), site",
                       description=BOARD_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    bsub = s.add_subparsers(dest="board_command", required=True, metavar="BOARD_COMMAND")
    b = bsub.add_parser("list", help="the registered boards, their configs and whether each is built")
    b.set_defaults(func=cmd_board_list)
    b = bsub.add_parser(
        "make", help="run a board's config through Snakemake, then build the board and the site",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Regenerate a board with one command: `python -m snakemake -s Snakefile --cores N --configfile "
                    "<the board's config>` in the current folder (run it from the repository root; every cached "
                    "result is reused, a fresh clone trains everything), then `eebench board build NAME` and "
                    "`eebench board site`.",
        epilog="examples:\n  eebench board make sst2-minilm --cores 2\n"
               "  eebench board make glue-minilm --profile profiles/slurm\n"
               "  eebench board make digits --cores all -- --forceall   # retrain every job")
    b.add_argument("name", help="a board of leaderboards/boards.yaml")
    how = b.add_mutually_exclusive_group()
    how.add_argument("--cores", default="all", help="Snakemake --cores (default: all)")
    how.add_argument("--profile", help="a Snakemake profile, e.g. profiles/slurm")
    b.add_argument("snakemake_args", nargs="*", metavar="-- SNAKEMAKE_ARGS", help="after --: passed to snakemake")
    b.set_defaults(func=cmd_board_make, passthrough="snakemake_args")
    b = bsub.add_parser("build", help="build a board from the finished run(s) of its config")
    b.add_argument("name", help="the board's name (a registered one, or any name with --configfile and --out)")
    b.add_argument("--configfile", help="the config that was run (default: the registry's)")
    b.add_argument("--results-root", default=".", help="the folder holding the run's results/ and reports/")
    b.add_argument("--out", help="the board folder to write (default: leaderboards/NAME, and the site is rewritten)")
    b.set_defaults(func=cmd_board_build)
    b = bsub.add_parser("site", help="the static offline page over every built board")
    b.add_argument("--out", help="default: leaderboards/index.html")
    b.add_argument("--board", action="append", default=[], help="a board name or folder (default: every built one)")
    b.set_defaults(func=cmd_board_site)

    s = sub.add_parser("report-glue", help="(DAG step) Table 1 across the GLUE tasks of a grid config")
    s.add_argument("--config-json", required=True, help="the whole config (with its grid) as JSON")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_report_glue)

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

    s = sub.add_parser("export", help="an early-exit model as per-segment ONNX graphs + its exit policy, runnable with "
                                      "onnxruntime and numpy only",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Write a checkpoint's early-exit model into --out:\n"
                                   "  *.onnx              the embedding, the blocks between consecutive exits, each "
                                   "exit head, the final\n"
                                   "                      classifier (text: attention_mask input, dynamic length; "
                                   "images: fixed size)\n"
                                   "  early_exit.json     exits, graph order, the policy, its parameters and "
                                   "operating point, the exit\n"
                                   "                      rule resolved for the runner, input preprocessing, opset, "
                                   "versions\n"
                                   "  run_early_exit.py   early exit for one input with onnxruntime and numpy only\n"
                                   "Policies the runner checks: deebert_entropy, berxit_entropy, berxit_lte, "
                                   "costeff_entropy,\nlgvit_entropy, lgvit_confidence, lgvit_patience, lgvit_pcee, "
                                   "sdn_confidence, pabee_patience,\npabee_patience_regression, pcee_bert. Needs "
                                   "pip install 'eebench[export]' (onnx, onnxruntime).",
                       epilog="examples:\n"
                              "  eebench export --checkpoint CKPT --policy pabee_patience "
                              "--param patience=2 --out pabee_onnx\n"
                              "  eebench export --checkpoint CKPT --curve results/default/curves/deebert/seed0.csv "
                              "--out deebert_onnx   # Table 1's operating point\n"
                              "  python pabee_onnx/run_early_exit.py --image x.npy")
    s.add_argument("--checkpoint", required=True, help="a checkpoint written by eebench train")
    s.add_argument("--policy", help="exit policy (see `eebench list policies`); optional with --curve")
    s.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="a policy parameter, value as JSON (repeatable), e.g. --param entropy_threshold=0.3")
    s.add_argument("--curve", action="append", default=[], metavar="CSV",
                   help="an operating curve from `eebench curve` (repeat for each seed): export its operating point")
    s.add_argument("--operating-point", metavar="JSON",
                   help='the rule that picks the point on --curve (default {"rule": "max_speedup_within_drop", '
                        '"max_drop": 1.0}; also {"rule": "retention", "retention": 99})')
    s.add_argument("--plain", action="store_true", help="also export the model without exits (backbone.onnx)")
    s.add_argument("--out", required=True, help="folder to write (new, empty, or a previous export)")
    s.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=FutureWarning)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest:
        # `board make NAME --cores 2 -- ARGS`: argparse leaves the words after -- unmatched once an option has come
        # between the two positionals; a command that passes words through to Snakemake takes them
        through = getattr(args, "passthrough", None)
        if through is None or rest[0] != "--":
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        setattr(args, through, [*getattr(args, through), *rest[1:]])
    if argv is not None:
        args.argv = list(argv)
    try:
        args.func(args)
    except EEBenchError as err:
        print(f"eebench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eebench: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 — a plugin's own error or a refused write is one line; a bug is not
        line = _one_line(err)
        if line is None:
            raise
        print(f"eebench: error: {line}", file=sys.stderr)
        return 2
    return 0


def _one_line(err: Exception) -> str | None:
    """The user's side of an exception that is not an ``EEBenchError``: an error raised by a plugin file's code, or a
    file operation the system refused (full disk, read-only filesystem, no permission) outside the atomic writers,
    where it may be a read as well as a write; None for anything else."""
    import errno

    from .io import WRITE_FIXES, write_failed
    from .plugins import plugin_failure

    line = plugin_failure(err)
    if line is None and isinstance(err, OSError) and err.errno in WRITE_FIXES:
        verb = "access" if err.errno in (errno.EACCES, errno.EPERM) else "write"
        line = str(write_failed(err.filename or "a file", err, verb))
    return line


if __name__ == "__main__":
    sys.exit(main())
