# Costs (params and MACs per component, fvcore, both conventions) and the offline policy sweeps.


rule costs:
    output:
        costs_path("{run}", "{method}"),
    params:
        spec=lambda wc: as_json(model_spec(wc.method)),
    log:
        "results/{run}/logs/costs/{method}.log",
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "eebench measure-costs --spec {params.spec:q} --out {output} > {log} 2>&1"


rule curve:
    input:
        cache=logits_path("{run}", "{method}", "{seed}"),
        costs=costs_path("{run}", "{method}"),
    output:
        curve_path("{run}", "{method}", "{seed}"),
    params:
        policy=lambda wc: as_json(PLAN.method(wc.method)["policy"]),
    log:
        "results/{run}/logs/curve/{method}/seed{seed}.log",
    shell:
        "eebench curve --cache {input.cache} --costs {input.costs} --policy {params.policy:q} "
        "--method {wildcards.method} --seed {wildcards.seed} --out {output} > {log} 2>&1"
