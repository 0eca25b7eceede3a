# Costs (params and MACs per component, fvcore, both conventions) and the offline policy sweeps: one job per run
# each, since every count and every curve takes well under a second once the models and logits exist. Table 5's
# wall-clock job (a run with a `latency:` section) times every method at its operating point, one after another.

for _run, _plan in PLANS.items():
    _tag = "" if len(PLANS) == 1 else "_" + re.sub(r"[^A-Za-z0-9]", "_", _run)
    _costed = sorted(set(_plan.cost_canonical.values()))

    rule:
        name:
            f"costs{_tag}"
        input:
            # a width-pruned method (COST-EFF) is counted on its trained checkpoint, whose shape it records
            [c for c in (costed_checkpoint(_run, m) for m in _costed) if c],
        output:
            [costs_path(_run, c) for c in _costed],
        params:
            # what the counts depend on: the architectures (not training), so editing training reruns nothing here
            spec=as_json({"run": _run, "items": [{**model_spec(_run, c), "checkpoint": costed_checkpoint(_run, c)}
                                                 for c in _costed]}),
        log:
            f"results/{_run}/logs/costs.log",
        # seconds, and the curves and Table 5 wait for it: done first, beside the first training job, not at the end
        priority: 1000
        resources:
            **res("costs"),
        shell:
            "eebench run-costs --spec {params.spec:q} > {log:q} 2>&1"

    rule:
        name:
            f"curves{_tag}"
        input:
            caches=sorted({_plan.final_logits(m, s) for m, s in _plan.reported()}),
            costs=[costs_path(_run, c) for c in _costed],
        output:
            [curve_path(_run, m, s) for m, s in _plan.reported()],
        params:
            policies=as_json({m: _plan.method(m)["policy"] for m, _ in _plan.reported()}),
            # the run's config minus Table 5's timing settings, which no curve depends on
            config=json.dumps({k: v for k, v in _plan.config.items() if k != "latency"}),
        log:
            f"results/{_run}/logs/curves.log",
        resources:
            **res("curve"),
        shell:
            "eebench run-curves --config-json {params.config:q} > {log:q} 2>&1"

    if _run in LATENCY:
        _lat = LATENCY[_run]

        rule:
            name:
                f"latency{_tag}"
            input:
                checkpoints=sorted({m["checkpoint"] for m in _lat["methods"].values()}),
                caches=sorted({c for m in latency_items(_lat) for c in m["caches"]}),
                costs=sorted({m["costs"] for m in latency_items(_lat)}),
            output:
                latency_path(_run),
            params:
                spec=as_json(_lat),  # only what the timings depend on: editing another method reruns nothing here
            log:
                f"results/{_run}/logs/latency.log",
            # every local core: no other job runs beside a timing (a cluster profile sets cpus_per_task instead)
            threads: workflow.cores
            resources:
                **res("latency"),
            shell:
                "eebench run-latency --spec {params.spec:q} --cores {threads:q} > {log:q} 2>&1"
