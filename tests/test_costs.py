"""Costs: fvcore MACs in both conventions at ViT-B scale (random init), and the CLI that prints them."""
import pytest

from conftest import cli_costs
from eebench.cli import main


@pytest.fixture(scope="module")
def lgvit_costs(tmp_path_factory):
    return cli_costs(tmp_path_factory.mktemp("costs"), "vit_lgvit_v0", "lgvit")


def test_backbone_macs_paper_convention_is_16_93_g(lgvit_costs, capsys):
    # spec methods §4.3: embed 0.1156 G + 12 × 1.4014 G = 16.93 G (198 tokens, Linear+Conv only)
    assert round(lgvit_costs["macs"]["paper"]["backbone"] / 1e9, 2) == 16.93


def test_full_convention_counts_attention(lgvit_costs):
    full = lgvit_costs["macs"]["full"]["backbone"] / 1e9
    assert 17.5 <= full <= 17.7  # spec ecosystem §3.1: fvcore eager DeiT-distilled layout 17.6744


def test_head_macs_and_params(lgvit_costs):
    comps = lgvit_costs["components"]
    # spec methods §1.6 / §4.3 (ViT, one classifier): LPH k=3 0.2326, k=0 0.2313, GAH s=2 0.1157, s=3 0.0591 G
    assert [round(comps[f"head{i}"]["macs"]["paper"] / 1e9, 4) for i in (1, 3, 5, 7)] == [0.2326, 0.2313, 0.1157, 0.0591]
    assert lgvit_costs["params"]["heads"] == 14_810_912
    assert lgvit_costs["params"]["backbone"] == 86_467_684  # V0 198-token ViT incl. unused pooler + classifier
    assert round(lgvit_costs["macs"]["paper"]["heads"] / 1e9, 3) == 1.277


def test_costs_cli_prints_the_paper_total(capsys):
    assert main(["costs", "--backbone", "vit_lgvit_v0", "--method", "backbone", "--num-classes", "100",
                 "--convention", "paper"]) == 0
    out = capsys.readouterr().out
    assert "MACs [paper]: backbone 16.93 G" in out and "block12" in out
