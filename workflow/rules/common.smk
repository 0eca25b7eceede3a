# Wiring helpers: everything a rule needs comes from eebench.plan, so the CLI and the DAG agree on paths and specs.
import json

from eebench.plan import Plan, costs_path, curve_path, logits_path, train_path

PLAN = Plan(config)
RUN = PLAN.run
METHODS = list(PLAN.methods)
REPORT_DIR = f"reports/{RUN}"


wildcard_constraints:
    run=RUN,
    method="|".join(METHODS),
    seed=r"\d+",
    stage=r"[A-Za-z0-9_]+",


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def model_spec(method):
    """What fixes a model's architecture (not its training): the inputs of the cost count."""
    m = PLAN.method(method)
    return {"dataset": config["dataset"], "backbone": config["backbone"],
            "method": {k: m[k] for k in ("name", "exit_layers", "heads")}}


def report_outputs():
    return expand(f"{REPORT_DIR}/table1.{{ext}}", ext=["md", "csv", "tex"]) + [f"{REPORT_DIR}/fig1_tradeoff.png"]
