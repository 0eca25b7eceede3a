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
