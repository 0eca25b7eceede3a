"""The parts a board is built from, on hand-made inputs: per-sample records (round trip, refusals of corrupt and
pickled files), the bootstrap's replay being the curve's own, the ≤ 1-point operating point against the backbone,
the summary's cells, the run's wall time and CPU, and the folder that replaces a board all at once."""
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line
import torch

from eebench.leaderboard.samples import Samples, labels_digest, read_samples, write_samples

COSTS = {"row_layers": [1, 2, 3],
         "components": {"embed": {"macs": {"paper": 0.0, "full": 0.5}},
                        **{f"block{i}": {"macs": {"paper": 1.0, "full": 1.5}} for i in (1, 2, 3)},
                        **{f"head{j}": {"macs": {"paper": 0.0, "full": 0.0}} for j in (1, 2)},
                        "final": {"macs": {"paper": 0.0, "full": 0.0}}},
         "macs": {"paper": {"backbone": 3.0, "heads": 0.0}, "full": {"backbone": 5.0, "heads": 0.0}},
         "params": {"total": 10}}



def test_the_bootstrap_replays_the_curves_own_decisions():
    """The leaderboard's bootstrap replay (board.per_sample) builds each policy as the curve does (with the rows'
    backbone layers). BERxiT on rows after blocks 1, 2 and the final classifier at 3 tests every off-ramp before
    layer 3, i.e. rows 0 and 1; built without the layers it assumed the official layout and tested row 0 only."""
    from eebench.curves import operating_curve
    from eebench.leaderboard.board import per_sample

    # 2 samples, 2 classes. Row 0 is uniform (entropy ln 2 ≈ 0.69 > 0.3: no exit); row 1 is confident (entropy of
    # softmax(9, 0) ≈ 0.0012 < 0.3: exit there) and right on both; the final classifier is confident and wrong
    logits = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[9.0, 0.0], [0.0, 9.0]], [[0.0, 9.0], [9.0, 0.0]]])
    cache = {"logits": logits, "labels": torch.tensor([0, 1]), "row_layers": [1, 2, 3], "num_layers": 3}
    policy = {"name": "berxit_entropy", "sweep": {"entropy_threshold": [0.3]}}
    correct, executed, depth = per_sample(cache, policy)[0]
    # both samples answer at row 1 (after block 2), correctly: accuracy 1, executed layers 2 (the old replay: the
    # final classifier, accuracy 0, 3 layers)
    assert correct.tolist() == [True, True] and executed.tolist() == [2, 2] and depth == 3
    curve = operating_curve(cache, policy, COSTS)
    assert curve["accuracy"].iloc[0] == correct.mean() == 1.0
    assert curve["avg_executed_layers"].iloc[0] == executed.mean() == 2.0


def hand_samples(n=13):
    """Two methods of run r: 'a' with two policy points and 'b' (no exits) with one; N = 13 (not a multiple of 8,
    so the packed bits have a padded last byte)."""
    rng = np.random.default_rng(0)
    costs_b = {**COSTS, "row_layers": [3]}
    keys = [json.dumps({"run": "r", "method": m, "backbone": "vit", "dataset": "digits", "seed": 0, "policy": p,
                        "policy_params": pp}, sort_keys=True)
            for m, p, pp in [("a", "sdn_confidence", '{"q": 0.5}'), ("a", "sdn_confidence", '{"q": 0.9}'),
                             ("b", "sdn_confidence", "{}")]]
    methods = {"a": {"costs": COSTS, "row_layers": [1, 2, 3], "num_layers": 3, "exit_layer_convention": "correct"},
               "b": {"costs": costs_b, "row_layers": [3], "num_layers": 3, "exit_layer_convention": "correct"}}
    rows = np.stack([rng.integers(0, 3, n), rng.integers(0, 3, n), np.zeros(n)]).astype(np.uint8)
    return Samples(run="r", n=n, labels_sha256=labels_digest(np.arange(n) % 2), metric="accuracy",
                   macs_convention="paper", has_correct=True, methods=methods, keys=keys,
                   entry_method=["a", "a", "b"], correct=rng.random((3, n)) < 0.6, compute_row=rows)


def test_samples_round_trip_and_a_store_row_finds_its_record(tmp_path):
    s = hand_samples()
    write_samples(s, tmp_path / "samples.npz")
    back = read_samples(tmp_path / "samples.npz")
    assert back.keys == s.keys and back.entry_method == s.entry_method and back.n == 13
    assert np.array_equal(back.correct, s.correct) and np.array_equal(back.compute_row, s.compute_row)
    # a store row (its KEY fields; the seed as the store's int64) finds its record
    row = pd.Series({"run": "r", "method": "a", "backbone": "vit", "dataset": "digits", "seed": np.int64(0),
                     "policy": "sdn_confidence", "policy_params": '{"q": 0.9}', "metric_value": 0.5})
    e = back.entry(row)
    assert np.array_equal(e.correct, s.correct[1]) and e.accuracy() == pytest.approx(s.correct[1].mean())
    # rows 0, 1, 2 cost 1, 2, 3 MACs (paper) and 2, 3.5, 5 (full: embed 0.5 + 1.5 per block); the backbone 3 and 5
    assert e.cum_macs["paper"].tolist() == [1.0, 2.0, 3.0] and e.cum_macs["full"].tolist() == [2.0, 3.5, 5.0]
    assert e.mac_speedup() == pytest.approx(3.0 / (s.compute_row[1] + 1.0).mean())
    assert e.layer_speedup() == pytest.approx(3.0 / (s.compute_row[1] + 1.0).mean())
    assert [x.key["policy_params"] for x in back.entries("a", 0)] == ['{"q": 0.5}', '{"q": 0.9}']
    assert back.entries("b")[0].mac_speedup() == pytest.approx(1.0)
    assert "has no per-sample record" in one_line(back.entry, {**row, "policy_params": '{"q": 0.7}'})


def test_corrupt_or_pickled_sample_files_are_refused_in_one_line(tmp_path):
    good = tmp_path / "good.npz"
    write_samples(hand_samples(), good)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not an npz archive at all")
    assert "unreadable or corrupt" in one_line(read_samples, bad)
    bad.write_bytes(good.read_bytes()[:200])  # truncated
    assert "unreadable or corrupt" in one_line(read_samples, bad)
    # an npz holding an object array (numpy pickles it): refused, never unpickled
    with open(tmp_path / "obj.npz", "wb") as fh:
        np.savez(fh, meta=np.array([{"evil": 1}], dtype=object), keys=np.array(["k"]))
    assert "pickled Python objects" in one_line(read_samples, tmp_path / "obj.npz")
    (tmp_path / "raw.npz").write_bytes(pickle.dumps({"meta": "x"}))
    assert "pickled Python objects" in one_line(read_samples, tmp_path / "raw.npz")
    np.save(tmp_path / "bare.npy", np.zeros(3))
    assert "bare array" in one_line(read_samples, tmp_path / "bare.npy")
    # well-formed archives whose content does not add up
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    for change, words in [({"compute_row": arrays["compute_row"][:, :5]}, "compute_row has shape"),
                          ({"compute_row": np.full_like(arrays["compute_row"], 7)}, "names a row its model"),
                          ({"meta": np.array("{not json")}, "meta is not"),
                          ({"keys": np.array(["a", "b", "c"])}, "key 0 is not JSON")]:
        with open(tmp_path / "x.npz", "wb") as fh:
            np.savez(fh, **{**arrays, **change})
        assert words in one_line(read_samples, tmp_path / "x.npz")
    assert "does not exist" in one_line(read_samples, tmp_path / "none.npz")


def test_the_one_point_drop_is_read_against_the_backbone_when_asked():
    from eebench.report.summary import operating_point

    # points (speed-up, metric): (1, 0.900), (2, 0.885), (3, 0.870)
    mc = pd.DataFrame({"layer_speedup": [1.0, 2.0, 3.0], "accuracy": [0.900, 0.885, 0.870], "param_t": [0, 1, 2]})
    own = {"rule": "max_speedup_within_drop", "max_drop": 1.0}
    # own full depth 0.900 → floor 0.890: only the slowest point keeps it
    assert operating_point(mc, own, reference=0.895)["layer_speedup"] == 1.0
    # against a backbone of 0.895 → floor 0.885: the point at 2× keeps it, 3× (0.870) does not
    assert operating_point(mc, {**own, "against": "reference"}, reference=0.895)["layer_speedup"] == 2.0
    # against a backbone of 0.875 → floor 0.865: all three keep it, the fastest is 3×
    assert operating_point(mc, {**own, "against": "reference"}, reference=0.875)["layer_speedup"] == 3.0
    # against a backbone of 0.95 → floor 0.94: none
    assert operating_point(mc, {**own, "against": "reference"}, reference=0.95) is None


def test_the_summary_shows_full_depth_before_the_point_and_a_dash_where_none(tmp_path):
    from eebench.report.glue import glue_table

    def cell(score, full, speed):
        return pd.DataFrame([{"method": "pabee", "params": 10, "accuracy_mean": score, "accuracy_std": 0.0,
                              "full_score": full, "expected_macs_paper_mean": 2e9,
                              "expected_macs_paper_real_mean": 1e9 if score is not None else None,
                              "layer_speedup_mean": speed,
                              "setting": "patience=2" if score is not None else "none within 1 point(s)"}])

    raw = glue_table({"rte": cell(0.61, 0.62, 1.5), "wnli": cell(None, 0.5, None)}, {"pabee": "PABEE"}, tmp_path,
                     "tiny", stem="summary", title="Board summary", point="at the ≤ 1-point point")
    md = (tmp_path / "summary.md").read_text()
    assert "| 62.0 → 61.0 / 1 G / 1.50× |" in md and "| 50.0 → — (none within 1 point(s)) |" in md
    assert "the metric at full depth (the method's slowest point) →" in md and "at the ≤ 1-point point." in md
    assert raw.set_index("task").loc["wnli", "score"] is None or pd.isna(raw.set_index("task").loc["wnli", "score"])
    assert (tmp_path / "summary.csv").is_file()


def test_wall_time_counts_epochs_job_timings_and_snakemake_jobs(tmp_path):
    from eebench.leaderboard.runinfo import cpu_info, wall_time

    train = tmp_path / "results" / "r" / "logs" / "train" / "sdn" / "seed0"
    train.mkdir(parents=True)
    (train / "train.epochs.csv").write_text("epoch,loss,seconds\n1,0.5,10.5\n2,0.4,9.5\n")
    (train / "train.log").write_text('timing: {"startup_s": 1.0, "train_s": 0, "eval_s": 0.5}\n'
                                     'timing: {"startup_s": 3.0, "train_s": 20.0, "eval_s": 2.0}\n')
    log = tmp_path / ".snakemake" / "log"
    log.mkdir(parents=True)
    # a train job of run r from 10:00:00 to 10:00:30 (30 s), one of another run, and the curves job run twice: the
    # first (10:01:00–10:01:05) superseded by the second (10:02:00–10:02:20)
    (log / "2026-01-01T100000.snakemake.log").write_text("""Building DAG of jobs...
[Thu Jan  1 10:00:00 2026]
localrule train:
    output: results/r/train/sdn/seed0/train.pt, results/r/logits/sdn/seed0/train.npz
    jobid: 1
    wildcards: run=r
[Thu Jan  1 10:00:00 2026]
localrule train:
    output: results/other/train/sdn/seed0/train.pt
    jobid: 2
[Thu Jan  1 10:00:30 2026]
Finished jobid: 1 (Rule: train)
[Thu Jan  1 10:00:40 2026]
Finished jobid: 2 (Rule: train)
[Thu Jan  1 10:01:00 2026]
localrule curves:
    output: results/r/curves/sdn/seed0.csv
    jobid: 3
[Thu Jan  1 10:01:05 2026]
Finished jobid: 3 (Rule: curves)
""")
    (log / "2026-01-01T110000.snakemake.log").write_text("""[Thu Jan  1 10:02:00 2026]
rule curves:
    output: results/r/curves/sdn/seed0.csv
    jobid: 7
[Thu Jan  1 10:02:20 2026]
Finished job 7.
""")
    w = wall_time(tmp_path, "r")
    # epochs 10.5 + 9.5 = 20; + the last timing line's start-up 3 and evaluation 2 = 25
    assert w["train_epochs_s"] == 20.0 and w["train_jobs_s"] == 25.0
    assert w["jobs_s"] == {"per_rule": {"curves": 20.0, "train": 30.0}, "total": 50.0, "jobs": 2}
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Some CPU @ 2GHz\nflags\t\t: fpu avx2 avx512f "
                                      "amx_tile\n\nprocessor\t: 1\nmodel name\t: Some CPU @ 2GHz\n")
    cpu = cpu_info(tmp_path / "cpuinfo")
    assert cpu["model"] == "Some CPU @ 2GHz"
    assert cpu["flags"] == {"avx2": True, "avx512f": True, "avx512_bf16": False, "amx_bf16": False}


def test_a_board_folder_is_replaced_whole_or_not_at_all(tmp_path):
    from eebench.io import atomic_dir

    board = tmp_path / "b"
    board.mkdir()
    (board / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(board) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("a failure half way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"] and (board / "old.txt").read_text() == "old"
    with atomic_dir(board) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in board.iterdir()] == ["new.txt"] and sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_the_registry_lists_the_three_boards_and_names_what_is_not_built(tmp_path, monkeypatch, capsys):
    from eebench.cli import main
    from eebench.leaderboard import boards

    assert main(["board", "list"]) == 0
    out = capsys.readouterr().out
    for name, config in [("digits", "config/default.yaml"), ("sst2-minilm", "config/sst2.yaml"),
                         ("glue-minilm", "config/glue_minilm.yaml")]:
        assert re.search(rf"^{name}\s+{config}\s+(built|not built)", out, re.M), out
    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path)
    (tmp_path / "boards.yaml").write_text("x: {config: config/tiny.yaml}\n")
    assert "registered but not built" in one_line(boards.load_board, "x")
    assert "not a registered name" in one_line(boards.load_board, "y")
    assert "not registered and no --configfile" in one_line(boards.build_board, "y")
    (tmp_path / "boards.yaml").write_text("- just a list\n")
    assert "not a mapping" in one_line(boards.registry)


def test_make_runs_the_boards_config_through_snakemake_as_an_argument_list(monkeypatch, capsys):
    from eebench.cli import main
    from eebench.leaderboard import boards

    calls = []
    monkeypatch.setattr(boards.subprocess, "call", lambda cmd: calls.append(cmd) or 1)
    # snakemake fails (exit 1): one line, and nothing is built
    assert main(["board", "make", "sst2-minilm", "--cores", "2", "--", "--forceall"]) == 2
    assert "snakemake exited with code 1" in capsys.readouterr().err
    cmd = calls[0]
    assert cmd[1:5] == ["-m", "snakemake", "-s", str(boards.REPO / "Snakefile")]
    assert cmd[5:9] == ["--cores", "2", "--forceall", "--configfile"]
    assert len(cmd) == 10 and Path(cmd[9]).resolve() == boards.REPO / "config" / "sst2.yaml"
    assert main(["board", "make", "digits", "--profile", "profiles/slurm"]) == 2
    assert calls[1][5:8] == ["--profile", "profiles/slurm", "--configfile"]
    assert Path(calls[1][8]).resolve() == boards.REPO / "config" / "default.yaml"
