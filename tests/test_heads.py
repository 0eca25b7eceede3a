"""Exit heads against spec methods §1.3–1.6 (exact parameter counts, token reduction, CLS/DIST fusion)."""
import pytest
import torch

from eebench.backbones.base import TokenLayout
from eebench.errors import EEBenchError
from eebench.heads import build_head
from eebench.heads.gah import reduce_tokens
from eebench.model import count_params

VIT = TokenLayout(768, ("cls", "dist"), (14, 14), "cls")  # LGViT's 198-token "ViT": CLS-only classifiers
DEIT = TokenLayout(768, ("cls", "dist"), (14, 14), "cls+dist")


@pytest.mark.parametrize("spec, vit, deit", [
    ({"type": "lph", "kernel": 3}, 1_270_372, 1_347_272),
    ({"type": "lph", "kernel": 0}, 1_261_156, 1_338_056),
    ({"type": "gah", "stride": 2}, 2_436_964, 2_513_864),
    ({"type": "gah", "stride": 3}, 2_436_964, 2_513_864),
    ({"type": "mlp"}, 667_492, 667_492),
])
def test_parameter_counts_vit_b_100_classes(spec, vit, deit):
    # spec methods §1.6 and the §5 formulas, D = 768, C = 100:
    # LPH k=3: 2(D²+D) + (9D+D) + 3·2D + (D+1)C = 1,181,184 + 7,680 + 4,608 + 76,900 = 1,270,372
    # GAH: 3D² + D² + D + (D+1)C = 2,359,296 + 768 + 76,900 = 2,436,964; DeiT adds a second (D+1)C classifier
    assert count_params(build_head(spec, VIT, 100, 4)) == vit
    assert count_params(build_head(spec, DEIT, 100, 4)) == deit


def test_sum_of_the_eight_lgvit_heads():
    specs = [{"type": "lph", "kernel": 3}] * 2 + [{"type": "lph", "kernel": 0}] * 2 + \
            [{"type": "gah", "stride": 2}] * 2 + [{"type": "gah", "stride": 3}] * 2
    assert sum(count_params(build_head(s, VIT, 100, 4)) for s in specs) == 14_810_912
    assert sum(count_params(build_head(s, DEIT, 100, 4)) for s in specs) == 15_426_112


@pytest.mark.parametrize("stride, tokens", [(1, 196), (2, 49), (3, 25)])
def test_gah_feature_token_counts(stride, tokens):
    head = build_head({"type": "gah", "stride": stride}, VIT, 10, 8).eval()
    out = head(torch.randn(2, 198, 768))
    assert out.feature.shape == (2, tokens, 768) and out.logits.shape == (2, 10)


def test_pfc_subsample_keeps_rows_and_cols_0_s_2s():
    x = torch.arange(25.0).view(1, 1, 5, 5)
    # kernel-1 stride-2 pooling keeps (r, c) ∈ {0, 2, 4}²: values 0, 2, 4, 10, 12, 14, 20, 22, 24
    assert reduce_tokens(x, 2).flatten().tolist() == [0, 2, 4, 10, 12, 14, 20, 22, 24]
    # the paper's s×s average: window {0,1,5,6} → 3.0; ceil mode keeps ⌊(5−1)/2⌋+1 = 3 per side
    avg = reduce_tokens(x, 2, "average")
    assert avg.shape == (1, 1, 3, 3) and avg[0, 0, 0, 0].item() == 3.0


def test_lph_without_pdconv_has_no_depthwise_conv_and_adds_a_residual():
    head = build_head({"type": "lph", "kernel": 0}, TokenLayout(8, ("cls",), (2, 2), "cls"), 3, 1)
    convs = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1), (1, 1)]
    with torch.no_grad():  # zero the body's last BN → body output 0 → feature = input patch tokens (residual)
        head.body[-1].weight.zero_()
        head.body[-1].bias.zero_()
    x = torch.randn(2, 5, 8)
    assert torch.allclose(head.eval()(x).feature, x[:, 1:])


def test_cls_dist_fusion_averages_two_classifiers():
    layout = TokenLayout(4, ("cls", "dist"), (1, 1), "cls+dist")
    head = build_head({"type": "lph", "kernel": 0}, layout, 2, 1).eval()
    x = torch.randn(3, 3, 4)
    out = head(x)
    clf = head.classifier
    pooled = out.feature.mean(1)
    expected = (clf.fc(pooled + x[:, 0]) + clf.fc_dist(pooled + x[:, 1])) / 2
    assert torch.allclose(out.logits, expected)


def test_grid_heads_refuse_text_layouts():
    with pytest.raises(EEBenchError, match="needs a patch grid"):
        build_head({"type": "lph"}, TokenLayout(8, ("cls",), None, "cls"), 2, 1)


def test_unknown_head_names_the_choices():
    # other test modules register heads of their own, so the list is checked to contain the built-ins, sorted
    with pytest.raises(EEBenchError, match="unknown head 'nope' — choose one of: ") as err:
        build_head({"type": "nope"}, VIT, 2, 1)
    choices = str(err.value).split("choose one of: ")[1].split(" (see")[0].split(", ")
    assert {"attention", "conv", "gah", "glh", "linear", "lph", "mlp", "vit_ee"} <= set(choices)
    assert choices == sorted(choices) and "`eebench list heads`" in str(err.value)
