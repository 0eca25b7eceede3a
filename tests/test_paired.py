"""The paired bootstrap of the area difference (eebench.leaderboard.paired) on hand-made correctness arrays whose
answers are derived by hand below.

Every hand-made entry runs on a model whose rows cost 1, 2 and 3 MACs (rows 0, 1, 2 after blocks 1, 2, 3) and whose
plain backbone costs 3 MACs, so a point where every sample stops at row r has MAC speed-up 3 / (r + 1). With a single
operating point at speed-up s and accuracy a, the envelope is E(x) = a for x ≤ s (flat to the left of its only point)
and undefined (counted 0) past s, so its area over [lo, hi] = [1, 3] is a · (min(s, 3) − 1) / (3 − 1).
"""
import numpy as np
import pytest
from conftest import one_line

from eebench.leaderboard.paired import paired_area
from eebench.leaderboard.samples import EntrySamples

N = 100
COSTS = {"row_layers": [1, 2, 3],
         "components": {"embed": {"macs": {"paper": 0.0, "full": 0.0}},
                        **{f"block{i}": {"macs": {"paper": 1.0, "full": 1.0}} for i in (1, 2, 3)},
                        **{f"head{j}": {"macs": {"paper": 0.0, "full": 0.0}} for j in (1, 2)},
                        "final": {"macs": {"paper": 0.0, "full": 0.0}}},
         "macs": {"paper": {"backbone": 3.0, "heads": 0.0}, "full": {"backbone": 3.0, "heads": 0.0}}}


def entry(correct, row=0, sha="same", n=N):
    """One operating point: per-sample correctness (bool[n]) and every sample stopping at ``row`` (or per sample)."""
    rows = np.full(n, row, dtype=np.uint8) if np.isscalar(row) else np.asarray(row, dtype=np.uint8)
    return EntrySamples(key={"method": "m", "run": "r"}, correct=None if correct is None else np.asarray(correct, bool),
                        compute_row=rows, costs=COSTS, row_layers=[1, 2, 3], num_layers=3,
                        exit_layer_convention="correct", convention="paper", labels_sha256=sha)


def first(k):
    return np.arange(N) < k  # correct on the first k samples


def test_the_hand_made_costs_give_the_speed_ups_derived_above():
    assert entry(first(10), 0).mac_speedup() == pytest.approx(3.0)
    assert entry(first(10), 1).mac_speedup() == pytest.approx(1.5)
    assert entry(first(10), 2).mac_speedup() == pytest.approx(1.0)


def test_identical_methods_differ_by_exactly_zero_in_every_resample():
    # A and B are the same arrays: each resample computes the same two areas, so every difference is exactly 0 and
    # the interval is [0, 0]; 0 is inside it: not significant
    pattern = np.random.default_rng(1).random(N) < 0.7
    rows = np.random.default_rng(2).integers(0, 3, N)
    a = [entry(pattern, rows), entry(first(40), 1)]
    b = [entry(pattern, rows), entry(first(40), 1)]
    res = paired_area(a, b, 1.0, 3.0, n_boot=300, seed=0)
    assert res["diff"] == 0.0 and res["ci_low"] == 0.0 and res["ci_high"] == 0.0
    assert res["significant"] is False


def test_a_right_wherever_b_is_and_more_is_significantly_better():
    # both stop at row 0: speed-up 3 / 1 = 3, so area = accuracy · (3 − 1) / 2 = accuracy.
    # A is right on all 100 samples, B on the first 50 (a subset of A's): diff = 1 − 0.5 = 0.5.
    # In a resample A's accuracy is 1 and B's is the share of draws from the first 50 (about 0.5 ± 0.05), so every
    # difference is 1 − that share > 0 (0.5 ± 0.05): the interval lies above 0 — significant.
    res = paired_area([entry(np.ones(N, bool), 0)], [entry(first(50), 0)], 1.0, 3.0, n_boot=500, seed=0)
    assert res["diff"] == pytest.approx(0.5)
    assert 0.3 < res["ci_low"] < 0.5 < res["ci_high"] < 0.7
    assert res["significant"] is True
    # and the other way round: B − A lies below 0, also significant
    rev = paired_area([entry(first(50), 0)], [entry(np.ones(N, bool), 0)], 1.0, 3.0, n_boot=500, seed=0)
    assert rev["diff"] == pytest.approx(-0.5) and rev["ci_high"] < 0 and rev["significant"] is True
    assert rev["ci_low"] == pytest.approx(-res["ci_high"]) and rev["ci_high"] == pytest.approx(-res["ci_low"])


def test_one_sample_of_difference_is_not_significant():
    # A = B plus sample 50: diff = 1/100 (both at speed-up 3: area = accuracy). A resample's difference is (draws of
    # sample 50) / 100 ≥ 0, and it is 0 whenever sample 50 is not drawn, which happens with probability
    # (1 − 1/100)^100 ≈ 0.37 > 2.5 %: the 2.5th percentile is exactly 0, so 0 is inside the interval
    a = first(50).copy()
    a[50] = True
    res = paired_area([entry(a, 0)], [entry(first(50), 0)], 1.0, 3.0, n_boot=500, seed=0)
    assert res["diff"] == pytest.approx(0.01)
    assert res["ci_low"] == 0.0 and res["ci_high"] > 0
    assert res["significant"] is False


def test_cheaper_exits_at_the_same_correctness_win_by_the_area_they_reach():
    # the same correctness (the first 80 samples) for both; A stops at row 0 (speed-up 3), B at row 1 (speed-up 1.5).
    # area A = a · (3 − 1)/2 = a, area B = a · (1.5 − 1)/2 = a/4: diff = 3a/4 = 0.6 at a = 0.8, and 3/4 of the
    # resampled accuracy (0.8 ± 0.04) in every resample: significant
    res = paired_area([entry(first(80), 0)], [entry(first(80), 1)], 1.0, 3.0, n_boot=500, seed=0)
    assert res["diff"] == pytest.approx(0.6)
    assert 0.5 < res["ci_low"] < 0.6 < res["ci_high"] < 0.7 and res["significant"] is True


def test_per_sample_costs_are_resampled_with_the_samples():
    # B: every sample right; the first half stops at row 0 (1 MAC), the second half at row 2 (3 MACs): mean 2 MACs,
    # speed-up 3/2, area 1 · (1.5 − 1)/2 = 0.25. A: the same, all at row 1 (2 MACs): the same speed-up and area, so
    # diff = 0. In a resample with k draws from the first half B's mean cost is (k + 3(100 − k))/100 ≠ 2 unless
    # k = 50, while A's stays 2: the differences spread on both sides of 0 (paired over the same draws)
    half = np.where(np.arange(N) < 50, 0, 2)
    res = paired_area([entry(np.ones(N, bool), 1)], [entry(np.ones(N, bool), half)], 1.0, 3.0, n_boot=500, seed=0)
    assert res["diff"] == pytest.approx(0.0, abs=1e-12)
    assert res["ci_low"] < 0 < res["ci_high"] and res["significant"] is False


def test_the_envelope_of_several_points_is_the_one_scored():
    # A: (speed-up 3, accuracy 0.5) and (1.5, 0.9). Its envelope over [1, 3]: 0.9 on [1, 1.5], then the line from
    # (1.5, 0.9) to (3, 0.5): area = (0.9 · 0.5 + (0.9 + 0.5)/2 · 1.5) / 2 = (0.45 + 1.05) / 2 = 0.75.
    # B: (1.5, 0.9) alone: 0.9 · 0.5 / 2 = 0.225. diff = 0.525.
    res = paired_area([entry(first(50), 0), entry(first(90), 1)], [entry(first(90), 1)], 1.0, 3.0, n_boot=50)
    assert res["diff"] == pytest.approx(0.525)


def test_deterministic_given_the_seed():
    a, b = [entry(first(60), 0)], [entry(first(55), 0)]
    one = paired_area(a, b, 1.0, 3.0, n_boot=200, seed=7)
    assert paired_area(a, b, 1.0, 3.0, n_boot=200, seed=7) == one
    other = paired_area(a, b, 1.0, 3.0, n_boot=200, seed=8)
    assert other["diff"] == one["diff"] and (other["ci_low"], other["ci_high"]) != (one["ci_low"], one["ci_high"])



def test_entries_of_other_test_samples_or_without_correctness_are_refused():
    assert "different test samples" in one_line(paired_area, [entry(first(5), 0)], [entry(first(5), 0, sha="other")],
                                                 1.0, 3.0)
    assert "different test samples" in one_line(paired_area, [entry(first(5), 0)],
                                                 [entry(np.ones(90, bool), 0, n=90)], 1.0, 3.0)
    assert "regression" in one_line(paired_area, [entry(first(5), 0)], [entry(None, 0)], 1.0, 3.0)
    assert "no operating points" in one_line(paired_area, [], [entry(first(5), 0)], 1.0, 3.0)
    assert "empty" in one_line(paired_area, [entry(first(5), 0)], [entry(first(5), 0)], 3.0, 1.0)
