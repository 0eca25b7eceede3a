"""Config errors are found when the DAG is built (`snakemake -n`, `eebench plan`), one line each naming the key."""
import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eebench.errors import EEBenchError
from eebench.plan import Plan, expand_grid, load_config, validate_config

REPO = Path(__file__).resolve().parents[1]
BASE = {"run": "chk", "seeds": [0], "dataset": {"name": "digits"},
        "backbone": {"name": "vit_tiny_digits", "pretrained": False, "hidden_size": 32, "num_attention_heads": 2,
                     "intermediate_size": 64},
        "training": {"epochs": 1},
        "methods": {"backbone": {}, "sdn": {}, "pabee": {}, "lgvit": {}},
        "report": {"operating_point": {"rule": "fixed", "params": {"threshold": 0.8},
                                       "per_policy": {"sdn_confidence": {"q": 0.8},
                                                      "pabee_patience": {"patience": 2}}}}}


def plan_of(**changes):
    cfg = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = cfg
        for k in path:
            node = node.setdefault(k, {})
        node[last] = value
    runs = expand_grid(validate_config(cfg))
    return [Plan(c) for c in runs.values()]


def error_of(**changes) -> str:
    with pytest.raises(EEBenchError) as exc:
        plan_of(**changes)
    msg = str(exc.value)
    assert "\n" not in msg and " — " in msg
    return msg


def test_a_valid_config_passes():
    assert plan_of()[0].methods.keys() == {"backbone", "sdn", "pabee", "lgvit"}


def test_fixed_point_naming_an_unswept_parameter():
    msg = error_of(report__operating_point={"rule": "fixed", "params": {"threshold": 0.8}})
    assert "method 'sdn'" in msg and "'threshold'" in msg and "per_policy.sdn_confidence" in msg


def test_fixed_point_per_method_wins_and_must_name_a_method():
    plan_of(report__operating_point__per_method={"pabee": {"patience": 3}})
    assert "per_method: 'nope'" in error_of(report__operating_point__per_method={"nope": {"q": 0.8}})
    assert "per_policy: unknown policy 'nope'" in error_of(report__operating_point__per_policy={"nope": {}})


def test_fixed_point_value_outside_the_sweep():
    msg = error_of(report__operating_point__per_method={"pabee": {"patience": 99}})
    assert "sweeps patience over" in msg and "without 99" in msg


def test_unknown_dataset():
    assert "config error at dataset.name: unknown dataset 'nope'" in error_of(dataset={"name": "nope"})


def test_unknown_policy_head_and_loss():
    assert "methods.sdn.policy.name: unknown policy 'nope'" in error_of(methods__sdn={"policy": {"name": "nope"}})
    assert "methods.sdn.heads: unknown head 'nope'" in error_of(methods__sdn={"heads": {"type": "nope"}})
    assert "methods.sdn.stages.train.loss: unknown loss 'nope'" in error_of(
        methods__sdn={"stages": {"train": {"loss": "nope"}}})


def test_exit_positions_outside_the_backbone():
    msg = error_of(methods__sdn={"positions": [0, 99]})
    assert "methods.sdn.positions: exit positions [0, 99]" in msg and "1..6" in msg


def test_policy_parameters_outside_their_domain():
    msg = error_of(methods__lgvit={"policy": {"sweep": {"threshold": [1.5, -2]}}})
    assert "methods.lgvit.policy.sweep" in msg and "threshold=1.5" in msg and "[0, 1]" in msg
    msg = error_of(methods__pabee={"policy": {"sweep": {"patience": [1, -1]}}})
    assert "methods.pabee.policy.sweep" in msg and "patience=-1" in msg and ">= 0" in msg
    assert "lte_th=[0.5, 2.0]" not in (msg := error_of(
        methods={"berxit": {"policy": {"sweep": {"lte_th": [0.5, 2.0]}}}},
        report__operating_point={"rule": "max_speedup_within_drop"})) and "lte_th=2.0" in msg and "[0, 1]" in msg
    assert "lte_th" in error_of(methods={"berxit": {"policy": {"sweep": {"lte_th": [0.5, 2.0]}}}},
                                report__operating_point={"rule": "max_speedup_within_drop"})


def test_ablation_variants_are_checked_too():
    msg = error_of(ablations={"base": "lgvit", "positions": {"bad": [3, 9]}},
                   report__operating_point={"rule": "max_speedup_within_drop"})
    assert "ablations (variant" in msg and "exit positions [3, 9]" in msg


def test_grid_cell_without_data():
    with pytest.raises(EEBenchError, match="grid cell 'x' has no dataset"):
        cfg = {k: v for k, v in copy.deepcopy(BASE).items() if k != "dataset"}
        expand_grid(validate_config({**cfg, "grid": [{"name": "x"}]}))


def test_every_shipped_config_plans_and_the_old_paper_points_did_not():
    for path in sorted((REPO / "config").glob("*.yaml")):
        cfg = load_config(path)
        assert [Plan(c) for c in expand_grid(cfg).values()]
    old = load_config(REPO / "config" / "paper.yaml")
    old["report"]["operating_point"] = {"rule": "fixed", "params": {"threshold": 0.8}}
    with pytest.raises(EEBenchError, match="does not sweep 'patience'|does not sweep 'threshold'"):
        [Plan(c) for c in expand_grid(old).values()]


def test_costs_with_zero_classes_is_one_line(capsys):
    from eebench.cli import main

    assert main(["costs", "--backbone", "vit_tiny_digits", "--method", "sdn", "--num-classes", "0"]) != 0
    assert "number of classes 0 is not a positive integer" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_snakemake_dry_run_fails_with_one_line(tmp_path):
    cfg = copy.deepcopy(BASE)
    cfg["methods"]["sdn"] = {"positions": [0, 99]}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                           "--configfile", str(tmp_path / "bad.yaml")], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "error" in line.lower()]
    assert errors == ["eebench: error: run 'chk': config error at methods.sdn.positions: exit positions [0, 99] are not "
                      "increasing blocks in 1..6 of vit_tiny_digits — give blocks between 1 and 6 (the final classifier "
                      "answers after block 6)"]
