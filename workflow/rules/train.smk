# Training: one job per (method, seed, stage). The job's full spec is its params, so editing a hyper-parameter reruns
# exactly the stages it belongs to (and everything downstream); a stage's init checkpoint is its input. Methods and
# ablation variants with identical specs share one set of jobs (PLANS[run].canonical). Every stage ends by
# evaluating its model once, in the same process, into the exit-logit cache (logits of every exit, every test sample).


def init_checkpoint(wc):
    prev = PLANS[wc.run].init_stage(wc.method, wc.stage)
    return [train_path(wc.run, prev[0], wc.seed, prev[1])] if prev else []


rule train:
    input:
        init=init_checkpoint,
    output:
        checkpoint=train_path("{run}", "{method}", "{seed}", "{stage}"),
        logits=logits_path("{run}", "{method}", "{seed}", "{stage}"),
    params:
        spec=lambda wc: as_json(PLANS[wc.run].train_job(wc.method, int(wc.seed), wc.stage)),
        init=lambda wc, input: f"--init {input.init[0]}" if input.init else "",
        eval_batch=lambda wc: PLANS[wc.run].config["training"]["eval_batch_size"],
    log:
        "results/{run}/logs/train/{method}/seed{seed}/{stage}.log",
    wildcard_constraints:
        method=one_of(TRAINED),
    threads: 1 if config.get("smoke") else config.get("training", {}).get("threads", 1)
    resources:
        **res("train"),
    shell:
        "eebench train --spec {params.spec:q} --out {output.checkpoint} {params.init} --logits {output.logits} "
        "--eval-batch-size {params.eval_batch} > {log} 2>&1"
