"""Table 5's job without the DAG: which methods, seed and operating point it times (the DAG test runs it for real)."""
import pandas as pd
import pytest

from eebench.budget import run_budget
from eebench.errors import EEBenchError
from eebench.measure.wallclock import (
    latency_caches,
    latency_checkpoint_path,
    latency_methods,
    latency_seed,
    latency_spec,
    operating_policy,
)
from eebench.plan import Plan, validate_config


def config(timed=True, **latency):
    return validate_config({
        "run": "t", "seeds": [3, 4], "dataset": {"name": "digits"},
        "backbone": {"name": "vit_tiny_digits", "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64},
        "methods": {"backbone": {}, "pabee": {}, "pcee": {}, "lgvit": {}},
        "report": {"operating_point": {"rule": "max_speedup_within_drop", "max_drop": 1.0}},
        **({"latency": latency} if timed else {})})


def test_defaults_every_method_first_seed_and_shared_checkpoints():
    plan = Plan(config())
    assert latency_methods(plan) == ["backbone", "pabee", "pcee", "lgvit"]
    assert latency_seed(plan) == 3
    assert plan.config["latency"] == {"passes": 50, "limit": None, "device": "cpu", "dtype": "fp32", "runtime": "eager",
                                      "mode": "eager", "schedule": "overlap", "decide": "device", "threads": 1,
                                      "batches": [], "gate": 0.99}
    # PCEE is an exit rule on PABEE's model: the same checkpoint is timed
    assert latency_checkpoint_path(plan, "pcee") == latency_checkpoint_path(plan, "pabee") == \
        "results/t/train/pabee/seed3/train.pt"
    assert latency_checkpoint_path(plan, "lgvit") == "results/t/train/lgvit/seed3/stage2.pt"


@pytest.mark.parametrize("latency, message", [({"methods": ["sdn"]}, "latency.methods names ['sdn']"),
                                              ({"seed": 7}, "latency.seed 7 is not one of the run's seeds")])
def test_bad_latency_settings_fail_in_one_line(latency, message):
    with pytest.raises(EEBenchError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan = Plan(config(**latency))
        latency_methods(plan), latency_seed(plan)


def test_operating_policy_is_table1s_point_with_the_sweeps_types(monkeypatch):
    plan = Plan(config())
    # PABEE's curves (mean over the two seeds): patience 3 is the fastest point within 1 accuracy point of full depth
    points = {3: [(0, 0.90, 1.0), (2, 0.60, 3.0), (3, 0.895, 2.0), (6, 0.90, 1.0)],
              4: [(0, 0.90, 1.0), (2, 0.64, 3.0), (3, 0.895, 2.0), (6, 0.90, 1.0)]}

    def curve(cache, spec, costs):  # what eebench.curves.operating_curve returns, from the seed's cache
        assert spec["name"] == "pabee_patience" and costs == {"costs of": "pabee"}
        return pd.DataFrame([{"param_patience": float(p), "accuracy": a, "layer_speedup": s,
                              "expected_macs_paper": 1.0, "expected_macs_full": 1.0, "head_aware_speedup_paper": s,
                              "head_aware_speedup_full": s, "avg_exit_layer": 6 / s} for p, a, s in points[cache]])

    monkeypatch.setattr("eebench.curves.operating_curve", curve)
    monkeypatch.setattr("eebench.evaluate.load_cache", lambda path: int(path.split("seed")[1].split("/")[0]))
    monkeypatch.setattr("eebench.measure.wallclock.read_json", lambda path: {"costs of": path.split("/")[-1][:-5]})
    assert latency_caches(plan, "pcee") == ["results/t/logits/pabee/seed3/train.npz",
                                            "results/t/logits/pabee/seed4/train.npz"]
    spec = latency_spec(plan)
    assert spec["order"] == ["backbone", "pabee", "pcee", "lgvit"] and spec["seed"] == 3
    policy = operating_policy(spec["methods"]["pabee"], spec["seeds"], spec["operating_point"])
    assert policy == {"name": "pabee_patience", "params": {"patience": 3}}
    assert type(policy["params"]["patience"]) is int  # typed as the recipe's sweep, not as the curve's float


def test_a_retention_point_is_timed_against_the_backbone_row(monkeypatch):
    """PABEE's curve (both seeds): (1×, .90), (2×, .88), (3×, .86); the backbone row scores .92 on both seeds."""
    cfg = config()
    cfg["report"]["operating_point"] = {"rule": "retention", "retention": 95.0}
    plan = Plan(cfg)
    assert latency_spec(Plan(config()))["methods"] and "retention_base" not in latency_spec(Plan(config()))
    spec = latency_spec(plan)
    assert spec["retention_base"] == {"method": "backbone", "policy": plan.method("backbone")["policy"],
                                      "caches": ["results/t/logits/backbone/seed3/finetune.npz",
                                                 "results/t/logits/backbone/seed4/finetune.npz"],
                                      "costs": "results/t/costs/backbone.json"}
    points = {"pabee": [(2, 0.86, 3.0), (3, 0.88, 2.0), (6, 0.90, 1.0)], "backbone": [(0, 0.92, 1.0)]}

    def curve(cache, policy, costs):
        return pd.DataFrame([{"param_patience": float(p), "accuracy": a, "layer_speedup": s,
                              "expected_macs_paper": 1.0, "expected_macs_full": 1.0, "head_aware_speedup_paper": s,
                              "head_aware_speedup_full": s, "avg_exit_layer": 6 / s} for p, a, s in points[cache]])

    monkeypatch.setattr("eebench.curves.operating_curve", curve)
    monkeypatch.setattr("eebench.evaluate.load_cache", lambda path: path.split("/")[3])
    monkeypatch.setattr("eebench.measure.wallclock.read_json", lambda path: {})
    # backbone: 95 % of .92 = .874 → .88 (2×) is the fastest that keeps it; own: 95 % of .90 = .855 → .86 (3×)
    timed = operating_policy(spec["methods"]["pabee"], spec["seeds"], spec["operating_point"], "pabee",
                             spec["retention_base"])
    assert timed == {"name": "pabee_patience", "params": {"patience": 3}}
    own = operating_policy(spec["methods"]["pabee"], spec["seeds"], spec["operating_point"], "pabee")
    assert own == {"name": "pabee_patience", "params": {"patience": 2}}
    with pytest.raises(EEBenchError, match="keeping 99 % of the backbone row's metric 0.9200"):
        operating_policy(spec["methods"]["pabee"], spec["seeds"], {"rule": "retention", "retention": 99.0}, "pabee",
                         spec["retention_base"])
    cfg["report"]["retention_reference"] = "own"
    assert latency_spec(Plan(cfg))["retention_base"] is None


def test_budget_counts_the_latency_job():
    plan = Plan(config(passes=4, limit=100))
    b = run_budget(plan)
    assert b["jobs"]["latency"] == 1
    # 4 methods × (method + its backbone) × 5 passes × 100 images × 0.5 ms/block × 6 blocks
    assert b["gpu_hours"]["latency"] == pytest.approx(4 * 2 * 5 * 100 * 0.5 * 6 / 1e3 / 3600)
    assert "latency" not in run_budget(Plan(config(timed=False)))["jobs"]


def test_runtime_threads_and_batches_settings():
    plan = Plan(config(threads=[1, "all"], batches=[32, 64], runtime="eager"))
    spec = latency_spec(plan)
    assert spec["settings"]["threads"] == [1, "all"] and spec["settings"]["batches"] == [32, 64]
    with pytest.raises(EEBenchError, match="unknown runtime 'onnx'"):
        latency_spec(Plan(config(runtime="onnx")))
    for bad in ({"threads": 0}, {"threads": "some"}, {"threads": []}, {"batches": [1]}, {"gate": 1.5}):
        with pytest.raises(EEBenchError, match="config error at latency"):
            config(**bad)
    text = validate_config({"run": "t", "seeds": [0], "dataset": {"name": "glue", "task": "sst2"},
                            "backbone": {"name": "bert_tiny_test", "pretrained": False},
                            "methods": {"backbone": {}, "pabee": {"heads": {"type": "pooled_linear"}}},
                            "latency": {"mode": "graph"}})
    with pytest.raises(EEBenchError, match="text queries are timed at their own lengths"):
        latency_spec(Plan(text))


def test_budget_counts_every_thread_setting_and_batch_size():
    one = run_budget(Plan(config(passes=4, limit=100)))["gpu_hours"]["latency"]
    # two thread settings, each timed at batch 1 and at two batch sizes (charged as batch 1): 2 × 3 times as much
    more = run_budget(Plan(config(passes=4, limit=100, threads=[1, "all"], batches=[32, 64])))["gpu_hours"]["latency"]
    assert more == pytest.approx(6 * one)
    # two runtimes time everything twice (charged at eager's speed): 2 × as much
    both = run_budget(Plan(config(passes=4, limit=100, runtime=["eager", "onnxruntime"])))["gpu_hours"]["latency"]
    assert both == pytest.approx(2 * one)


@pytest.mark.parametrize("name", ["sst2", "text_ci"])
def test_text_configs_time_one_thread_and_all_with_batches(name):
    from pathlib import Path

    from eebench.plan import read_config

    cfg = validate_config(read_config(Path(__file__).resolve().parents[1] / "config" / f"{name}.yaml"))
    lat = cfg["latency"]
    assert lat["threads"] == [1, "all"] and lat["batches"] == [32, 64] and lat["mode"] == "eager"
    assert lat["runtime"] == ["eager", "onnxruntime"]  # each method under both, against its backbone under each
    assert latency_methods(Plan(cfg)) == list(cfg["methods"])
