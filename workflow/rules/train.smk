# Training: one job per (method, seed, stage). The job's full spec is its params, so editing a hyper-parameter reruns
# exactly the stages it belongs to (and everything downstream); a stage's init checkpoint is its input. Methods and
# ablation variants with identical specs share one set of jobs (PLANS[run].canonical). Every stage ends by
# evaluating its model once, in the same process, into the exit-logit cache (logits of every exit, every test sample).
# A job writes a per-epoch CSV beside its log (and TensorBoard events when tensorboard is installed). A run whose
# `resources: {train: {gpu: N}}` asks for N > 1 devices trains each stage on N data-parallel ranks (torchrun, DDP):
# the GPU request a cluster profile submits and the ranks the job starts are the same number.
# A run with `ablations.jobs: N` / `training.jobs: N` trains its ablation variants / main methods in N shared
# processes instead (rules train_group_*, Plan.train_groups): the same checkpoints, caches, per-stage logs and epoch
# CSVs, one startup per share.


def init_checkpoint(wc):
    prev = PLANS[wc.run].init_stage(wc.method, wc.stage)
    return [train_path(wc.run, prev[0], wc.seed, prev[1])] if prev else []


def teacher_checkpoint(wc):
    """The stage a distillation loss reads (COST-EFF: the fine-tuned backbone, then the TA)."""
    prev = PLANS[wc.run].teacher_stage(wc.method, wc.stage)
    return [train_path(wc.run, prev[0], wc.seed, prev[1])] if prev else []


rule train:
    input:
        init=init_checkpoint,
        teacher=teacher_checkpoint,
    output:
        checkpoint=train_path("{run}", "{method}", "{seed}", "{stage}"),
        logits=logits_path("{run}", "{method}", "{seed}", "{stage}"),
    params:
        spec=lambda wc: as_json(PLANS[wc.run].train_job(wc.method, int(wc.seed), wc.stage)),
        init=lambda wc, input: ["--init", input.init[0]] if input.init else [],  # a list: :q quotes each word
        teacher=lambda wc, input: ["--teacher", input.teacher[0]] if input.teacher else [],
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
        "eebench train --spec {params.spec:q} --out {output.checkpoint:q} {params.init:q} {params.teacher:q} "
        "--logits {output.logits:q} "
        "--eval-batch-size {params.eval_batch:q} --epochs-csv {log.epochs:q} --tensorboard {params.tensorboard:q} "
        "--nproc {resources.gpu:q} > {log.log:q} 2>&1"


def group_item(run, method, seed, stage):
    prev = PLANS[run].init_stage(method, stage)
    teacher = PLANS[run].teacher_stage(method, stage)
    return {"job": PLANS[run].train_job(method, seed, stage), "out": train_path(run, method, seed, stage),
            "init": train_path(run, prev[0], seed, prev[1]) if prev else None,
            "teacher": train_path(run, teacher[0], seed, teacher[1]) if teacher else None,
            "logits": logits_path(run, method, seed, stage), "log": stage_log_path(run, method, seed, stage),
            "epochs_csv": epochs_csv_path(run, method, seed, stage),
            "tensorboard": f"results/{run}/logs/tensorboard/{method}/seed{seed}/{stage}"}


def stage_log_path(run, method, seed, stage):
    return f"results/{run}/logs/train/{method}/seed{seed}/{stage}.log"


def epochs_csv_path(run, method, seed, stage):
    return f"results/{run}/logs/train/{method}/seed{seed}/{stage}.epochs.csv"


def remove_empty_epoch_logs():
    """Snakemake creates every log file that a finished job did not write, a failed job's too, so a stage that failed
    before its first epoch (e.g. on missing pretrained weights) would leave an empty per-epoch CSV; the job itself only
    writes the CSV once an epoch is done. A failed workflow removes those empty files (the rules and their shell
    commands stay as they are, so no finished job reruns)."""
    from pathlib import Path

    for run in PLANS:
        for path in Path(f"results/{run}/logs/train").rglob("*.epochs.csv"):
            if path.stat().st_size == 0:
                path.unlink()


for _run, _groups in GROUPS.items():
    _tag = "" if len(PLANS) == 1 else "_" + re.sub(r"[^A-Za-z0-9]", "_", _run)
    for _group, _jobs in _groups.items():
        _items = [group_item(_run, *j) for j in _jobs]
        _made = {i["out"] for i in _items}

        rule:
            name:
                f"train_group{_tag}_{_group.replace('-', '_')}"
            input:
                sorted({i[k] for i in _items for k in ("init", "teacher") if i[k] and i[k] not in _made}),
            output:
                [i["out"] for i in _items] + [i["logits"] for i in _items],
            params:
                spec=as_json({"jobs": _items, "eval_batch_size": PLANS[_run].config["training"]["eval_batch_size"]}),
                nproc=train_devices(_run),
            log:
                [f"results/{_run}/logs/train/{_group}.log"] + [i[k] for i in _items for k in ("log", "epochs_csv")],
            threads: PLANS[_run].config["training"].get("threads", 1) * train_devices(_run)
            # the shares are the run's longest jobs: start them first, longest (most epochs) first, so that the cores
            # finish together instead of a share starting last and running alone
            priority: 10 + sum(PLANS[_run].stage(m, st)["epochs"] for m, _, st in _jobs)
            resources:
                **res("train", "gpu"),
                gpu=train_devices(_run),
            shell:
                "eebench train-group --spec {params.spec:q} --nproc {params.nproc:q} > {log[0]:q} 2>&1"
