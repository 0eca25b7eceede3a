"""The ``onnxruntime`` runtime (``eebench.inference.ort_runtime``) behind the runtime seam, on a tiny ViT and tiny BERTs:
the same exit rows, compute rows and predictions as eager through the live loops (batch 1 with its numpy exit check,
batched exit with the padding cut) and every row's logits to 1e-4; Table 5's protocol under it (decisions match the
offline replay); ``latency.runtime`` as a list (one Table 5 row per method and runtime); one-line errors, without
onnxruntime too. Tests that run onnxruntime skip without it; no test asserts a time."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from eebench.data import load_dataset
from eebench.errors import EEBenchError
from eebench.inference import RUNTIMES, batched_exit, build_runtime, early_exit
from eebench.inference.latency import table5_latency
from eebench.inference.live import exit_check_of
from eebench.inference.queries import eval_queries
from eebench.inference.rows import run_row
from eebench.inference.runtime import runtime_names
from eebench.policies import policy_for_rows
from eebench.policies.base import max_prob

from test_export import _texts as texts  # batch-1 token sequences, each at its own length
from test_inference import ent, ent_normalized, lte_error, mixed_params
from test_latency_protocol import cache_of, spread_threshold, text_data, tiny_bert, tiny_vit  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
N = 16


def onnx():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")


def pad(queries: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One right-padded batch (mask 0 and id 0 on padding), as ``Queries.batch`` pads."""
    longest = max(q["input_ids"].shape[1] for q in queries)
    return {k: torch.cat([torch.nn.functional.pad(q[k], (0, longest - q[k].shape[1])) for q in queries])
            for k in ("input_ids", "attention_mask", "token_type_ids")}


def same(got, want, context: str) -> None:
    assert torch.equal(got.exit_index.cpu(), want.exit_index.cpu()), context
    assert torch.equal(got.compute_index.cpu(), want.compute_index.cpu()), context
    assert torch.equal(got.prediction.cpu(), want.prediction.cpu()), context
    torch.testing.assert_close(got.output.float(), want.output.float(), atol=1e-4, rtol=0, msg=context)
    assert (got.is_early is None) == (want.is_early is None), context
    if want.is_early is not None:
        assert torch.equal(got.is_early, want.is_early), context


def check_rows(model, rt, x) -> None:
    """Every row's logits (and LTE output) from the onnxruntime graphs vs ``run_row`` on the eager model, to 1e-4."""
    with torch.no_grad():
        hidden, ctx = model.backbone.embed(x)
        state = x
        for row in range(rt.rows):
            out = run_row(model, row, hidden, ctx)
            hidden = out.hidden
            state = rt.run_segment(row, state)
            if row == rt.rows - 1:
                logits, lte = rt.run_final(state), None
            else:
                logits, lte = rt.run_head(row, state)
            np.testing.assert_allclose(logits, out.logits.numpy(), atol=1e-4, rtol=0)
            assert (lte is None) == (out.lte is None)
            if lte is not None:
                np.testing.assert_allclose(lte, out.lte.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(rt.run_backbone(x), build_runtime("eager", model).run_backbone(x).numpy(),
                                   atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# the registry and its one-line errors (no onnxruntime needed)
# ---------------------------------------------------------------------------------------------------------------

def test_registry_lists_onnxruntime(capsys):
    from eebench.cli import main

    assert {"eager", "onnxruntime"} <= set(RUNTIMES.names())
    assert main(["list", "runtimes"]) in (0, None)
    listed = capsys.readouterr().out
    assert "onnxruntime" in listed and "pip install 'eebench[export]'" in listed


def test_without_onnxruntime_the_runtime_fails_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    for attempt in (lambda: build_runtime("onnxruntime", tiny_vit()), lambda: runtime_names(["eager", "onnxruntime"])):
        with pytest.raises(EEBenchError) as err:
            attempt()
        text = str(err.value)
        assert "needs the Python package 'onnxruntime'" in text and "pip install 'eebench[export]'" in text
        assert "\n" not in text
    assert runtime_names("eager") == ["eager"]  # eager alone needs nothing more


def test_runtime_lists_and_their_errors():
    assert runtime_names(["eager", "eager"]) == ["eager"]
    with pytest.raises(EEBenchError, match="unknown runtime 'nope' — choose one of: eager, onnxruntime"):
        runtime_names(["eager", "nope"])
    with pytest.raises(EEBenchError, match="name a runtime or a list of them"):
        runtime_names([])


# ---------------------------------------------------------------------------------------------------------------
# the live loops under onnxruntime vs eager
# ---------------------------------------------------------------------------------------------------------------

VIT_CASES = [  # (policy, fixed params, tuned parameter, score its threshold is tuned on)
    ("pabee_patience", {"patience": 1}, None, None),
    ("lgvit_confidence", {}, "threshold", lambda lg, lte: max_prob(lg[:-1])),
    ("sdn_confidence", {}, "q", lambda lg, lte: max_prob(lg[:-1])),  # is_early, and the fallback
    ("lgvit_entropy", {}, "threshold", ent),
    ("pcee_bert", {"patience": 1, "do_ensemble": True}, "exiting_threshold", ent_normalized),  # ensemble output
]


@pytest.mark.parametrize("case", VIT_CASES, ids=lambda c: c[0])
def test_vit_onnxruntime_decides_as_eager(case):
    onnx()
    name, fixed, key, score = case
    model = tiny_vit(seed=3)
    x = torch.randn(N, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        logits = model(x).stacked()
    policy = policy_for_rows(name, mixed_params(name, fixed, key, score, logits, None), model.row_layers)
    rt = build_runtime("onnxruntime", model)
    assert rt.version().startswith("onnxruntime ") and exit_check_of(rt, policy) == "rule"
    check_rows(model, rt, x[:1])
    ones = []
    for i in range(N):
        want = early_exit(model, policy, x[i:i + 1])  # eager, the policy's torch check
        got = early_exit(rt, policy, x[i:i + 1])  # onnxruntime, the compiled numpy check
        same(got, want, f"{name} query {i}")
        same(early_exit(model, policy, x[i:i + 1], check="rule"), want, f"{name} query {i}, eager + rule")
        ones.append(got)
    assert len({int(d.exit_index) for d in ones}) >= 2, "the queries do not exit at several rows"
    batched = batched_exit(rt, policy, x)  # samples leave the batch: the runtime's select
    same(batched, batched_exit(model, policy, x), f"{name} batched")
    assert torch.equal(batched.exit_index, torch.cat([d.exit_index for d in ones]))


BERT_CASES = [
    ("deebert_entropy", {"type": "mlp"}, {}, "entropy_threshold", ent, False),
    ("pabee_patience", {"type": "pooled_linear"}, {"patience": 1}, None, None, False),
    ("berxit_lte", {"type": "mlp"}, {}, "lte_th", lte_error, True),  # the row graphs return the LTE output
]


@pytest.mark.parametrize("case", BERT_CASES, ids=lambda c: c[0])
def test_bert_onnxruntime_decides_as_eager_at_every_length(case):
    onnx()
    name, heads, fixed, key, score, lte = case
    model = tiny_bert(heads, seed=2, lte=lte)
    queries = texts(N, seed=11)
    with torch.no_grad():
        outs = [model(q) for q in queries]
    logits = torch.cat([o.stacked() for o in outs], dim=1)
    lte_out = torch.cat([o.lte_outputs for o in outs], dim=1) if lte else None
    policy = policy_for_rows(name, mixed_params(name, fixed, key, score, logits, lte_out), model.row_layers)
    rt = build_runtime("onnxruntime", model)
    check_rows(model, rt, queries[0])
    check_rows(model, rt, queries[1])  # another length: the graphs' token axis is dynamic
    ones = []
    for i, q in enumerate(queries):
        got = early_exit(rt, policy, q)
        same(got, early_exit(model, policy, q), f"{name} query {i} ({q['input_ids'].shape[1]} tokens)")
        ones.append(got)
    assert len({int(d.exit_index) for d in ones}) >= 2, "the queries do not exit at several rows"
    batch = pad(queries)
    batched = batched_exit(rt, policy, batch)  # padded batch; the padding no remaining sample uses is cut
    same(batched, batched_exit(model, policy, batch), f"{name} batched")
    assert torch.equal(batched.exit_index, torch.cat([d.exit_index for d in ones]))
    assert torch.equal(batched.prediction, torch.cat([d.prediction for d in ones]))


def test_select_cuts_the_padding_no_kept_sample_uses():
    onnx()
    rt = build_runtime("onnxruntime", tiny_bert({"type": "mlp"}))

    def query(n: int) -> dict[str, torch.Tensor]:
        ids = torch.arange(100, 100 + n)[None]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}

    # lengths 5, 3, 2, padded to 5; keeping the last two leaves 3 columns (the longest kept sample has 3 tokens)
    state = rt.run_segment(0, pad([query(5), query(3), query(2)]))
    kept = rt.select(state, torch.tensor([False, True, True]))
    assert kept.hidden.shape[:2] == (2, 3) and kept.mask.tolist() == [[1, 1, 1], [1, 1, 0]]


def test_a_model_the_exporter_cannot_express_is_unsupported_in_one_line():
    onnx()
    from eebench.inference.runtime import UnsupportedModel

    # EEformer's GLH head on text keeps a data-dependent number of tokens (a stable argsort), which the exporter
    # refuses: the runtime says so, and the latency job records the method as not run under it
    model = tiny_bert({"type": "glh"}, seed=0)
    with pytest.raises(UnsupportedModel) as err:
        build_runtime("onnxruntime", model)
    text = str(err.value)
    assert text.startswith("the onnxruntime runtime cannot run this model: could not export row_0.onnx")
    assert text.endswith("— time it with runtime eager") and "\n" not in text


class Baked(torch.nn.Module):
    """An exit head that reads a Python number off its input: the tracer bakes the trace input's value in, so the
    exported graph is right at the traced length only."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, hidden, mask=None):
        out = self.head(hidden, mask)
        n = int(mask.sum(dim=1).max())
        out.logits = out.logits * n
        return out


def test_graphs_that_baked_a_traced_value_are_caught_at_prepare():
    onnx()
    from eebench.inference.runtime import UnsupportedModel

    model = tiny_bert({"type": "mlp"}, seed=0)
    model.heads[0] = Baked(model.heads[0])
    # traced at 8 tokens: the graph multiplies by 8 where the model multiplies by 13 on a 13-token input
    with pytest.raises(UnsupportedModel, match="differ from it by .* on inputs they were not traced on"):
        build_runtime("onnxruntime", model)


def test_onnxruntime_refuses_low_precision_and_other_devices():
    onnx()
    with pytest.raises(EEBenchError, match="runs fp32 models on the CPU, got torch.bfloat16 on cpu") as err:
        build_runtime("onnxruntime", tiny_vit().to(torch.bfloat16))
    assert "\n" not in str(err.value)


def test_threads_open_sessions_per_count():
    onnx()
    rt = build_runtime("onnxruntime", tiny_vit())
    x = torch.randn(1, 1, 8, 8)
    one = rt.run_backbone(x)
    rt.set_threads(2)
    assert torch.get_num_threads() == 2 and set(rt._sessions) >= {2}
    np.testing.assert_allclose(rt.run_backbone(x), one, atol=1e-6, rtol=0)
    rt.set_threads(1)


def test_worker_threads_block_instead_of_spinning():
    # one session per row: with onnxruntime's default spin-wait, the pools of the rows just run kept the cores busy
    # that the next row needed (MiniLM-L6 at 2 threads on 2 cores: 17 ms per query against 3 ms for the one-graph
    # backbone); every session, the plain model's included, must be opened with spinning off
    onnx()
    rt = build_runtime("onnxruntime", tiny_vit())
    rt.set_threads(2)
    for threads, graphs in rt._sessions.items():
        for graph in graphs.values():
            opts = graph.session.get_session_options()
            assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0", threads
            assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0", threads
    rt.set_threads(1)


# ---------------------------------------------------------------------------------------------------------------
# Table 5's protocol under onnxruntime
# ---------------------------------------------------------------------------------------------------------------

def test_text_protocol_under_onnxruntime_matches_the_offline_replay(text_data):
    onnx()
    model = tiny_bert({"type": "mlp"}, seed=2)
    cache = cache_of(model, text_data)
    params = mixed_params("lgvit_entropy", {}, "threshold", ent, cache["logits"], None)
    policy = policy_for_rows("lgvit_entropy", params, model.row_layers)
    n = 12
    q = eval_queries(text_data, model.backbone, n)
    result = table5_latency(model, policy, q, passes=1, threads=[1, 2], batches=[5], cache=cache, device="cpu",
                            runtime="onnxruntime")
    assert result["runtime"]["name"] == "onnxruntime" and result["runtime"]["exit_check"] == "rule"
    assert result["runtime"]["version"].startswith("onnxruntime 1.")
    assert [t["threads"] for t in result["timings"]] == [1, 2]
    assert result["decisions_match"] == {"matched": n, "total": n, "exit_row": n, "prediction": n}
    assert all(r["same_as_batch1"]["matched"] == n for r in result["batched"])
    assert len(set(result["early_exit"]["per_query_compute_row"])) >= 2
    assert result["breakdown"]["heads_in_segments"] is True


def test_vision_protocol_under_onnxruntime_matches_the_offline_replay():
    onnx()
    data = load_dataset({"name": "digits"})
    model = tiny_vit(seed=3)
    cache = cache_of(model, data)
    policy = policy_for_rows("lgvit_confidence", {"threshold": spread_threshold(max_prob(cache["logits"][:-1]))},
                             model.row_layers)
    n = 16
    q = eval_queries(data, model.backbone, n)
    result = table5_latency(model, policy, q, passes=1, cache=cache, device="cpu", batches=[4], runtime="onnxruntime")
    assert result["decisions_match"]["matched"] == n and result["batched"][0]["same_as_batch1"]["matched"] == n
    with pytest.raises(EEBenchError, match="graph mode captures one input shape from the eager model"):
        table5_latency(model, policy, q, passes=1, mode="graph", device="cpu", runtime="onnxruntime")


def test_latency_cli_takes_the_onnxruntime_runtime(tmp_path, capsys):
    onnx()
    from eebench.build import build_model
    from eebench.cli import main
    from eebench.io import save_torch

    from conftest import TINY_BACKBONE

    method = {"name": "m", "exit_layers": [2, 4], "heads": [{"type": "mlp"}] * 2}
    job = {"dataset": {"name": "digits"}, "backbone": dict(TINY_BACKBONE), "method": method, "seed": 0}
    save_torch(tmp_path / "ckpt.pt", {"model": build_model(job["backbone"], method, 10).state_dict(), "job": job})
    out = tmp_path / "latency.json"
    assert main(["latency", "--checkpoint", str(tmp_path / "ckpt.pt"), "--device", "cpu", "--passes", "1",
                 "--limit", "4", "--runtime", "onnxruntime", "--threads", "1,2", "--policy",
                 '{"name": "lgvit_entropy", "params": {"threshold": 2.0}}', "--json", str(out)]) == 0
    assert "onnxruntime: onnxruntime 1." in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["runtime"]["exit_check"] == "rule" and [t["threads"] for t in result["timings"]] == [1, 2]
    assert main(["latency", "--checkpoint", str(tmp_path / "ckpt.pt"), "--device", "cpu", "--runtime", "onnxruntime",
                 "--dtype", "bf16", "--policy", '{"name": "lgvit_entropy", "params": {"threshold": 2.0}}']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eebench: error: the onnxruntime runtime runs fp32 models on the CPU") and "\n" not in err


def test_table5_has_a_row_per_method_and_runtime_with_the_real_over_mac_ratio(text_data, tmp_path):
    onnx()
    from eebench.measure.macs import cost_summary
    from eebench.measure.wallclock import add_macs, runtime_results
    from eebench.report.table5 import table5

    q = eval_queries(text_data, tiny_bert({"type": "mlp"}, seed=2).backbone, 6)
    costs = json.loads(json.dumps(cost_summary(tiny_bert({"type": "mlp"}, seed=2), seq_length=32)))
    results = {}
    for runtime in ("eager", "onnxruntime"):
        model = tiny_bert({"type": "mlp"}, seed=2)
        policy = policy_for_rows("lgvit_entropy", {"threshold": 0.7}, model.row_layers)
        r = table5_latency(model, policy, q, passes=1, threads=[1], device="cpu", runtime=runtime)
        add_macs(r, costs)
        r.update(policy_spec={"name": "lgvit_entropy", "params": {"threshold": 0.7}}, swept=["threshold"])
        results[runtime] = r
    # the ratio by hand: 1.8× faster in wall-clock for 2.0× fewer MACs → 1.8 / 2.0 = 0.90
    results["onnxruntime"]["timings"][0]["wallclock_speedup"] = 1.8
    results["onnxruntime"]["early_exit"]["mac_speedup_real"]["paper"] = 2.0
    skipped = {"skipped": "the onnxruntime runtime cannot run this model: could not export row_0.onnx — x",
               "runtime": {"name": "onnxruntime", "version": "onnxruntime 1.x"}, "policy_spec": {"name": "p"}}
    latency = {"run": "t", "seed": 0, "macs_convention": "paper", "order": ["m", "s"],
               "runtimes": ["eager", "onnxruntime"], "methods": {"m": results["eager"], "s": results["eager"]},
               "runtime_methods": {"onnxruntime": {"m": results["onnxruntime"], "s": skipped}},
               "provenance": {"device": "cpu"}}
    assert [name for name, _ in runtime_results(latency)] == ["eager", "onnxruntime"]
    old = {k: v for k, v in latency.items() if k not in ("runtimes", "runtime_methods")}  # a one-runtime JSON
    assert [name for name, _ in runtime_results(old)] == ["eager"]
    raw = table5(latency, {"m": "M", "s": "S"}, tmp_path, "tiny", ["m", "s"])
    assert list(raw["method"]) == ["m", "s", "m", "s"]
    assert list(raw["runtime"]) == ["eager", "eager", "onnxruntime", "onnxruntime"]
    assert list(raw["exit_check"])[:3] == ["policy", "policy", "rule"] and list(raw["threads"])[:3] == [1, 1, 1]
    assert raw["runtime_version"].iloc[2].startswith("onnxruntime ") and raw["skipped"].iloc[3] == skipped["skipped"]
    assert raw["real_over_mac"].iloc[2] == pytest.approx(0.9) and pd.isna(raw["real_over_mac"].iloc[3])
    md = (tmp_path / "table5.md").read_text()
    not_run = cells(md, "not run (note)")
    assert not_run[:2] == ["S", "onnxruntime (onnxruntime 1.x)"] and set(not_run[2:-1]) == {"—"}
    assert f"Not run: S under onnxruntime: {skipped['skipped']}" in md
    header, ort_row = cells(md, "Method"), cells(md, "onnxruntime (onnxruntime 1.")
    assert ort_row[header.index("Real ÷ MAC")] == "0.90" and ort_row[header.index("Runtime")].startswith("onnxrun")
    assert "Runtime onnxruntime (onnxruntime 1." in md and "numpy rule" in md and "bf16 autocast" in md
    breakdown = (tmp_path / "table5_breakdown.md").read_text()
    assert cells(breakdown, "eager (torch")[0] == cells(breakdown, "onnxruntime (onnxruntime")[0] == "M"
    head = cells(breakdown, "Method").index("Exit heads (ms)")  # one graph per row: heads run inside the segments
    assert cells(breakdown, "onnxruntime (onnxruntime")[head] == "in segments"
    assert cells(breakdown, "eager (torch")[head] != "in segments"
    # a model without exits first (a run's backbone answers at its one row, no check): the runtime's note still names
    # the check its methods with exits ran
    plain = copy.deepcopy(results["onnxruntime"])
    plain["row_layers"], plain["runtime"]["exit_check"] = plain["row_layers"][-1:], "policy"
    latency["order"] = ["b", "m"]
    latency["methods"] = {"b": results["eager"], "m": results["eager"]}
    latency["runtime_methods"] = {"onnxruntime": {"b": plain, "m": results["onnxruntime"]}}
    table5(latency, {"b": "B", "m": "M"}, tmp_path / "plain_first", "tiny", ["b", "m"])
    note = next(line for line in (tmp_path / "plain_first" / "table5.md").read_text().splitlines()
                if line.startswith("- Runtime onnxruntime"))
    assert "numpy rule" in note and "torch code" not in note


def cells(markdown: str, marker: str) -> list[str]:
    """The cells of the first table line of ``markdown`` holding ``marker``."""
    line = next(line for line in markdown.splitlines() if line.startswith("|") and marker in line)
    return [c.strip() for c in line.strip("|").split("|")]


def test_the_latency_job_times_each_runtime_and_records_a_model_it_cannot_run(tmp_path, monkeypatch):
    from eebench.inference import latency as protocol
    from eebench.inference.runtime import UnsupportedModel
    from eebench.measure import wallclock

    calls = []

    def timed(checkpoint, policy, runtime, **kwargs):
        calls.append((checkpoint, runtime))
        if checkpoint == "b.pt" and runtime == "onnxruntime":
            raise UnsupportedModel("the onnxruntime runtime cannot run this model: could not export row_0.onnx — x")
        return {"runtime": {"name": runtime, "version": "v", "exit_check": "policy"}, "device": "cpu",
                "early_exit": {"mac_speedup": {"paper": 2.0}}, "timings": [], "decisions_match": {"matched": 1,
                                                                                                    "total": 1},
                "batched": []}

    monkeypatch.setattr(protocol, "latency_checkpoint", timed)
    monkeypatch.setattr("eebench.inference.runtime.runtime_names", lambda setting: list(setting))
    monkeypatch.setattr("eebench.inference.runtime.runtime_version", lambda name: f"{name} 9")
    monkeypatch.setattr(wallclock, "operating_policy", lambda *a, **k: {"name": "p", "params": {}})
    monkeypatch.setattr(wallclock, "add_macs", lambda result, costs: None)
    monkeypatch.setattr(wallclock, "read_json", lambda path: {})
    monkeypatch.chdir(tmp_path)
    item = {"policy": {"name": "p"}, "caches": ["c.npz"], "costs": "c.json"}
    spec = {"run": "r", "seed": 0, "seeds": [0], "order": ["a", "b"], "macs_convention": "paper",
            "operating_point": {"rule": "fixed"}, "methods": {"a": {**item, "checkpoint": "a.pt"},
                                                              "b": {**item, "checkpoint": "b.pt"}},
            "settings": {"runtime": ["eager", "onnxruntime"], "device": "cpu", "dtype": "fp32", "passes": 1,
                         "limit": 1, "mode": "eager", "schedule": "overlap", "decide": "device", "threads": 1,
                         "batches": [], "gate": 0.99}}
    lines = []
    out = wallclock.run_latency(spec, log=lines.append)
    # each method under each runtime, one after another; the first runtime's results where one runtime's sit
    assert calls == [("a.pt", "eager"), ("a.pt", "onnxruntime"), ("b.pt", "eager"), ("b.pt", "onnxruntime")]
    assert out["runtimes"] == ["eager", "onnxruntime"] and set(out["methods"]) == {"a", "b"}
    assert out["methods"]["a"]["runtime"]["name"] == "eager"
    assert out["runtime_methods"]["onnxruntime"]["a"]["runtime"]["name"] == "onnxruntime"
    assert out["runtime_methods"]["onnxruntime"]["b"] == {
        "skipped": "the onnxruntime runtime cannot run this model: could not export row_0.onnx — x",
        "runtime": {"name": "onnxruntime", "version": "onnxruntime 9"}, "policy_spec": {"name": "p", "params": {}}}
    assert any(line.startswith("  onnxruntime: not run (the onnxruntime runtime cannot") for line in lines)
    assert json.loads((tmp_path / "results" / "r" / "latency.json").read_text())["runtimes"] == ["eager",
                                                                                                 "onnxruntime"]


# ---------------------------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------------------------

def tiny_config(**latency) -> dict:
    return {"run": "rt", "seeds": [0], "dataset": {"name": "digits"},
            "backbone": {"name": "vit_tiny_digits", "pretrained": False, "hidden_size": 32, "num_attention_heads": 2,
                         "intermediate_size": 64},
            "training": {"epochs": 1}, "methods": {"backbone": {}, "pabee": {}},
            "latency": {"passes": 1, "limit": 8, **latency}}


def test_latency_settings_check_runtime_lists():
    from eebench.measure.wallclock import latency_spec
    from eebench.plan import Plan, validate_config

    def spec(**latency):
        return latency_spec(Plan(validate_config(tiny_config(**latency))))

    with pytest.raises(EEBenchError, match="unknown runtime 'nope'"):
        spec(runtime=["eager", "nope"])
    onnx()
    assert spec(runtime=["eager", "onnxruntime"])["settings"]["runtime"] == ["eager", "onnxruntime"]
    for latency, message in [({"runtime": "onnxruntime", "dtype": "bf16"}, "runs fp32 on the CPU"),
                             ({"runtime": ["eager", "onnxruntime"], "device": "auto"}, "runs fp32 on the CPU"),
                             ({"runtime": ["eager", "onnxruntime"], "mode": "graph"}, "mode graph replays")]:
        with pytest.raises(EEBenchError, match=message):
            spec(**latency)


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_snakemake_dry_run_takes_a_runtime_list_and_names_an_unknown_runtime(tmp_path):
    onnx()

    def dry_run(cfg) -> subprocess.CompletedProcess:
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
        return subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"), "-d",
                               str(tmp_path), "--configfile", str(tmp_path / "c.yaml")], capture_output=True,
                              text=True, timeout=300)

    ok = dry_run(tiny_config(runtime=["eager", "onnxruntime"]))
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert "latency" in ok.stdout
    bad = dry_run(tiny_config(runtime=["eager", "nope"]))
    assert bad.returncode != 0
    errors = [line for line in (bad.stdout + bad.stderr).splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "unknown runtime 'nope' — choose one of: eager, onnxruntime" in errors[0], errors
