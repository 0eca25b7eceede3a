# Evaluate each trained model once: logits of every exit for every test sample (the exit-logit cache).


rule evaluate:
    input:
        lambda wc: train_path(wc.run, wc.method, wc.seed, PLAN.last_stage(wc.method)),
    output:
        logits_path("{run}", "{method}", "{seed}"),
    params:
        batch=config["training"]["eval_batch_size"],
    log:
        "results/{run}/logs/evaluate/{method}/seed{seed}.log",
    threads: config["training"]["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "eebench evaluate --checkpoint {input} --out {output} --batch-size {params.batch} --threads {threads} > {log} 2>&1"
