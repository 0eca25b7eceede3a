"""Eq. 17 and expected MACs on hand-made exit histograms."""
import torch

from eebench.measure.macs import cumulative_macs
from eebench.measure.speedup import expected_macs, layer_speedup, speedup_from_histogram


def test_eq17_on_a_histogram():
    # 50 samples exit after block 4, 50 run all 12: 12·100 / (4·50 + 12·50) = 1200 / 800 = 1.5
    assert speedup_from_histogram({4: 50, 12: 50}, 12) == 1.5
    assert layer_speedup(torch.tensor([4] * 50 + [12] * 50), 12) == 1.5
    # everyone at the first block: speed-up = L
    assert speedup_from_histogram({1: 7}, 12) == 12.0


def fake_costs():
    comp = lambda m: {"params": 0, "macs": {"paper": m, "full": 2 * m}}  # noqa: E731
    comps = {"embed": comp(1.0), "final": comp(0.5), "head1": comp(2.0), "head2": comp(3.0)}
    comps.update({f"block{i}": comp(10.0) for i in range(1, 7)})
    return {"components": comps, "row_layers": [2, 4, 6]}


def test_cumulative_macs_charge_every_head_on_the_way():
    # rows after blocks 2, 4 and the final classifier (6):
    # row 0: embed 1 + 2 blocks 20 + head1 2            = 23
    # row 1: embed 1 + 4 blocks 40 + head1 2 + head2 3  = 46
    # row 2: embed 1 + 6 blocks 60 + heads 5 + final .5 = 66.5
    assert cumulative_macs(fake_costs(), "paper").tolist() == [23.0, 46.0, 66.5]
    assert cumulative_macs(fake_costs(), "full").tolist() == [46.0, 92.0, 133.0]


def test_expected_macs_of_a_histogram():
    cum = cumulative_macs(fake_costs(), "paper")
    # two samples stop at row 0, one at row 1, one runs to the end: (23 + 23 + 46 + 66.5) / 4 = 39.625
    assert expected_macs(torch.tensor([0, 0, 1, 2]), cum) == 39.625
