"""EEformer (reconstructed): the recipe, the three-stage scheme and its frozen stage-3 teacher, shared stages, the
retention operating point and the claims table."""
import copy
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import eebench.training.loop as loop
from eebench.errors import EEBenchError
from eebench.io import load_torch
from eebench.plan import Plan, validate_config
from eebench.recipes import resolve_method
from eebench.report.claims import applicable_claim, claims_table
from eebench.report.style import RECONSTRUCTED_NOTE
from eebench.report.summary import mean_curve, operating_point

TRAINING = {"epochs": 4, "batch_size": 64, "lr": 1e-3}
SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def test_recipe_is_flagged_and_resolves_per_family():
    vit = resolve_method("eeformer", None, 12, TRAINING, family="vit")
    assert vit["reconstructed"] is True and vit["title"] == "EEformer"
    assert vit["exit_layers"] == [4, 5, 6, 7, 8, 9, 10, 11] and {h["type"] for h in vit["heads"]} == {"glh"}
    assert [s["name"] for s in vit["stages"]] == ["stage1", "stage2", "stage3"]
    s1, s2, s3 = vit["stages"]
    assert (s2["train"], s2["init"], s3["train"], s3["init"]) == ("heads", "stage1", "all", "stage2")
    assert s3["lr"] == pytest.approx(1e-4) and s1["lr"] == 1e-3 and "lr_scale" not in s3  # a tenth of the run's LR
    # text: an exit after every block but the last (3.05× on SST-2 needs exits before block 4 of 12)
    assert resolve_method("eeformer", None, 12, TRAINING, family="bert")["exit_layers"] == list(range(1, 12))
    assert resolve_method("lgvit", None, 12, TRAINING, family="vit")["reconstructed"] is False


def test_exact_parameter_count_on_vit_b16():
    from eebench.build import build_model
    from eebench.model import count_params

    spec = resolve_method("eeformer", None, 12, {}, family="vit")
    model = build_model({"name": "vit_b16"}, spec, 100, pretrained=False)
    # ViT-B/16 (spec methods §5, incl. pooler and classifier) + 8 GLHs of 6D² + 19D + (D+1)C = 3,630,436 (test_glh)
    assert count_params(model) == 86_466_148 + 8 * 3_630_436 == 115_509_636


def _job(tiny_backbone, stage):
    return {"run": "t", "seed": 1, "threads": 1, "dataset": {"name": "digits", "test_fraction": 0.9},
            "backbone": tiny_backbone,
            "method": {"name": "eeformer", "exit_layers": [2, 4], "heads": [{"type": "glh"}, {"type": "glh"}],
                       "lte": False},
            "stage": {"init": None, "epochs": 2, "batch_size": 64, "lr": 3e-3, "weight_decay": 0.0,
                      "warmup_ratio": 0.0, "grad_clip": 1.0, "loss_params": {}, **stage}}


def test_stage3_teacher_is_a_frozen_copy_of_the_stage2_model(tmp_path, tiny_backbone, monkeypatch):
    stage2 = tmp_path / "stage2.pt"
    loop.train_stage(_job(tiny_backbone, {"name": "stage2", "loss": "normal", "train": "all"}), stage2,
                     progress=False)
    built = []
    real_build = loop.build_loss

    def capture(name, model, params=None):
        built.append(real_build(name, model, params))
        return built[-1]

    monkeypatch.setattr(loop, "build_loss", capture)
    loop.train_stage(_job(tiny_backbone, {"name": "stage3", "loss": "progressive_distillation", "train": "all",
                                          "init": "stage2"}), tmp_path / "stage3.pt", init=stage2, progress=False)
    teacher = built[0].teacher
    start, end = load_torch(stage2)["model"], load_torch(tmp_path / "stage3.pt")["model"]
    # the teacher still holds the stage-2 weights and BatchNorm statistics, exactly ...
    for key, value in teacher.state_dict().items():
        assert torch.equal(value.cpu(), start[key]), f"teacher changed: {key}"
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    # ... while the student moved (backbone and heads), so the comparison above can fail
    assert not torch.equal(end["heads.0.local.body.0.weight"], start["heads.0.local.body.0.weight"])
    assert any(not torch.equal(end[k], start[k]) for k in start if k.startswith("backbone."))
    bn = "heads.0.local.body.2.running_mean"
    assert not torch.equal(end[bn], start[bn]) and torch.equal(teacher.state_dict()[bn], start[bn])


def test_stage3_loss_against_a_hand_computed_value(tiny_backbone):
    from eebench.build import build_model
    from eebench.training.losses import build_loss, kd_loss

    torch.manual_seed(0)
    method = {"name": "e", "exit_layers": [2, 4], "heads": [{"type": "glh"}, {"type": "glh"}], "lte": False}
    model = build_model(tiny_backbone, method, 10).eval()
    loss = build_loss("progressive_distillation", model, {"gamma": 0.25, "temperature": 3.0}).eval()
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        out = model(x)
        t = copy.deepcopy(model)(x).final_logits  # the copy at construction = the model here
        rows = [*out.exit_logits, out.final_logits]
        ce = sum(torch.nn.functional.cross_entropy(z, y) for z in rows)
        kd = sum(kd_loss(z, t, 3.0, "batchmean") for z in rows)
        torch.testing.assert_close(loss(out, y), (0.75 * ce + 0.25 * kd) / 3)
    with pytest.raises(EEBenchError, match="exit_teacher"):
        build_loss("progressive_distillation", model, {"exit_teacher": "nope"})


def _tiny_config(**extra):
    cfg = {"run": "t", "seeds": [0], "dataset": {"name": "digits"},
           "backbone": {"name": "vit_tiny_digits", "pretrained": False, "hidden_size": 32, "num_attention_heads": 2,
                        "intermediate_size": 64},
           "training": {"epochs": 1, "batch_size": 64, "lr": 3e-3}, "methods": {"backbone": {}, "eeformer": {}}}
    return validate_config({**cfg, **extra})


def test_progressive_variants_share_their_first_two_stages():
    plan = Plan(_tiny_config(ablations={"base": "lgvit", "heads": ["lgvit"], "schemes": ["two_stage"],
                                        "eeformer": {}}))
    rows = plan.tables["eeformer_ablation"]
    assert [r["method"] for r in rows] == [f"abl-{h}-{s}" for h in ("glh", "lgvit", "mlp")
                                           for s in ("normal", "two_stage", "progressive")]
    # Table 1's EEformer and the ablation's GLH + progressive are the same model and training: one set of jobs
    assert plan.canonical["abl-glh-progressive"] == "eeformer"
    # the GLH two-stage variant's stages are EEformer's first two: trained once
    assert plan.stage_owner("abl-glh-two_stage", "stage2") == ("eeformer", "stage2")
    assert plan.final_logits("abl-glh-two_stage", 0) == "results/t/logits/eeformer/seed0/stage2.npz"
    # LGViT-head progressive starts from LGViT-head two-stage's stage 2
    assert plan.init_stage("abl-lgvit-progressive", "stage3") == ("abl-lgvit-two_stage", "stage2")
    assert plan.init_stage("abl-glh-two_stage", "stage2") == ("eeformer", "stage1")


def test_schema_needs_a_retention_for_the_retention_rule():
    with pytest.raises(EEBenchError, match="retention"):
        _tiny_config(report={"operating_point": {"rule": "retention"}})
    with pytest.raises(EEBenchError, match="schemes"):
        _tiny_config(ablations={"base": "lgvit", "eeformer": {"schemes": ["three_stage"]}})


def _curve(points, seed=0):
    return pd.DataFrame([{"seed": seed, "param_threshold": t, "accuracy": a, "layer_speedup": s,
                          "expected_macs_paper": 1.0, "expected_macs_full": 1.0, "head_aware_speedup_paper": s,
                          "head_aware_speedup_full": s, "avg_exit_layer": 1.0} for t, a, s in points])


# full depth 0.800; 99.0 % of it = 0.792, 98.5 % = 0.788
POINTS = [(1.0, 0.800, 1.00), (0.9, 0.795, 1.40), (0.8, 0.792, 1.80), (0.7, 0.790, 2.20), (0.6, 0.770, 3.00)]


def test_retention_operating_point_by_hand():
    mc = mean_curve(_curve(POINTS))
    assert operating_point(mc, {"rule": "retention", "retention": 99.0})["layer_speedup"] == 1.80  # 0.792 ≥ 0.792
    assert operating_point(mc, {"rule": "retention", "retention": 98.5})["layer_speedup"] == 2.20  # 0.790 ≥ 0.788
    assert operating_point(mc, {"rule": "retention", "retention": 99.5})["layer_speedup"] == 1.00  # 0.795 < 0.796
    assert operating_point(mc, {"rule": "retention", "retention": 96.0})["layer_speedup"] == 3.00


def test_claims_table_puts_every_method_beside_the_abstract(tmp_path):
    config = _tiny_config(report={"paper_setting": {"backbone": "ViT-B/16", "dataset": "CIFAR-100"}})
    curves = {"backbone": _curve([(1.0, 0.80, 1.0)]), "eeformer": _curve(POINTS)}
    costs = {"backbone": {"row_layers": [6]}, "eeformer": {"row_layers": [2, 3, 4, 5, 6]}}
    raw = claims_table(curves, costs, {"backbone": "Backbone", "eeformer": "EEformer †"}, config, Path(tmp_path), "s")
    r = raw.set_index("method")
    assert r.loc["eeformer_paper", "speedup_at_99"] == 1.87 and r.loc["eeformer_paper", "speedup_at_98.5"] == 3.05
    # the backbone's 0.800 equals EEformer's own full depth here: both references give the by-hand points above
    assert r.loc["eeformer", "speedup_at_99"] == 1.80 and r.loc["eeformer", "speedup_at_98.5"] == 2.20
    assert r.loc["backbone", "speedup_at_99"] == 1.0 and bool(r.loc["eeformer", "reconstructed"])
    md = (tmp_path / "eeformer_claims.md").read_text()
    assert "1.87 (CIFAR-100)" in md and "3.05 (SST-2)" in md and "EEformer †" in md and RECONSTRUCTED_NOTE in md
    assert "stands in for the CIFAR-100 claim" in md
    assert applicable_claim({"dataset": {"name": "sst2"}, "report": {}})["retention"] == 98.5
    assert applicable_claim({"dataset": {"name": "glue", "task": "sst2"}, "report": {}})["dataset"] == "SST-2"
    assert applicable_claim({"dataset": {"name": "glue", "task": "cola"}, "report": {}}) is None
    assert applicable_claim({"dataset": {"name": "digits"}, "report": {}}) is None


# EEformer's own full depth 0.790; its backbone row 0.790 on seed 0 and 0.800 on seed 1 (mean 0.795), and 0.500 on a
# seed 2 EEformer did not run, which the reference must leave out (with it the mean would be 0.697, below every point)
OWN = [(1.0, 0.790, 1.00), (0.9, 0.788, 1.40), (0.8, 0.785, 1.80), (0.7, 0.780, 2.20), (0.6, 0.760, 3.00)]
BACKBONE = pd.concat([_curve([(1.0, a, 1.0)], seed) for seed, a in [(0, 0.790), (1, 0.800), (2, 0.500)]])


def _two_seeds(points):
    return pd.concat([_curve(points, 0), _curve(points, 1)], ignore_index=True)


def test_retention_against_the_backbone_and_against_its_own_full_depth_by_hand():
    from eebench.report.retention import reference

    costs = {"backbone": {"row_layers": [6]}, "eeformer": {"row_layers": [2, 3, 4, 5, 6]}}
    curves = {"backbone": BACKBONE, "eeformer": _two_seeds(OWN)}
    mc = mean_curve(curves["eeformer"])
    ref = reference({}, curves, costs)  # the default: the backbone row
    assert ref.used == "backbone" and ref.row == "backbone"
    base = ref.value(curves["eeformer"])
    assert base == pytest.approx(0.795)  # seeds 0 and 1 only
    # backbone: 99.0 % of 0.795 = 0.78705 → 0.790 (1.00×) and 0.788 (1.40×) keep it, 0.785 does not → 1.40×
    #           98.5 % of 0.795 = 0.783075 → up to 0.785 (1.80×) → 1.80×
    # own:      99.0 % of 0.790 = 0.7821 → up to 0.785 (1.80×) → 1.80×; 98.5 % = 0.77815 → up to 0.780 (2.20×)
    rule99, rule985 = {"rule": "retention", "retention": 99.0}, {"rule": "retention", "retention": 98.5}
    assert operating_point(mc, rule99, reference=base)["layer_speedup"] == 1.40
    assert operating_point(mc, rule985, reference=base)["layer_speedup"] == 1.80
    assert operating_point(mc, rule99)["layer_speedup"] == 1.80
    assert operating_point(mc, rule985)["layer_speedup"] == 2.20
    # 99.5 % of 0.795 = 0.791 is above EEformer's best point (0.790): no operating point
    assert operating_point(mc, {"rule": "retention", "retention": 99.5}, reference=base) is None


def test_claims_table_shows_both_references(tmp_path):
    config = _tiny_config(report={"paper_setting": {"backbone": "ViT-B/16", "dataset": "CIFAR-100"}})
    curves = {"backbone": BACKBONE, "eeformer": _two_seeds(OWN)}
    costs = {"backbone": {"row_layers": [6]}, "eeformer": {"row_layers": [2, 3, 4, 5, 6]}}
    titles = {"backbone": "Backbone", "eeformer": "EEformer †"}
    r = claims_table(curves, costs, titles, config, Path(tmp_path), "s").set_index("method")
    # the by-hand values of the test above; the plain columns carry the configured reference (default: backbone)
    assert (r.loc["eeformer", "speedup_at_99_backbone"], r.loc["eeformer", "speedup_at_98.5_backbone"]) == (1.40, 1.80)
    assert (r.loc["eeformer", "speedup_at_99_own"], r.loc["eeformer", "speedup_at_98.5_own"]) == (1.80, 2.20)
    assert (r.loc["eeformer", "speedup_at_99"], r.loc["eeformer", "speedup_at_98.5"]) == (1.40, 1.80)
    assert r.loc["eeformer", "retention_reference"] == "backbone"
    assert r.loc["eeformer", "backbone_accuracy"] == pytest.approx(0.795)
    assert r.loc["eeformer_paper", "speedup_at_99_backbone"] == 1.87  # the abstract reads the original model
    md = (tmp_path / "eeformer_claims.md").read_text()
    for header in ("Speed-up @ 99.0 % of backbone (×)", "Speed-up @ 99.0 % of own full depth (×)",
                   "Speed-up @ 98.5 % of backbone (×)", "Speed-up @ 98.5 % of own full depth (×)"):
        assert header in md
    assert "report.retention_reference: backbone" in md
    own = claims_table(curves, costs, titles, _tiny_config(report={"retention_reference": "own"}), Path(tmp_path),
                       "s").set_index("method")
    assert (own.loc["eeformer", "speedup_at_99"], own.loc["eeformer", "retention_reference"]) == (1.80, "own")
    # no backbone row: the backbone columns are empty and the plain ones fall back to the own full depth, said so
    alone = claims_table({"eeformer": curves["eeformer"]}, costs, titles, config, Path(tmp_path), "s")
    alone = alone.set_index("method")
    assert alone.loc["eeformer", "speedup_at_99"] == 1.80 and alone.loc["eeformer", "retention_reference"] == "own"
    assert pd.isna(alone.loc["eeformer", "speedup_at_99_backbone"])
    md = (tmp_path / "eeformer_claims.md").read_text()
    assert "— (no backbone row)" in md and "this run has no backbone row" in md


def test_retention_reference_defaults_to_the_backbone():
    from eebench.report.retention import DEFAULT, REFERENCES, requested

    assert _tiny_config()["report"]["retention_reference"] == "backbone" == DEFAULT == requested({})
    assert tuple(yaml.safe_load(SCHEMA.read_text())["properties"]["report"]["properties"]["retention_reference"]
                 ["enum"]) == REFERENCES
    with pytest.raises(EEBenchError, match="retention_reference"):
        _tiny_config(report={"retention_reference": "teacher"})


def test_table1_retention_rule_reads_the_backbone_and_says_so(tmp_path):
    from eebench.report.table1 import table1

    config = _tiny_config(report={"operating_point": {"rule": "retention", "retention": 99.0}})
    curves = {"backbone": BACKBONE, "eeformer": _two_seeds(OWN)}
    costs = {m: {"row_layers": rows, "params": {"total": 1}} for m, rows in
             [("backbone", [6]), ("eeformer", [2, 3, 4, 5, 6])]}
    raw = table1(curves, costs, {"backbone": "Backbone", "eeformer": "EEformer †"}, config, Path(tmp_path), "s")
    r = raw.set_index("method")
    assert r.loc["eeformer", "layer_speedup_mean"] == 1.40 and r.loc["eeformer", "retention_reference"] == "backbone"
    assert "of the backbone row's ('backbone') full-depth metric" in (tmp_path / "table1.md").read_text()


# --- the frozen backbone's mode in stage 2 (text) ---------------------------------------------------------------------

SST2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2_glue"


def test_text_stage2_asks_for_an_eval_mode_backbone_and_vision_stays_lgvits():
    """On BERT every heads-only stage records frozen_backbone_mode: eval (a scheme's too); on ViT the key is absent,
    so EEformer's first two stages keep LGViT's job specs and stay LGViT's shared jobs."""
    bert = {s["name"]: s for s in resolve_method("eeformer", None, 12, TRAINING, family="bert")["stages"]}
    assert bert["stage2"]["frozen_backbone_mode"] == "eval"
    assert "frozen_backbone_mode" not in bert["stage1"] and "frozen_backbone_mode" not in bert["stage3"]
    calib = resolve_method("eeformer", {"scheme": "progressive_calibration"}, 12, TRAINING, family="bert")["stages"]
    assert [s.get("frozen_backbone_mode") for s in calib] == [None, "eval", "eval"]  # its stage 3 trains heads only
    vit = resolve_method("eeformer", None, 12, TRAINING, family="vit")
    assert not any("frozen_backbone_mode" in s for s in vit["stages"])
    lgvit = resolve_method("lgvit", None, 12, TRAINING, family="vit")
    assert vit["stages"][1] == lgvit["stages"][1]


def _text_model(head=None):
    from eebench.backbones import build_backbone
    from eebench.model import MultiExitModel

    torch.manual_seed(0)
    bb = build_backbone("bert_tiny_test", 2, pretrained=False)  # BERT's own dropout: hidden and attention 0.1
    return MultiExitModel(bb, [1, 2, 3], [head or {"type": "glh"}] * 3, 2)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_frozen_backbone_block_outputs_repeat_exactly_in_eval_mode(mode):
    """Two stage-2 forwards of the same batch: in eval mode the frozen backbone's block outputs (the heads' inputs and
    the distillation references) and the teacher logits are identical; in train mode BERT's dropout 0.1 makes them
    differ (the case the switch exists for). The heads stay in train mode either way."""
    from eebench.training.losses import build_loss

    model = _text_model()
    loss_fn = build_loss("lgvit_distillation", model, {"alpha": 0.01, "beta": 0.01, "gamma": 0.3,
                                                        "temperature": 2.0})
    loop.enter_training(model, loss_fn, {"name": "stage2", "train": "heads", "frozen_backbone_mode": mode})
    assert all(h.training for h in model.heads) and model.backbone.training == (mode == "train")
    x = {"input_ids": torch.randint(1000, 2000, (4, 12)), "token_type_ids": torch.zeros(4, 12, dtype=torch.long),
         "attention_mask": torch.ones(4, 12, dtype=torch.long)}
    torch.manual_seed(1)
    first = model(x, frozen_backbone=True, with_teacher=True, with_hidden=True)
    second = model(x, frozen_backbone=True, with_teacher=True, with_hidden=True)
    same = [torch.equal(a, b) for a, b in zip(first.hidden_states, second.hidden_states)]
    same.append(torch.equal(first.teacher_logits, second.teacher_logits))
    assert all(same) if mode == "eval" else not any(same[1:])


@pytest.mark.skipif(not SST2.exists(), reason="shared SST-2 data not present")
def test_loop_puts_the_frozen_backbone_back_in_eval_mode_every_epoch(tmp_path, monkeypatch):
    """The loop calls model.train() at every epoch (after a dev evaluation left the model in eval mode): a stage with
    frozen_backbone_mode: eval must still run every training step with the backbone in eval mode and the heads in train
    mode. 32 samples at batch 16, 2 epochs: 4 steps, with a dev evaluation (select) after each epoch."""
    from eebench.model import MultiExitModel

    seen = []
    real_forward = MultiExitModel.forward

    def spy(self, *args, **kwargs):
        if self.training:
            seen.append((self.backbone.training, all(h.training for h in self.heads)))
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(MultiExitModel, "forward", spy)
    job = {"run": "t", "seed": 0, "threads": 1,
           "dataset": {"name": "glue", "task": "sst2", "root": str(SST2), "limit_train": 32, "limit_eval": 16,
                       "max_seq_length": 16, "cache_dir": str(tmp_path / "cache")},
           "backbone": {"name": "bert_tiny_test", "pretrained": False},
           "method": {"name": "eeformer", "exit_layers": [1, 2, 3], "heads": [{"type": "glh"}] * 3, "lte": False},
           "stage": {"name": "stage2", "loss": "lgvit_distillation", "train": "heads", "init": None, "epochs": 2,
                     "batch_size": 16, "lr": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.0, "grad_clip": 1.0,
                     "loss_params": {}, "frozen_backbone_mode": "eval", "select": "best_mean_row"}}
    loop.train_stage(job, tmp_path / "stage2.pt", progress=False)
    assert seen == [(False, True)] * 4
    assert load_torch(tmp_path / "stage2.pt")["job"]["stage"]["frozen_backbone_mode"] == "eval"  # recorded


def test_eval_mode_on_a_stage_that_trains_its_backbone_fails_in_one_line():
    cfg = _tiny_config(methods={"eeformer": {"stages": {"stage1": {"frozen_backbone_mode": "eval"}}}})
    with pytest.raises(EEBenchError) as err:
        Plan(cfg)
    assert "stages.stage1.frozen_backbone_mode" in str(err.value) and "train: heads" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(EEBenchError, match="use train or eval"):
        Plan(_tiny_config(methods={"eeformer": {"stages": {"stage2": {"frozen_backbone_mode": "off"}}}}))


@pytest.mark.parametrize("feature, local, global_", [("local", [0, 1, 2], []), ("global", [], [0, 1, 2])])
def test_glh_distils_one_branch_only_as_the_recipe_says(feature, local, global_):
    """baselines/eeformer.yaml: with the GLH default (distill_feature local) every GLH is in LGViT's local group, so
    the heterogeneous pairs are the first and the last GLH (exits after blocks 1 and 3 of the 4-block BERT), the
    homogeneous students every other GLH against the last one, and no Gram (global-group) term exists; `global` swaps
    the groups. Exit indices 0, 1, 2 = blocks 1, 2, 3."""
    from eebench.training.losses import build_loss

    model = _text_model({"type": "glh", "distill_feature": feature})
    loss = build_loss("lgvit_distillation", model, {})
    assert (loss.lph, loss.gah) == (local, global_)
    assert loss.pairs == [0, 2] and loss.teacher == {0: 2, 1: 2}
