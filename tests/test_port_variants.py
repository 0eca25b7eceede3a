"""The LGViT port's baselines (spec methods §2.4, baselines §9, §11.6) as named variants of the original recipes."""
import pytest
import torch

from conftest import cli_costs
from eebench.recipes import load_recipe, resolve_method

PORTS = ["sdn_port", "pabee_port", "pcee_port", "berxit_port", "vit_ee_port"]


@pytest.mark.parametrize("method, expected", [
    ("sdn_port", 93_808_560), ("pabee_port", 93_808_560), ("pcee_port", 93_808_560),
    ("berxit_port", 93_808_560),  # 11 `linear` exits at 1..11, no LTE (the original BERxiT has 12 off-ramps + LTE)
    ("vit_ee_port", 94_221_512),
])
def test_port_costs_at_100_classes_are_the_spec_counts(tmp_path, method, expected):
    """spec methods §5, true 197-token ViT-B/16 (the V0 198-token network adds 1,536): `eebench costs` totals."""
    assert cli_costs(tmp_path, "vit_b16", method)["params"]["total"] == expected


@pytest.mark.parametrize("method, expected", [("berxit_port", 87_290_428), ("vit_ee_port", 91_100_032)])
def test_port_costs_on_swin_b(tmp_path, method, expected):
    assert cli_costs(tmp_path, "swin_b", method)["params"]["total"] == expected


def test_port_semantics_are_declared():
    """Averaged static losses, strict-> confidence with the final fallback, shifted patience, raw-entropy PCEE,
    no LTE and no τ schedule; the originals keep their own semantics and stay resolvable."""
    spec = {n: resolve_method(n, None, 12, {"epochs": 1}) for n in PORTS + ["sdn", "berxit", "pabee", "pcee"]}
    for name in PORTS:
        assert spec[name]["semantics"] == "LGViT port" and "(LGViT port)" in spec[name]["title"]
        assert spec[name]["policy"]["name"].startswith("lgvit_") and not spec[name]["lte"]
        assert spec[name]["exit_layers"] == ([6] if name == "vit_ee_port" else list(range(1, 12)))
    assert spec["sdn_port"]["stages"][0]["loss_params"] == {"schedule": "static"}
    assert spec["berxit_port"]["stages"][0]["loss_params"] == {"reduce": "mean", "parity": "global", "lte": False}
    assert spec["pabee_port"]["policy"]["name"] == "lgvit_patience"
    assert spec["pcee_port"]["policy"] == {"name": "lgvit_pcee", "params": {"patience": 2},
                                           "sweep": spec["pcee_port"]["policy"]["sweep"]}
    assert spec["sdn"]["stages"][0]["loss_params"] == {"schedule": "sdn"} and spec["sdn"]["semantics"] == "official code"
    assert spec["berxit"]["lte"] and spec["berxit"]["policy"]["name"] == "berxit_lte"
    # the three one-stage ports with `linear` heads at 1..11 and the static weighted loss are one trained model
    from eebench.plan import training_key
    assert len({training_key(spec[n]) for n in ("sdn_port", "pabee_port", "pcee_port")}) == 1
    assert "variants" not in load_recipe("sdn_port") and load_recipe("sdn_port")["variant_of_recipe"] == "sdn"


def test_port_patience_is_shifted_by_one():
    """Hand-made: predictions 3, 3, 3 at the three highways, then the final classifier. PABEE patience 2 needs two
    agreements (exit at highway 3); the port's t = 2 counts the current exit (run length 2 at highway 2)."""
    from eebench.policies import build_policy

    logits = torch.zeros(4, 1, 5)
    logits[:, 0, 3] = 5.0
    assert build_policy("pabee_patience", patience=2).decide(logits).exit_index.item() == 2
    assert build_policy("lgvit_patience", patience=2).decide(logits).exit_index.item() == 1
