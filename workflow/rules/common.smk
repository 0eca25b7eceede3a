# Wiring helpers: everything a rule needs comes from eebench.plan, so the CLI and the DAG agree on paths and specs.
import json

from eebench.plan import Plan, architecture, costs_path, curve_path, logits_path, train_path

PLAN = Plan(config)
RUN = PLAN.run
METHODS = list(PLAN.methods)  # reported
ALL_METHODS = list(PLAN.all_methods)  # reported + those whose stages others start from
REPORT_DIR = f"reports/{RUN}"


wildcard_constraints:
    run=RUN,
    method="|".join(ALL_METHODS),
    seed=r"\d+",
    stage=r"[A-Za-z0-9_]+",


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def model_spec(method):
    """What fixes a model's architecture (not its training): the inputs of the cost count."""
    return {"dataset": config["dataset"], "backbone": config["backbone"], "method": architecture(PLAN.method(method))}


def report_outputs():
    return expand(f"{REPORT_DIR}/table1.{{ext}}", ext=["md", "csv", "tex"]) + [f"{REPORT_DIR}/fig1_tradeoff.png"]
