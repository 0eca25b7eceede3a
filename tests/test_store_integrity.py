"""A results store cannot lie: `validate` (and every command that reads a store) refuses non-finite numbers, duplicate
keys, missing or mistyped columns and fields that are not JSON, each in one line; the board never ranks a non-finite
point; method titles are text, not mathtext; the board's files and a merged store are written all or nothing."""
import json

import numpy as np
import pandas as pd
import pytest
from conftest import one_line

from eebench.cli import main
from eebench.leaderboard import scores
from eebench.leaderboard.board import leaderboard
from eebench.leaderboard.store import COLUMNS, STATIC, read_store, validate

OPTS = {"macs_convention": "paper", "speedup_range": [1.0, 3.0], "speedups": [1.5], "retention": [0.99],
        "reference": "a", "bootstrap": 0, "highlight": [], "paper_setting": None}
CONFIG = """run: r
dataset: {name: digits}
backbone: {name: vit_tiny_digits, pretrained: false}
methods: {backbone: {}}
leaderboard: {bootstrap: 0}
"""


def method_rows(method, points, title=None, exits="[1, 2]", seed=0):
    """A method's rows with every column of the store; ``points`` = [(threshold, speed-up, metric, MACs)]."""
    base = {"run": "r", "method": method, "title": title or method.upper(), "backbone": "vit", "dataset": "digits",
            "split": "{}", "checkpoint": "False", "seed": seed, "exit_positions": exits,
            "heads": '["mlp"]' if exits != "[]" else "[]", "policy": "lgvit_confidence",
            "sweep": json.dumps({"threshold": [0.5, 1.0]}) if exits != "[]" else "{}", "metric": "accuracy",
            "params": 10, "full_macs_paper": 4.0, "full_macs_full": 5.0, "macs_convention": "paper",
            "macs_counter": json.dumps({"counter": "fvcore", "attention": "eager", "batch": 1}),
            "eebench": "0.1", "git_commit": None, "python": "3.11", "torch": "2.5", "transformers": "5.0",
            "timm": None, "fvcore": "0.1", "device": "cpu", "dtype": "fp32", "created": "2025-01-01T00:00:00"}
    return pd.DataFrame([{**base, "policy_params": json.dumps({"threshold": t} if exits != "[]" else {}),
                          "metric_value": acc, "layer_speedup": s, "expected_macs_paper": macs,
                          "expected_macs_full": macs + 1, "head_aware_speedup_paper": 4.0 / macs,
                          "head_aware_speedup_full": 5.0 / (macs + 1), "avg_exit_layer": 3.0 / s,
                          "exit_histogram": json.dumps({"1": 1, "3": 1})} for t, s, acc, macs in points])


def full_store():
    """Methods a (1×, .9), (2×, .8) and b (1×, .95), (2×, .7), the backbone at (1×, .9), a's truncated exits."""
    a = method_rows("a", [(1.0, 1.0, 0.9, 4.0), (0.5, 2.0, 0.8, 2.0)])
    b = method_rows("b", [(1.0, 1.0, 0.95, 4.0), (0.5, 2.0, 0.7, 2.0)])
    bb = method_rows("backbone", [(None, 1.0, 0.9, 4.0)], exits="[]")
    static = method_rows("a", [(1, 2.0, 0.6, 2.0), (2, 1.0, 0.9, 4.0)]).assign(
        policy=STATIC, sweep="{}", policy_params=[json.dumps({"exit_layer": 1}), json.dumps({"exit_layer": 2})])
    store = pd.concat([a, b, bb, static], ignore_index=True)
    assert list(store.columns) == [c for c in store.columns if c in COLUMNS] and set(store.columns) == set(COLUMNS)
    return store



def test_a_full_store_validates_and_survives_a_csv_round_trip(tmp_path):
    store = full_store()
    validate(store)
    store.to_csv(tmp_path / "s.csv", index=False)
    validate(read_store(tmp_path / "s.csv"))  # "False", empty provenance, JSON text: read back as written


@pytest.mark.parametrize("column,value", [("metric_value", np.inf), ("metric_value", np.nan),
                                          ("layer_speedup", np.inf), ("head_aware_speedup_full", -np.inf),
                                          ("expected_macs_paper", np.nan), ("full_macs_full", np.inf)])
def test_validate_refuses_a_non_finite_number(column, value):
    store = full_store()
    store.loc[3, column] = value  # row 3: b at threshold 0.5
    msg = one_line(validate, store)
    assert f"{column} is {value}" in msg and "row 3 (b, seed 0" in msg


def test_validate_refuses_duplicate_keys():
    store = full_store()
    dup = pd.concat([store, store.iloc[[1]].assign(metric_value=0.99)], ignore_index=True)  # a's 2× point twice
    msg = one_line(validate, dup)
    # the key (run, method, backbone, dataset, seed, policy, policy_params) of row 1 again in row 7 (7 rows before)
    assert "rows 1 and 7 are the same operating point" in msg and "r, a, vit, digits, 0, lgvit_confidence" in msg


def test_validate_refuses_missing_and_mistyped_columns():
    assert "lacks column(s) ['layer_speedup']" in one_line(validate, full_store().drop(columns="layer_speedup"))
    store = full_store()
    store["metric_value"] = store["metric_value"].astype(object)
    store.loc[2, "metric_value"] = "high"
    assert "column 'metric_value' holds 'high' in row 2 (b, seed 0" in one_line(validate, store)
    store = full_store()
    store["seed"] = store["seed"].astype(float)
    store.loc[0, "seed"] = 0.5
    assert "seed is 0.5 in row 0" in one_line(validate, store) and "not a whole number" in one_line(validate, store)
    store = full_store()
    store["method"] = store["method"].astype(object)
    store.loc[4, "method"] = 7
    assert "method holds 7 (int), not text in row 4" in one_line(validate, store)


@pytest.mark.parametrize("column,value,why", [("macs_counter", "{counter: fvcore", "is not JSON"),
                                              ("policy_params", "threshold=0.5", "is not JSON"),
                                              ("exit_positions", '{"1": 2}', "is not a JSON array"),
                                              ("sweep", "[0.5]", "is not a JSON object")])
def test_validate_refuses_fields_that_are_not_json(column, value, why):
    store = full_store()
    store.loc[0, column] = value
    msg = one_line(validate, store)
    assert f"{column} {value!r} in row 0 (a, seed 0" in msg and why in msg


def test_empty_store_is_one_line(tmp_path):
    full_store().iloc[:0].to_parquet(tmp_path / "empty.parquet")
    assert "has no rows" in one_line(read_store, tmp_path / "empty.parquet")


def test_cli_validate_and_leaderboard_refuse_bad_stores_in_one_line(tmp_path, capsys):
    (tmp_path / "r.yaml").write_text(CONFIG)
    bad = {"empty": full_store().iloc[:0], "inf": full_store().assign(layer_speedup=np.inf),
           "nocolumn": full_store().drop(columns="expected_macs_paper"),
           "mistyped": full_store().assign(metric_value="high")}
    for name, df in bad.items():
        df.to_parquet(tmp_path / f"{name}.parquet")
        for argv in (["validate", str(tmp_path / f"{name}.parquet")],
                     ["leaderboard", "--store", str(tmp_path / f"{name}.parquet"), "--configfile",
                      str(tmp_path / "r.yaml"), "--out-dir", str(tmp_path / "board")]):
            assert main(argv) == 2, (name, argv[0])
            err = capsys.readouterr().err.strip()
            assert err.startswith("eebench: error: results store") and "\n" not in err, (name, err)
    assert not (tmp_path / "board").exists()


def test_non_finite_points_are_never_ranked_nor_on_the_pareto_front():
    # pareto by hand: (MACs, metric) = (1, .5), (2, .8), (NaN, .99), (1.5, NaN): the two finite points are both on the
    # front (neither beats the other); the NaN ones are not, and beat nothing
    assert scores.pareto_mask([1.0, 2.0, np.nan, 1.5], [0.5, 0.8, 0.99, np.nan]).tolist() == [True, True, False, False]
    # envelope: an inf speed-up point is no point; the front stays (1, .9), (2, .8)
    xs, ys = scores.envelope([1.0, 2.0, np.inf], [0.9, 0.8, 0.95])
    assert xs.tolist() == [1.0, 2.0] and ys.tolist() == [0.9, 0.8]
    store = full_store()
    # b gets a NaN point that would be cheapest and best: with it b's area would be NaN and ranked arbitrarily
    nan_point = store.iloc[[3]].assign(policy_params=json.dumps({"threshold": 0.1}), metric_value=np.nan,
                                       layer_speedup=3.0, expected_macs_paper=0.5)
    res = leaderboard(pd.concat([store, nan_point], ignore_index=True), OPTS)
    board = res["board"].set_index("method")
    # the areas without the NaN point: a ∫_1^2 (.9→.8) / 2 = .425, b ∫_1^2 (.95→.7) / 2 = .4125 (a first)
    assert res["board"]["method"].tolist() == ["a", "b", "backbone"]
    assert board.loc["b", "area_mean"] == pytest.approx(0.4125) and board.loc["b", "points"] == 2
    means = res["means"]
    assert not means["metric_value"].isna().any() and not (means["pareto"] & means["metric_value"].isna()).any()


BAD_MATH = r"$\notacommand$ head"  # two dollars: mathtext would parse it and fail on the unknown command


def test_a_title_with_dollars_is_text_on_the_page(tmp_path):
    from eebench.leaderboard.render import write_leaderboard

    store = full_store()
    store.loc[store["method"] == "b", "title"] = BAD_MATH
    res = leaderboard(store, OPTS)
    write_leaderboard(res, store, OPTS, tmp_path, "r")
    page = (tmp_path / "leaderboard.html").read_text()
    assert BAD_MATH in page  # the legend's text in the inline SVG (svg.fonttype none: text stays text)
    assert BAD_MATH in (tmp_path / "leaderboard.md").read_text()


def test_a_title_with_dollars_in_the_report_figures(tmp_path):
    from eebench.report.table1 import plot_tradeoff

    curve = pd.DataFrame({"param_threshold": [1.0, 0.5], "accuracy": [0.9, 0.8], "layer_speedup": [1.0, 2.0],
                          "expected_macs_paper": [4.0, 2.0], "expected_macs_full": [5.0, 3.0],
                          "head_aware_speedup_paper": [1.0, 2.0], "head_aware_speedup_full": [1.0, 1.7],
                          "avg_exit_layer": [3.0, 1.5]})
    plot_tradeoff({"a": curve}, {"a": BAD_MATH}, tmp_path / "fig", "scale")
    assert (tmp_path / "fig.png").stat().st_size > 0 and (tmp_path / "fig.pdf").stat().st_size > 0


def test_tick_labels_keep_mathtext():
    """Only labels are text: a log axis' tick labels are matplotlib's own mathtext (10^k) and must stay math."""
    import matplotlib.pyplot as plt

    from eebench.report.figures import as_text

    fig, ax = plt.subplots()
    ax.plot([0.01, 1.0, 100.0], [1, 2, 3], label=BAD_MATH)
    ax.set_xscale("log")
    ax.legend()
    as_text(fig)
    fig.canvas.draw()
    ticks = ax.get_xticklabels()
    assert ticks and all(t.get_parse_math() and t.get_text().startswith("$") for t in ticks)
    assert not ax.get_legend().get_texts()[0].get_parse_math()
    plt.close(fig)


def test_the_board_is_written_all_or_nothing(tmp_path, monkeypatch):
    import eebench.leaderboard.render as render

    store = full_store()
    render.write_leaderboard(leaderboard(store, OPTS), store, OPTS, tmp_path, "r")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["leaderboard.csv", "leaderboard.html", "leaderboard.md"]

    def broken(*args, **kwargs):
        raise RuntimeError("the plot failed")

    monkeypatch.setattr(render, "pareto_svg", broken)  # the page is the last file rendered
    changed = store.assign(metric_value=store["metric_value"] - 0.1)
    with pytest.raises(RuntimeError):
        render.write_leaderboard(leaderboard(changed, OPTS), changed, OPTS, tmp_path, "r")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no file changed, no temp file left


def test_merge_writes_the_format_its_name_says(tmp_path, capsys):
    store = full_store()
    store.to_parquet(tmp_path / "a.parquet")
    assert main(["merge", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "m.csv")]) == 0
    assert (tmp_path / "m.csv").read_bytes()[:4] != b"PAR1"  # parquet's magic bytes: CSV here
    assert len(pd.read_csv(tmp_path / "m.csv")) == len(store) and not (tmp_path / "m.parquet").exists()
    validate(read_store(tmp_path / "m.csv"))

    assert main(["merge", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "m.xlsx")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown format '.xlsx'" in err and not (tmp_path / "m.xlsx").exists()


def test_merge_is_all_or_nothing(tmp_path, monkeypatch):
    store = full_store()
    store.to_parquet(tmp_path / "a.parquet")
    assert main(["merge", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "m.parquet")]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    other = store.assign(metric_value=store["metric_value"] - 0.1)
    other.to_parquet(tmp_path / "b.parquet")
    before["b.parquet"] = (tmp_path / "b.parquet").read_bytes()

    def no_csv(self, *args, **kwargs):  # the mirror is written after the parquet file
        raise RuntimeError("csv writer failed")

    monkeypatch.setattr(pd.DataFrame, "to_csv", no_csv)
    with pytest.raises(RuntimeError):
        main(["merge", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"), "--out", str(tmp_path / "m.parquet")])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # neither file of the set changed


def test_static_rows_of_an_off_ramp_and_the_final_classifier_at_the_same_block_are_two_keys(monkeypatch):
    """DeeBERT/BERxiT put an off-ramp after every block, the last included, and the final classifier reads that block
    too: rows at blocks [1, 2, 2]. The duplicate-key check once refused the text run's store ("rows 4 and 5 are the
    same operating point ... static_exit {exit_layer: 4}"); the row number tells them apart."""
    import json

    import torch

    from eebench import evaluate
    from eebench.leaderboard import store as store_mod
    from eebench.measure import macs

    logits = torch.tensor([[[2.0, 0.0]], [[0.0, 2.0]], [[2.0, 0.0]]])  # rows × samples × classes
    monkeypatch.setattr(evaluate, "load_cache", lambda path: {"row_layers": [1, 2, 2], "num_layers": 2,
                                                              "logits": logits, "labels": torch.tensor([0])})
    monkeypatch.setattr(macs, "cumulative_macs", lambda costs, conv: torch.tensor([1.0, 2.0, 2.5]))

    class Plan:
        def final_logits(self, method, seed):
            return "unused"

    costs = {"macs": {"paper": {"backbone": 2.0}, "full": {"backbone": 2.0}}}
    rows = store_mod.static_rows(Plan(), "deebert", 0, costs, "accuracy")
    params = [json.loads(p) for p in rows["policy_params"]]
    assert params == [{"exit_layer": 1, "row": 1}, {"exit_layer": 2, "row": 2}, {"exit_layer": 2, "row": 3}]
    assert list(rows["metric_value"]) == [1.0, 0.0, 1.0]
    assert not rows.duplicated(subset=["method", "seed", "policy", "policy_params"]).any()
