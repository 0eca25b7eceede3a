# eebench — the whole benchmark as one DAG: train every stage of every method and seed, evaluate each model once into
# an exit-logit cache, count costs, sweep policies offline, render the paper-style tables and figures.
#   snakemake --cores all                                   # the embedded default run (config/default.yaml)
#   snakemake --cores all --configfile config/paper.yaml    # another run
#   snakemake --cores all --configfile config/paper.yaml --config smoke=true   # its miniature (eebench.smoke)
from snakemake.utils import min_version, validate

min_version("9.0")

if not set(config) - {"smoke"}:  # a --configfile replaces the default instead of being merged into it
    configfile: "config/default.yaml"

if isinstance(config.get("smoke"), str):  # `--config smoke=true` arrives as a string
    config["smoke"] = config["smoke"].strip().lower() in ("true", "1", "yes", "on")

validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/leaderboard.smk"


rule all:
    default_target: True
    input:
        [o for run in PLANS for o in report_outputs(run)] + glue_outputs(),


onerror:
    remove_empty_epoch_logs()
