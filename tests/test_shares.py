"""Shares (`training.jobs`, eebench.shares): a method that `eebench compare` adds trains in shares of its own, so the
config's shares keep their members and params, and Snakemake reruns no baseline stage; editing a method's own spec
still reruns its share."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import job_counts

from eebench.errors import EEBenchError
from eebench.leaderboard.compare import comparison_config
from eebench.leaderboard.scaffold import new_head
from eebench.plan import Plan, expand_grid, read_config, validate_config
from eebench.shares import share_rule

REPO = Path(__file__).resolve().parents[1]


def rules(config: dict) -> dict[tuple[str, str], dict]:
    """(run, share) → the share rule as Snakemake sees it (workflow/rules/train.smk): input, output, log, and the
    params exactly as the rule renders them (the spec as JSON), which decide whether Snakemake reruns the share."""
    out = {}
    for cfg in expand_grid(validate_config(json.loads(json.dumps(config)))).values():
        plan = Plan(cfg)
        for share, jobs in plan.train_groups().items():
            rule = share_rule(plan, share, jobs)
            params = {"spec": json.dumps(rule["params"]["spec"], sort_keys=True), "nproc": rule["params"]["nproc"]}
            out[(plan.run, share)] = {**rule, "params": params}
    return out


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    """Two user heads in files outside the package, as `eebench new-head` writes them (once: a head name is
    registered once per process)."""
    folder = tmp_path_factory.mktemp("heads") / "my_heads"
    for name in ("gated", "gated2"):
        new_head(name, str(folder))
    return [str(folder / f"{n}.py") for n in ("gated", "gated2")]


def test_compare_leaves_every_share_of_the_default_run_as_it_was(heads):
    """config/default.yaml (training.jobs: 2, ablations.jobs: 2, seeds [0, 1]) + `compare --head gated`: the four
    shares of the config keep their rules to the byte; gated trains in shares of its own. Before, the shares were
    rebalanced with gated among them and both main shares changed, so all 16 main stages trained again."""
    raw = read_config(REPO / "config" / "default.yaml")
    before = rules(raw)
    assert sorted(s for _, s in before) == ["ablations-1", "ablations-2", "methods-1", "methods-2"]
    compared = comparison_config(read_config(REPO / "config" / "default.yaml"), "gated", None, None, heads[:1])
    after = rules(compared)
    assert {k: after[k] for k in before} == before
    # gated is mlp_normal's one stage `train` × seeds [0, 1], split over training.jobs = 2 shares by epochs (8 each):
    # one share per seed, and nothing else
    new = {k: [(j["job"]["method"]["name"], j["job"]["seed"], j["job"]["stage"]["name"])
               for j in json.loads(v["params"]["spec"])["jobs"]] for k, v in after.items() if k not in before}
    assert new == {("default", "methods-gated-1"): [("gated", 0, "train")],
                   ("default", "methods-gated-2"): [("gated", 1, "train")]}

    # a second head compared on that config: gated's shares and the config's stay as they were
    again = rules(comparison_config(compared, "gated2", None, None, heads[1:]))
    assert {k: again[k] for k in after} == after
    assert sorted(s for _, s in set(again) - set(after)) == ["methods-gated2-1", "methods-gated2-2"]


def test_compare_on_a_grid_keeps_every_cells_shares(heads, tiny_backbone):
    """A grid config whose second cell gives its own methods: every cell's shares are unchanged by the new head."""
    config = {"run": "g", "seeds": [0, 1], "dataset": {"name": "digits"}, "backbone": tiny_backbone,
              "training": {"epochs": 2, "jobs": 2},
              "methods": {"backbone": {}, "sdn": {}, "pabee": {}, "deebert": {}},
              "grid": [{"name": "a"}, {"name": "b", "methods": {"backbone": {}, "lgvit": {}, "vit_ee": {}}}]}
    before = rules(config)
    after = rules(comparison_config(json.loads(json.dumps(config)), "gated", None, None, heads[:1]))
    assert {k: after[k] for k in before} == before
    assert sorted(set(after) - set(before)) == [("g/a", "methods-gated-1"), ("g/a", "methods-gated-2"),
                                                 ("g/b", "methods-gated-1"), ("g/b", "methods-gated-2")]


def test_editing_a_methods_own_spec_still_reruns_its_share(heads, tiny_backbone):
    """The head's shares hold its spec (an edited head retrains), and a baseline's edit reaches its share's params."""
    config = {"run": "e", "seeds": [0], "dataset": {"name": "digits"}, "backbone": tiny_backbone,
              "training": {"epochs": 2, "jobs": 2}, "methods": {"backbone": {}, "sdn": {}}}
    compared = comparison_config(json.loads(json.dumps(config)), "gated", None, None, heads[:1])
    before = rules(compared)
    compared["methods"]["gated"]["stages"] = {"train": {"lr": 1e-3}}
    edited = rules(compared)
    assert edited[("e", "methods-gated-1")]["params"] != before[("e", "methods-gated-1")]["params"]
    assert {k: v for k, v in edited.items() if k[1] != "methods-gated-1"} == \
        {k: v for k, v in before.items() if k[1] != "methods-gated-1"}
    compared["methods"]["sdn"] = {"stages": {"train": {"lr": 1e-3}}}
    sdn = rules(compared)
    changed = {k for k in sdn if sdn[k]["params"] != edited[k]["params"]}
    assert changed == {k for k, v in sdn.items() if '"name": "sdn"' in v["params"]["spec"]} and changed


def test_own_shares_must_name_methods_of_the_run(tiny_backbone):
    config = validate_config({"run": "o", "dataset": {"name": "digits"}, "backbone": tiny_backbone,
                              "training": {"jobs": 2, "own_shares": ["nope"]}, "methods": {"sdn": {}}})
    with pytest.raises(EEBenchError, match="training.own_shares names 'nope'"):
        Plan(config)


TINY = {
    "run": "sh", "seeds": [0],
    "dataset": {"name": "digits", "test_fraction": 0.5},
    "backbone": {"name": "vit_tiny_digits", "pretrained": False, "hidden_size": 32, "num_attention_heads": 2,
                 "intermediate_size": 64},
    "training": {"epochs": 2, "lr": 5e-3, "batch_size": 64, "jobs": 2},
    "methods": {"backbone": {}, "sdn": {}},
    "report": {"paper_setting": {"backbone": "ViT-B/16", "dataset": "CIFAR-100"}},
    "leaderboard": {"bootstrap": 10, "speedups": [1.5], "retention": [0.9]},
}


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_compare_on_a_shared_run_trains_only_the_new_heads_share(tmp_path):
    """A finished run with training.jobs: 2 (backbone and sdn, one share each), then `eebench compare --head gated`:
    Snakemake runs gated's one share and the per-run cost, curve, store and leaderboard steps; no baseline share.
    Before, balancing by epochs (2 each) put backbone → share 1, gated → share 2, sdn → share 1: both shares' params
    changed and both reran, deleting and retraining the baselines' checkpoints."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def run(cmd):
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    (tmp_path / "sh.yaml").write_text(yaml.safe_dump(TINY))
    base = run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
                "--configfile", "sh.yaml"])
    assert job_counts(base)["train_group_methods_1"] == job_counts(base)["train_group_methods_2"] == 1
    trained = {p: p.stat().st_mtime_ns for p in (tmp_path / "results" / "sh").rglob("*")
               if p.suffix in (".pt", ".npz")}
    assert len(trained) == 4  # backbone's and sdn's checkpoint and logits
    eebench = [sys.executable, "-m", "eebench.cli"]
    run(eebench + ["new-head", "gated", "--dir", "my_heads"])
    log = run(eebench + ["compare", "--head", "gated", "--configfile", "sh.yaml", "--plugin", "my_heads/gated.py",
                         "--cores", "2"])
    counts = job_counts(log)
    assert counts == {"train_group_methods_gated_1": 1, "costs": 1, "curves": 1, "store": 1, "leaderboard": 1}, counts
    assert all(p.stat().st_mtime_ns == t for p, t in trained.items())
    assert (tmp_path / "results" / "sh" / "train" / "gated" / "seed0" / "train.pt").is_file()


def test_compare_frozen_keeps_every_share_of_the_default_run(heads):
    """`compare --configfile config/default.yaml --protocol frozen`: the head's one stage trains its heads on the run's
    own fine-tuned backbone (the backbone method's stage, in the config's shares), in shares of its own; every share
    of the config keeps its rule to the byte, so no cached stage trains again."""
    raw = read_config(REPO / "config" / "default.yaml")
    before = rules(raw)
    after = rules(comparison_config(read_config(REPO / "config" / "default.yaml"), "gated", None, None, heads[:1],
                                    protocol="frozen"))
    assert {k: after[k] for k in before} == before
    new = {k: v for k, v in after.items() if k not in before}
    assert sorted(s for _, s in new) == ["methods-gated-1", "methods-gated-2"]
    for (_, share), rule in new.items():
        (item,) = json.loads(rule["params"]["spec"])["jobs"]
        seed = item["job"]["seed"]
        assert (item["job"]["method"]["name"], item["job"]["stage"]["train"]) == ("gated", "heads")
        # it waits for the backbone's checkpoint, which a share of the config trains
        assert rule["input"] == [f"results/default/train/backbone/seed{seed}/finetune.pt"]
        assert item["init"] == rule["input"][0]


def frozen_config(tiny_backbone, heads, **extra) -> dict:
    from eebench.leaderboard.compare import head_method

    return {"run": "x", "seeds": [0, 1], "dataset": {"name": "digits"}, "backbone": tiny_backbone,
            "training": {"epochs": 2, "jobs": 2}, "plugins": heads[:1],
            "methods": {"gated": head_method("gated", None, None, [], "frozen")}, **extra}


def test_a_stage_read_from_another_run_is_never_trained(heads, tiny_backbone):
    """external_stages (compare --board --protocol frozen): the fine-tuned backbone is read from the board's run;
    no share of this run holds it, and the head's share reads that run's checkpoint."""
    config = frozen_config(tiny_backbone, heads, external_stages={"backbone:finetune": "board"})
    shares = rules(config)
    jobs = {k: [(j["job"]["method"]["name"], j["job"]["seed"], j["job"]["stage"]["name"])
                for j in json.loads(v["params"]["spec"])["jobs"]] for k, v in shares.items()}
    # two shares, one seed each, and only the head's stage in them (without external_stages the backbone's two
    # fine-tunes would join them)
    assert jobs == {("x", "methods-1"): [("gated", 0, "train")], ("x", "methods-2"): [("gated", 1, "train")]}
    assert shares[("x", "methods-1")]["input"] == ["results/board/train/backbone/seed0/finetune.pt"]
    assert Plan(validate_config(config)).checkpoint_of(("backbone", "finetune"), 1) == \
        "results/board/train/backbone/seed1/finetune.pt"
    inside = rules(frozen_config(tiny_backbone, heads))  # the same run training its own backbone
    assert sorted((j["job"]["method"]["name"], j["job"]["seed"]) for v in inside.values()
                  for j in json.loads(v["params"]["spec"])["jobs"]) == \
        [("backbone", 0), ("backbone", 1), ("gated", 0), ("gated", 1)]


@pytest.mark.parametrize("table, methods, message", [
    ({"nope:finetune": "board"}, None, "'nope:finetune' names no stage of a method this run trains"),
    ({"backbone:finetune": "x"}, None, "'x' is this run itself"),
    ({"backbone:finetune": "board"}, {"backbone": {}}, "the run reports that stage's model"),
])
def test_external_stages_are_checked(heads, tiny_backbone, table, methods, message):
    config = frozen_config(tiny_backbone, heads, external_stages=table)
    if methods:
        config["methods"].update(methods)
    with pytest.raises(EEBenchError, match=message):
        Plan(validate_config(config))
