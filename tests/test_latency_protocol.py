"""Table 5's protocol (``eebench.inference.latency``) on tiny models, on CPU: its fields, the decisions match against
the offline replay of the exit-logit cache (tiny BERT on text at real lengths, tiny ViT on digits), batched exit
against batch 1 on text of varied lengths, the percentile rule, the quality gate at its boundary, the runtime seam,
and the rendered tables. No test asserts a time."""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from eebench.backbones import build_backbone
from eebench.data import load_dataset
from eebench.data.text import TextSource, TextSplit
from eebench.errors import EEBenchError
from eebench.evaluate import exit_logits
from eebench.inference import batched_exit, early_exit
from eebench.inference.latency import resolve_threads, table5_latency
from eebench.inference.queries import eval_queries
from eebench.inference.runtime import RUNTIMES, EagerRuntime, build_runtime
from eebench.measure.latency_stats import loadgen_percentile, latency_summary, quality_gate
from eebench.model import MultiExitModel
from eebench.policies import build_policy, policy_for_rows
from eebench.policies.base import max_prob

from conftest import TINY_BACKBONE
from test_inference import ent, ent_normalized, lte_error, mixed_params, spread

WORDS = ["good", "bad", "film", "plot", "dull", "great", "acting", "not", "very", "story", "fine", "awful"]


def scaled(model: MultiExitModel, seed: int) -> MultiExitModel:
    torch.manual_seed(seed)
    return spread(model)


def tiny_bert(heads, exits=(1, 2, 3), classes=3, seed=0, final_head=None, lte=False) -> MultiExitModel:
    torch.manual_seed(seed)
    backbone = build_backbone("bert_tiny_test", classes, pretrained=False)
    return scaled(MultiExitModel(backbone, list(exits), [dict(heads)] * len(exits), classes, lte=lte,
                                 final_head=final_head), seed)


def tiny_vit(seed=0) -> MultiExitModel:
    torch.manual_seed(seed)
    backbone = build_backbone(TINY_BACKBONE["name"], 10, **{k: v for k, v in TINY_BACKBONE.items() if k != "name"})
    return scaled(MultiExitModel(backbone, [1, 3, 5], [{"type": "mlp"}] * 3, 10), seed)


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 20))) for _ in range(n)]


@pytest.fixture(scope="module")
def text_data(tmp_path_factory):
    """A text source whose evaluation order (length-sorted) differs from the split's own order."""
    texts = sentences(24)
    labels = torch.tensor([i % 3 for i in range(24)])
    split = TextSplit([(t,) for t in texts], labels)
    return TextSource(split, split, 3, "tiny text", "accuracy", max_seq_length=32,
                      cache_dir=str(tmp_path_factory.mktemp("tokens")))


def cache_of(model, data) -> dict:
    """What ``evaluate.load_cache`` returns for ``model``'s cache: logits of every row in the evaluation order, from
    padded batches of 8 (the evaluate step's function)."""
    logits, labels, lte = exit_logits(model, data, 8)
    return {"logits": logits, "labels": labels, "row_layers": model.row_layers,
            "num_layers": model.backbone.num_layers, "extra": {} if lte is None else {"lte_outputs": lte}}


def spread_threshold(scores: torch.Tensor) -> float:
    """A threshold in the widest gap near the median of ``scores`` (robust to rounding between batch sizes)."""
    values = scores.flatten().double().sort().values
    gaps = [(float(b - a), float(a + b) / 2) for a, b in zip(values[:-1], values[1:])]
    middle = gaps[len(gaps) // 4: 3 * len(gaps) // 4]
    width, mid = max(middle)
    assert width > 1e-3
    return mid


# ---------------------------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------------------------

def test_percentiles_follow_loadgen_nearest_rank():
    # LoadGen: sorted ascending, the p-th percentile at 0-based index floor(n·p).
    # n = 10, sorted [1..10]: p50 → index 5 → 6; p90 → index 9 → 10; p99 → index floor(9.9) = 9 → 10.
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 9.0, 8.0, 7.0, 6.0]
    assert [loadgen_percentile(values, p) for p in (0.5, 0.9, 0.99)] == [6.0, 10.0, 10.0]
    # numpy's default (linear interpolation) would give 5.5 and 9.1 here: not a latency any query had
    assert np.percentile(values, 50) == 5.5 and math.isclose(np.percentile(values, 90), 9.1)
    # n = 7, sorted [2, 3, 5, 7, 11, 13, 17]: p50 → index floor(3.5) = 3 → 7; p90 → floor(6.3) = 6 → 17
    assert loadgen_percentile([17, 2, 13, 3, 11, 5, 7], 0.5) == 7 and loadgen_percentile([17, 2, 13, 3, 11, 5, 7],
                                                                                            0.9) == 17
    # n = 200, sorted [0..199]: p99 → index 198 → 198; p90 → index 180 → 180
    assert loadgen_percentile(list(range(200)), 0.99) == 198 and loadgen_percentile(list(range(200)), 0.9) == 180
    with pytest.raises(ValueError):
        loadgen_percentile(values, 1.0)


def test_latency_summary_is_the_papers_mean_over_passes_and_percentiles_over_every_query():
    # two passes of 3 queries: pass means 2 and 5 → mean 3.5, std (sample) = |5 − 2| / √2 = 2.1213...
    # every query: [1, 2, 3, 4, 5, 6] → p50 index 3 → 4; p90 index floor(5.4) = 5 → 6
    s = latency_summary([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert s["ms_per_query"]["mean"] == 3.5 and math.isclose(s["ms_per_query"]["std"], 3 / math.sqrt(2))
    assert s["query_ms"] == {"mean": 3.5, "p50": 4.0, "p90": 6.0, "p99": 6.0} and s["timed_queries"] == 6


def test_quality_gate_at_its_boundary():
    # 99 of 120 queries right against the backbone's 100 of 120: retention 99/100 = exactly 99 % → pass, although
    # in binary floating point 0.99 × (100/120) = 0.8250000000000001 > 99/120 = 0.825
    assert 0.99 * (100 / 120) > 99 / 120
    g = quality_gate(99 / 120, 100 / 120)
    assert g["pass"] is True and math.isclose(g["retention"], 0.99)
    # one query fewer: 98/100 = 98 % → fail
    assert quality_gate(98 / 120, 100 / 120)["pass"] is False
    # better than the backbone passes; a backbone at chance (MCC 0) has no fraction to keep
    assert quality_gate(0.9, 0.8)["pass"] is True
    assert quality_gate(0.1, 0.0) == {"target": 0.99, "retention": None, "pass": None}
    assert quality_gate(0.95, 1.0, target=0.95)["pass"] is True
    assert quality_gate(0.94, 1.0, target=0.95)["pass"] is False


def test_thread_settings():
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert resolve_threads([1, "all"]) == ([1] if cores == 1 else [1, cores])
    assert resolve_threads(2) == [2] and resolve_threads("all") == [cores]
    # "all" in a job given fewer cores than the machine has: the job's share (never more than the process may use)
    assert resolve_threads([1, "all"], cores=1) == [1] and resolve_threads("all", cores=cores + 8) == [cores]
    with pytest.raises(EEBenchError, match="not a thread count"):
        resolve_threads([0])


# ---------------------------------------------------------------------------------------------------------------
# the live pieces
# ---------------------------------------------------------------------------------------------------------------

def test_final_head_answers_the_last_row_live():
    """COST-EFF replaces the backbone's classifier with its own final head (and drops the backbone's): the live
    last row and the plain backbone use it, as ``MultiExitModel.forward`` does (the old live code called the
    backbone's dropped classifier)."""
    model = tiny_bert({"type": "mlp"}, exits=(1, 2), final_head={"type": "tanh_cls", "dropout": 0.1})
    x = {"input_ids": torch.tensor([[101, 2204, 3185, 102]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    with torch.no_grad():
        full = model(x).stacked()
    force_last = build_policy("lgvit_confidence", threshold=1.0)  # never exits: the last row answers
    live = early_exit(model, force_last, x)
    assert int(live.exit_index) == 2
    torch.testing.assert_close(live.output, full[2], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(build_runtime("eager", model).run_backbone(x), full[2], atol=1e-5, rtol=1e-5)


def test_text_queries_keep_the_split_order_and_real_lengths(text_data):
    bb = build_backbone("bert_tiny_test", 3, pretrained=False)
    q = eval_queries(text_data, bb, 10)
    samples = text_data.eval_samples(bb)
    assert len(q) == 10 and q.is_text
    assert q.lengths() == [len(s["input_ids"]) for s in samples[:10]]  # no padding at batch 1
    assert all(int(x["attention_mask"].sum()) == x["input_ids"].shape[1] for x in q.inputs)
    order = text_data.eval_order(bb)  # cache position p holds sample order[p]
    assert [int(order[p]) for p in q.cache_index] == list(range(10))
    assert len(set(q.lengths())) > 3  # varied lengths
    batch = q.batch(0, 10)  # padded to the longest, right padding, mask 0 there
    assert batch["input_ids"].shape == (10, max(q.lengths()))
    assert batch["attention_mask"].sum(1).tolist() == q.lengths()


def test_batched_exit_on_text_equals_batch1_and_cuts_padding(text_data):
    model = tiny_bert({"type": "mlp"}, seed=1)
    q = eval_queries(text_data, model.backbone, None)
    batch = q.batch(0, len(q))
    longest = torch.tensor(q.lengths()) == max(q.lengths())
    with torch.no_grad():
        full = model(batch).stacked()
    # a confidence threshold just below the longest sentences' row-0 confidences: they (and the samples at least as
    # confident) leave after the first exit, so the rest need not stay padded to their length
    conf = max_prob(full[:1])[0]
    low = conf[longest].min()
    below = conf[conf < low]
    assert len(below) and float(low - below.max()) > 1e-3, "pick another seed"
    policy = build_policy("lgvit_confidence", threshold=float(low + below.max()) / 2)
    widths = []
    block = model.backbone.block

    def record(index, hidden, ctx):
        widths.append((index, hidden.shape[0], hidden.shape[1]))
        assert ctx.mask.shape == hidden.shape[:2] and ctx.block_kwargs["attention_mask"].shape[0] == hidden.shape[0]
        return block(index, hidden, ctx)

    model.backbone.block = record
    try:
        batched = batched_exit(model, policy, batch)
    finally:
        del model.backbone.block
    ones = [early_exit(model, policy, x) for x in q.inputs]
    assert torch.equal(batched.exit_index, torch.cat([d.exit_index for d in ones]))
    assert torch.equal(batched.prediction, torch.cat([d.prediction for d in ones]))
    torch.testing.assert_close(batched.output, torch.cat([d.output for d in ones]), atol=1e-5, rtol=1e-5)
    assert len(batched.exit_index.unique()) >= 2
    first_width = widths[0][2]
    later = [w for i, n, w in widths if i > 1]
    assert first_width == max(q.lengths()) and later and max(later) < first_width  # the padding was cut


def test_runtime_registry_and_its_seam():
    assert "eager" in RUNTIMES.names()
    with pytest.raises(EEBenchError, match="unknown runtime 'nope'"):
        RUNTIMES.get("nope")
    model = tiny_vit()
    rt = build_runtime("eager", model)
    assert isinstance(rt, EagerRuntime) and rt.rows == 4 and rt.version() == f"torch {torch.__version__}"
    x = torch.randn(3, 1, 8, 8)
    state = x
    with torch.no_grad():
        for k in range(rt.rows - 1):
            state = rt.run_segment(k, state)
        state = rt.run_segment(rt.rows - 1, state)
        torch.testing.assert_close(rt.run_final(state), model.backbone(x))
    model.train()
    with pytest.raises(EEBenchError, match="call model.eval"):
        build_runtime("eager", model)


# ---------------------------------------------------------------------------------------------------------------
# the protocol on tiny models, with the decisions match against the cache
# ---------------------------------------------------------------------------------------------------------------

PROTOCOL_FIELDS = {"protocol", "runtime", "device", "dtype", "mode", "policy", "row_layers", "early_exit", "backbone",
                   "quality", "decisions_match", "timings", "breakdown", "batched"}


def check_fields(result, threads, batches, n):
    assert PROTOCOL_FIELDS <= set(result)
    assert result["runtime"] == {"name": "eager", "version": f"torch {torch.__version__}", "exit_check": "policy"}
    assert [t["threads"] for t in result["timings"]] == threads
    for timing in result["timings"]:
        for key in ("early_exit", "backbone"):
            r = timing[key]
            assert set(r["ms_per_query"]) == {"mean", "std"} and set(r["query_ms"]) == {"mean", "p50", "p90", "p99"}
            assert r["query_ms"]["p50"] <= r["query_ms"]["p90"] <= r["query_ms"]["p99"]
            assert r["timed_queries"] == result["protocol"]["timed_passes"] * n
        assert math.isfinite(timing["wallclock_speedup"])
    b = result["breakdown"]
    assert set(b["ms_per_query"]) == {"segments", "heads", "final", "checks", "other"} and "perf_counter" in b["timer"]
    assert b["threads"] == threads[0]
    assert [(r["batch"], r["threads"]) for r in result["batched"]] == [(s, t) for t in threads for s in batches]
    for r in result["batched"]:
        assert set(r["early_exit_samples_per_s"]) == {"mean", "std"} and r["queries"] == n
        assert r["same_as_batch1"] == {"matched": n, "total": n, "exit_row": n, "prediction": n}
    q = result["quality"]
    assert set(q) == {"metric", "early_exit", "backbone", "target", "retention", "pass"} and q["target"] == 0.99
    assert q["pass"] is (q["early_exit"] >= 0.99 * q["backbone"] - 1e-12)
    assert sum(result["early_exit"]["compute_rows"]) == n == len(result["early_exit"]["per_query_compute_row"])


@pytest.mark.parametrize("policy_name, fixed, key, score", [
    ("lgvit_entropy", {}, "threshold", ent), ("pabee_patience", {"patience": 1}, None, None),
    ("pcee_bert", {"patience": 1}, "exiting_threshold", ent_normalized), ("berxit_lte", {}, "lte_th", lte_error)])
def test_text_decisions_match_the_offline_replay(text_data, policy_name, fixed, key, score):
    """Live batch-1 queries at their real lengths vs the policy replayed on the cache (padded batches of 8, in the
    length-sorted evaluation order): N / N, patience policies included (their history is the buffer's rows)."""
    heads = {"type": "pooled_linear"} if policy_name in ("pabee_patience", "pcee_bert") else {"type": "mlp"}
    model = tiny_bert(heads, seed=2, lte=policy_name == "berxit_lte")
    cache = cache_of(model, text_data)
    lte = cache["extra"].get("lte_outputs")
    params = mixed_params(policy_name, fixed, key, score, cache["logits"], lte)
    policy = policy_for_rows(policy_name, params, model.row_layers)
    n = 12
    q = eval_queries(text_data, model.backbone, n)
    offline = policy.decide(cache["logits"], **cache["extra"])
    assert len(offline.compute_index[q.cache_index].unique()) >= 2  # the timed queries exit at several rows
    result = table5_latency(model, policy, q, passes=1, threads=[1, "all"], batches=[5], cache=cache, device="cpu")
    check_fields(result, resolve_threads([1, "all"]), [5], n)
    assert result["decisions_match"] == {"matched": n, "total": n, "exit_row": n, "prediction": n}
    assert len(result["tokens"]) == n and result["quality"]["metric"] == "accuracy"


def test_vision_decisions_match_and_a_mismatch_is_counted():
    data = load_dataset({"name": "digits"})
    model = tiny_vit(seed=3)
    cache = cache_of(model, data)
    params = {"threshold": spread_threshold(max_prob(cache["logits"][:-1]))}
    policy = policy_for_rows("lgvit_confidence", params, model.row_layers)
    n = 16
    q = eval_queries(data, model.backbone, n)
    assert torch.equal(q.cache_index, torch.arange(n))
    result = table5_latency(model, policy, q, passes=2, cache=cache, device="cpu", batches=[4, 8])
    check_fields(result, [1], [4, 8], n)
    assert result["decisions_match"]["matched"] == n and result["quality"]["metric"] == "accuracy"
    # a cache from other weights disagrees somewhere, and the count says so
    other = cache_of(tiny_vit(seed=4), data)
    model = tiny_vit(seed=3)
    result = table5_latency(model, policy, q, passes=1, cache=other, device="cpu")
    assert result["decisions_match"]["matched"] < n
    with pytest.raises(EEBenchError, match="rows after blocks"):
        table5_latency(model, policy, q, passes=1, cache={**other, "row_layers": [1, 6]}, device="cpu")


def test_graph_mode_refuses_text(text_data):
    model = tiny_bert({"type": "mlp"})
    q = eval_queries(text_data, model.backbone, 2)
    with pytest.raises(EEBenchError, match="graph mode captures one input shape"):
        table5_latency(model, build_policy("lgvit_entropy", threshold=0.5), q, passes=1, mode="graph", device="cpu")


# ---------------------------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------------------------

def test_table5_renders_the_protocol(text_data, tmp_path):
    from eebench.measure.wallclock import add_macs
    from eebench.measure.macs import cost_summary
    from eebench.report.table5 import table5

    model = tiny_bert({"type": "mlp"}, seed=2)
    cache = cache_of(model, text_data)
    policy = policy_for_rows("lgvit_entropy", {"threshold": 0.7}, model.row_layers)
    q = eval_queries(text_data, model.backbone, 8)
    result = table5_latency(model, policy, q, passes=1, threads=[1, 2], batches=[4], cache=cache, device="cpu")
    costs = cost_summary(tiny_bert({"type": "mlp"}, seed=2), seq_length=32)
    add_macs(result, json.loads(json.dumps(costs)))
    assert result["early_exit"]["mac_speedup_real"]["paper"] > 0
    result.update(policy_spec={"name": "lgvit_entropy", "params": {"threshold": 0.7}}, swept=["threshold"])
    latency = {"run": "t", "seed": 0, "macs_convention": "paper", "order": ["m"], "methods": {"m": result},
               "provenance": {"device": "cpu"}}
    raw = table5(latency, {"m": "M"}, tmp_path, "tiny", ["m"])
    assert list(raw["threads"]) == [1, 2] and set(raw["runtime"]) == {"eager"}
    assert (raw["runtime_version"] == f"torch {torch.__version__}").all()
    assert {"latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "retention", "gate_pass", "decisions_matched",
            "backbone_latency_p99_ms"} <= set(raw.columns)
    md = (tmp_path / "table5.md").read_text()
    for text in ("p50 / p90 / p99 (ms)", "Gate ≥ 99 %", "Decisions match", "8 / 8", "Retention (%)",
                 "warm-up of every exit depth", "LoadGen's nearest rank", "real length", "eager (torch "):
        assert text in md, text
    assert "| Segments (ms)" in (tmp_path / "table5_breakdown.md").read_text()
    batched = (tmp_path / "table5_batched.md").read_text()
    assert "Batching policy" in batched and "| 4 " in batched and "8 / 8" in batched
    assert (tmp_path / "fig5_wallclock.png").stat().st_size > 0
