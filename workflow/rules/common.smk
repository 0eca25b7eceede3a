# Wiring helpers: everything a rule needs comes from eebench.plan, so the CLI and the DAG agree on paths and specs.
# A config is one run, or a grid of runs (config/paper.yaml: backbones × datasets); PLANS holds one Plan per run.
import json
import re
import sys

from eebench.errors import EEBenchError
from eebench.measure.wallclock import latency_items, latency_spec
from eebench.plan import (Plan, architecture, costs_path, curve_path, expand_grid, latency_path, logits_path,
                          store_path, train_path)
from eebench.report.claims import has_claims
from eebench.report.costeff import costeff_methods, teacher_caches
from eebench.shares import share_rule
from eebench.smoke import smoke_run_name

try:  # a config error is one line at DAG-build time (`snakemake -n`), not a traceback
    PLANS = {name: Plan(cfg) for name, cfg in expand_grid(config).items()}
except EEBenchError as err:
    sys.exit(f"eebench: error: {err}")
LATENCY = {}  # run -> its Table 5 job's spec (a run with a latency section); its settings checked here, in one line
for _name, _p in PLANS.items():
    try:
        if _p.config.get("latency"):
            LATENCY[_name] = latency_spec(_p)
    except EEBenchError as err:
        sys.exit(f"eebench: error: run {_name!r}: {err}")
# stages trained in shared processes (Plan.train_groups: ablations.jobs, training.jobs): run -> share -> [(method,
# seed, stage)]
GROUPS = {name: p.train_groups() for name, p in PLANS.items()}
GROUPED = {m for g in GROUPS.values() for jobs in g.values() for m, _, _ in jobs}
# every method a one-stage training job may be for, over all runs (identical specs are trained once)
TRAINED = sorted({c for p in PLANS.values() for c in p.canonical.values()} - GROUPED)
# the train rule matches by method name over all runs, so a method shared in one run is shared in every run
_alone = {r: sorted({c for c in p.canonical.values() if c in GROUPED}
                    - {m for jobs in GROUPS[r].values() for m, _, _ in jobs}) for r, p in PLANS.items()}
if any(_alone.values()):
    _r = next(r for r, a in _alone.items() if a)
    sys.exit(f"eebench: error: run {_r!r} trains {', '.join(_alone[_r])} one job per stage while another run of this "
             f"config trains them in shared processes; give every run the same training.jobs / ablations.jobs, or "
             f"none")
DEFAULT_RESOURCES = {"train": {"mem_mb": 4000, "runtime": 60}, "costs": {"mem_mb": 4000, "runtime": 30},
                     "curve": {"mem_mb": 2000, "runtime": 10}, "latency": {"mem_mb": 4000, "runtime": 60}}


def one_of(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    run=one_of(PLANS),
    seed=r"\d+",
    stage=r"[A-Za-z0-9_]+",


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def res(rule_name, *skip):
    """Resources of a rule: the defaults above, overridden by the config's `resources:` section (not in a smoke run,
    which asks for no GPU), less ``skip``: the ones the rule sets per run."""
    own = {} if config.get("smoke") else (config.get("resources") or {}).get(rule_name, {})
    merged = {**DEFAULT_RESOURCES[rule_name], **own}
    return {k: v for k, v in merged.items() if k not in skip}


def train_devices(run):
    """Devices (data-parallel ranks) of each training job of a run: its config's `resources: {train: {gpu: N}}`."""
    return PLANS[run].train_devices


def model_spec(run, method):
    """What fixes a model's architecture (not its training): the inputs of the cost count."""
    p = PLANS[run]
    return {"dataset": p.config["dataset"], "backbone": p.config["backbone"], "method": architecture(p.method(method))}


def costed_checkpoint(run, method):
    """The checkpoint a method's costs are counted on: a width-pruned method's final one (None: the built model)."""
    p = PLANS[run]
    return p.final_checkpoint(method, p.seeds[0]) if p.method(method).get("slender") else None


def report_outputs(run):
    p = PLANS[run]
    tables = ["table1"] + [t for t, rows in p.tables.items() if rows and not t.startswith("fig")]
    tables += ["table5"] if p.config.get("latency") else []
    tables += ["eeformer_claims"] if has_claims(p.methods) else []
    tables += ["costeff"] if costeff_methods(p) else []
    outs = expand(f"reports/{run}/{{t}}.{{ext}}", t=tables, ext=["md", "csv", "tex"])
    outs += [f"reports/{run}/fig1_tradeoff.png", f"reports/{run}/fig1_tradeoff.pdf"]
    outs += [f"reports/{run}/paper_vs_ours.md", f"reports/{run}/paper_vs_ours.csv"]  # the CSV: every paper cell
    if costeff_methods(p):
        outs += [f"reports/{run}/fig_costeff_pareto.png", f"reports/{run}/fig_costeff_pareto.pdf"]
    if p.tables.get("fig4"):
        outs += [f"reports/{run}/fig4_num_exits.png", f"reports/{run}/fig4_num_exits.pdf"]
    if p.config.get("latency"):
        outs += [f"reports/{run}/fig5_wallclock.png", f"reports/{run}/fig5_wallclock.pdf"]
    return outs + leaderboard_outputs(run)


def leaderboard_outputs(run):
    return [f"reports/{run}/leaderboard.{ext}" for ext in ("md", "csv", "html")]


def grid_run():
    """The whole config's run name, as its cells are named (a smoke run: ``<run>-smoke``)."""
    return smoke_run_name(config["run"]) if config.get("smoke") else config["run"]


def glue_outputs():
    """A grid of GLUE tasks (config/glue.yaml) adds Table 1 across its tasks under reports/<run>/."""
    cells = [r for r, p in PLANS.items() if p.config["dataset"]["name"] == "glue"]
    if not config.get("grid") or len(cells) < 2:
        return []
    return expand(f"reports/{grid_run()}/table1_glue.{{ext}}", ext=["md", "csv", "tex"]) + [
        f"reports/{grid_run()}/paper_vs_ours_glue.md", f"reports/{grid_run()}/paper_vs_ours_glue.csv"]
