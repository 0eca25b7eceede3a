"""Paper-scale backbones: HF Swin-B and timm ViT-B/16, DeiT-B distilled and Swin-B (random init, no weights).

Exact parameter counts of spec methods §5 for the Swin rows of Table 1, paper/full-convention MACs of spec methods
§4.3 and spec ecosystem §3.1, Swin's per-block layouts and per-component costs, the block-by-block adapters against
the libraries' own forward passes (tiny models), the Swin off-by-one exit-layer switch, and the offline-weights errors.
Each B-size model is built and traced once per module (about 5–10 s each on a shared CPU).
"""
import pytest
import torch

from conftest import cli_costs
from eebench.backbones import build_backbone
from eebench.curves import logged_layers, operating_curve
from eebench.errors import EEBenchError
from eebench.measure.macs import cost_summary
from eebench.model import MultiExitModel, count_params
from eebench.recipes import resolve_method

SWIN_EXITS = [4, 7, 10, 13, 16, 19, 22, 23]  # README: 4 | 7, 10, …, 22 | 23 (spec methods §1.2)
# per-component Linear+Conv MACs at 224², 100 classes, derived by hand (spec methods §4.3):
EMBED = 3 * 4 * 4 * 128 * 56 * 56      # 4×4 patch conv → 128 channels on 56²: 19,267,584 (0.0193 G)
BLOCK = 12 * 3136 * 128 ** 2           # qkv 3D² + proj D² + MLP 8D² per token; N·D² is the same in every stage
MERGE = 3136 // 4 * (4 * 128) * (2 * 128)  # Linear(4D → 2D, no bias) on N/4 tokens: 102,760,448 (0.1028 G)
FC = 1024 * 100


def swin_method(backbone, method, overrides=None):
    spec = resolve_method(method, overrides or {}, 24, {}, family="swin")
    return MultiExitModel(backbone, spec["exit_layers"], spec["heads"], 100, lte=spec["lte"])


@pytest.fixture(scope="module")
def swin_b():
    return build_backbone("swin_b", 100, pretrained=False, attn_implementation="eager")


@pytest.fixture(scope="module")
def timm_swin_b():
    return build_backbone("timm_swin_b", 100, pretrained=False, attn_implementation="eager")


@pytest.fixture(scope="module")
def lgvit_swin_costs(tmp_path_factory):
    """`eebench costs` itself (family-specific heads through the CLI), traced once."""
    return cli_costs(tmp_path_factory.mktemp("costs"), "swin_b", "lgvit")


@pytest.fixture(scope="module")
def timm_costs(timm_swin_b):
    """Backbone-only cost summaries of the three timm presets (one trace each)."""
    out = {"timm_swin_b": cost_summary(MultiExitModel(timm_swin_b, [], [], 100))}
    for name in ("timm_vit_b16", "timm_deit_b"):
        bb = build_backbone(name, 100, pretrained=False, attn_implementation="eager")
        out[name] = cost_summary(MultiExitModel(bb, [], [], 100))
    return out


# ---------------------------------------------------------------------------------------------------- parameters

# spec methods §5 (Table 1, Swin-B, C = 100). Heads: `linear` = LN(D) + Linear(D→100): 26,212 / 52,324 / 104,548
# at D = 256 / 512 / 1024, so 8 exits (one at 256, six at 512, one at 1024) add 444,704. ViT-EE: a 512-d block
# (4·(512²+512) attention + 2·512·3072 + 3072 + 512 MLP + 2 LN = 4,201,984) + `linear` at 512 = 4,254,308.
# LGViT: LPH k=3 @256 161,892, @512 585,828; LPH k=0 579,684 ×2; GAH @512 1,101,412 ×3; GAH @1024 4,299,876
# → 9,511,200.
@pytest.mark.parametrize("method, expected", [
    ("backbone", 86_845_724),
    ("sdn", 87_290_428),
    ("pabee", 87_290_428),
    ("pcee", 87_290_428),
    ("berxit", 87_290_428 + 257 + 513 + 1025),  # + BERxiT's learning-to-exit, one Linear(w → 1) per exit width (256, 512, 1024), which the LGViT port does not have
    ("vit_ee", 91_100_032),
    ("lgvit", 96_356_924),         # what the released Swin code builds (the paper says 97 M, spec §5)
])
def test_swin_parameter_counts(swin_b, method, expected):
    assert count_params(swin_method(swin_b, method)) == expected


def test_timm_swin_has_the_same_parameters(timm_swin_b):
    assert count_params(timm_swin_b) == 86_845_724
    assert count_params(swin_method(timm_swin_b, "lgvit")) == 96_356_924


# ---------------------------------------------------------------------------------------------------- layouts

@pytest.mark.parametrize("fixture", ["swin_b", "timm_swin_b"])
def test_swin_block_layouts(fixture, request):
    bb = request.getfixturevalue(fixture)
    assert bb.num_layers == 24 and bb.family == "swin"
    widths = [128] * 2 + [256] * 2 + [512] * 18 + [1024] * 2
    sides = [56] * 2 + [28] * 2 + [14] * 18 + [7] * 2
    assert [bb.layout(i).width for i in range(1, 25)] == widths
    assert [bb.layout(i).grid for i in range(1, 25)] == [(s, s) for s in sides]
    assert {(bb.layout(i).prefix, bb.layout(i).classifier) for i in range(1, 25)} == {((), "mean")}
    # block 4 ends stage 2: its exit reads the output before patch merging (LPH@4 has dim 256, spec §1.2)
    assert bb.layout(4).width == 256 and bb.layout(5).width == 512
    # each patch merging is charged to the first block of the next stage
    comps = bb.component_modules()
    assert [i for i in range(1, 25) if len(comps[f"block{i}"]) == 2] == [3, 5, 23]


def test_swin_lgvit_heads_follow_the_stages(swin_b):
    model = swin_method(swin_b, "lgvit")
    assert model.exit_layers == SWIN_EXITS
    kinds = [(type(h).__name__, getattr(h, "stride", None), h.layout.width) for h in model.heads]
    assert kinds == [("LocalPerceptionHead", None, 256), *[("LocalPerceptionHead", None, 512)] * 3,
                     ("GlobalAggregationHead", 1, 512), ("GlobalAggregationHead", 1, 512),
                     ("GlobalAggregationHead", 2, 512), ("GlobalAggregationHead", 2, 1024)]
    assert [len(h.body) for h in model.heads[:4]] == [8, 8, 5, 5]  # PDConv (3 modules) only at k = 3


# ---------------------------------------------------------------------------------------------------- MACs

def test_swin_b_paper_macs_are_15_13_g(lgvit_swin_costs, timm_costs):
    # embed + 24 blocks + 3 patch mergings + Linear(1024 → 100) = 15,125,155,840 (spec methods §4.3: 15.13 G)
    expected = EMBED + 24 * BLOCK + 3 * MERGE + FC
    assert expected == 15_125_155_840
    assert lgvit_swin_costs["macs"]["paper"]["backbone"] == expected
    assert timm_costs["timm_swin_b"]["macs"]["paper"]["backbone"] == expected


def test_swin_b_full_macs(lgvit_swin_costs, timm_costs):
    # spec ecosystem §3.1: fvcore, eager attention, 100 classes: 15.4669 G (HF and timm alike)
    assert round(lgvit_swin_costs["macs"]["full"]["backbone"] / 1e9, 4) == 15.4669
    assert round(timm_costs["timm_swin_b"]["macs"]["full"]["backbone"] / 1e9, 4) == 15.4669


def test_swin_component_table(lgvit_swin_costs, timm_costs):
    """spec methods §4.3 Swin-B table: embed 0.0193, every block 0.6166, patch merging 0.1028 G."""
    for costs in (lgvit_swin_costs, timm_costs["timm_swin_b"]):
        paper = {k: c["macs"]["paper"] for k, c in costs["components"].items()}
        assert paper["embed"] == EMBED
        assert [paper[f"block{i}"] for i in range(1, 25)] == [BLOCK + (MERGE if i in (3, 5, 23) else 0)
                                                                for i in range(1, 25)]
        assert paper["final"] == FC
    assert round(BLOCK / 1e9, 4) == 0.6166 and round(MERGE / 1e9, 4) == 0.1028 and round(EMBED / 1e9, 4) == 0.0193


def test_swin_lgvit_head_macs(lgvit_swin_costs):
    # spec methods §4.3: LPH k=3 @stage2 (D 256, N 784): 2·N·D² + 9·N·D + 256·100 = 0.1046; @stage3 (512, 196)
    # 0.1037; LPH k=0 @stage3 0.1028; GAH s=1 @stage3: 4·196·512² + fc = 0.2056; s=2 @stage3 (49 tokens) 0.0514;
    # s=2 @stage4 (7×7 → 4×4 = 16 tokens, D 1024) 0.0672
    comps = lgvit_swin_costs["components"]
    got = [round(comps[f"head{i}"]["macs"]["paper"] / 1e9, 4) for i in range(1, 9)]
    assert got == [0.1046, 0.1037, 0.1028, 0.1028, 0.2056, 0.2056, 0.0514, 0.0672]
    assert comps["head1"]["macs"]["paper"] == 2 * 784 * 256 ** 2 + 9 * 784 * 256 + 256 * 100
    assert comps["head8"]["macs"]["paper"] == 4 * 16 * 1024 ** 2 + 1024 * 100
    assert lgvit_swin_costs["params"] == {"total": 96_356_924, "backbone": 86_845_724, "heads": 9_511_200, "unused": 0}


def test_swin_vit_ee_head_macs(swin_b):
    # 196 tokens × (4·512² attention + 2·512·3072 MLP) + Linear(512 → 100) = 822,134,784 (spec: ≈0.82 G)
    costs = cost_summary(swin_method(swin_b, "vit_ee"))
    assert costs["components"]["head1"]["macs"]["paper"] == 196 * (4 * 512 ** 2 + 2 * 512 * 3072) + 512 * 100


@pytest.mark.parametrize("name, paper, full", [
    # 198 tokens (CLS, DIST): 0.1156 G embed + 12 × 198 × 12·768² + 2 × 768·100 = 16,932,820,992 (16.93 G, §4.3);
    # fvcore eager 17.6744 G (ecosystem §3.1)
    ("timm_deit_b", 16_932_820_992, 17.6744),
    # 197 tokens: 0.1156 G + 12 × 197 × 12·768² + 768·100 = 16,847,809,536 (16.85 G); eager 17.5820 G
    ("timm_vit_b16", 16_847_809_536, 17.5820),
])
def test_timm_vit_macs(timm_costs, name, paper, full):
    macs = timm_costs[name]["macs"]
    embed = 768 * 3 * 16 * 16 * 196
    tokens = 198 if name == "timm_deit_b" else 197
    assert paper == embed + 12 * tokens * 12 * 768 ** 2 + (2 if tokens == 198 else 1) * 768 * 100
    assert macs["paper"]["backbone"] == paper
    assert 17.5 <= macs["full"]["backbone"] / 1e9 <= 17.7
    assert round(macs["full"]["backbone"] / 1e9, 4) == full
    # the CLS/DIST tokens and position table are bare timm parameters, charged to the embedding
    assert timm_costs[name]["params"]["unused"] == 0


# ---------------------------------------------------------------------------------------------- adapters vs libraries

def test_hf_swin_blocks_reproduce_swin_model():
    bb = build_backbone("swin_tiny_test", 10, pretrained=False, attn_implementation="eager").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        h, ctx = bb.embed(x)
        for i in range(1, bb.num_layers + 1):
            h = bb.block(i, h, ctx)
            assert h.shape[1:] == (bb.layout(i).grid[0] * bb.layout(i).grid[1], bb.layout(i).width)
        torch.testing.assert_close(bb.model.layernorm(h), bb.model(x).last_hidden_state)
    # LGViT's code uses transformers 4.26's uniform drop path: every block drops at drop_path_rate (spec §1.1)
    assert [blk.drop_path.drop_prob for st in bb.stages.stages for blk in st.blocks] == [0.1] * 5


def test_timm_adapters_reproduce_timm_forward():
    x = torch.randn(2, 3, 32, 32)
    swin = build_backbone("timm_swin_b", 10, pretrained=False, image_size=32, patch_size=2, embed_dim=16,
                          depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4), window_size=2, num_hidden_layers=5).eval()
    deit = build_backbone("timm_deit_b", 10, pretrained=False, image_size=32, patch_size=8, embed_dim=32,
                          num_heads=2, num_hidden_layers=3).eval()
    with torch.no_grad():
        torch.testing.assert_close(swin(x), swin.model(x))
        torch.testing.assert_close(deit(x), deit.model(x))
    assert [swin.layout(i).grid for i in range(1, 6)] == [(16, 16), (8, 8), (4, 4), (4, 4), (2, 2)]
    assert deit.layout(1).prefix == ("cls", "dist") and deit.layout(1).classifier == "cls+dist"
    assert deit.num_layers == 3 and deit.family == "deit"


def test_exits_at_stage_ends_read_the_unmerged_output():
    bb = build_backbone("swin_tiny_test", 10, pretrained=False)
    heads = [{"type": "lph", "kernel": 3}, {"type": "linear"}, {"type": "gah", "stride": 2}, {"type": "vit_ee"}]
    model = MultiExitModel(bb, [1, 2, 4, 5], heads, 10).eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert [tuple(f.shape) for f in out.features[:3]] == [(2, 256, 16), (2, 64, 32), (2, 4, 64)]  # GAH: 4×4 → 2×2
    assert out.stacked().shape == (5, 2, 10)


def test_swin_depth_must_match_the_plan():
    with pytest.raises(EEBenchError, match=r"stage depths \[1, 1, 2, 2\] make 6 blocks.*num_hidden_layers: 6"):
        build_backbone("swin_tiny_test", 10, pretrained=False, depths=(1, 1, 2, 2))


# ---------------------------------------------------------------------------------------------------- recipes by family

def test_family_picks_heads_and_positions():
    vit = resolve_method("sdn", {}, 12, {})
    swin = resolve_method("sdn", {}, 24, {}, family="swin")
    assert vit["exit_layers"] == list(range(1, 12)) and vit["heads"][0] == {"type": "mlp"}
    assert swin["exit_layers"] == SWIN_EXITS and swin["heads"] == [{"type": "linear"}] * 8
    assert resolve_method("vit_ee", {}, 24, {}, family="swin")["heads"] == [
        {"type": "vit_ee", "num_heads": 8, "mlp_size": 3072}]
    # a config override still replaces the family's choice
    assert resolve_method("sdn", {"heads": {"type": "mlp"}}, 24, {}, family="swin")["heads"][0] == {"type": "mlp"}
    with pytest.raises(EEBenchError, match="lists exit positions for depths \\[24\\], not 5"):
        resolve_method("lgvit", {}, 5, {}, family="swin")


def test_plan_reads_the_family_from_the_preset():
    from eebench.plan import Plan, validate_config

    plan = Plan(validate_config({"run": "t", "dataset": {"name": "digits"}, "methods": {"lgvit": {}, "vit_ee": {}},
                                 "backbone": {"name": "swin_b", "pretrained": False}}))
    assert plan.method("lgvit")["exit_layers"] == SWIN_EXITS
    assert [h.get("stride") for h in plan.method("lgvit")["heads"][4:]] == [1, 1, 2, 2]
    assert plan.method("vit_ee")["exit_layers"] == [12]


# ---------------------------------------------------------------------------------------------------- exit-layer switch

def test_swin_off_by_one_switch_on_a_hand_made_histogram(lgvit_swin_costs):
    rows = [*SWIN_EXITS, 24]
    assert logged_layers(rows, 24, "as_coded").tolist() == [3, 6, 9, 12, 15, 18, 21, 22, 24]
    # four samples: two confident at exit 1 (block 4), one at exit 4 (block 13), one never (full depth)
    logits = torch.zeros(9, 4, 3)
    logits[0, :2, 0] = 10.0
    logits[3, 2, 0] = 10.0
    cache = {"logits": logits, "labels": torch.zeros(4, dtype=torch.long), "row_layers": rows, "num_layers": 24}
    policy = {"name": "lgvit_confidence", "sweep": {"threshold": [0.9]}}
    correct = operating_curve(cache, policy, lgvit_swin_costs).iloc[0]
    coded = operating_curve(cache, {**policy, "exit_layer_convention": "as_coded"}, lgvit_swin_costs).iloc[0]
    # histogram {4: 2, 13: 1, 24: 1}: correct 24·4 / (4 + 4 + 13 + 24) = 96/45; as coded 96 / (3 + 3 + 12 + 24) = 96/42
    assert correct["exit_layer_convention"] == "correct" and coded["exit_layer_convention"] == "as_coded"
    assert correct["layer_speedup"] == pytest.approx(96 / 45) and coded["layer_speedup"] == pytest.approx(96 / 42)
    assert correct["avg_exit_layer"] == pytest.approx(45 / 4) and coded["avg_exit_layer"] == pytest.approx(42 / 4)
    assert correct["expected_macs_paper"] == coded["expected_macs_paper"]  # costs do not depend on the log
    assert correct["exit_histogram"] == coded["exit_histogram"] == '{"4": 2, "7": 0, "10": 0, "13": 1, "16": 0, ' \
        '"19": 0, "22": 0, "23": 0, "24": 1}'
    with pytest.raises(EEBenchError, match="unknown exit_layer_convention 'paper'"):
        logged_layers(rows, 24, "paper")


# ---------------------------------------------------------------------------------------------------- offline weights

@pytest.mark.parametrize("name, weights, fix", [
    ("swin_b", "microsoft/swin-base-patch4-window7-224", "huggingface-cli download"),
    ("timm_vit_b16", "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k", "hf download"),
    ("timm_swin_b", "timm/swin_base_patch4_window7_224.ms_in22k_ft_in1k", "hf download"),
])
def test_offline_hub_weights_fail_with_the_fix(monkeypatch, name, weights, fix):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EEBenchError, match=f"could not load pretrained weights '{weights}'.*{fix} {weights} "
                                           "--local-dir DIR.*backbone.pretrained: false"):
        build_backbone(name, 100)


def test_timm_local_weights(tmp_path):
    from safetensors.torch import save_file

    # 1000 classes, as the file's: timm drops a checkpoint's classifier when the class counts differ from its config's
    tiny = dict(image_size=32, patch_size=8, embed_dim=32, num_heads=2, num_hidden_layers=2)
    source = build_backbone("timm_vit_b16", 1000, pretrained=False, **tiny)
    (tmp_path / "w").mkdir()
    save_file(source.model.state_dict(), tmp_path / "w" / "model.safetensors")
    for where in (tmp_path / "w", tmp_path / "w" / "model.safetensors"):
        loaded = build_backbone("timm_vit_b16", 1000, pretrained=str(where), **tiny)
        for (k, a), b in zip(source.model.state_dict().items(), loaded.model.state_dict().values()):
            assert torch.equal(a, b), k
    with pytest.raises(EEBenchError, match="file or folder './nowhere' does not exist"):
        build_backbone("timm_vit_b16", 10, pretrained="./nowhere", **tiny)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EEBenchError, match="holds none of model.safetensors, pytorch_model.bin"):
        build_backbone("timm_vit_b16", 10, pretrained=str(tmp_path / "empty"), **tiny)


def test_hf_swin_local_folder_loads(tmp_path):
    source = build_backbone("swin_tiny_test", 10, pretrained=False)
    source.model.save_pretrained(tmp_path / "w")
    loaded = build_backbone("swin_tiny_test", 10, pretrained=str(tmp_path / "w"))
    for (k, a), b in zip(source.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), k
