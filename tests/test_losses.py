"""Training losses against hand computations (spec methods §2.2, §3.2–3.3)."""
import math

import pytest
import torch
import torch.nn.functional as F

from eebench.backbones import build_backbone
from eebench.errors import EEBenchError
from eebench.model import MultiExitModel, MultiExitOutput
from eebench.training.losses import build_loss, channel_kl, gram, kd_loss

LGVIT_HEADS = [{"type": "lph", "kernel": 3}, {"type": "lph", "kernel": 0}, {"type": "gah", "stride": 2},
               {"type": "gah", "stride": 3}]


def tiny_model(heads=None, exits=(2, 3, 4, 5)):
    bb = build_backbone("vit_tiny_digits", 3, pretrained=False, hidden_size=16, num_attention_heads=2,
                        intermediate_size=32)
    heads = heads or [{"type": "mlp"}] * len(exits)
    return MultiExitModel(bb, list(exits), heads, 3)


def fake_output(values):
    """Logits whose CE against label 0 is known: logits [v, 0, 0] → CE = log(e^v + 2) − v."""
    rows = [torch.tensor([[v, 0.0, 0.0]]) for v in values]
    return MultiExitOutput(rows[:-1], rows[-1])


def ce(v):
    return math.log(math.exp(v) + 2) - v


def test_normal_and_weighted_losses():
    model = tiny_model(exits=(2, 3, 4, 5))
    out, y = fake_output([0.0, 1.0, 2.0, 3.0, 4.0]), torch.tensor([0])
    cs = [ce(v) for v in [0.0, 1.0, 2.0, 3.0, 4.0]]
    assert build_loss("normal", model)(out, y).item() == pytest.approx(sum(cs) / 5)
    # (2·CE_1 + 3·CE_2 + 4·CE_3 + 5·CE_4 + 6·CE_L) / (2+3+4+5+6)
    expected = (2 * cs[0] + 3 * cs[1] + 4 * cs[2] + 5 * cs[3] + 6 * cs[4]) / 20
    assert build_loss("weighted", model)(out, y).item() == pytest.approx(expected)


def test_alternating_weighted_flips_every_training_forward():
    model = tiny_model()
    loss = build_loss("alternating_weighted", model).train()
    out, y = fake_output([0.0, 1.0, 2.0, 3.0, 4.0]), torch.tensor([0])
    cs = [ce(v) for v in [0.0, 1.0, 2.0, 3.0, 4.0]]
    weighted = (2 * cs[0] + 3 * cs[1] + 4 * cs[2] + 5 * cs[3] + 6 * cs[4]) / 20
    got = [loss(out, y).item() for _ in range(4)]
    assert got == pytest.approx([cs[4], weighted, cs[4], weighted], rel=1e-5)  # even steps CE_L only
    loss.eval()
    assert loss(out, y).item() == pytest.approx(cs[4], rel=1e-5) and int(loss.step) == 4  # eval does not advance


def test_kd_divides_by_batch_times_classes():
    s, t = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.2, 0.1]]), torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    p_t, p_s = F.softmax(t / 2, -1), F.softmax(s / 2, -1)
    kl_sum = (p_t * (p_t.log() - p_s.log())).sum()
    assert kd_loss(s, t, 2.0, "bc").item() == pytest.approx(4 * kl_sum.item() / 6)  # T² · Σ KL / (B·C)
    assert kd_loss(s, t, 2.0, "batchmean").item() == pytest.approx(4 * kl_sum.item() / 2)


def test_channel_kl_and_gram():
    f, r = torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    p_r, p_f = F.softmax(r, -1), F.softmax(f, -1)
    assert channel_kl(f, r).item() == pytest.approx((p_r * (p_r.log() - p_f.log())).sum().item() / 2, rel=1e-5)
    g = gram(f)
    assert g.shape == (2, 4, 4) and torch.allclose(g[1], f[1].T @ f[1])


def test_lgvit_distillation_trains_heads_only_and_reduces_by_sum():
    torch.manual_seed(0)
    model = tiny_model(LGVIT_HEADS)
    loss = build_loss("lgvit_distillation", model)
    assert loss.lph == [0, 1] and loss.gah == [2, 3] and loss.pairs == [0, 1, 2, 3]
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    out = model(x, frozen_backbone=True, with_teacher=True)
    value = loss(out, y)
    value.backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.heads.parameters())
    # homo (sum): LPH: MSE(F_1, F_2); GAH: MSE(G_3, G_4) with Gram matrices
    f = [t.detach() for t in out.features]
    homo = F.mse_loss(f[0], f[1]) + F.mse_loss(gram(f[2]), gram(f[3]))
    assert loss.homo(out).item() == pytest.approx(homo.item(), rel=1e-5)
    mean_loss = build_loss("lgvit_distillation", model, {"homo_reduce": "mean", "hete_reduce": "mean"})
    assert mean_loss.homo(out).item() == pytest.approx(homo.item(), rel=1e-5)  # one pair per type: same
    assert mean_loss.hete(out).item() == pytest.approx(loss.hete(out).item() / 4, rel=1e-5)


def test_lgvit_distillation_paper_aligner_has_parameters():
    model = tiny_model(LGVIT_HEADS)
    loss = build_loss("lgvit_distillation", model, {"hete_align": "dwconv"})
    assert sum(p.numel() for p in loss.parameters()) > 0
    out = model(torch.randn(2, 1, 8, 8), with_teacher=True)
    assert torch.isfinite(loss(out, torch.tensor([0, 1])))


def test_bad_loss_options_are_one_line_errors():
    with pytest.raises(EEBenchError, match="unknown option"):
        build_loss("normal", tiny_model(), {"gamma": 1})
    with pytest.raises(EEBenchError, match="teacher_logits='x' is not valid"):
        build_loss("lgvit_distillation", tiny_model(LGVIT_HEADS), {"teacher_logits": "x"})
    mlp_only = build_loss("lgvit_distillation", tiny_model())  # no features: prediction distillation alone
    out = tiny_model()(torch.randn(2, 1, 8, 8), with_teacher=True)
    assert mlp_only.hete(out) == 0.0 and mlp_only.homo(out) == 0.0


def test_lgvit_distillation_on_swin_distils_from_references_of_their_own_width():
    # Swin exits live at several widths: each feature is compared with a reference of its own width — the deepest
    # block of that width (spec methods §3.4) — so no pair head is dropped and the global term does not vanish
    from eebench.build import build_model
    from eebench.recipes import resolve_method

    heads = {"by_count": {4: [{"type": "lph", "kernel": 3}, {"type": "lph", "kernel": 0},
                              {"type": "gah", "stride": 1}, {"type": "gah", "stride": 2}]}}
    spec = resolve_method("lgvit", {"positions": [1, 2, 3, 5], "heads": heads}, 5, {}, family="swin")
    model = build_model({"name": "swin_tiny_test"}, spec, 3, pretrained=False)
    loss = build_loss("lgvit_distillation", model)
    out = model(torch.randn(2, 3, 32, 32), with_teacher=True)
    shapes = [tuple(f.shape[1:]) for f in out.features]
    assert shapes == [(256, 16), (64, 32), (16, 64), (1, 128)]  # four stages, four widths
    # stages of blocks 1 | 2 | 3, 4 | 5: the references are the blocks ending each exit's stage
    assert loss.reference == {0: 1, 1: 2, 2: 4, 3: 5} and set(out.references) == {1, 2, 4, 5}
    expected = 0.0
    for i, block, stride, grid in [(0, 1, 1, 16), (1, 2, 1, 8), (2, 4, 1, 4), (3, 5, 2, 2)]:
        ref = out.references[block].detach().reshape(2, grid, grid, -1)[:, ::stride, ::stride].reshape(2, -1,
                                                                                                         shapes[i][1])
        log_r, log_s = F.log_softmax(ref, -1), F.log_softmax(out.features[i], -1)
        expected = expected + (log_r.exp() * (log_r - log_s)).sum() / 2
    assert loss.hete(out).item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.homo(out) == 0.0 and loss.teacher == {}  # no two heads of a group share a width
    assert torch.isfinite(loss(out, torch.tensor([0, 1])))
