"""Leaderboard scores on hand-made curves with hand-computed values (crossings included), the store's validate/merge,
and the ranked board built from a hand-made store."""
import json

import numpy as np
import pandas as pd
import pytest

from eebench.errors import EEBenchError
from eebench.leaderboard import scores
from eebench.leaderboard.board import bootstrap_area, leaderboard
from eebench.leaderboard.store import STATIC, merge, metric_of, validate

# speed-up, accuracy: (1.5, 0.7) is beaten by (2, 0.8)
CURVE = ([1.0, 1.5, 2.0, 3.0], [0.9, 0.7, 0.8, 0.5])


def test_envelope_keeps_the_upper_front():
    xs, ys = scores.envelope(*CURVE)
    assert xs.tolist() == [1.0, 2.0, 3.0] and ys.tolist() == [0.9, 0.8, 0.5]


def test_envelope_values_flat_left_interpolated_inside_undefined_past_the_fastest_point():
    f = scores.envelope(*CURVE)
    assert scores.value_at(f, 0.5) == pytest.approx(0.9)
    assert scores.value_at(f, 1.5) == pytest.approx(0.85)  # halfway from (1, .9) to (2, .8)
    assert scores.value_at(f, 2.5) == pytest.approx(0.65)
    assert scores.value_at(f, 3.0) == pytest.approx(0.5)
    assert scores.value_at(f, 3.01) is None


def test_area_by_hand():
    # ∫_1^2 (.9→.8) = .85, ∫_2^3 (.8→.5) = .65 → 1.5 over a width of 2
    assert scores.area(scores.envelope(*CURVE), 1.0, 3.0) == pytest.approx(0.75)
    # reach 2.5 < 3: ∫_1^2.5 (.9→.6) = 1.125, nothing past 2.5 → 1.125 / 2
    assert scores.area(scores.envelope([1.0, 2.5], [0.9, 0.6]), 1.0, 3.0) == pytest.approx(0.5625)
    # a front that starts above lo is flat to its left: ∫_1^2 .8 = .8, ∫_2^3 (.8→.6) = .7 → 1.5 / 2
    assert scores.area(scores.envelope([2.0, 3.0], [0.8, 0.6]), 1.0, 3.0) == pytest.approx(0.75)
    assert scores.area(scores.envelope([1.0], [0.9]), 1.0, 3.0) == 0.0  # the backbone reaches no speed-up


def test_max_speedup_at_retention_by_hand():
    f = scores.envelope(*CURVE)
    assert scores.max_speedup_at(f, 0.86) == pytest.approx(1.4)  # on (1, .9)–(2, .8): 1 + .04/.1
    assert scores.max_speedup_at(f, 0.8) == pytest.approx(2.0)
    assert scores.max_speedup_at(f, 0.65) == pytest.approx(2.5)
    assert scores.max_speedup_at(f, 0.5) == pytest.approx(3.0)
    assert scores.max_speedup_at(f, 0.95) is None


def test_elue_gain_by_hand():
    # reference R: (1 G, .5), (2 G, .7), (4 G, .8); (3 G, .6) is dominated and dropped
    ref_macs, ref_acc = [1.0, 2.0, 3.0, 4.0], [0.5, 0.7, 0.6, 0.8]
    # R(1.5) = .6, R(3) = .75; the 5 G point lies outside R's range and is not scored → mean(.05, .05)
    assert scores.elue_gain([1.5, 3.0, 5.0], [0.65, 0.8, 0.9], ref_macs, ref_acc) == pytest.approx(0.05)
    assert scores.elue_gain([1.5, 3.0], [0.55, 0.65], ref_macs, ref_acc) == pytest.approx(-0.075)
    assert scores.elue_gain([5.0], [0.9], ref_macs, ref_acc) is None
    assert scores.elue_gain([0.5], [0.9], ref_macs, ref_acc) is None  # below the reference's cheapest point
    # past the reference's best point R stays flat: (1, .5), (2, .8), (4, .6) → R(3) = .8
    assert scores.elue_gain([3.0], [0.7], [1.0, 2.0, 4.0], [0.5, 0.8, 0.6]) == pytest.approx(-0.1)


def test_pareto_membership_by_hand():
    mask = scores.pareto_mask([1.0, 2.0, 2.0, 3.0], [0.5, 0.7, 0.6, 0.7])
    assert mask.tolist() == [True, True, False, False]  # (3, .7) is beaten by (2, .7) at fewer MACs


def test_area_between_curves_with_a_crossing():
    a = scores.envelope([1.0, 3.0], [0.9, 0.5])  # A(s) = .9 − .2 (s − 1)
    b = scores.envelope([1.0, 3.0], [0.7, 0.7])  # B(s) = .7: the curves cross at s = 2
    ab = scores.area_between(a, b, 1.0, 3.0)
    # A − B = .2 (2 − s): +.1 on [1, 2], −.1 on [2, 3]; per unit of the width 2
    assert ab["above"] == pytest.approx(0.05) and ab["below"] == pytest.approx(0.05)
    assert ab["signed"] == pytest.approx(0.0)
    # B reaching only 2.5: common range [1, 2.5]; above .1, below ∫_2^2.5 .2 (s − 2) = .025; width 1.5
    b_short = scores.envelope([1.0, 2.5], [0.7, 0.7])
    ab = scores.area_between(a, b_short, 1.0, 3.0)
    assert ab["range"] == [1.0, 2.5]
    assert ab["above"] == pytest.approx(0.1 / 1.5) and ab["below"] == pytest.approx(0.025 / 1.5)
    assert ab["signed"] == pytest.approx(0.075 / 1.5)
    assert scores.area_between(b_short, a, 1.0, 3.0)["signed"] == pytest.approx(-0.075 / 1.5)
    # a crossing that sits on a breakpoint of one front
    c = scores.envelope([1.0, 2.0, 3.0], [0.8, 0.7, 0.6])  # C − B: .1 → 0 on [1, 2], 0 → −.1 on [2, 3]
    cb = scores.area_between(c, b, 1.0, 3.0)
    assert cb["above"] == pytest.approx(0.025) and cb["below"] == pytest.approx(0.025) and cb["signed"] == pytest.approx(0)
    # equal metric at a faster point: (2, .7) is not on the front of (1, .8), (2, .7), (3, .7)
    flat = scores.envelope([1.0, 2.0, 3.0], [0.8, 0.7, 0.7])
    assert flat[0].tolist() == [1.0, 3.0]
    assert scores.area_between(flat, b, 1.0, 3.0)["signed"] == pytest.approx(0.1 / 2)
    assert scores.area_between(a, scores.envelope([1.0], [0.9]), 1.0, 3.0) is None  # nothing reached in common


def test_bootstrap_interval():
    n = 40
    always = {0: [(np.ones(n, bool), np.full(n, 3), 6)]}  # every sample right, 3 of 6 blocks → (2×, 1.0)
    assert bootstrap_area(always, 1.0, 3.0, 50) == pytest.approx((0.5, 0.5))
    rng = np.random.default_rng(0)
    mixed = {0: [(rng.random(n) < 0.8, rng.integers(1, 7, n), 6), (rng.random(n) < 0.9, np.full(n, 6), 6)]}
    lo, hi = bootstrap_area(mixed, 1.0, 3.0, 200)
    point = scores.area(scores.envelope([6 / mixed[0][0][1].mean(), 1.0],
                                        [mixed[0][0][0].mean(), mixed[0][1][0].mean()]), 1.0, 3.0)
    assert lo < point < hi


def test_metric_name_read_from_the_curve():
    assert metric_of(pd.DataFrame({"accuracy": [0.5]})) == ("accuracy", "accuracy")
    assert metric_of(pd.DataFrame({"accuracy": [0.5], "metric": ["f1"], "f1": [0.4]})) == ("f1", "f1")
    # eebench.curves writes a task's metric to `score` (CoLA: MCC; STS-B: accuracy is NaN), never to `accuracy`
    assert metric_of(pd.DataFrame({"accuracy": [0.7], "metric": ["mcc"], "score": [0.2]})) == ("mcc", "score")


def _store(method="m", **over):
    base = {"run": "r", "method": method, "title": method.upper(), "backbone": "vit", "dataset": "digits",
            "split": "{}", "checkpoint": "False", "seed": 0, "policy": "lgvit_confidence",
            "sweep": json.dumps({"threshold": [0.5, 1.0]}), "metric": "accuracy", "macs_convention": "paper",
            "exit_positions": "[1, 2]", "params": 10, "full_macs_paper": 4.0, "full_macs_full": 5.0,
            "heads": '["mlp"]', "macs_counter": "{}", "created": "2025-01-01", "eebench": "0.1", "git_commit": None,
            "python": "3.11", "torch": "2.5", "transformers": "5.0", "timm": None, "fvcore": "0.1", "device": "cpu",
            "dtype": "fp32"}
    rows = []
    for t, (s, acc, macs) in zip([0.5, 1.0], [(2.0, 0.8, 2.0), (1.0, 0.9, 4.0)]):
        rows.append({**base, "policy_params": json.dumps({"threshold": t}), "metric_value": acc, "layer_speedup": s,
                     "expected_macs_paper": macs, "expected_macs_full": macs + 1, "head_aware_speedup_paper": 4 / macs,
                     "head_aware_speedup_full": 5 / (macs + 1), "avg_exit_layer": 3 / s,
                     "exit_histogram": '{"1": 1}', **over})
    return pd.DataFrame(rows)


def test_validate_rejects_another_mac_convention_in_one_line():
    good, bad = _store(), _store(macs_convention="full")
    validate(good)
    with pytest.raises(EEBenchError) as err:
        validate(bad, good)
    msg = str(err.value)
    assert "macs_convention 'full'" in msg and "'paper'" in msg and "\n" not in msg
    with pytest.raises(EEBenchError, match="sweep grids"):
        validate(_store(sweep=json.dumps({"threshold": [0.9]})), good)


def test_merge_keeps_the_last_row_per_key():
    first, second = _store(), _store()
    second.loc[0, "metric_value"] = 0.85
    extra = _store(method="other")
    merged = merge([first, pd.concat([second, extra])])
    assert len(merged) == 4
    row = merged[(merged["method"] == "m") & (merged["policy_params"] == json.dumps({"threshold": 0.5}))]
    assert row["metric_value"].tolist() == [0.85]


def test_board_ranks_by_area_and_keeps_the_backbone_as_reference():
    a = _store("a")  # (1×, .9), (2×, .8): area over [1, 3] = ∫_1^2 (.9→.8) / 2 = .425
    b = _store("b")
    b["metric_value"] = [0.7, 0.95]  # (1×, .95), (2×, .7): ∫_1^2 (.95→.7) / 2 = .4125
    bb = _store("backbone").iloc[[1]].assign(exit_positions="[]", metric_value=0.9, sweep="{}")
    static = _store("a").assign(policy=STATIC, sweep="{}", metric_value=[0.6, 0.9], expected_macs_paper=[2.0, 4.0])
    store = pd.concat([a, b, bb, static], ignore_index=True)
    opts = {"macs_convention": "paper", "speedup_range": [1.0, 3.0], "speedups": [1.5, 3.0], "retention": [0.99],
            "reference": "a", "bootstrap": 0, "highlight": ["b"]}
    res = leaderboard(store, opts)
    board = res["board"].set_index("method")
    assert res["board"]["method"].tolist() == ["a", "b", "backbone"]
    assert board.loc["a", "area_mean"] == pytest.approx(0.425) and board.loc["b", "area_mean"] == pytest.approx(0.4125)
    assert board.loc["a", "at_1.5x_mean"] == pytest.approx(0.85) and pd.isna(board.loc["a", "at_3x_mean"])
    # 99 % of the backbone's .9 = .891 on a's (1, .9)–(2, .8): 1 + .009/.1
    assert board.loc["a", "speedup_at_99_mean"] == pytest.approx(1.09)
    # reference R = a's static exits (2 G, .6), (4 G, .9) + the backbone (4 G, .9): b at (2 G, .7) gains .1, (4 G, .95) .05
    assert board.loc["b", "elue_mean"] == pytest.approx(0.075)
    assert pd.isna(board.loc["backbone", "rank"]) and bool(board.loc["b", "highlight"])
    # a − b on [1, 2] goes −.05 → +.1, crossing at 4/3: below ½·⅓·.05, above ½·⅔·.1 (width 1)
    ab = res["pairwise"]["a"]["b"]
    assert ab["below"] == pytest.approx(0.05 / 6) and ab["above"] == pytest.approx(0.1 / 3)
    assert ab["signed"] == pytest.approx(0.025) and res["pairwise"]["b"]["a"]["signed"] == pytest.approx(-0.025)


def test_speedup_at_retention_reads_the_configured_reference():
    """a: (1×, .9), (2×, .8), its own full depth .9; the backbone row scores .85 (seed 0)."""
    from eebench.leaderboard.board import options
    from eebench.leaderboard.render import retention_phrase

    a = _store("a")
    bb = _store("backbone").iloc[[1]].assign(exit_positions="[]", metric_value=0.85, sweep="{}")
    opts = {"macs_convention": "paper", "speedup_range": [1.0, 3.0], "speedups": [1.5], "retention": [0.99, 0.9],
            "reference": "a", "bootstrap": 0, "highlight": []}
    assert options({"report": {}})["retention_reference"] == "backbone"  # the default
    res = leaderboard(pd.concat([a, bb], ignore_index=True), {**opts, "retention_reference": "backbone"})
    board = res["board"].set_index("method")
    # backbone: 99 % of .85 = .8415 on (1, .9)–(2, .8): 1 + (.9 − .8415)/.1 = 1.585; 90 % = .765 is below the
    # fastest point (2×, .8): 2.0
    assert board.loc["a", "speedup_at_99_mean"] == pytest.approx(1.585)
    assert board.loc["a", "speedup_at_90_mean"] == pytest.approx(2.0)
    assert (board.loc["a", "retention_reference"], board.loc["a", "retention_reference_row"]) == ("backbone",
                                                                                                  "backbone")
    assert "the backbone row's ('backbone') accuracy" in retention_phrase(res["retention_reference"], "accuracy")
    # own: 99 % of .9 = .891: 1 + .009/.1 = 1.09; 90 % = .81: 1 + .09/.1 = 1.9
    res = leaderboard(pd.concat([a, bb], ignore_index=True), {**opts, "retention_reference": "own"})
    board = res["board"].set_index("method")
    assert board.loc["a", "speedup_at_99_mean"] == pytest.approx(1.09)
    assert board.loc["a", "speedup_at_90_mean"] == pytest.approx(1.9)
    assert board.loc["a", "retention_reference"] == "own" and board.loc["a", "retention_reference_row"] is None
    assert "report.retention_reference: own" in retention_phrase(res["retention_reference"], "accuracy")
    # no backbone row: the own full depth, and the notes say the backbone was asked for
    res = leaderboard(a, {**opts, "retention_reference": "backbone"})
    assert res["board"].set_index("method").loc["a", "speedup_at_99_mean"] == pytest.approx(1.09)
    assert res["retention_reference"] == {"asked": "backbone", "used": "own", "row": None}
    assert "this store has no backbone row" in retention_phrase(res["retention_reference"], "accuracy")
