"""The six baselines: exact parameter counts of spec methods §5 (ViT-B/16, DeiT-B at 100 classes, random init),
their training losses against hand computations, and their learning-to-exit / pooler-copy machinery."""
import math

import pytest
import torch
import torch.nn.functional as F

from eebench.build import build_model
from eebench.model import MultiExitOutput, count_params
from eebench.recipes import resolve_method
from eebench.training.losses import build_loss, lte_mse


def params_of(backbone, method, overrides=None, depth=12):
    spec = resolve_method(method, overrides or {}, depth, {})
    return count_params(build_model({"name": backbone}, spec, 100, pretrained=False))


# spec methods §5. The "ViT" rows there are the 197-token ViT-B/16 (86,466,148 + heads); LGViT's 198-token layout
# (vit_lgvit_v0) adds the DIST token and its position embedding: + 2 · 768 = 1,536.
@pytest.mark.parametrize("backbone, method, overrides, expected", [
    ("vit_b16", "backbone", None, 86_466_148),
    ("vit_lgvit_v0", "backbone", None, 86_467_684),
    ("deit_b", "backbone", None, 86_544_584),
    ("vit_b16", "sdn", None, 93_808_560),                    # 11 `mlp` exits at 1..11
    ("vit_b16", "pabee", None, 93_808_560),
    ("vit_b16", "pcee", None, 93_808_560),
    ("deit_b", "sdn", None, 93_886_996),                     # "≈ 93.89 M": DeiT with pooler+fc exits (paper: 94 M)
    ("vit_b16", "vit_ee", None, 94_221_512),
    ("deit_b", "vit_ee", None, 93_787_792),                  # DeiT `linear` after the block: LN + CLS/DIST linears
    ("vit_b16", "lgvit", None, 101_277_060),
    ("vit_lgvit_v0", "lgvit", None, 101_277_060 + 1_536),
    ("deit_b", "lgvit", None, 101_970_696),
    ("vit_b16", "lgvit", {"positions": [4, 6, 8, 10]}, 93_871_604),           # Table 7 "uniform", M = 4
    ("vit_b16", "lgvit", {"heads": {"type": "mlp"}}, 91_806_084),             # Table 3 MLP
    ("vit_b16", "lgvit", {"heads": {"type": "conv"}}, 129_567_108),           # Table 3 Conv
    ("vit_b16", "lgvit", {"heads": {"type": "attention"}}, 105_980_292),      # Table 3 Attention
])
def test_exact_parameter_counts(backbone, method, overrides, expected):
    assert params_of(backbone, method, overrides) == expected


def test_costs_cli_prints_the_exact_count(capsys):
    from eebench.cli import main

    assert main(["costs", "--backbone", "vit_b16", "--method", "lgvit", "--heads", "conv", "--num-classes", "100",
                 "--convention", "paper"]) == 0
    out = capsys.readouterr().out
    assert "params: total 129,567,108" in out
    # 8 conv exits of 1.0405 G each (spec methods §4.3, 197 tokens)
    assert "head1     4    5,387,620       1.0405" in out


def logits_with_ce(values):
    """Rows [v, 0, 0] whose CE against class 0 is log(e^v + 2) − v."""
    return [torch.tensor([[v, 0.0, 0.0]]) for v in values]


def ce(v):
    return math.log(math.exp(v) + 2) - v


def tiny(method, overrides=None, depth=6):
    spec = resolve_method(method, overrides or {}, depth, {})
    return build_model({"name": "vit_tiny_digits", "hidden_size": 16, "num_attention_heads": 2}, spec, 3,
                       pretrained=False)


def test_sdn_schedule_weights_by_hand():
    model = tiny("sdn")  # exits 1..5 of 6 → caps C = ℓ/6
    loss = build_loss("weighted", model, {"schedule": "sdn"})
    loss.new_epoch(2, 10)
    # τ_m(2) = min(C_m, 0.01 + 2·C_m/10): C = 1/6 → 0.01 + 0.0333 = 0.04333, …, C = 5/6 → 0.17667
    assert loss.sdn_weights() == pytest.approx([0.01 + 0.2 * k / 6 for k in range(1, 6)])
    loss.new_epoch(10, 10)
    assert loss.sdn_weights() == pytest.approx([k / 6 for k in range(1, 6)])  # capped at C
    rows = logits_with_ce([0, 1, 2, 3, 4, 5])
    out = MultiExitOutput(rows[:-1], rows[-1])
    expected = sum(k / 6 * ce(k - 1) for k in range(1, 6)) + ce(5)  # un-normalised sum, final weight 1
    assert loss(out, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-5)


def test_weighted_average_is_pabee():
    model = tiny("pabee")
    rows = logits_with_ce([0, 1, 2, 3, 4, 5])
    out = MultiExitOutput(rows[:-1], rows[-1])
    expected = sum(i * ce(i - 1) for i in range(1, 7)) / 21  # Σ i·CE_i / Σ i, i = 1..6
    assert build_loss("weighted_average", model)(out, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-5)


def test_deebert_stage2_sums_offramps_below_L():
    model = tiny("deebert")
    assert model.exit_layers == [1, 2, 3, 4, 5, 6]  # off-ramp L exists (tested by the policy) …
    rows = logits_with_ce([0, 1, 2, 3, 4, 5, 6])
    out = MultiExitOutput(rows[:-1], rows[-1])
    # … but never trained: Σ_{i<6} CE_i, final excluded
    assert build_loss("exits_sum", model)(out, torch.tensor([0])).item() == pytest.approx(
        sum(ce(v) for v in range(5)), rel=1e-5)


def test_berxit_alternate_lte_by_hand():
    model = tiny("berxit")
    loss = build_loss("alternating", model, {"lte": True}).train()
    rows = logits_with_ce([0, 1, 2, 3, 4, 9, 5])  # off-ramp 6's logits are never used: the final answers for it
    u = torch.tensor([[0.2], [0.9], [0.5], [0.1], [0.7], [0.3]])
    out = MultiExitOutput(rows[:-1], rows[-1], lte_outputs=u)
    y = torch.tensor([0])
    # every row predicts class 0 (v ≥ 1) except the first (v = 0 → argmax tie → class 0 too): all correct → t = 0
    mse = (u ** 2).mean().item()
    loss.new_epoch(1, 1)
    even = loss(out, y).item()  # batch 0 of the epoch: CE_L + MSE
    odd = loss(out, y).item()   # batch 1: Σ_{i<L} CE_i + MSE (no CE_L)
    assert even == pytest.approx(ce(5) + mse, rel=1e-5)
    assert odd == pytest.approx(sum(ce(v) for v in range(5)) + mse, rel=1e-5)
    loss.new_epoch(2, 2)  # parity restarts every epoch
    assert loss(out, y).item() == pytest.approx(even, rel=1e-5)


def test_lte_target_of_offramp_L_is_the_final_classifier():
    exits = [torch.tensor([[0.0, 5.0]]), torch.tensor([[5.0, 0.0]])]  # off-ramp 1 wrong, off-ramp 2 (= L) right
    final = torch.tensor([[0.0, 5.0]])                                 # final classifier wrong
    out = MultiExitOutput(exits, final, lte_outputs=torch.tensor([[0.25], [0.5]]))
    # targets: exit 1 wrong → 1; off-ramp L judged by the final (wrong) → 1: ((0.25−1)² + (0.5−1)²)/2
    assert lte_mse(out, torch.tensor([0]), [1, 2], 2).item() == pytest.approx((0.75 ** 2 + 0.5 ** 2) / 2)


def test_lte_module_and_pooler_copy():
    model = tiny("berxit")
    assert model.lte is not None and model.lte.weight.shape == (1, 16)
    src = model.backbone.pooler_dense()
    for head in model.heads:
        assert torch.equal(head.pooler[0].weight, src.weight)
    out = model(torch.randn(4, 1, 8, 8))
    assert out.lte_outputs.shape == (6, 4) and ((out.lte_outputs > 0) & (out.lte_outputs < 1)).all()
