"""COST-EFF (spec methods §7): real width pruning, SVD embedding, gradient equilibrium, Taylor importance that sees
every exit, the pruning-event schedule, presets and config checks — on tiny random BERTs."""
import copy

import pytest
import torch

from eebench.build import build_model
from eebench.errors import EEBenchError
from eebench.recipes import resolve_method
from eebench.slender.equilibrium import equilibrium_split
from eebench.slender.presets import resolve_target, target_shape
from eebench.slender.prune import (apply_shape, factorise_embedding, prune_ffn, prune_heads, shape_of, word_matrix)
from eebench.slender.schedule import PruneSchedule
from eebench.slender.taylor import taylor_importance
from eebench.training.losses import build_loss

V, H, A, F, P, L, C = 100, 32, 4, 64, 128, 3, 2  # vocab, hidden, heads, FFN, positions, layers, classes
TINY = {"name": "bert_tiny_test", "pretrained": False, "vocab_size": V, "hidden_size": H, "num_attention_heads": A,
        "intermediate_size": F, "num_hidden_layers": L}


def tiny_model(seed=0):
    torch.manual_seed(seed)
    method = resolve_method("cost_eff", None, L, {"epochs": 1, "lr": 1e-3, "batch_size": 4})
    return build_model(TINY, method, C, pretrained=False).eval()


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, V, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}, torch.tensor([0, 1, 1])


def expected_params(h, f, r):
    """Hand-derived: embeddings (factorised word table V·r + r·H, positions, 2 token types, LayerNorm)
    + per layer [Q, K, V: 3·(H·h·d + h·d); attention output: h·d·H + H; LN 2H; FFN: H·f + f + f·H + H; LN 2H]
    + L−1 exits and the final tanh-CLS classifier, each H·C + C (no pooler: COST-EFF drops it)."""
    d = H // A
    emb = V * r + r * H + P * H + 2 * H + 2 * H
    layer = 3 * (H * h * d + h * d) + (h * d * H + H) + 2 * H + (H * f + f) + (f * H + H) + 2 * H
    return emb + L * layer + L * (H * C + C)


def test_pruned_parameter_count_matches_the_formula():
    model = tiny_model()
    apply_shape(model, target_shape({"heads": 2, "ffn": 24, "rank": 8}, L))
    assert sum(p.numel() for p in model.parameters()) == expected_params(2, 24, 8)


def test_pruned_model_equals_the_masked_full_model():
    full = tiny_model()
    pruned = copy.deepcopy(full)
    keep_heads = [[0, 2], [3], [1, 2, 3]]  # different heads, and numbers of heads, per layer
    keep_ffn = [list(range(0, 64, 3)), list(range(5, 40)), [1, 7, 63]]
    d = H // A
    rank = 8
    with torch.no_grad():
        for layer, heads, neurons in zip(full.backbone.blocks, keep_heads, keep_ffn):
            cols = torch.ones(H)
            for h in set(range(A)) - set(heads):
                cols[h * d:(h + 1) * d] = 0
            layer.attention.output.dense.weight.mul_(cols)  # masked: a dropped head's context never enters
            ffn_mask = torch.zeros(F)
            ffn_mask[neurons] = 1
            layer.output.dense.weight.mul_(ffn_mask)
        emb = full.backbone.model.embeddings.word_embeddings.weight
        u, s, vh = torch.linalg.svd(emb, full_matrices=False)
        emb.copy_(u[:, :rank] @ torch.diag(s[:rank]) @ vh[:rank])
    for layer, heads, neurons in zip(pruned.backbone.blocks, keep_heads, keep_ffn):
        prune_heads(layer, heads)
        prune_ffn(layer, neurons)
    factorise_embedding(pruned, rank)
    x, _ = batch()
    a, b = full(x).stacked(), pruned(x).stacked()
    assert torch.allclose(a, b, atol=1e-5)
    shape = shape_of(pruned)
    assert shape["heads"] == [2, 1, 3] and shape["ffn"] == [22, 35, 3] and shape["rank"] == rank
    assert shape["kept_heads"] == keep_heads
    # a checkpoint's recorded shape rebuilds the architecture: the state dict loads strictly, outputs agree
    rebuilt = tiny_model(seed=5)
    apply_shape(rebuilt, shape)
    rebuilt.load_state_dict(pruned.state_dict())
    assert torch.allclose(rebuilt.eval()(x).stacked(), b, atol=1e-6)


def test_svd_at_full_rank_reproduces_the_embedding():
    model = tiny_model()
    before = word_matrix(model).detach().clone()
    factorise_embedding(model, H)
    assert torch.allclose(word_matrix(model), before, atol=1e-5)


def test_gradient_equilibrium_on_a_three_block_toy():
    """h1 = w1·x, h2 = w2·h1, h3 = w3·h2; exits a1·h1, a2·h2, final c·h3; loss = their sum. Hand-derived:
    into block 2 (i = 1): (a2 + 1·w3·c) / 2; into block 1 (i = 0): (a1 + 2·w2·g2) / 3 = (a1 + w2·(a2 + w3·c)) / 3."""
    x, w1, w2, w3, a1, a2, c = 1.5, 0.7, -1.3, 2.0, 0.4, -0.9, 1.1
    w1t = torch.tensor(w1, requires_grad=True)
    h1 = w1t * x
    e1, d1 = equilibrium_split(h1, 1, 3)
    h2 = w2 * d1
    e2, d2 = equilibrium_split(h2, 2, 3)
    h3 = w3 * d2
    loss = a1 * e1 + a2 * e2 + c * h3
    assert torch.allclose(e1, h1) and torch.allclose(d1, h1)  # identity forward
    loss.backward()
    expected = x * (a1 + w2 * (a2 + w3 * c)) / 3
    assert w1t.grad.item() == pytest.approx(expected, rel=1e-6)
    plain = x * (a1 + w2 * (a2 + w3 * c))  # without equilibrium
    assert expected != pytest.approx(plain)


def test_taylor_scores_see_a_non_final_exit():
    model = tiny_model()
    teacher = tiny_model(seed=3)
    x, y = batch()

    def scores(m):
        loss = build_loss("costeff_taylor", m, {"max_seq_length": 16})
        loss.attach_teacher(teacher)
        return taylor_importance(m, loss, [(x, y)], "cpu")

    base = scores(model)
    other = copy.deepcopy(model)
    with torch.no_grad():  # only exit 1's classifier changes: only exit 1's loss term changes
        other.heads[0].classifier.weight.mul_(-3.0)
    changed = scores(other)
    assert not torch.allclose(base[0]["heads"], changed[0]["heads"])
    assert not torch.allclose(base[0]["ffn"], changed[0]["ffn"])
    assert all(s["heads"].shape == (A,) and s["ffn"].shape == (F,) for s in base)


def test_pruning_events_land_where_the_schedule_says():
    """SST-2 at h = 6 (run.sh): PRUNE_RATE 0.5, EPOCHs_P 3 — with 100 steps per epoch, prune_step = 50 and the six
    events at steps 50…300, the last on the final step; widths interpolated linearly, LR restored per event."""
    target = {"heads": 6, "ffn": 1536, "rank": 384}
    s = PruneSchedule(12, 3072, 768, target, steps_per_epoch=100, epochs=3, prune_rate=0.5, lr=1e-5, restore=0.12)
    events = s.events()
    assert s.prune_step == 50 and [e.step for e in events] == [50, 100, 150, 200, 250, 300] == [
        k * 50 for k in range(1, 7)]
    assert events[-1].step == s.total_steps
    assert [e.heads for e in events] == [11, 10, 9, 8, 7, 6]
    assert events[2].ffn == 3072 - 1536 * 3 // 6 and events[2].rank == 768 - 384 * 3 // 6
    assert (events[-1].ffn, events[-1].rank) == (1536, 384)
    assert s.lr_after(2) == pytest.approx(1e-5 * 1.12 ** 2) and s.warmup() == 10
    assert [s.hidden_only(t) for t in (0, 34, 35, 49, 50, 84, 85)] == [True, True, False, False, True, True, False]
    auto = PruneSchedule(12, 3072, 768, target, steps_per_epoch=100, epochs=3)
    assert [e.step for e in auto.events()] == [50, 100, 150, 200, 250, 300]


def test_bert_base_preset_parameter_counts():
    """Spec methods §7.1: h=6, f=1536, r=384 → 55.0 M; h=2, f=256, r=128 → 13.9 M (encoder: embeddings + 12
    blocks; the 12 tanh-CLS classifiers add 18,456 on a two-class task)."""
    bb = {"name": "bert_base_uncased", "pretrained": False}
    method = resolve_method("cost_eff", None, 12, {})
    counts = {}
    for preset, encoder in (("2x", 54_966_528), ("8x", 13_901_568)):
        model = build_model(bb, method, 2, pretrained=False)
        apply_shape(model, target_shape(resolve_target({"preset": preset}, bb, "cost_eff"), 12))
        counts[preset] = sum(p.numel() for p in model.parameters())
        assert counts[preset] == encoder + 12 * (768 * 2 + 2)


@pytest.mark.parametrize("bad, says", [({"preset": "4x"}, "preset '4x' is unknown"),
                                       ({"heads": 0}, "heads=0 is not an integer in 1..2"),
                                       ({"ffn": 1000}, "ffn=1000"), ({"rank": "big"}, "rank='big'"),
                                       ({"width": 3}, "unknown slender option")])
def test_bad_presets_fail_in_one_line(bad, says):
    from eebench.plan import Plan, validate_config

    cfg = validate_config({"run": "t", "seeds": [0], "dataset": {"name": "glue", "task": "sst2"},
                           "backbone": {"name": "bert_tiny_test", "pretrained": False},
                           "training": {"epochs": 1}, "methods": {"cost_eff": {"slender": bad}}})
    with pytest.raises(EEBenchError) as err:
        Plan(cfg)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_plan_shares_backbone_and_ta_between_presets():
    from eebench.plan import Plan, validate_config

    cfg = validate_config({"run": "t", "seeds": [0], "dataset": {"name": "glue", "task": "sst2"},
                           "backbone": {"name": "bert_tiny_test", "pretrained": False}, "training": {"epochs": 3},
                           "methods": {"backbone": {}, "cost_eff": {},
                                       "cost_eff_8x": {"recipe": "cost_eff", "slender": {"preset": "8x"}}}})
    plan = Plan(cfg)
    # COST-EFF's own fine-tune (batch 32, wd 0.01, warm-up 0.1): not the backbone row at this run's batch 64
    assert plan.teacher_stage("cost_eff_8x", "ta_hidden") == ("backbone_costeff", "finetune")
    assert plan.stage_owner("cost_eff_8x", "ta_pred") == ("cost_eff", "ta_pred")
    assert plan.teacher_stage("cost_eff_8x", "recover_pred") == ("cost_eff", "ta_pred")
    assert plan.stage_owner("cost_eff_8x", "prune") == ("cost_eff_8x", "prune")
    assert plan.cost_canonical["cost_eff_8x"] == "cost_eff_8x"
    assert plan.stage("cost_eff", "ta_hidden")["epochs"] == 1  # phase a: a third of the TA's epochs
    assert plan.stage("cost_eff_8x", "prune")["slenderise"]["target"] == {"preset": "8x", "heads": 1, "ffn": 16,
                                                                            "rank": 16}


def test_wrong_shaped_checkpoint_fails_in_one_line(tmp_path):
    from eebench.build import load_model
    from eebench.io import save_torch

    model = tiny_model()
    job = {"dataset": {"name": "glue", "task": "sst2"}, "backbone": TINY,
           "method": resolve_method("cost_eff", None, L, {})}
    save_torch(tmp_path / "bad.pt", {"model": model.state_dict(), "job": job,
                                     "slender_shape": {"heads": [9, 9, 9], "ffn": [64] * 3, "rank": None}})
    with pytest.raises(EEBenchError) as err:
        load_model(tmp_path / "bad.pt")
    assert "does not fit this backbone" in str(err.value) and "\n" not in str(err.value)
    save_torch(tmp_path / "mismatch.pt", {"model": model.state_dict(), "job": job,
                                          "slender_shape": {"heads": [1, 1, 1], "ffn": [64] * 3, "rank": None}})
    with pytest.raises(EEBenchError, match="does not fit the model its job describes"):
        load_model(tmp_path / "mismatch.pt")


@pytest.mark.parametrize("over, backbone, says", [
    ({"stages": {"prune": {"teacher": "nowhere"}}}, "bert_tiny_test", "teacher: 'nowhere' names no stage"),
    ({}, "vit_tiny_digits", "width pruning needs a BERT-family backbone")])
def test_config_checks_of_the_recipe(over, backbone, says):
    from eebench.plan import Plan, validate_config

    ds = {"name": "glue", "task": "sst2"} if backbone.startswith("bert") else {"name": "digits"}
    cfg = validate_config({"run": "t", "seeds": [0], "dataset": ds, "backbone": {"name": backbone, "pretrained": False},
                           "training": {"epochs": 1}, "methods": {"cost_eff": over}})
    with pytest.raises(EEBenchError) as err:
        Plan(cfg)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_mnli_gets_its_own_entropy_sweep():
    from eebench.plan import Plan, validate_config

    def sweep(task):
        cfg = validate_config({"run": "t", "seeds": [0], "dataset": {"name": "glue", "task": task},
                               "backbone": {"name": "bert_tiny_test", "pretrained": False},
                               "training": {"epochs": 1}, "methods": {"cost_eff": {}}})
        policy = Plan(cfg).method("cost_eff")["policy"]
        assert "sweep_by_task" not in policy
        return policy["sweep"]["entropy_threshold"]

    assert max(sweep("sst2")) == 0.6 and max(sweep("mnli")) == 1.0


def test_retention_row_when_the_backbone_scores_zero(tmp_path):
    """CoLA's MCC is 0 for a constant predictor (a tiny smoke model): the retention row says so instead of dividing."""
    import pandas as pd

    from eebench.report.glue import nlp_paper_vs_ours

    rows = [{"method": m, "score_mean": s, "score_std": 0.0, "accuracy_mean": 0.7, "accuracy_std": 0.0,
             "params": p, "layer_speedup_mean": 1.0, "expected_flops_profiler_mean": f, "setting": "S=0.6"}
            for m, s, p, f in [("backbone", 0.0, 8.0, 4.0), ("cost_eff_8x", 0.1, 1.0, 1.0)]]
    nlp_paper_vs_ours({"cola": pd.DataFrame(rows)}, tmp_path / "p.md", "tiny")
    text = (tmp_path / "p.md").read_text()
    assert "| ≈ 96.5 % / — (the backbone row scores 0) |" in text and "| 8× (1/8) / 8.00× |" in text
    rows[0]["score_mean"] = 0.2
    nlp_paper_vs_ours({"cola": pd.DataFrame(rows)}, tmp_path / "p.md", "tiny")
    assert "| ≈ 96.5 % / 50.0 % |" in (tmp_path / "p.md").read_text()
