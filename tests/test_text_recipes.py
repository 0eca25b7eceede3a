"""The NLP methods' own recipes on text. The official codes' heads come with the recipe on a BERT-family backbone (not
from config overrides), while the LGViT port's heads stay on the vision families. COST-EFF trains at run.sh's batch size
and weight decay, distils from its own fine-tune (its table's retention denominator), and config/glue.yaml carries
run.sh's per-task epochs in its grid cells' ``method_overrides``."""
import re
from pathlib import Path

import pytest

from eebench.plan import Plan, validate_config

BERT = {"run": "t", "seeds": [0], "dataset": {"name": "glue", "task": "sst2"},
        "backbone": {"name": "bert_tiny_test", "pretrained": False}, "training": {"epochs": 1}}
VIT = {"run": "t", "seeds": [0], "dataset": {"name": "digits"},
       "backbone": {"name": "vit_tiny_digits", "pretrained": False}, "training": {"epochs": 1}}


def plan_of(base: dict, methods: dict, **extra) -> Plan:
    return Plan(validate_config({**base, **extra, "methods": methods}))


# Expected heads, from the official codes (spec baselines §4a, §6a): PABEE and PCEE-BERT call BERT's one pre-trained
# pooler at every layer, then dropout(hidden_dropout_prob = 0.1) and a per-layer linear classifier (`pooled_linear`);
# DeeBERT and BERxiT build a pooler per off-ramp, copied from the backbone's, then dropout(hidden_dropout_prob = 0.1).
# bert_tiny_test has 4 blocks: PABEE/PCEE exits after 1..3, DeeBERT/BERxiT off-ramps after 1..4.
OFFICIAL_TEXT_HEADS = {
    "pabee": (3, {"type": "pooled_linear", "dropout": 0.1}),
    "pcee": (3, {"type": "pooled_linear", "dropout": 0.1}),
    "deebert": (4, {"type": "mlp", "copy_pooler": True, "dropout": 0.1}),
    "berxit": (4, {"type": "mlp", "copy_pooler": True, "dropout": 0.1}),
}


@pytest.mark.parametrize("method", sorted(OFFICIAL_TEXT_HEADS))
def test_a_bare_method_on_bert_gets_the_official_text_heads(method):
    count, head = OFFICIAL_TEXT_HEADS[method]
    assert plan_of(BERT, {method: {}}).method(method)["heads"] == [head] * count


# On ViT (vit_tiny_digits: 6 blocks) the recipes' own heads stay: the LGViT port's `mlp` exit (a randomly initialised
# pooler, dropout 0) after blocks 1..5 for PABEE/PCEE; DeeBERT/BERxiT copy the pooler (their recipe's switch),
# dropout 0.
VISION_HEADS = {
    "pabee": (5, {"type": "mlp"}),
    "pcee": (5, {"type": "mlp"}),
    "deebert": (6, {"type": "mlp", "copy_pooler": True}),
    "berxit": (6, {"type": "mlp", "copy_pooler": True}),
}


@pytest.mark.parametrize("method", sorted(VISION_HEADS))
def test_vision_keeps_the_recipe_heads(method):
    count, head = VISION_HEADS[method]
    assert plan_of(VIT, {method: {}}).method(method)["heads"] == [head] * count


@pytest.mark.parametrize("port", ["pabee_port", "pcee_port", "berxit_port"])
def test_the_lgvit_ports_keep_the_ports_heads_on_bert(port):
    """A port variant is the LGViT port on every family: the `mlp` exit with its own random pooler, dropout 0 (and
    the port's Swin exits on Swin), not the official text heads of the recipe it is a variant of."""
    heads = plan_of(BERT, {port: {}}).method(port)["heads"]
    assert heads == [{"type": "mlp"}] * len(heads) and len(heads) == 3


def test_a_config_override_still_replaces_the_family_heads():
    heads = plan_of(BERT, {"pabee": {"heads": {"type": "mlp", "dropout": 0.2}}}).method("pabee")["heads"]
    assert heads == [{"type": "mlp", "dropout": 0.2}] * 3


@pytest.mark.parametrize("port", ["pabee_port", "pcee_port", "berxit_port"])
def test_the_lgvit_ports_keep_the_ports_swin_exits(port):
    """The port's Swin exits (spec methods §1.2, §2.1): LN → mean → linear after blocks 4, 7, …, 22, 23 of 24."""
    from eebench.recipes import resolve_method

    spec = resolve_method(port, {}, 24, {}, family="swin")
    assert spec["exit_layers"] == [4, 7, 10, 13, 16, 19, 22, 23] and spec["heads"] == [{"type": "linear"}] * 8


# --- COST-EFF's own recipe (run.sh) and per-task tables ---------------------------------------------------------------

GLUE = Path(__file__).resolve().parents[1] / "config" / "glue.yaml"
SST2 = Path(__file__).resolve().parents[1] / "config" / "sst2.yaml"


def epochs(plan: Plan, method: str) -> dict[str, int]:
    return {st["name"]: st["epochs"] for st in plan.method(method)["stages"]}


def test_costeff_stages_train_at_batch_32_with_weight_decay_001_whatever_the_run_defaults():
    """run.sh: TRAIN_BATCH=32 and --weight_decay 0.01 in every step; a run whose defaults are DeeBERT's (batch 8, no
    decay, config/glue.yaml) must not reach COST-EFF's stages, nor its teacher's."""
    plan = plan_of(BERT, {"backbone": {}, "cost_eff": {}},
                   training={"epochs": 3, "batch_size": 8, "weight_decay": 0.0, "warmup_ratio": 0.0})
    for method in ("cost_eff", "backbone_costeff"):
        for st in plan.method(method)["stages"]:
            assert (st["batch_size"], st["weight_decay"]) == (32, 0.01), (method, st["name"])
    assert plan.stage("backbone", "finetune")["batch_size"] == 8  # the backbone row keeps the run's


def test_costeff_distils_from_its_own_finetune_not_the_backbone_row():
    """run.sh `Finetune` (run_glue_costeff.py --train_ft → do_train_2t): batch 32, warm-up 10 %, weight decay 0.01 in
    the no-decay groups (biases and LayerNorm weights at 0), the best dev evaluation kept (`train_ft or pred_distill`),
    the run's lr and epochs. That is another job than the backbone row's; the run trains it without reporting it."""
    plan = plan_of(BERT, {"backbone": {}, "cost_eff": {}},
                   training={"epochs": 3, "batch_size": 8, "lr": 2e-5, "weight_decay": 0.0, "warmup_ratio": 0.0})
    assert plan.teacher_stage("cost_eff", "ta_hidden") == ("backbone_costeff", "finetune")
    assert plan.teacher_stage("cost_eff", "ta_pred") == ("backbone_costeff", "finetune")
    teacher = plan.stage("backbone_costeff", "finetune")
    assert {k: teacher[k] for k in ("batch_size", "lr", "weight_decay", "warmup_ratio", "epochs", "no_decay",
                                    "select")} == \
        {"batch_size": 32, "lr": 2e-5, "weight_decay": 0.01, "warmup_ratio": 0.1, "epochs": 3,
         "no_decay": ["bias", "LayerNorm.weight"], "select": "best_mean_row"}
    assert "backbone_costeff" in plan.all_methods and "backbone_costeff" not in plan.methods  # trained, not reported


def test_sst2_config_trains_the_costeff_teacher_beside_the_backbone_row():
    """config/sst2.yaml's defaults (batch 32, wd 0.01, warm-up 0.1, lr 5e-5, 1 epoch) equal the COST-EFF fine-tune's
    but for its no-decay groups and dev selection, so the teacher is a job of its own: 18 training jobs (backbone 1,
    backbone_costeff 1, deebert 1, pabee = pcee 1, berxit 1, berxit_alt 1, sdn 1, eeformer 3, cost_eff 5, cost_eff_8x
    3 of its own: its TA is cost_eff's). With the backbone row given the same two keys, the two are one job."""
    from eebench.plan import expand_grid, load_config

    cfg = expand_grid(load_config(SST2))["sst2"]
    plan = Plan(cfg)
    assert plan.canonical["backbone_costeff"] == "backbone_costeff"
    jobs = {plan.stage_owner(m, st["name"]) for m in plan.all_methods for st in plan.method(m)["stages"]}
    assert len(jobs) == 18
    same = {"stages": {"finetune": {"no_decay": ["bias", "LayerNorm.weight"], "select": "best_mean_row"}}}
    shared = Plan({**cfg, "methods": {**cfg["methods"], "backbone": same}})
    assert shared.canonical["backbone_costeff"] == "backbone"
    assert shared.teacher_stage("cost_eff", "ta_hidden") == ("backbone", "finetune")


# run.sh, per task (MRPC, SST-2, QNLI, MNLI, CoLA, QQP): EPOCHs_T 12 5 5 3 8 3 (fine-tune, TA phase b; phase a is
# EPOCHs_T / 3 floored: 4 1 1 1 2 1); at h = 6: P 12 3 3 2 12 2, RD 12 8 6 3 10 3, PD 5 3 3 2 5 2; at h = 2:
# P 20 5 5 3 20 3, RD 20 10 8 5 20 5, PD 10 6 5 3 10 3; REPR_PROP 0.5 0.7 0.7 0.7 0.5 0.7.
RUN_SH = {  # task: (finetune, ta_hidden, ta_pred), (prune, recover_hidden, recover_pred) at h = 6 | h = 2, repr_prop
    "mrpc": ((12, 4, 12), (12, 12, 5), (20, 20, 10), 0.5),
    "sst2": ((5, 1, 5), (3, 8, 3), (5, 10, 6), 0.7),
    "qnli": ((5, 1, 5), (3, 6, 3), (5, 8, 5), 0.7),
    "mnli": ((3, 1, 3), (2, 3, 2), (3, 5, 3), 0.7),
    "mnli_mm": ((3, 1, 3), (2, 3, 2), (3, 5, 3), 0.7),
    "cola": ((8, 2, 8), (12, 10, 5), (20, 20, 10), 0.5),
    "qqp": ((3, 1, 3), (2, 3, 2), (3, 5, 3), 0.7),
}


@pytest.mark.parametrize("task", sorted(RUN_SH))
def test_glue_config_carries_run_sh_per_task_tables(task):
    from eebench.plan import expand_grid, load_config

    (ft, ta_a, ta_b), h6, h2, repr_prop = RUN_SH[task]
    plan = Plan(expand_grid(load_config(GLUE))[f"glue/{task}"])
    assert epochs(plan, "backbone_costeff") == {"finetune": ft}
    for method, (p, rd, pd) in (("cost_eff", h6), ("cost_eff_8x", h2)):
        assert epochs(plan, method) == {"ta_hidden": ta_a, "ta_pred": ta_b, "prune": p, "recover_hidden": rd,
                                        "recover_pred": pd}, method
        sl = plan.stage(method, "prune")["slenderise"]
        assert sl["repr_prop"] == repr_prop and sl["restore"] == 0.12 and sl["prune_rate"] == "auto"  # merged, kept
    assert plan.stage_owner("cost_eff_8x", "ta_pred") == ("cost_eff", "ta_pred")  # one TA for both presets
    # the other methods keep the top level's settings: the cell merges, it does not replace the set
    assert "deebert" in plan.methods and plan.stage("pabee", "train")["epochs"] == 5
    assert plan.stage("backbone", "finetune")["batch_size"] == 8


def test_glue_stsb_cell_still_replaces_the_methods():
    from eebench.plan import expand_grid, load_config

    plan = Plan(expand_grid(load_config(GLUE))["glue/stsb"])
    assert list(plan.methods) == ["backbone", "pabee"]
    assert plan.method("pabee")["policy"]["name"] == "pabee_patience_regression"


def test_a_cell_method_override_merges_into_the_top_level_and_its_own_methods():
    """Deep merge: the cell's stage keys land in the top level's entry (a cell's repr_prop beside the top level's
    taylor_proportion), and in a cell that replaces the methods, into that cell's own entry."""
    from eebench.plan import expand_grid

    cfg = {**BERT, "methods": {"cost_eff": {"stages": {"prune": {"slenderise": {"taylor_proportion": 0.25}}}}},
           "grid": [{"name": "a", "method_overrides": {"cost_eff": {"stages": {"prune": {
               "epochs": 7, "slenderise": {"repr_prop": 0.5}}}}}},
                    {"name": "b", "methods": {"cost_eff": {"title": "B"}},
                     "method_overrides": {"cost_eff": {"stages": {"recover_pred": {"epochs": 9}}}}}]}
    runs = {name: Plan(c) for name, c in expand_grid(validate_config(cfg)).items()}
    a = runs["t/a"].stage("cost_eff", "prune")
    assert a["epochs"] == 7 and a["slenderise"]["repr_prop"] == 0.5 and a["slenderise"]["taylor_proportion"] == 0.25
    b = runs["t/b"]
    assert b.method("cost_eff")["title"] == "B" and b.stage("cost_eff", "recover_pred")["epochs"] == 9
    assert b.stage("cost_eff", "prune")["slenderise"]["taylor_proportion"] == 1.0  # the top level's entry was replaced


def test_method_overrides_naming_a_method_the_run_does_not_train_fails_in_one_line():
    from eebench.errors import EEBenchError

    with pytest.raises(EEBenchError) as err:
        plan_of(BERT, {"backbone": {}}, method_overrides={"cost_ef": {"stages": {"prune": {"epochs": 2}}}})
    assert "method_overrides names 'cost_ef'" in str(err.value) and "\n" not in str(err.value)


def _curve(score: float, thresholds=(0.0,)) -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame([{"policy": "p", "param_entropy_threshold": s, "accuracy": score, "metric": "accuracy",
                          "score": score, "layer_speedup": 1.0, "expected_macs_paper": 4e6, "expected_macs_full": 5e6,
                          "head_aware_speedup_paper": 1.0, "head_aware_speedup_full": 1.0, "avg_exit_layer": 4.0}
                         for s in thresholds])


def test_costeff_table_names_its_teacher_and_reads_retention_against_it(tmp_path, monkeypatch):
    """The teacher's exit-logit cache answers 3 of 4 dev samples right (accuracy 0.75); COST-EFF scores 0.6 and the
    backbone row (DeeBERT's stage 1 here: batch 8) 0.5. Retention = 0.6 / 0.75 = 80.0 %, not 0.6 / 0.5 = 120 %; the
    backbone row's 120.0 % stays beside it, and the table names the teacher, its job and its hyper-parameters."""
    import numpy as np

    from eebench.plan import logits_path
    from eebench.report.costeff import costeff_table

    monkeypatch.chdir(tmp_path)
    plan = plan_of(BERT, {"backbone": {}, "cost_eff": {}},
                   training={"epochs": 3, "batch_size": 8, "lr": 2e-5, "weight_decay": 0.0, "warmup_ratio": 0.0})
    cache = Path(logits_path("t", "backbone_costeff", 0, "finetune"))
    cache.parent.mkdir(parents=True)
    logits = np.array([[[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [0.0, 2.0]]], dtype=np.float32)  # predicts 0, 1, 1, 1
    with open(cache, "wb") as fh:
        np.savez(fh, logits=logits, labels=np.array([0, 1, 1, 0]), row_layers=np.array([4]), num_layers=4,
                 lengths=np.array([5, 5, 5, 5]), metric=np.array("accuracy"))
    comps = {"embed": {"params": 10}, "block1": {"params": 5}}
    costs = {"backbone": {"params": {"total": 100}, "components": comps},
             "cost_eff": {"params": {"total": 50}, "components": comps}}
    curves = {"backbone": _curve(0.5), "cost_eff": _curve(0.6)}
    raw = costeff_table(plan, curves, costs, {"backbone": "Backbone", "cost_eff": "COST-EFF"}, tmp_path, "tiny")
    row = raw.iloc[0]
    assert row["teacher"] == "backbone_costeff:finetune" and row["teacher_job"] == "backbone_costeff:finetune"
    assert (row["teacher_batch_size"], row["teacher_lr"], row["teacher_weight_decay"], row["teacher_no_decay"],
            row["teacher_warmup_ratio"], row["teacher_epochs"], row["teacher_select"]) == \
        (32, 2e-5, 0.01, "bias, LayerNorm.weight", 0.1, 3, "best_mean_row")
    assert row["teacher_score"] == pytest.approx(0.75)
    assert row["retention"] == pytest.approx(0.8) and row["retention_vs_backbone_row"] == pytest.approx(1.2)
    md = (tmp_path / "costeff.md").read_text()
    assert re.search(r"\| 60\.0 +\| 80\.0 +\| 120\.0 +\|", md)  # metric, retention, retention vs the backbone row
    assert ("Teacher (the retention denominator): backbone_costeff:finetune: batch 32, lr 2e-05, weight decay 0.01 "
            "(not on bias, LayerNorm.weight), warm-up 0.1, 3 epochs, the best dev epoch kept; accuracy 75.0 %.") in md


def test_report_rule_waits_for_the_costeff_teacher_cache():
    from eebench.report.costeff import teacher_caches

    plan = plan_of(BERT, {"backbone": {}, "cost_eff": {}}, training={"epochs": 1, "batch_size": 8})
    assert teacher_caches(plan) == ["results/t/logits/backbone_costeff/seed0/finetune.npz"]
    same = {"stages": {"finetune": {"no_decay": ["bias", "LayerNorm.weight"], "select": "best_mean_row"}}}
    shared = plan_of(BERT, {"backbone": same, "cost_eff": {}},
                     training={"epochs": 1, "batch_size": 32, "weight_decay": 0.01, "warmup_ratio": 0.1})
    assert teacher_caches(shared) == ["results/t/logits/backbone/seed0/finetune.npz"]  # one job: the backbone row's


# --- departures from the official codes, stated in the tables' notes -----------------------------------------------


def test_text_tables_state_the_batching_and_pcee_departures():
    from eebench.report.departures import text_notes

    glue = {"dataset": {"name": "glue", "task": "sst2"}, "methods": {"pabee": {}, "pcee": {}, "mine": {"recipe": "pcee"}}}
    notes = text_notes(glue, ["pabee", "pcee"])
    assert notes[0].startswith("Text batches: training batches are length-bucketed (dataset.bucket: 50")
    assert notes[1].startswith("PCEE-BERT: no dev-set checkpoint selection")
    assert len(text_notes(glue, ["mine"])) == 2  # a PCEE copy under another name is still PCEE
    assert len(text_notes(glue, ["pabee", "pcee_port"])) == 1  # the LGViT port is another reading
    uniform = text_notes({**glue, "dataset": {"name": "glue", "bucket": 1}}, ["pabee"])
    assert uniform == ["Text batches: uniform random training batches (dataset.bucket: 1), as the official codes draw "
                       "them (padded to each batch's longest sample, which changes no model output)."]
    assert text_notes({"dataset": {"name": "digits"}, "methods": {"pcee": {}}}, ["pcee"]) == []


def test_bucket_one_draws_uniform_random_batches():
    """The note's claim: with dataset.bucket: 1 a training epoch is a random permutation cut into consecutive batches
    (each window is one batch, sorting inside a batch changes no member), in a shuffled order — the official codes'
    RandomSampler batches. Lengths 0..9 in order, batch 3: the batches are the permutation's chunks, as sets."""
    import torch

    from eebench.data.text import length_buckets

    lengths = torch.arange(10)
    gen = torch.Generator().manual_seed(3)
    batches = length_buckets(lengths, 3, 1, gen)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    expected = {frozenset(c.tolist()) for c in order.split(3)}
    assert {frozenset(b.tolist()) for b in batches} == expected
    # bucket 50 (the default) instead sorts the whole epoch (one window) by length: batches of neighbouring lengths
    sorted_batches = length_buckets(lengths, 3, 50, torch.Generator().manual_seed(3))
    assert {frozenset(b.tolist()) for b in sorted_batches} == {frozenset({0, 1, 2}), frozenset({3, 4, 5}),
                                                              frozenset({6, 7, 8}), frozenset({9})}
