# Training: one job per (method, seed, stage). The job's full spec is its params, so editing a hyper-parameter reruns
# exactly the stages it belongs to (and everything downstream); a stage's init checkpoint is its input. Methods and
# ablation variants with identical specs share one set of jobs (PLANS[run].canonical). Every stage ends by
# evaluating its model once, in the same process, into the exit-logit cache (logits of every exit, every test sample).
# A job writes a per-epoch CSV beside its log (and TensorBoard events when tensorboard is installed). A run whose
# `resources: {train: {gpu: N}}` asks for N > 1 devices trains each stage on N data-parallel ranks (torchrun, DDP):
# the GPU request a cluster profile submits and the ranks the job starts are the same number.


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
        tensorboard="results/{run}/logs/tensorboard/{method}/seed{seed}/{stage}",
    log:
        log="results/{run}/logs/train/{method}/seed{seed}/{stage}.log",
        epochs="results/{run}/logs/train/{method}/seed{seed}/{stage}.epochs.csv",
    wildcard_constraints:
        method=one_of(TRAINED),
    threads: lambda wc: PLANS[wc.run].config["training"].get("threads", 1) * train_devices(wc.run)  # every rank's
    resources:
        **res("train", "gpu"),
        gpu=lambda wc: train_devices(wc.run),
    shell:
        "eebench train --spec {params.spec:q} --out {output.checkpoint} {params.init} --logits {output.logits} "
        "--eval-batch-size {params.eval_batch} --epochs-csv {log.epochs} --tensorboard {params.tensorboard} "
        "--nproc {resources.gpu} > {log.log} 2>&1"
