"""The NLP methods' own recipes on text: the official codes' heads come with the recipe on a BERT-family backbone (not
from config overrides), while the LGViT port's heads stay on the vision families."""
import pytest

from eebench.plan import Plan, validate_config

BERT = {"run": "t", "seeds": [0], "dataset": {"name": "glue", "task": "sst2"},
        "backbone": {"name": "bert_tiny_test", "pretrained": False}, "training": {"epochs": 1}}
VIT = {"run": "t", "seeds": [0], "dataset": {"name": "digits"},
       "backbone": {"name": "vit_tiny_digits", "pretrained": False}, "training": {"epochs": 1}}


def plan_of(base: dict, methods: dict, **extra) -> Plan:
    return Plan(validate_config({**base, **extra, "methods": methods}))


# Expected heads, from the official codes (spec baselines §4a, §6a): PABEE and PCEE-BERT call BERT's one pre-trained
# pooler at every layer, then dropout(hidden_dropout_prob = 0.1) and a per-layer linear classifier (`pooled_linear`);
# DeeBERT and BERxiT build a pooler per off-ramp, copied from the backbone's, then dropout(hidden_dropout_prob = 0.1).
# bert_tiny_test has 4 blocks: PABEE/PCEE exits after 1..3, DeeBERT/BERxiT off-ramps after 1..4.
OFFICIAL_TEXT_HEADS = {
    "pabee": (3, {"type": "pooled_linear", "dropout": 0.1}),
    "pcee": (3, {"type": "pooled_linear", "dropout": 0.1}),
    "deebert": (4, {"type": "mlp", "copy_pooler": True, "dropout": 0.1}),
    "berxit": (4, {"type": "mlp", "copy_pooler": True, "dropout": 0.1}),
}


@pytest.mark.parametrize("method", sorted(OFFICIAL_TEXT_HEADS))
def test_a_bare_method_on_bert_gets_the_official_text_heads(method):
    count, head = OFFICIAL_TEXT_HEADS[method]
    assert plan_of(BERT, {method: {}}).method(method)["heads"] == [head] * count


# On ViT (vit_tiny_digits: 6 blocks) the recipes' own heads stay: the LGViT port's `mlp` exit (a randomly initialised
# pooler, dropout 0) after blocks 1..5 for PABEE/PCEE; DeeBERT/BERxiT copy the pooler (their recipe's switch), dropout 0.
VISION_HEADS = {
    "pabee": (5, {"type": "mlp"}),
    "pcee": (5, {"type": "mlp"}),
    "deebert": (6, {"type": "mlp", "copy_pooler": True}),
    "berxit": (6, {"type": "mlp", "copy_pooler": True}),
}


@pytest.mark.parametrize("method", sorted(VISION_HEADS))
def test_vision_keeps_the_recipe_heads(method):
    count, head = VISION_HEADS[method]
    assert plan_of(VIT, {method: {}}).method(method)["heads"] == [head] * count


@pytest.mark.parametrize("port", ["pabee_port", "pcee_port", "berxit_port"])
def test_the_lgvit_ports_keep_the_ports_heads_on_bert(port):
    """A port variant is the LGViT port on every family: the `mlp` exit with its own random pooler, dropout 0 (and
    the port's Swin exits on Swin), not the official text heads of the recipe it is a variant of."""
    heads = plan_of(BERT, {port: {}}).method(port)["heads"]
    assert heads == [{"type": "mlp"}] * len(heads) and len(heads) == 3


def test_a_config_override_still_replaces_the_family_heads():
    heads = plan_of(BERT, {"pabee": {"heads": {"type": "mlp", "dropout": 0.2}}}).method("pabee")["heads"]
    assert heads == [{"type": "mlp", "dropout": 0.2}] * 3


@pytest.mark.parametrize("port", ["pabee_port", "pcee_port", "berxit_port"])
def test_the_lgvit_ports_keep_the_ports_swin_exits(port):
    """The port's Swin exits (spec methods §1.2, §2.1): LN → mean → linear after blocks 4, 7, …, 22, 23 of 24."""
    from eebench.recipes import resolve_method

    spec = resolve_method(port, {}, 24, {}, family="swin")
    assert spec["exit_layers"] == [4, 7, 10, 13, 16, 19, 22, 23] and spec["heads"] == [{"type": "linear"}] * 8
