"""EEformer's global-local head (a reconstruction, spec methods §6): shapes on every layout, exact parameter counts
derived by hand, padding invariance on text, and its switches."""
import pytest
import torch

from eebench.backbones.base import TokenLayout
from eebench.errors import EEBenchError
from eebench.heads import build_head
from eebench.heads.glh import subsample_sequence
from eebench.model import count_params

VIT_B = TokenLayout(768, ("cls",), (14, 14), "cls")          # ViT-B/16, 197 tokens
BERT_B = TokenLayout(768, ("cls",), None, "cls")             # BERT-base: a padded sequence, no grid

LAYOUTS = {  # small widths: shapes only
    "vit": (TokenLayout(32, ("cls",), (4, 4), "cls"), 17),
    "deit": (TokenLayout(32, ("cls", "dist"), (4, 4), "cls+dist"), 18),
    "swin": (TokenLayout(32, (), (7, 7), "mean"), 49),
    "bert": (TokenLayout(32, ("cls",), None, "cls"), 11),
}


def test_parameter_count_vit_b16_100_classes():
    d, c = 768, 100
    local = (d * d + d) + 2 * d + (9 * d + d) + 2 * d + (d * d + d) + 2 * d  # PW-1+BN, 3×3 DW+BN, PW-2+BN
    global_ = 3 * d * d + (d * d + d)                                          # qkv (no bias) + out-proj
    classifier = (d + 1) * c
    expected = local + global_ + classifier  # = 6D² + 19D + (D+1)C
    assert expected == 3_630_436  # = LPH(k=3) 1,270,372 + GAH 2,436,964 − one classifier 76,900 (spec §1.6)
    assert count_params(build_head({"type": "glh"}, VIT_B, c, 4)) == expected


def test_parameter_count_bert_base_2_classes():
    d, c = 768, 2
    local = (d * d + d) + 2 * d + (3 * d + d) + 2 * d + (d * d + d) + 2 * d  # Linear+BN, 1-D DW k=3 + BN, Linear+BN
    global_ = 3 * d * d + (d * d + d)
    classifier = (d + 1) * c
    assert local + global_ + classifier == 6 * d * d + 15 * d + 2 == 3_550_466
    assert count_params(build_head({"type": "glh"}, BERT_B, c, 4)) == 3_550_466


def test_fusion_switches_add_exactly_their_projection():
    base = count_params(build_head({"type": "glh"}, VIT_B, 100, 4))
    for fusion in ("concat", "gate"):
        assert count_params(build_head({"type": "glh", "fusion": fusion}, VIT_B, 100, 4)) == base + 2 * 768 * 768 + 768
    # kernel 0 drops the depth-wise conv and its BN: 9D + D + 2D
    assert count_params(build_head({"type": "glh", "kernel": 0}, VIT_B, 100, 4)) == base - 12 * 768


@pytest.mark.parametrize("family", list(LAYOUTS))
@pytest.mark.parametrize("fusion", ["sum", "concat", "gate"])
def test_output_shapes(family, fusion):
    layout, tokens = LAYOUTS[family]
    head = build_head({"type": "glh", "fusion": fusion}, layout, 5, 2).eval()
    mask = torch.ones(3, tokens, dtype=torch.long) if family == "bert" else None
    out = head(torch.randn(3, tokens, 32), mask)
    patches = tokens - layout.num_prefix
    assert out.logits.shape == (3, 5)
    assert out.feature.shape == (3, patches, 32)  # the local branch's tokens
    assert out.pooled.shape == (3, 32)
    # the global branch: stride 2 keeps ⌊(H−1)/2⌋+1 per side (4×4 → 2×2, Swin 7×7 → 4×4) or every 2nd token
    glob = build_head({"type": "glh", "distill_feature": "global"}, layout, 5, 2).eval()
    kept = {"vit": 4, "deit": 4, "swin": 16, "bert": 5}[family]
    assert glob(torch.randn(3, tokens, 32), mask).feature.shape == (3, kept, 32)
    assert glob.distill_group == "global" and glob.stride == 2 and head.stride == 1 and head.distill_group == "local"


def test_deit_averages_cls_and_dist_classifiers():
    layout, tokens = LAYOUTS["deit"]
    head = build_head({"type": "glh"}, layout, 5, 2).eval()
    x = torch.randn(2, tokens, 32)
    out = head(x)
    fc = head.classifier
    expected = (fc.fc(out.pooled + x[:, 0]) + fc.fc_dist(out.pooled + x[:, 1])) / 2
    torch.testing.assert_close(out.logits, expected)


def _padded(samples, length, junk=0.0):
    """Right-pad [n_i, D] samples to ``length`` with ``junk`` values; return hidden [B, length, D] and mask."""
    hidden = torch.full((len(samples), length, samples[0].shape[1]), junk)
    mask = torch.zeros(len(samples), length, dtype=torch.long)
    for i, s in enumerate(samples):
        hidden[i, :len(s)] = s
        mask[i, :len(s)] = 1
    return hidden, mask


@pytest.mark.parametrize("fusion", ["sum", "gate"])
@pytest.mark.parametrize("kernel, stride", [(3, 2), (5, 3), (0, 1)])
def test_padding_invariance_on_text(fusion, kernel, stride):
    torch.manual_seed(0)
    layout = LAYOUTS["bert"][0]
    head = build_head({"type": "glh", "kernel": kernel, "stride": stride, "fusion": fusion}, layout, 4, 3)
    for m in head.modules():  # non-trivial BN running statistics, so eval mode is not an identity
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    head.eval()
    short, long1, long2 = torch.randn(5, 32), torch.randn(12, 32), torch.randn(9, 32)
    alone, mask_alone = _padded([short], 5)
    batch, mask_batch = _padded([long1, short, long2], 12, junk=7.5)  # padding holds garbage, not zeros
    with torch.no_grad():
        a = head(alone, mask_alone)
        b = head(batch, mask_batch)
    torch.testing.assert_close(b.logits[1], a.logits[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(b.feature[1, :4], a.feature[0], atol=1e-5, rtol=0)  # 5 tokens = CLS + 4
    assert b.feature[1, 4:].abs().max() == 0  # padded positions of the feature are zero
    head.distill_group = "global"  # the global branch's tokens: the kept real ones match, filler rows are zero
    with torch.no_grad():
        ga, gb = head(alone, mask_alone).feature, head(batch, mask_batch).feature
    kept = ga.shape[1]
    torch.testing.assert_close(gb[1, :kept], ga[0], atol=1e-5, rtol=0)
    assert gb[1, kept:].abs().max() == 0


def test_training_mode_statistics_ignore_padding():
    """BatchNorm in training mode uses batch statistics: they must come from real tokens only, so changing what
    padded positions hold changes nothing."""
    torch.manual_seed(1)
    head = build_head({"type": "glh"}, LAYOUTS["bert"][0], 4, 3).train()
    samples = [torch.randn(6, 32), torch.randn(3, 32)]
    x0, mask = _padded(samples, 6, junk=0.0)
    x1, _ = _padded(samples, 6, junk=-40.0)
    torch.testing.assert_close(head(x1, mask).logits, head(x0, mask).logits, atol=1e-5, rtol=0)


def test_masked_subsampling_counts_real_tokens_on_either_padding_side():
    tokens = torch.arange(6.0).view(1, 6, 1).repeat(2, 1, 1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1]]).bool()
    packed, new_mask = subsample_sequence(tokens, mask, 2)
    # real tokens 0,1,2,3,4 → keep ranks 0,2,4 → values 0,2,4; left-padded 1..5 → values 1,3,5
    assert packed.squeeze(-1).tolist() == [[0, 2, 4], [1, 3, 5]] and new_mask.all()
    packed, new_mask = subsample_sequence(tokens, torch.tensor([[1, 1, 1, 0, 0, 0], [1] * 6]).bool(), 3)
    # 3 real tokens keep only rank 0; the second slot of row 0 is filler, masked out
    assert packed[0, 0, 0] == 0 and packed[1].squeeze(-1).tolist() == [0, 3]
    assert new_mask.tolist() == [[True, False], [True, True]]


@pytest.mark.parametrize("spec", [{"fusion": "max"}, {"kernel": 2}, {"stride": 0}, {"distill_feature": "both"},
                                  {"ratio": 0}])
def test_bad_switches_are_one_clear_error(spec):
    with pytest.raises(EEBenchError, match="glh head"):
        build_head({"type": "glh", **spec}, VIT_B, 10, 4)


def test_paper_convention_macs_vit_b16():
    from fvcore.nn import FlopCountAnalysis

    class Logits(torch.nn.Module):  # fvcore traces tensors, not HeadOutput
        def __init__(self):
            super().__init__()
            self.head = build_head({"type": "glh"}, VIT_B, 100, 4).eval()

        def forward(self, x):
            return self.head(x).logits

    fa = FlopCountAnalysis(Logits(), (torch.zeros(1, 197, 768),))
    fa.unsupported_ops_warnings(False)
    macs = sum(v for op, v in fa.by_operator().items() if op in ("linear", "conv"))
    n, d = 196, 768
    local = 2 * n * d * d + n * d * 9          # PW-1, PW-2, 3×3 depth-wise
    global_ = 49 * d * 3 * d + 49 * d * d      # 7×7 kept tokens: qkv + out-proj
    assert macs == local + global_ + d * 100 == 348_248_064  # + the classifier


@pytest.fixture(scope="module")
def glh_bert():
    """A tiny random BERT (4 blocks, width 32) with GLH exits after blocks 1 and 3, for each global stride."""
    from eebench.backbones import build_backbone
    from eebench.model import MultiExitModel

    def build(stride):
        torch.manual_seed(0)
        bb = build_backbone("bert_tiny_test", 2, pretrained=False, attn_implementation="eager")
        return MultiExitModel(bb, [1, 3], [{"type": "glh", "stride": stride}] * 2, 2).eval()
    return build


@pytest.mark.parametrize("stride", [2, 3])
def test_text_macs_per_length_equal_a_direct_count(glh_bert, stride):
    """The per-sample MACs the curves charge at a real length L are fvcore's count of the model traced at L, for odd
    and even L: the global branch attends over ⌈(L − 1)/stride⌉ tokens, a quadratic per residue class of L."""
    from eebench.curves import backbone_macs, per_sample_macs
    from eebench.measure.macs import (class_polys, component_costs, cost_summary, cumulative_macs, example_input,
                                      poly_macs)

    model = glh_bert(stride)
    costs = cost_summary(model, seq_length=64)
    lengths = torch.tensor([5, 6, 7, 10, 13, 21, 33, 50])
    for conv in ("paper", "full"):
        table, plain = per_sample_macs(costs, conv, lengths), backbone_macs(costs, conv, lengths)
        for i, n in enumerate(lengths.tolist()):
            direct = {"components": component_costs(model, example_input(model, n)), "row_layers": model.row_layers}
            assert table[:, i].tolist() == pytest.approx(cumulative_macs(direct, conv).tolist(), rel=1e-12, abs=0)
            backbone = ["embed", "block1", "block2", "block3", "block4", "final"]
            assert float(plain[i]) == pytest.approx(sum(direct["components"][c]["macs"][conv] for c in backbone),
                                                    rel=1e-12, abs=0)
    # by hand, stride 2, paper convention, L = 7: 6 tokens after [CLS]; local PW-1 + PW-2 6·32·32 each + depth-wise
    # conv 6·32·3 = 12,864; global keeps ⌈6/2⌉ = 3 tokens: qkv 3·32·96 + out-proj 3·32·32 = 12,288; classifier 32·2
    # = 64 → 25,216. A fit on even lengths alone charges 3.5 tokens there: 27,264, 8 % more.
    if stride == 2:
        poly = class_polys(costs["components"]["head1"]["macs_poly"]["paper"])
        assert poly_macs(poly[7 % 2], 7) == pytest.approx(25_216, rel=1e-12, abs=0)
    # the padded count (every sample at 64 tokens): 63 tokens after [CLS], ⌈63/stride⌉ kept by the global branch
    assert costs["components"]["head1"]["macs"]["paper"] == pytest.approx(
        2 * 63 * 32 * 32 + 63 * 32 * 3 + -(-63 // stride) * 32 * 128 + 64, rel=1e-12, abs=0)
