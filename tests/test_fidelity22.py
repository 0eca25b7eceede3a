"""Issue 22: COST-EFF's hidden-state equilibrium, the attention head's head count, floored ``epochs_scale``."""
import pytest
import torch

from eebench.backbones import build_backbone
from eebench.model import MultiExitModel
from eebench.recipes import resolve_method


def _grads_from_block1_hidden(equilibrium: bool) -> torch.Tensor:
    torch.manual_seed(0)
    bb = build_backbone("vit_tiny_digits", 3, pretrained=False, hidden_size=16, num_attention_heads=2,
                        intermediate_size=32, num_hidden_layers=4)
    model = MultiExitModel(bb, [1, 2, 3], [{"type": "mlp"}] * 3, 3, gradient_equilibrium=equilibrium)
    torch.manual_seed(1)
    out = model(torch.randn(2, 1, 8, 8), with_hidden=True)
    out.hidden_states[1].square().mean().backward()  # block 1's hidden MSE against a zero target, alone
    return torch.cat([p.grad.flatten() for p in model.backbone.parameters() if p.grad is not None])


def test_block_hidden_state_is_recorded_after_the_equilibrium_rescale():
    """L = 4 blocks, exits after 1..3. Block 1 is 0-based i = 0, so L − i = 4: the official code appends the state
    after the 1/(L−i) = 1/4 rescale, so every gradient of block 1 (and the embedding) from block 1's own hidden
    MSE is 1/4 of its value with equilibrium off. The old code recorded it before the rescale (ratio 1)."""
    plain, eq = _grads_from_block1_hidden(False), _grads_from_block1_hidden(True)
    assert plain.abs().sum() > 0
    assert torch.allclose(eq, plain / 4, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("epochs, expected", [(5, 1), (6, 2), (8, 2), (2, 1), (1, 1)])
def test_epochs_scale_floors_like_run_sh(epochs, expected):
    """COST-EFF's TA phase a runs E/3 epochs with shell integer division: 5/3 = 1 (rounding gave 2), 6/3 = 2,
    8/3 = 2, and at least one epoch (2/3 → 1, 1/3 → 1)."""
    spec = resolve_method("cost_eff", None, 12, {"epochs": epochs, "lr": 1e-4})
    stage = next(s for s in spec["stages"] if s["name"] == "ta_hidden")
    assert stage["epochs"] == expected


@pytest.mark.parametrize("spec, expected", [({"type": "attention"}, 4),
                                            ({"type": "attention", "num_heads": "width_div_64"}, 1)])
def test_attention_head_takes_the_backbone_head_count(spec, expected):
    """Width 96 with 4 backbone heads: LGViT's head copies the 4; the old width // 64 rule gives 96 // 64 = 1."""
    bb = build_backbone("vit_tiny_digits", 3, pretrained=False, hidden_size=96, num_attention_heads=4,
                        intermediate_size=32, num_hidden_layers=2)
    model = MultiExitModel(bb, [1], [spec], 3)
    assert model.heads[0].attention.num_heads == expected


# ---- item 4: checkpoint selection as the official code saves ------------------------------------------------------

def test_costeff_selects_on_dev_only_where_prediction_distillation_is_on():
    """run_glue_costeff.py saves the best mean per-layer dev score when --pred_distill is on (TA phase b, the
    prediction + hidden recovery) and after every evaluation otherwise (hidden-only runs and the pruning run keep
    their last)."""
    spec = resolve_method("cost_eff", None, 12, {"epochs": 3, "lr": 1e-4})
    assert {s["name"]: s.get("select") for s in spec["stages"]} == {
        "ta_hidden": None, "ta_pred": "best_mean_row", "prune": None, "recover_hidden": None,
        "recover_pred": "best_mean_row"}


# Per-epoch dev predictions of an MRPC run, 10 positives then 10 negatives (tp/fp/fn/tn counted by hand):
#   epoch 1: tp 5, fn 5, tn 10       → acc 15/20 = .75,  F1 = 2·5/(2·5 + 5)  = .6667, (acc + F1)/2 = .7083
#   epoch 2: tp 10, fp 4, tn 6       → acc 16/20 = .80,  F1 = 20/(20 + 4)    = .8333, (acc + F1)/2 = .8167
#   epoch 3: tp 7, fn 3, tn 10       → acc 17/20 = .85,  F1 = 14/(14 + 3)    = .8235, (acc + F1)/2 = .8368
# F1 alone (the official per-layer score on MRPC/QQP) keeps epoch 2; the GLUE mean of F1 and accuracy would keep 3.
MRPC_EPOCHS = [[1] * 5 + [0] * 5 + [0] * 10, [1] * 10 + [1] * 4 + [0] * 6, [1] * 7 + [0] * 3 + [0] * 10]
MRPC_LABELS = [1] * 10 + [0] * 10


def _mrpc_folder(root):
    root.mkdir()
    rows = "".join(f"{i % 2}\t{i}\t{i}\tgood film {i}\tnice plot {i}\n" for i in range(16))
    for split in ("train", "dev"):
        (root / f"{split}.tsv").write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n" + rows)
    return str(root)


def test_best_mean_row_keeps_the_epoch_with_the_best_f1_on_mrpc(tmp_path, monkeypatch):
    import eebench.evaluate
    from eebench.io import load_torch
    from eebench.plan import Plan, validate_config
    import eebench.training.loop as loop

    calls = {"n": 0}

    def scripted_dev_logits(model, data, batch_size, precision=None, lengths=None):
        preds = torch.tensor(MRPC_EPOCHS[calls["n"]])
        calls["n"] += 1
        row = torch.nn.functional.one_hot(preds, 2).float()
        return torch.stack([row, row]), torch.tensor(MRPC_LABELS), None  # two rows: an exit and the final

    monkeypatch.setattr(eebench.evaluate, "exit_logits", scripted_dev_logits)
    groups = []

    def recorded_adamw(*args, **kwargs):  # the loop's optimiser, for item 6's no-decay groups
        opt = real_adamw(*args, **kwargs)
        groups.extend(g["weight_decay"] for g in opt.param_groups)
        return opt

    real_adamw = loop.adamw
    monkeypatch.setattr(loop, "adamw", recorded_adamw)
    cfg = validate_config({"run": "t", "seeds": [0],
                           "dataset": {"name": "glue", "task": "mrpc", "root": _mrpc_folder(tmp_path / "mrpc"),
                                       "max_seq_length": 16, "cache_dir": str(tmp_path / "cache")},
                           "backbone": {"name": "bert_tiny_test", "pretrained": False},
                           "training": {"epochs": 3, "batch_size": 8, "lr": 1e-3},
                           "methods": {"backbone": {"stages": {"finetune": {
                               "select": "best_mean_row", "weight_decay": 0.01,
                               "no_decay": ["bias", "LayerNorm.weight"]}}}}})
    loop.train_stage(Plan(cfg).train_job("backbone", 0, "finetune"), tmp_path / "ft.pt", progress=False)
    ckpt = load_torch(tmp_path / "ft.pt")
    assert ckpt["selected_epoch"] == 2
    assert groups == [0.01, 0.0]
    assert [r["dev_mean_row_score"] for r in ckpt["log"]] == pytest.approx([2 / 3, 20 / 24, 14 / 17])


# ---- item 5: the Taylor pass's hidden term ------------------------------------------------------------------------

def test_taylor_hidden_term_masks_padding_and_divides_by_the_padded_length():
    """B = 2, D = 2, max_seq_length = 4; the batch is padded to 3 (sample 0 has 2 real tokens, sample 1 has 1).
    Real tokens' squared errors: (1−0)² + (2−0)² = 5, (3−1)² + (4−1)² = 13, (0−1)² + (1−1)² = 1 → 19; the official
    masked plain mean over inputs padded to 4 is 19 / (B·max_seq_length·D) = 19 / 16. A second layer with every
    difference doubled adds 4·19/16. Padding the batch to 5 with garbage in the padded slots changes nothing. (The old
    plain mean over the batch-padded tensor counted the padded slots: (19 + 162 + 50 + 98) / 12 for the first layer.)"""
    from eebench.training.distill_costeff import padded_hidden_mse

    s = torch.tensor([[[1., 2.], [3., 4.], [9., 9.]], [[0., 1.], [5., 5.], [7., 7.]]])
    t = torch.tensor([[[0., 0.], [1., 1.], [0., 0.]], [[1., 1.], [0., 0.], [0., 0.]]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert padded_hidden_mse([s], [t], mask, 4).item() == pytest.approx(19 / 16)
    assert padded_hidden_mse([s, 2 * s], [t, 2 * t], mask, 4).item() == pytest.approx(19 / 16 + 4 * 19 / 16)
    garbage = torch.full((2, 2, 2), 50.0)
    longer = [torch.cat([s, garbage], 1)], [torch.cat([t, -garbage], 1)]
    assert padded_hidden_mse(*longer, torch.cat([mask, torch.zeros(2, 2, dtype=mask.dtype)], 1), 4).item() == \
        pytest.approx(19 / 16)


def test_taylor_loss_does_not_depend_on_how_far_the_batch_is_padded():
    """The same two sentences padded to 9 and to 14 tokens: every real position's hidden state is the same, so the
    Taylor loss is too (the old plain mean divided by the batch's own length and counted padded states)."""
    from eebench.build import build_model
    from eebench.training.losses import build_loss

    bb = {"name": "bert_tiny_test", "pretrained": False, "vocab_size": 100}
    method = resolve_method("cost_eff", None, 4, {"epochs": 1, "lr": 1e-3})
    torch.manual_seed(0)
    student = build_model(bb, method, 2, pretrained=False).eval()
    teacher = build_model(bb, method, 2, pretrained=False).eval()
    ids = torch.randint(1, 100, (2, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0

    def taylor(pad):
        x = {"input_ids": torch.cat([ids, torch.zeros(2, pad, dtype=ids.dtype)], 1),
             "attention_mask": torch.cat([mask, torch.zeros(2, pad, dtype=mask.dtype)], 1)}
        x["token_type_ids"] = torch.zeros_like(x["input_ids"])
        loss = build_loss("costeff_taylor", student, {"max_seq_length": 16})
        loss.attach_teacher(teacher)
        return loss(student(x, with_hidden=True), torch.tensor([0, 1])).item()

    assert taylor(5) == pytest.approx(taylor(0), rel=1e-5)


# ---- item 6: the pruning stage's schedules and no-decay groups ----------------------------------------------------

class _Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = torch.nn.Linear(2, 2)
        self.LayerNorm = torch.nn.LayerNorm(2)


def _lrs(opt, sched, steps):
    """The learning rate each optimiser step 0..max(steps) trains at."""
    seen = []
    for _ in range(max(steps) + 1):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return [seen[s] for s in steps]


def test_pruning_periods_follow_the_official_learning_rate_schedules():
    """SST-2 at h = 6: 100 steps an epoch, 3 epochs (300 steps), PRUNE_RATE 0.5 → prune_step 50, base LR 1e-5,
    restore 0.12. HF's linear warm-up trains step s < w at s/w of the LR, then (N − s)/(N − w).
    Before the first event (do_train_1t): w = int(0.1·50) = 5, N = 300 (the whole pruning run):
      s 0 → 0; s 3 → 3/5 = 6e-6; s 5 → 1e-5; s 49 → 251/295·1e-5.
    (The old schedule, w = 10 over N = 50, gave s 3 → 3e-6 and s 49 → 1/40·1e-5.)
    After event 2 (iterative_pruning): base·1.12² = 1.2544e-5, w = max(10, 5) = 10, N = 50:
      s 0 → 0; s 4 → 0.4·1.2544e-5; s 10 → 1.2544e-5; s 30 → 20/40·1.2544e-5; s 50 and later → 0."""
    from eebench.slender.schedule import PruneSchedule
    from eebench.slender.train import period_optimizer

    target = {"heads": 6, "ffn": 1536, "rank": 384}
    sched = PruneSchedule(12, 3072, 768, target, steps_per_epoch=100, epochs=3, prune_rate=0.5, lr=1e-5, restore=0.12)
    stage = {"weight_decay": 0.01, "no_decay": ["bias", "LayerNorm.weight"]}
    first = _lrs(*period_optimizer(_Toy(), sched, 0, stage), [0, 3, 5, 49])
    assert first == pytest.approx([0.0, 6e-6, 1e-5, 251 / 295 * 1e-5], rel=1e-9, abs=1e-20)
    base = 1e-5 * 1.12 ** 2
    third = _lrs(*period_optimizer(_Toy(), sched, 2, stage), [0, 4, 10, 30, 50, 60])
    assert third == pytest.approx([0.0, 0.4 * base, base, 0.5 * base, 0.0, 0.0], rel=1e-9, abs=1e-20)


def test_no_decay_groups_put_biases_and_layernorm_weights_at_zero_weight_decay():
    from eebench.training.loop import adamw

    model = _Toy()
    opt = adamw(model.named_parameters(), 1e-3, 0.01, ["bias", "LayerNorm.weight"])
    groups = [({id(p) for p in g["params"]}, g["weight_decay"]) for g in opt.param_groups]
    assert groups == [({id(model.dense.weight)}, 0.01),
                      ({id(model.dense.bias), id(model.LayerNorm.weight), id(model.LayerNorm.bias)}, 0.0)]
    plain = adamw(model.named_parameters(), 1e-3, 0.01)  # the switch off: one group, as every other method trains
    assert len(plain.param_groups) == 1 and plain.param_groups[0]["weight_decay"] == 0.01


def test_every_costeff_stage_and_no_other_recipe_uses_no_decay_groups():
    """Every COST-EFF run of the official run.sh passes --weight_decay with the no-decay groups; the switch is off
    for every other recipe (their job specs stay as they were)."""
    from eebench.recipes import available, load_recipe

    for name in available():
        stages = load_recipe(name)["stages"]
        expected = ["bias", "LayerNorm.weight"] if name == "cost_eff" else None
        assert [s.get("no_decay") for s in stages] == [expected] * len(stages), name
