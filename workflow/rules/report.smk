# Paper-style tables and figures of each run, and the side-by-side with the paper's numbers: one rule per run, since
# which tables a run has depends on its config.

for _run, _plan in PLANS.items():

    rule:
        name:
            "report" if len(PLANS) == 1 else f"report_{re.sub(r'[^A-Za-z0-9]', '_', _run)}"
        input:
            curves=[curve_path(_run, m, s) for m, s in _plan.reported()],
            costs=sorted({costs_path(_run, c) for c in _plan.cost_canonical.values()}),
            latency=[latency_path(_run)] if _plan.config.get("latency") else [],
            teachers=teacher_caches(_plan),  # COST-EFF's table reads its teacher's score from the teacher's cache
        output:
            report(
                [o for o in report_outputs(_run) if o.endswith((".md", ".csv", ".tex"))
                 and o not in leaderboard_outputs(_run)],
                category="Tables",
                subcategory=_run,
                caption="../report/tables.rst",
            ),
            report(
                [o for o in report_outputs(_run) if o.endswith((".png", ".pdf"))],
                category="Figures",
                subcategory=_run,
                caption="../report/figures.rst",
            ),
        params:
            config=json.dumps(_plan.config),  # key order kept: tables list methods in the config's order
            out=f"reports/{_run}",
        log:
            f"results/{_run}/logs/report/report.log",
        localrule: True
        shell:
            "eebench report --config-json {params.config:q} --out-dir {params.out:q} > {log:q} 2>&1"


if glue_outputs():

    rule glue_table:
        input:
            [f"reports/{r}/table1.csv" for r, p in PLANS.items() if p.config["dataset"]["name"] == "glue"],
        output:
            glue_outputs(),
        params:
            config=json.dumps(config),
            out=f"reports/{grid_run()}",
        log:
            f"results/{grid_run()}/logs/report/glue_table.log",
        localrule: True
        shell:
            "eebench report-glue --config-json {params.config:q} --out-dir {params.out:q} > {log:q} 2>&1"
