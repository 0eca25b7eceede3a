# Training: one job per (method, seed, stage). The job's full spec is its params, so editing a hyper-parameter reruns
# exactly the stages it belongs to (and everything downstream); a stage's init checkpoint is its input. Methods and
# ablation variants with identical specs share one set of jobs (PLANS[run].canonical). Every stage ends by
# evaluating its model once, in the same process, into the exit-logit cache (logits of every exit, every test sample).
# A job writes a per-epoch CSV beside its log (and TensorBoard events when tensorboard is installed). A run whose
# `resources: {train: {gpu: N}}` asks for N > 1 devices trains each stage on N data-parallel ranks (torchrun, DDP):
# the GPU request a cluster profile submits and the ranks the job starts are the same number.
# A run with `ablations.jobs: N` / `training.jobs: N` trains its ablation variants / main methods in N shared
# processes instead (rules train_group_*, eebench.shares): the same checkpoints, caches, per-stage logs and epoch
# CSVs, one startup per share. A share reruns whole when its params (its stages' specs) change, so the methods of
# `training.own_shares` (eebench compare's head) train in shares of their own and the others' shares stay as they were.


def init_checkpoint(wc):
    prev = PLANS[wc.run].init_stage(wc.method, wc.stage)
    return [PLANS[wc.run].checkpoint_of(prev, wc.seed)] if prev else []  # another run's where external_stages says


def teacher_checkpoint(wc):
    """The stage a distillation loss reads (COST-EFF: the fine-tuned backbone, then the TA)."""
    prev = PLANS[wc.run].teacher_stage(wc.method, wc.stage)
    return [PLANS[wc.run].checkpoint_of(prev, wc.seed)] if prev else []


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


def share_rule_name(run, share):
    """A rule name is a Python identifier: a run's or a method's name (a share's part) may hold `/ . + -`."""
    tag = "" if len(PLANS) == 1 else "_" + re.sub(r"[^A-Za-z0-9]", "_", run)
    return f"train_group{tag}_" + re.sub(r"[^A-Za-z0-9]", "_", share)


_names = {}
for _run, _groups in GROUPS.items():
    for _group in _groups:
        _other = _names.setdefault(share_rule_name(_run, _group), (_run, _group))
        if _other != (_run, _group):
            sys.exit(f"eebench: error: shares {_other[1]!r} (run {_other[0]!r}) and {_group!r} (run {_run!r}) would "
                     f"both be rule {share_rule_name(_run, _group)} — rename one of the methods or runs so that "
                     f"they differ in more than punctuation")

for _run, _groups in GROUPS.items():
    for _group, _jobs in _groups.items():
        _share = share_rule(PLANS[_run], _group, _jobs)  # its input and params decide when it reruns

        rule:
            name:
                share_rule_name(_run, _group)
            input:
                _share["input"],
            output:
                _share["output"],
            params:
                spec=as_json(_share["params"]["spec"]),
                nproc=_share["params"]["nproc"],
            log:
                _share["log"],
            threads: _share["threads"]
            priority: _share["priority"]
            resources:
                **res("train", "gpu"),
                gpu=train_devices(_run),
            shell:
                "eebench train-group --spec {params.spec:q} --nproc {params.nproc:q} > {log[0]:q} 2>&1"
