"""What a config costs before it runs: jobs per DAG rule and estimated GPU-hours.

Throughput assumption (documented, measured on one H100 with bf16 autocast, batch 64, 224² inputs, spec
offline_assets §4): training 2,366 img/s for ViT-B/16 and DeiT-B, 646 img/s for Swin-B. A frozen-backbone stage
(``train: heads``) runs the backbone forward only, taken as 3× the training throughput; evaluation likewise 3×.
Sizes are the standard full splits (a local subset is smaller) and the throughput is that of B-size models, so for
subsets and small models the figure is an upper bound; a dataset this table does not know is reported as unknown.
Text (GLUE): BERT-base at ≤ 128 tokens does less work per sample than ViT-B/16 at 197 tokens, so ViT-B's throughput
is taken per sequence; the papers' batch of 8 (DeeBERT, BERxiT) runs below it, so read the figure as a lower bound;
sizes are GLUE's train and dev splits (or the configured slice).
Table 5's job times each method and its backbone at batch 1 for (passes + 1) passes over the images; an eager
batch-1 forward is taken as 0.5 ms per block (≈ 6 ms for ViT-B/16 on an H100 or the paper's RTX 3090).

Wall time: a run whose training jobs use N devices (``resources: {train: {gpu: N}}``, DDP) is assumed to scale
linearly, so a job takes its GPU-hours / N. Two figures: ``serial`` (every job one after another, one node) and
``critical_path`` (the longest chain of stages a stage starts from, plus Table 5: the least time with unlimited
nodes).
"""
from __future__ import annotations

from typing import Any

THROUGHPUT = {"vit": 2366.0, "deit": 2366.0, "swin": 646.0, "bert": 2366.0}  # training samples/s per GPU
FORWARD_ONLY = 3.0
BATCH1_MS_PER_BLOCK = 0.5  # eager batch-1 latency per transformer block (Table 5 job)
SIZES = {"cifar100": (50_000, 10_000), "cifar10": (50_000, 10_000), "food101": (75_750, 25_250),
         "imagenet1k": (1_281_167, 50_000), "tiny_imagenet": (100_000, 10_000), "digits": (1_437, 360),
         "glue/cola": (8_551, 1_043), "glue/sst2": (67_349, 872), "glue/mrpc": (3_668, 408),
         "glue/stsb": (5_749, 1_500), "glue/qqp": (363_846, 40_430), "glue/mnli": (392_702, 9_815),
         "glue/mnli_mm": (392_702, 9_832), "glue/qnli": (104_743, 5_463), "glue/rte": (2_490, 277),
         "glue/wnli": (635, 71)}


def size_key(dataset: dict[str, Any]) -> str:
    return f"glue/{dataset.get('task', 'sst2')}" if dataset["name"] == "glue" else dataset["name"]


def run_budget(plan) -> dict[str, Any]:
    """Jobs per rule and GPU-hours of one run (a Plan)."""
    fixture = plan.config["dataset"].get("fixture")  # a smoke run's stand-in: its own size
    if fixture:
        train_n, test_n = fixture["classes"] * fixture["train"], fixture["classes"] * fixture["eval"]
    else:
        train_n, test_n = SIZES.get(size_key(plan.config["dataset"]), (None, None))
        limits = [plan.config["dataset"].get(k) for k in ("limit_train", "limit_eval")]
        if train_n:  # a slice (limit_train/limit_eval) is smaller than the full split
            train_n, test_n = min(train_n, limits[0] or train_n), min(test_n, limits[1] or test_n)
    thr = THROUGHPUT.get(plan.family, THROUGHPUT["vit"])
    jobs = {"train": 0, "costs": 1, "curves": 1, "report": 1}  # costs, curves: one job per run
    hours = {"train": 0.0, "evaluate": 0.0}
    devices = getattr(plan, "train_devices", 1)
    job_wall: dict[tuple[str, str], float] = {}  # one seed's (method, stage) job, hours on its devices
    owners: dict[tuple[str, str], set[int]] = {}  # one job per shared stage (Plan.stage_owner)
    for m, s in plan.reported():
        for st in plan.method(m)["stages"]:
            owners.setdefault(plan.stage_owner(m, st["name"]), set()).add(s)
    for (name, stage), seeds in sorted(owners.items()):
        st = plan.stage(name, stage)
        jobs["train"] += len(seeds)
        train_h = eval_h = 0.0
        if train_n:
            speed = thr * (FORWARD_ONLY if st["train"] == "heads" else 1.0)
            train_h = train_n * st["epochs"] / speed / 3600
        if test_n:  # every stage ends with one evaluation pass (its exit-logit cache)
            eval_h = test_n / (thr * FORWARD_ONLY) / 3600
        hours["train"] += len(seeds) * train_h
        hours["evaluate"] += len(seeds) * eval_h
        job_wall[(name, stage)] = (train_h + eval_h) / devices
    wall = {"serial": (hours["train"] + hours["evaluate"]) / devices, "critical_path": 0.0}
    lat = plan.config.get("latency")
    if lat:
        from .measure.wallclock import latency_methods

        jobs["latency"] = 1
        images = min(test_n, lat["limit"]) if test_n and lat.get("limit") else (lat.get("limit") or test_n)
        if images:
            timed = len(latency_methods(plan)) * 2 * (lat.get("passes", 50) + 1) * images  # method + its backbone
            threads = lat.get("threads", 1)
            # every thread setting is timed in turn; a batched pass is charged as a batch-1 pass (an upper bound);
            # every runtime of a list times it all again (charged at eager's speed, again an upper bound)
            runtime = lat.get("runtime", "eager")
            timed *= (len(threads) if isinstance(threads, list) else 1) * (1 + len(lat.get("batches") or []))
            timed *= len(set(runtime)) if isinstance(runtime, list) else 1
            hours["latency"] = timed * BATCH1_MS_PER_BLOCK * plan.num_layers / 1e3 / 3600

    def chain(name: str, stage: str) -> float:
        before = plan.init_stage(name, stage)
        return job_wall.get((name, stage), 0.0) + (chain(plan.canonical[before[0]], before[1]) if before else 0.0)

    wall["critical_path"] = max((chain(n, st) for n, st in job_wall), default=0.0)
    if "latency" in hours:  # one GPU, after every model it times
        wall["serial"] += hours["latency"]
        wall["critical_path"] += hours["latency"]
    return {"jobs": jobs, "gpu_hours": hours, "wall_hours": wall, "devices": devices,
            "known_size": train_n is not None}
