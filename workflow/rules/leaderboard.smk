# The results store and the leaderboard of each run, built from what the DAG already computed (operating curves,
# cost counts, exit-logit caches): a new method adds its own training jobs and nothing else retrains.

for _run, _plan in PLANS.items():
    _tag = "" if len(PLANS) == 1 else "_" + re.sub(r"[^A-Za-z0-9]", "_", _run)
    _caches = sorted({_plan.final_logits(m, s) for m in _plan.methods for s in _plan.seeds})

    rule:
        name:
            f"store{_tag}"
        input:
            curves=[curve_path(_run, m, s) for m in _plan.methods for s in _plan.seeds],
            costs=sorted({costs_path(_run, _plan.cost_canonical[m]) for m in _plan.methods}),
            caches=_caches,
        output:
            parquet=store_path(_run),
            csv=store_path(_run, "csv"),
        params:
            config=json.dumps(_plan.config),
        log:
            f"results/{_run}/logs/store.log",
        localrule: True
        shell:
            "eebench run-store --config-json {params.config:q} > {log:q} 2>&1"

    rule:
        name:
            f"leaderboard{_tag}"
        input:
            store=store_path(_run),
            caches=_caches,
        output:
            report(leaderboard_outputs(_run), category="Leaderboard", subcategory=_run,
                   caption="../report/leaderboard.rst"),
        params:
            config=json.dumps(_plan.config),
            out=f"reports/{_run}",
        log:
            f"results/{_run}/logs/leaderboard.log",
        localrule: True
        shell:
            "eebench leaderboard --config-json {params.config:q} --store {input.store:q} --out-dir {params.out:q} "
            "> {log:q} 2>&1"
