"""Review findings (a), (b), (d), (e): BERxiT on Swin, BERxiT's tested layers, LGViT stage 2's teachers on Swin,
copy_pooler on checkpoints without pooler weights. Each test fails on the code before the fix."""
import pytest
import torch

from eebench.build import build_model
from eebench.errors import EEBenchError
from eebench.policies import build_policy, policy_for_rows
from eebench.recipes import resolve_method
from eebench.training.losses import build_loss


# (a) BERxiT on Swin -----------------------------------------------------------------------------------------------

def test_berxit_runs_on_swin_with_one_lte_per_width():
    """Swin's `linear` exits now return their pooled vector, and each exit width has its own LTE: a training step
    and a BERxiT-LTE decision run (before: no pooled vector, and one LTE built at the first exit's width)."""
    spec = resolve_method("berxit", {"positions": [1, 2, 3, 4]}, 5, {}, family="swin")
    model = build_model({"name": "swin_tiny_test"}, spec, 3, pretrained=False)
    assert [model.backbone.layout(p).width for p in model.exit_layers] == [16, 32, 64, 64]
    assert (model.lte.in_features, sorted(model.lte_by_width)) == (16, ["32", "64"])
    out = model(torch.randn(2, 3, 32, 32))
    assert out.lte_outputs.shape == (4, 2) and ((out.lte_outputs > 0) & (out.lte_outputs < 1)).all()
    loss = build_loss("alternating", model, {"reduce": "sum", "parity": "epoch", "lte": True})
    loss.new_epoch(1, 1)
    loss(out, torch.tensor([0, 2])).backward()
    assert model.lte_by_width["64"].weight.grad is not None
    d = policy_for_rows("berxit_lte", {"lte_th": 0.5}, model.row_layers).decide(out.stacked().detach(),
                                                                               lte_outputs=out.lte_outputs.detach())
    assert d.exit_index.shape == (2,)


# (b) BERxiT's tested layers ---------------------------------------------------------------------------------------

def lte_case(layers, u, lte_th):
    rows = len(layers)
    logits = torch.zeros(rows, 1, 3)
    logits[:, 0, 0] = 1.0
    return build_policy("berxit_lte", lte_th=lte_th, exit_layers=layers).decide(
        logits, lte_outputs=torch.tensor(u).reshape(-1, 1)).exit_index.item()


def test_berxit_offramps_before_L_plus_final_are_all_tested():
    # off-ramps after 1, 2, 3 and the final classifier at L = 4 (no off-ramp at L): the off-ramp at 3 is tested.
    # u = 0.9, 0.9, 0.1 with lte_th 0.5: exit at row 2 (the old `rows - 2` never tested it → final, row 3)
    assert lte_case([1, 2, 3, 4], [0.9, 0.9, 0.1], 0.5) == 2


def test_berxit_deepest_real_exit_is_tested_when_positions_do_not_end_at_L():
    # Swin-like: exits after 2 and 3, final at L = 5: both tested; u = 0.9, 0.1 → row 1 (old: only row 0 → final)
    assert lte_case([2, 3, 5], [0.9, 0.1], 0.5) == 1


def test_berxit_official_layout_still_skips_offramp_L():
    # off-ramps 1..4 plus the final classifier, L = 4: the off-ramp at L (row 3) is never tested → final (row 4)
    assert lte_case([1, 2, 3, 4, 4], [0.9, 0.9, 0.9, 0.1], 0.5) == 4
    assert lte_case([1, 2, 3, 4, 4], [0.9, 0.9, 0.1, 0.1], 0.5) == 2


def test_berxit_per_layer_lte_th_as_the_official_form_expands():
    # "0.2,2;0.8,2" expands to one value per backbone layer: [0.2, 0.2, 0.8, 0.8] (L = 4). Off-ramps at 1, 2, 3:
    # u = 0.5 everywhere exits first where 0.5 < th, i.e. at layer 3 (row 2); the old code refused 4 values for 3
    assert lte_case([1, 2, 3, 4], [0.5, 0.5, 0.5], [0.2, 0.2, 0.8, 0.8]) == 2
    # Swin-like exits after 2 and 4 of L = 5: entries 2 and 4 of the per-layer list apply → 0.1, 0.9 → row 1
    assert lte_case([2, 4, 5], [0.5, 0.5], [0.9, 0.1, 0.9, 0.9, 0.1]) == 1
    with pytest.raises(EEBenchError, match="per backbone layer"):
        lte_case([1, 2, 3, 4], [0.5, 0.5, 0.5], [0.2] * 7)


def test_berxit_entropy_uses_the_exit_layers_too():
    logits = torch.zeros(4, 1, 3)
    logits[2, 0, 0] = 20.0  # only the off-ramp at layer 3 is confident
    d = build_policy("berxit_entropy", entropy_threshold=0.1, exit_layers=[1, 2, 3, 4]).decide(logits)
    assert d.exit_index.item() == 2


def test_curves_pass_the_rows_layers_to_berxit():
    from eebench.curves import operating_curve

    logits = torch.zeros(4, 2, 3)
    logits[:, :, 1] = 3.0
    cache = {"logits": logits, "labels": torch.tensor([1, 1]), "num_layers": 4, "row_layers": [1, 2, 3, 4],
             "extra": {"lte_outputs": torch.tensor([[0.9, 0.9], [0.9, 0.9], [0.1, 0.1]])}}
    comps = {f"block{i}": {"macs": {"paper": 1.0, "full": 1.0}} for i in range(1, 5)}
    comps.update({f"head{i}": {"macs": {"paper": 0.0, "full": 0.0}} for i in range(1, 4)})
    comps.update({"embed": {"macs": {"paper": 0.0, "full": 0.0}}, "final": {"macs": {"paper": 0.0, "full": 0.0}}})
    costs = {"components": comps, "row_layers": [1, 2, 3, 4], "macs": {c: {"backbone": 4.0} for c in ("paper", "full")}}
    curve = operating_curve(cache, {"name": "berxit_lte", "sweep": {"lte_th": [0.5]}}, costs)
    assert curve["avg_exit_layer"].tolist() == [3.0]  # the off-ramp at layer 3 answers


# (d) LGViT stage 2 on Swin-B: a teacher of each head's own width ---------------------------------------------------

def test_swin_b_stage2_pairs(capsys):
    spec = resolve_method("lgvit", None, 24, {}, family="swin")
    model = build_model({"name": "swin_b"}, spec, 10, pretrained=False)
    loss = build_loss("lgvit_distillation", model, spec["stages"][1]["loss_params"])
    # exits 4 | 7 10 13 | 16 19 22 | 23 (LPH 256 | LPH 512 | GAH 512 | GAH 1024); stages end at blocks 4, 22, 24.
    # hete pairs (first/last of each group): LPH@4 → block 4, LPH@13 → 22, GAH@16 → 22, GAH@23 → 24
    assert {model.exit_layers[i]: b for i, b in loss.reference.items()} == {4: 4, 13: 22, 16: 22, 23: 24}
    # homo: LPH 7, 10 ← 13 (LPH@4 has no 256-wide peer); GAH 16, 19 ← 22 (GAH@23 is alone at 1024)
    assert {model.exit_layers[j]: model.exit_layers[k] for j, k in loss.teacher.items()} == \
        {7: 13, 10: 13, 16: 22, 19: 22}
    log = capsys.readouterr().out
    assert "4 ← 4, 13 ← 22, 16 ← 22, 23 ← 24" in log and "7 ← 13, 10 ← 13, 16 ← 22, 19 ← 22" in log


def test_vit_stage2_pairs_are_unchanged():
    spec = resolve_method("lgvit", None, 6, {})
    model = build_model({"name": "vit_tiny_digits", "hidden_size": 16, "num_attention_heads": 2}, spec, 3,
                        pretrained=False)
    loss = build_loss("lgvit_distillation", model, spec["stages"][1]["loss_params"])
    assert set(loss.reference.values()) == {6}  # every reference is the last block, as in the official code
    assert loss.teacher == {0: 1, 2: 3}  # each group's last head teaches the others (exits 2 ← 3, 4 ← 5)


# (e) copy_pooler without pooler weights -----------------------------------------------------------------------------

def saved_deit(path, pooler: bool):
    from transformers import DeiTConfig, DeiTModel

    cfg = DeiTConfig(image_size=8, patch_size=2, num_channels=1, hidden_size=16, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=32)
    DeiTModel(cfg, add_pooling_layer=pooler).save_pretrained(path)
    return str(path)


def test_copy_pooler_from_a_checkpoint_without_pooler_is_one_line(tmp_path):
    spec = resolve_method("deebert", None, 2, {}, family="deit")
    assert spec["heads"][0]["copy_pooler"]
    backbone = {"name": "deit_tiny_digits", "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32,
                "num_hidden_layers": 2, "pretrained": saved_deit(tmp_path / "nopool", pooler=False)}
    with pytest.raises(EEBenchError, match="has no pooler weights .* set copy_pooler: false") as exc:
        build_model(backbone, spec, 3)
    assert "\n" not in str(exc.value)
    # a checkpoint that has a pooler: copied into every exit
    backbone["pretrained"] = saved_deit(tmp_path / "pool", pooler=True)
    model = build_model(backbone, spec, 3)
    src = model.backbone.model.pooler.dense.weight
    assert all(torch.equal(h.pooler[0].weight, src) for h in model.heads)


def test_copy_pooler_on_preset_vit_weights_fails_at_plan_time():
    from eebench.plan import Plan, validate_config

    cfg = validate_config({"run": "p", "dataset": {"name": "cifar100"}, "backbone": {"name": "deit_b"},
                           "methods": {"deebert": {}}})
    with pytest.raises(EEBenchError, match=r"methods.deebert.heads: copy_pooler on facebook/deit"):
        Plan(cfg)
