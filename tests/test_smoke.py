"""Smoke mode (eebench.smoke): every config plans at miniature scale with the same methods, stages, variants and
report targets; tiny backbones keep their family's token layout; fixtures load through each loader format. The full
smoke DAG of every config in config/ runs in .ci/run (`eebench smoke`)."""
from pathlib import Path

import pytest
import torch

from eebench.build import build_model
from eebench.data import load_dataset, num_classes_of
from eebench.plan import Plan, expand_grid, load_config
from eebench.recipes import resolve_method

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_smoke_plan_keeps_every_job_and_renames_the_run(path):
    cfg = load_config(path)
    real = {n: Plan(c) for n, c in expand_grid(cfg).items()}
    smoke = {n: Plan(c) for n, c in expand_grid({**cfg, "smoke": True}).items()}
    assert len(smoke) == len(real)
    for (rn, rp), (sn, sp) in zip(real.items(), smoke.items()):
        head, _, cell = rn.partition("/")
        assert sn == f"{head}-smoke" + (f"/{cell}" if cell else "")  # never collides with the real run
        assert sp.all_methods.keys() == rp.all_methods.keys() and sp.tables == rp.tables
        assert sp.num_layers == rp.num_layers and sp.family == rp.family
        for name, m in sp.all_methods.items():
            assert [s["name"] for s in m["stages"]] == [s["name"] for s in rp.all_methods[name]["stages"]]
            assert all(s["epochs"] <= 1 for s in m["stages"])
            assert m["exit_layers"] == rp.all_methods[name]["exit_layers"] and m["policy"] == rp.all_methods[name]["policy"]
        c = sp.config
        assert c["training"]["device"] == "cpu" and "resources" not in c and not c["backbone"].get("pretrained")
        if c.get("latency"):
            assert c["latency"]["passes"] == 1 and c["latency"]["device"] == "cpu"
        assert c["report"] == rp.config["report"]


@pytest.mark.parametrize("name, tokens, prefix", [("vit_b16", 197, ("cls",)), ("vit_lgvit_v0", 198, ("cls", "dist")),
                                                  ("deit_b", 198, ("cls", "dist"))])
def test_tiny_vit_family_keeps_its_token_layout(name, tokens, prefix):
    from eebench.smoke import TINY

    backbone = {"name": name, "pretrained": False, **TINY["deit" if "dist" in prefix else "vit"]}
    model = build_model(backbone, resolve_method("lgvit", None, 12, {}), 10)
    layout = model.backbone.layout(1)
    assert (layout.prefix, layout.grid, layout.width, model.backbone.num_layers) == (prefix, (14, 14), 16, 12)
    hidden, ctx = model.backbone.embed(torch.zeros(1, 3, 224, 224))
    assert hidden.shape[1] == tokens


def test_tiny_swin_keeps_stages_widths_and_patch_merging():
    from eebench.smoke import TINY

    spec = resolve_method("lgvit", None, 24, {}, family="swin")
    model = build_model({"name": "swin_b", "pretrained": False, **TINY["swin"]}, spec, 10)
    layouts = [model.backbone.layout(i) for i in (2, 4, 22, 24)]
    assert [(lo.width, lo.grid) for lo in layouts] == [(8, (56, 56)), (16, (28, 28)), (32, (14, 14)), (64, (7, 7))]
    out = model(torch.zeros(1, 3, 224, 224))
    assert out.stacked().shape == (9, 1, 10)


@pytest.mark.parametrize("dataset, fmt, where", [("cifar100", "parquet", "parquet files"),
                                                 ("food101", "saved", "save_to_disk"),
                                                 ("imagenet1k", "folder", "ImageFolder"), ("cifar10", "zip", "zip")])
def test_fixtures_load_through_the_real_loader_formats(tmp_path, dataset, fmt, where):
    from eebench.smoke import FORMAT, miniature

    assert FORMAT[dataset] == fmt
    cfg = miniature({"run": "r", "dataset": {"name": dataset, "root": "/nowhere"}, "backbone": {"name": "deit_b"},
                     "training": {}, "methods": {"backbone": {}}})
    spec = {**cfg["dataset"], "root": str(tmp_path / Path(cfg["dataset"]["root"]).name),
            "cache_dir": str(tmp_path / "cache")}
    src = load_dataset(spec)
    assert where in src.description and (src.num_classes, src.train_size) == (10, 40) == (num_classes_of(spec), 40)
    assert load_dataset(spec).train_size == 40  # the second load reads the fixture written by the first
    x, y = next(iter(src.eval_batches(build_model({"name": "vit_b16", "pretrained": False, "hidden_size": 16,
                                                   "num_attention_heads": 2, "intermediate_size": 32},
                                                  resolve_method("backbone", None, 12, {}), 10).backbone, 32)))
    assert x.shape == (30, 3, 224, 224) and sorted(y.tolist()) == sorted(list(range(10)) * 3)


def test_smoke_cli(capsys, tmp_path):
    from eebench.cli import main

    assert main(["smoke", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["plan", "--smoke", "--configfile", str(REPO / "config" / "paper.yaml")]) == 0
    out = capsys.readouterr().out
    assert "run paper-smoke/swin_b-imagenet1k: imagenet1k on swin_b (24 blocks)" in out and "train 129" in out
