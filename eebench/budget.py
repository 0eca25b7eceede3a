"""What a config costs before it runs: jobs per DAG rule and estimated GPU-hours.

Throughput assumption (documented, measured on one H100 with bf16 autocast, batch 64, 224² inputs, spec
offline_assets §4): training 2,366 img/s for ViT-B/16 and DeiT-B, 646 img/s for Swin-B. A frozen-backbone stage
(``train: heads``) runs the backbone forward only, taken as 3× the training throughput; evaluation likewise 3×.
Sizes are the standard full splits (a local subset is smaller) and the throughput is that of B-size models, so for
subsets and small models the figure is an upper bound; a dataset this table does not know is reported as unknown.
Table 5's job times each method and its backbone at batch 1 for (passes + 1) passes over the images; an eager
batch-1 forward is taken as 0.5 ms per block (≈ 6 ms for ViT-B/16 on an H100 or the paper's RTX 3090).
"""
from __future__ import annotations

from typing import Any

THROUGHPUT = {"vit": 2366.0, "deit": 2366.0, "swin": 646.0}  # training img/s per GPU
FORWARD_ONLY = 3.0
BATCH1_MS_PER_BLOCK = 0.5  # eager batch-1 latency per transformer block (Table 5 job)
SIZES = {"cifar100": (50_000, 10_000), "cifar10": (50_000, 10_000), "food101": (75_750, 25_250),
         "imagenet1k": (1_281_167, 50_000), "tiny_imagenet": (100_000, 10_000), "digits": (1_437, 360)}


def run_budget(plan) -> dict[str, Any]:
    """Jobs per rule and GPU-hours of one run (a Plan)."""
    train_n, test_n = SIZES.get(plan.config["dataset"]["name"], (None, None))
    thr = THROUGHPUT.get(plan.family, THROUGHPUT["vit"])
    jobs = {"train": 0, "costs": 1, "curves": 1, "report": 1}  # costs, curves: one job per run
    hours = {"train": 0.0, "evaluate": 0.0}
    owners: dict[tuple[str, str], set[int]] = {}  # one job per shared stage (Plan.stage_owner)
    for m, s in plan.reported():
        for st in plan.method(m)["stages"]:
            owners.setdefault(plan.stage_owner(m, st["name"]), set()).add(s)
    for (name, stage), seeds in sorted(owners.items()):
        st = plan.stage(name, stage)
        jobs["train"] += len(seeds)
        if train_n:
            speed = thr * (FORWARD_ONLY if st["train"] == "heads" else 1.0)
            hours["train"] += len(seeds) * train_n * st["epochs"] / speed / 3600
        if test_n:  # every stage ends with one evaluation pass (its exit-logit cache)
            hours["evaluate"] += len(seeds) * test_n / (thr * FORWARD_ONLY) / 3600
    lat = plan.config.get("latency")
    if lat:
        from .measure.wallclock import latency_methods

        jobs["latency"] = 1
        images = min(test_n, lat["limit"]) if test_n and lat.get("limit") else (lat.get("limit") or test_n)
        if images:
            timed = len(latency_methods(plan)) * 2 * (lat.get("passes", 50) + 1) * images  # method + its backbone
            hours["latency"] = timed * BATCH1_MS_PER_BLOCK * plan.num_layers / 1e3 / 3600
    return {"jobs": jobs, "gpu_hours": hours, "known_size": train_n is not None}
