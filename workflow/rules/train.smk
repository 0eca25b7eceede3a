# Training: one job per (method, seed, stage). The job's full spec is its params, so editing a hyper-parameter reruns
# exactly the stages it belongs to (and everything downstream); a stage's init checkpoint is its input.


def init_checkpoint(wc):
    prev = PLAN.init_stage(wc.method, wc.stage)
    return [train_path(wc.run, prev[0], wc.seed, prev[1])] if prev else []


rule train:
    input:
        init=init_checkpoint,
    output:
        train_path("{run}", "{method}", "{seed}", "{stage}"),
    params:
        spec=lambda wc: as_json(PLAN.train_job(wc.method, int(wc.seed), wc.stage)),
        init=lambda wc, input: f"--init {input.init[0]}" if input.init else "",
    log:
        "results/{run}/logs/train/{method}/seed{seed}/{stage}.log",
    threads: config["training"]["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "eebench train --spec {params.spec:q} --out {output} {params.init} > {log} 2>&1"
