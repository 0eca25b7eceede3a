# Paper-style tables and figures of a run.


rule table1:
    input:
        curves=expand(curve_path(RUN, "{method}", "{seed}"), method=METHODS, seed=PLAN.seeds),
        costs=expand(costs_path(RUN, "{method}"), method=METHODS),
    output:
        report(expand(f"{REPORT_DIR}/table1.{{ext}}", ext=["md", "csv", "tex"]), category="Tables",
               caption="../report/table1.rst"),
        report(f"{REPORT_DIR}/fig1_tradeoff.png", category="Figures", caption="../report/fig1.rst"),
    params:
        config=json.dumps(config),  # key order kept: tables list methods in the config's order
    log:
        f"results/{RUN}/logs/report/table1.log",
    localrule: True
    shell:
        "eebench report --config-json {params.config:q} --out-dir {REPORT_DIR} > {log} 2>&1"
