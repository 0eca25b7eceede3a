"""`eebench compare --board` (protocols joint and frozen) and `eebench reproduce` against a tiny text board built
here: a real DAG run of a 3-block random BERT on 256 SST-2 sentences (backbone and PABEE, one seed), laid out as a
board folder. Snakemake's job counts show that a comparison trains the new head and nothing else, that a frozen one
trains its heads on the board run's fine-tuned backbone (or trains that backbone once, in a run of its own, where
the board was never run here), and that a re-trained entry reproduces the board's numbers bit for bit."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import job_counts

REPO = Path(__file__).resolve().parents[1]
SST2 = REPO.parent / "shared" / "data" / "sst2_glue"
pytestmark = [pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed"),
              pytest.mark.skipif(not SST2.exists(), reason="shared SST-2 data not present")]


def board_config(cache: Path) -> dict:
    return {"run": "tb", "seeds": [0],
            "dataset": {"name": "glue", "task": "sst2", "root": str(SST2), "max_seq_length": 64, "limit_train": 256,
                        "limit_eval": 96, "cache_dir": str(cache)},
            "backbone": {"name": "bert_tiny_test", "pretrained": False},
            "training": {"epochs": 1, "batch_size": 32, "lr": 1.0e-3, "threads": 1},
            "methods": {"backbone": {}, "pabee": {}},
            "leaderboard": {"bootstrap": 50, "speedups": [1.5], "retention": [0.9]}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The board's run (results/tb/), the board folder built from it (boards/tb/), and a user head; the work folder
    as the current directory."""
    work = tmp_path_factory.mktemp("board")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        mp.setenv("EEBENCH_CACHE", str(work / "cache"))
        mp.chdir(work)
        (work / "tb.yaml").write_text(yaml.safe_dump(board_config(work / "cache")))
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
                               "--configfile", "tb.yaml"], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        from eebench.leaderboard.boards import build_board
        from eebench.leaderboard.scaffold import new_head

        build_board("tb", "tb.yaml", ".", "boards/tb")
        heads = work / "heads"
        # a head name of its own: a name is registered once per process, and other test modules register their
        # `gated` from files of their own
        new_head("boardhead", str(heads))
        trained = {p: p.stat().st_mtime_ns for p in (work / "results" / "tb").rglob("*") if p.is_file()}
        yield {"work": work, "heads": heads, "trained": trained}


def eebench(capfd, *argv) -> tuple[int, str, str]:
    from eebench.cli import main

    capfd.readouterr()
    rc = main(list(argv))
    out, err = capfd.readouterr()
    return rc, out, err


def compare(world, capfd, head="boardhead", *extra):
    return eebench(capfd, "compare", "--head", head, "--plugin", str(world["heads"] / f"{head}.py"),
                   "--board", "boards/tb", "--cores", "2", *extra)


@pytest.fixture(scope="module")
def joint(world):
    """`compare --protocol joint` once, in a process of its own (a module-wide fixture cannot capture this one's
    output); the tests below read its output."""
    proc = subprocess.run([sys.executable, "-m", "eebench.cli", "compare", "--head", "boardhead", "--plugin",
                           str(world["heads"] / "boardhead.py"), "--board", "boards/tb", "--protocol", "joint",
                           "--cores", "2"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_joint_trains_only_the_new_head_and_ranks_it_on_the_board(world, joint):
    counts = job_counts(joint)
    # the head's one training job (mlp_normal's one stage, one seed), then its run's costs, curves and store; no
    # job of the board's methods (they are the board's committed results)
    assert counts == {"train": 1, "costs": 1, "curves": 1, "store": 1}, counts
    assert "method=boardhead" in joint and "method=pabee" not in joint and "method=backbone" not in joint
    assert all(p.stat().st_mtime_ns == t for p, t in world["trained"].items())  # the board's run is untouched
    out = world["work"] / "reports" / "tb-vs-boardhead"
    board = pd.read_csv(out / "leaderboard.csv").set_index("method")
    assert set(board.index) == {"boardhead", "pabee", "backbone"} and bool(board.loc["boardhead", "highlight"])
    assert not board.loc[["pabee", "backbone"], "highlight"].any()
    # every unpaired interval kept: the board entries' as the board computed them, the head's from its caches
    committed = pd.read_csv(world["work"] / "boards" / "tb" / "tb" / "leaderboard.csv").set_index("method")
    assert board.loc["pabee", "area_ci_lo"] == committed.loc["pabee", "area_ci_lo"]
    assert board.loc["boardhead", "area_ci_lo"] <= board.loc["boardhead", "area_mean"] <= board.loc["boardhead", "area_ci_hi"]
    assert "boardhead ★" in (out / "leaderboard.md").read_text()
    # the paired table: one row per board entry with exits (PABEE), its difference inside its interval
    paired = pd.read_csv(out / "paired.csv")
    assert list(paired["entry"]) == ["pabee"]
    assert paired["ci_low"].iloc[0] <= paired["diff"].iloc[0] <= paired["ci_high"].iloc[0]
    # on the test set as it is, the difference is that of the two areas of accuracy over MAC speed-up, which the
    # merged store holds point by point (head_aware_speedup_paper: plain backbone MACs ÷ mean MACs per sample)
    from eebench.leaderboard import scores

    store = pd.read_parquet(out / "store.parquet")

    def area(method):
        pts = store[(store["method"] == method) & (store["policy"] != "static_exit")]
        return scores.area(scores.envelope(pts["head_aware_speedup_paper"], pts["metric_value"]), 1.0, 3.0)

    assert paired["diff"].iloc[0] == pytest.approx(area("boardhead") - area("pabee"), abs=1e-12)
    assert "95 % paired bootstrap CI" in joint and f"wrote {Path('reports/tb-vs-boardhead')}/leaderboard.md" in joint
    assert "compare boardhead in run tb-vs-boardhead: backbone bert_tiny_test" in joint and "protocol joint" in joint


def test_validate_refuses_a_board_of_another_protocol_in_one_line(world, joint, capfd, tmp_path):
    """The comparison's store (MACs counted under the `paper` convention) against a board whose store says `full`:
    refused before anything is merged, in one line naming the field."""
    other = world["work"] / "boards" / "tb-full"
    shutil.copytree(world["work"] / "boards" / "tb", other)
    store = other / "tb" / "store.csv"
    df = pd.read_csv(store, keep_default_na=False)
    df.assign(macs_convention="full").to_csv(store, index=False)
    meta = json.loads((other / "board.json").read_text())
    (other / "board.json").write_text(json.dumps({**meta, "name": "tb-full"}))
    rc, out, err = eebench(capfd, "compare", "--head", "boardhead", "--plugin", str(world["heads"] / "boardhead.py"),
                           "--board", str(other), "--cores", "2")
    lines = [line for line in err.splitlines() if line.startswith("eebench:")]
    assert rc == 2 and len(lines) == 1, err[-2000:]
    assert lines[0].startswith("eebench: error: store row 0 (boardhead, seed 0): macs_convention 'paper' differs")
    assert " — " in lines[0]


def test_frozen_trains_only_the_heads_on_the_board_runs_backbone(world, capfd):
    rc, out, err = compare(world, capfd, "boardhead", "--protocol", "frozen")
    log = out + err
    assert rc == 0, log[-3000:]
    counts = job_counts(log)
    assert counts == {"train": 1, "costs": 1, "curves": 1, "store": 1}, counts
    assert "your run of the board, results/tb/train/backbone/seed<s>/finetune.pt" in log
    assert all(p.stat().st_mtime_ns == t for p, t in world["trained"].items())
    run = world["work"] / "results" / "tb-vs-boardhead-frozen"
    assert yaml.safe_load((run / "compare.yaml").read_text())["external_stages"] == {"backbone:finetune": "tb"}
    from eebench.io import load_torch

    stage = load_torch(run / "train" / "boardhead" / "seed0" / "train.pt")["job"]["stage"]
    assert (stage["train"], stage["init"], stage["feature_cache"]) == ("heads", "backbone:finetune", True)
    # the board runs 1 thread per job; the comparison's one job takes the 2 cores it is given
    assert load_torch(run / "train" / "boardhead" / "seed0" / "train.pt")["job"]["threads"] == 2
    assert "2 thread(s) per training job" in log
    train_log = (run / "logs" / "train" / "boardhead" / "seed0" / "train.log").read_text()
    assert "feature cache: computed" in train_log
    board = pd.read_csv(world["work"] / "reports" / "tb-vs-boardhead-frozen" / "leaderboard.csv").set_index("method")
    assert board.loc["boardhead", "title"] == "boardhead (frozen)"
    # the frozen model's final classifier is the board's fine-tuned backbone's: its full-depth row is the
    # backbone row's accuracy (the last row of both logit caches)
    import numpy as np

    mine = np.load(run / "logits" / "boardhead" / "seed0" / "train.npz")["logits"][-1]
    theirs = np.load(world["work"] / "results" / "tb" / "logits" / "backbone" / "seed0" / "finetune.npz")["logits"][-1]
    assert np.array_equal(mine.argmax(-1), theirs.argmax(-1))


def test_frozen_without_a_run_of_the_board_trains_its_backbone_once(world, capfd, tmp_path, monkeypatch):
    """A folder holding only the board: the fine-tuned backbone is trained once, with the board's spec, in
    results/tb-backbone/; a second comparison finds it there and trains nothing."""
    shutil.copytree(world["work"] / "boards", tmp_path / "boards")
    monkeypatch.chdir(tmp_path)
    rc, out, err = compare(world, capfd, "boardhead", "--protocol", "frozen")
    log = out + err
    assert rc == 0, log[-3000:]
    first, second = log.split("Job stats:")[1:3]
    assert job_counts("Job stats:" + first) == {"train": 1}  # the backbone's fine-tune, nothing else
    assert job_counts("Job stats:" + second) == {"train": 1, "costs": 1, "curves": 1, "store": 1}
    assert "training it once, with the board's backbone spec (seeds [0]), into " \
           "results/tb-backbone/train/backbone/seed<s>/finetune.pt" in log
    from eebench.io import load_torch

    job = load_torch(tmp_path / "results" / "tb-backbone" / "train" / "backbone" / "seed0" / "finetune.pt")["job"]
    board_job = load_torch(world["work"] / "results" / "tb" / "train" / "backbone" / "seed0" / "finetune.pt")["job"]
    assert {**job, "run": "tb"} == board_job  # the board's spec: only the run's name differs
    # trained on this machine, that backbone is the board run's bit for bit, so the heads' block outputs, keyed by
    # the weights, are read from the cache the previous test computed, not computed again
    train_log = tmp_path / "results" / "tb-vs-boardhead-frozen" / "logs" / "train" / "boardhead" / "seed0" / "train.log"
    assert "feature cache: read" in train_log.read_text()
    rc, out, err = compare(world, capfd, "boardhead", "--protocol", "frozen")
    assert rc == 0 and "trained earlier for a frozen comparison" in out
    assert "Job stats:" not in out + err  # nothing ran


def test_reproduce_prints_zero_deltas_on_the_boards_machine(world, capfd):
    """PABEE re-trained in results/tb-reproduce-pabee/ on the machine and versions that built the board: the same
    seeds, data order and kernels, so every number is the board's, bit for bit."""
    rc, out, err = eebench(capfd, "reproduce", "--board", "boards/tb", "--method", "pabee", "--cores", "2")
    log = out + err
    assert rc == 0, log[-3000:]
    assert job_counts(log) == {"train": 1, "costs": 1, "curves": 1, "store": 1}
    assert "every number equals the board's, bit for bit" in out
    for line in ("accuracy at full depth", "layer speed-up at operating point", "area over layer speed-up"):
        row = next(r for r in out.splitlines() if r.strip().startswith(line))
        assert row.split()[-1] in ("+0.0000", "+0.000"), row
    assert "board machine:" in out and "this machine:" in out and "Bit-identity is not expected" in out
    from eebench.leaderboard.store import read_store

    mine = read_store(world["work"] / "results" / "tb-reproduce-pabee" / "store.parquet")
    theirs = read_store(world["work"] / "boards" / "tb" / "tb" / "store.csv")
    cols = ["policy", "policy_params", "metric_value", "layer_speedup", "expected_macs_paper"]
    pd.testing.assert_frame_equal(mine[cols].reset_index(drop=True),
                                  theirs[theirs["method"] == "pabee"][cols].reset_index(drop=True), check_dtype=False,
                                  check_exact=True)


def spec_without_run(job: dict) -> dict:
    return {k: v for k, v in job.items() if k != "run"}


@pytest.mark.parametrize("configfile", ["sst2.yaml", "glue_minilm.yaml", "default.yaml"])
def test_derived_runs_train_the_boards_job_specs(configfile):
    """What `reproduce` re-trains and what a frozen comparison's backbone is trained with are the board's own job
    specs, stage for stage (only the run's name differs), in every cell of a grid board: per-task overrides
    (method_overrides), a cell's own methods (glue-minilm's STS-B), and what a method starts or distils from
    (DeeBERT's backbone, COST-EFF's teacher) included. Checked on the shipped boards' configs, without training."""
    import copy
    from types import SimpleNamespace

    from eebench.leaderboard.compare import derived_config, head_method
    from eebench.leaderboard.reproduce import reproduce_config
    from eebench.plan import Plan, expand_grid, read_config, validate_config

    config = read_config(REPO / "config" / configfile)
    board = SimpleNamespace(config=config, name=configfile)
    plans = {r: Plan(c) for r, c in expand_grid(validate_config(copy.deepcopy(config))).items()}
    head = {**head_method("fro", None, None, [], "frozen"), "heads": {"type": "mlp"}}  # a built-in head stands in
    frozen = derived_config(config, "x", {"fro": head})
    checked = 0
    for run, plan in plans.items():
        cell = run.split("/", 1)[1] if config.get("grid") else None
        for method in plan.methods:
            cfg = reproduce_config(board, method, cell)
            (mine,) = [Plan(c) for c in expand_grid(validate_config(copy.deepcopy(cfg))).values()]
            assert list(mine.methods) == [method]
            for m in mine.all_methods:  # the entry and what it starts or distils from
                for st in mine.method(m)["stages"]:
                    for seed in plan.seeds:
                        assert spec_without_run(mine.train_job(m, seed, st["name"])) == \
                            spec_without_run(plan.train_job(m, seed, st["name"])), (run, method, m, st["name"])
                        checked += 1
        if "backbone" in plan.all_methods:
            cmp = Plan(expand_grid(validate_config(copy.deepcopy(frozen)))[f"x/{cell}" if cell else "x"])
            owner = plan.stage_owner("backbone", "finetune")
            assert spec_without_run(cmp.train_job("backbone", plan.seeds[0], "finetune")) == \
                spec_without_run(plan.train_job(owner[0], plan.seeds[0], owner[1]))
    assert checked


@pytest.mark.parametrize("argv, message", [
    (["--task", "cola"], "--task picks a task of a board — give --board too"),
    (["--board", "x", "--configfile", "config/default.yaml"], "--board and --configfile both given"),
    (["--configfile", str(REPO / "config" / "default.yaml"), "--protocol", "frozen", "--scheme", "weighted"],
     "--scheme weighted with --protocol frozen"),
])
def test_compare_options_that_do_not_go_together_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    from eebench.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["compare", "--head", "gated", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"eebench: error: {message}")
    assert not list(tmp_path.rglob("*"))  # refused before anything is written


def test_a_comparisons_jobs_take_the_cores_they_are_given(monkeypatch):
    from eebench.errors import EEBenchError
    from eebench.leaderboard.compare import job_threads

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert job_threads("2", None, 1) == 2
    assert job_threads("all", None, 1) == 3
    assert job_threads("1", None, 2) == 2  # never fewer than the board's own
    assert job_threads("8", "profiles/slurm", 1) == 1  # a cluster profile sizes jobs from the board's count
    assert job_threads("2", None, 1, chains=2) == 1  # two seeds' jobs side by side, a core each
    assert job_threads("all", None, 1, chains=2) == 1 and job_threads("8", None, 1, chains=3) == 2
    with pytest.raises(EEBenchError, match="--cores 'x' is not a number of cores"):
        job_threads("x", None, 1)


def test_a_grid_boards_task_is_checked(capsys):
    from types import SimpleNamespace

    from eebench.leaderboard.compare import board_cells
    from eebench.plan import read_config

    glue = SimpleNamespace(name="glue-minilm", config=read_config(REPO / "config" / "glue_minilm.yaml"))
    assert board_cells(glue, "mrpc") == {"glue-minilm/mrpc": "mrpc"}
    assert len(board_cells(glue, None)) == 5
    from eebench.errors import EEBenchError

    with pytest.raises(EEBenchError, match="board 'glue-minilm' has no task 'sst2' — choose one of: cola, mrpc, rte"):
        board_cells(glue, "sst2")
    sst2 = SimpleNamespace(name="sst2-minilm", config=read_config(REPO / "config" / "sst2.yaml"))
    with pytest.raises(EEBenchError, match="--task mrpc: board 'sst2-minilm' is one run"):
        board_cells(sst2, "mrpc")
