"""Live dynamic inference (``eebench.inference``) against the offline replay of the same policy code.

* the causal prefix decision equals the full decision wherever it settles, for every policy, whatever the placeholder;
* for tiny random-init models (LPH, GAH and MLP heads; an LTE model; a regression model), live batch-1 inference
  with early return and batched inference with per-sample exits give the predictions, exit rows, compute rows and
  outputs of ``policy.decide(model(x).stacked())``, for EVERY registered policy, with thresholds picked from the
  actual scores so that samples exit at a mix of rows;
* early return really skips work (blocks and heads are counted);
* the Table 5 function and ``eebench latency`` return their fields on CPU (``passes=2``; test_latency_protocol has
  the protocol).
"""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from eebench.backbones import build_backbone
from eebench.cli import main
from eebench.errors import EEBenchError
from eebench.inference import batched_exit, decide_prefix, early_exit
from eebench.inference.latency import table5_latency
from eebench.io import save_torch
from eebench.model import MultiExitModel
from eebench.policies import POLICIES, build_policy
from eebench.policies.base import entropy, max_prob

from conftest import TINY_BACKBONE

N = 40  # samples per model


def tiny_model(exits, heads, classes=4, lte=False, seed=0) -> MultiExitModel:
    """Random init with Linear weights scaled up so logits are O(1): scores then spread over the samples and the
    thresholds below sit in wide gaps between them (robust to batch-size rounding differences)."""
    torch.manual_seed(seed)
    backbone = build_backbone(TINY_BACKBONE["name"], classes, **{k: v for k, v in TINY_BACKBONE.items() if k != "name"})
    return spread(MultiExitModel(backbone, exits, heads, classes, lte=lte))


def spread(model: MultiExitModel) -> MultiExitModel:
    """Linear weights scaled up so logits are O(1) and exit scores spread over the samples."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=1.5 / module.in_features ** 0.5)
            if module.bias is not None:
                nn.init.normal_(module.bias, std=0.5)
    return model.eval()


MODELS = {
    # last exit at the last block: its row and the final classifier's come from the same block (an empty segment)
    "mixed": lambda: tiny_model([1, 2, 4, 6], [{"type": "lph", "kernel": 3}, {"type": "mlp"},
                                               {"type": "gah", "stride": 2, "num_heads": 2}, {"type": "mlp"}]),
    "lte": lambda: tiny_model([1, 2, 3, 4, 5], [{"type": "mlp"}] * 5, lte=True, seed=1),
    "regression": lambda: tiny_model([1, 3, 5], [{"type": "mlp"}] * 3, classes=1, seed=2),
}


@pytest.fixture(scope="module")
def offline():
    """name → (model, inputs, stacked offline logits [rows, N, C], lte outputs or None)."""
    out = {}
    for name, make in MODELS.items():
        model = make()
        x = torch.randn(N, 1, 8, 8, generator=torch.Generator().manual_seed(len(name)))
        with torch.no_grad():
            full = model(x)
        out[name] = (model, x, full.stacked(), full.lte_outputs)
    return out


# ---------------------------------------------------------------------------------------------------------------
# one or more cases per registered policy: (name, fixed params, tuned parameter or None, scores it is tuned on)
# ---------------------------------------------------------------------------------------------------------------

def conf(logits, lte):
    return max_prob(logits[:-1])


def ent(logits, lte):
    return entropy(logits[:-1])


def ent_normalized(logits, lte):
    return entropy(logits) / math.log(logits.shape[-1])


def ent_all(logits, lte):
    return entropy(logits)


def lte_error(logits, lte):
    return lte


def lte_certainty(logits, lte):
    return 1 - lte


def value_steps(logits, lte):
    return (logits[1:, :, 0] - logits[:-1, :, 0]).abs()


CLASSIFY = ("mixed", "lte")
CASES = [
    ("sdn_confidence", {}, "q", conf, CLASSIFY),
    ("sdn_confidence", {"fallback": "final"}, "q", conf, CLASSIFY),
    ("deebert_entropy", {}, "entropy_threshold", ent, CLASSIFY),
    ("deebert_entropy", {"test_last_offramp": False}, "entropy_threshold", ent, CLASSIFY),
    ("deebert_entropy", {}, "entropy_threshold*", ent, CLASSIFY),  # * = one threshold per exit (each row's own)
    ("berxit_entropy", {}, "entropy_threshold", ent, CLASSIFY),
    ("costeff_entropy", {}, "entropy_threshold", ent, CLASSIFY),
    ("berxit_lte", {}, "lte_th", lte_error, ("lte",)),
    ("berxit_lte", {"lte_semantics": "certainty_above"}, "lte_th", lte_certainty, ("lte",)),
    ("pabee_patience", {"patience": 1}, None, None, CLASSIFY),
    ("pabee_patience", {"patience": 2}, None, None, CLASSIFY),
    ("pabee_patience", {"patience": 0}, None, None, CLASSIFY),
    ("pabee_patience_regression", {"patience": 1}, "regression_threshold", value_steps, ("regression",)),
    ("pabee_patience_regression", {"patience": 2}, "regression_threshold", value_steps, ("regression",)),
    ("pcee_bert", {"patience": 1}, "exiting_threshold", ent_normalized, CLASSIFY),
    ("pcee_bert", {"patience": 2, "do_ensemble": 0}, "exiting_threshold", ent_normalized, CLASSIFY),
    ("pcee_bert", {"patience": 2, "do_ensemble": 2, "entropy": "raw"}, "exiting_threshold", ent_all, CLASSIFY),
    ("pcee_bert", {"patience": 0}, None, None, CLASSIFY),
    ("lgvit_confidence", {}, "threshold", conf, CLASSIFY),
    ("lgvit_entropy", {}, "threshold", ent, CLASSIFY),
    ("lgvit_patience", {"patience": 2}, None, None, CLASSIFY),  # (patience 1 always exits at the first highway)
    ("lgvit_patience", {"patience": 3}, None, None, CLASSIFY),
    ("lgvit_pcee", {"patience": 2}, "threshold", ent, CLASSIFY),
    ("lgvit_pcee", {"patience": 0}, "threshold", ent, CLASSIFY),
]
MODEL_CASES = [pytest.param(model, case, id=f"{model}-{case[0]}-{i}")
               for i, case in enumerate(CASES) for model in case[4]]


def test_every_registered_policy_has_a_case():
    assert set(POLICIES.names()) == {case[0] for case in CASES}


def gap_midpoints(scores: torch.Tensor, min_gap: float = 1e-3) -> list[float]:
    """Thresholds between adjacent distinct scores, where the gap is wide (rounding cannot cross them), at ~9
    quantiles of the scores."""
    values = scores.flatten().double().sort().values
    mids = [float((a + b) / 2) for a, b in zip(values[:-1], values[1:]) if b - a > min_gap * (1 + abs(float(a)))]
    assert len(mids) >= 5, "scores too bunched to pick a robust threshold"
    return [mids[round(q * (len(mids) - 1))] for q in (0.05, 0.15, 0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 0.95)]


def mixed_params(name, fixed, key, score, logits, lte):
    """The candidate threshold whose offline decisions are spread over the most rows (most even histogram)."""
    extra = {"lte_outputs": lte} if lte is not None else {}
    if key is None:
        return dict(fixed)
    if key.endswith("*"):  # per-exit list: each internal row's own median gap
        key = key[:-1]
        per_row = [gap_midpoints(row)[4] for row in score(logits, lte)]
        candidates = [per_row]
    else:
        candidates = gap_midpoints(score(logits, lte))

    def spread(value):
        hist = torch.bincount(build_policy(name, **fixed, **{key: value}).decide(logits, **extra).compute_index)
        p = hist[hist > 0].double() / hist.sum()
        return float(-(p * p.log()).sum())

    return {**fixed, key: max(candidates, key=spread)}


def assert_same(live, offline_decision, regression):
    assert torch.equal(live.exit_index, offline_decision.exit_index)
    assert torch.equal(live.compute_index, offline_decision.compute_index)
    if regression:
        torch.testing.assert_close(live.prediction, offline_decision.prediction, atol=1e-5, rtol=1e-5)
    else:
        assert torch.equal(live.prediction, offline_decision.prediction)
    torch.testing.assert_close(live.output, offline_decision.output, atol=1e-5, rtol=1e-5)
    if offline_decision.is_early is not None:
        assert torch.equal(live.is_early, offline_decision.is_early)


@pytest.mark.parametrize("model_name, case", MODEL_CASES)
def test_live_equals_offline_replay(offline, model_name, case):
    name, fixed, key, score, _ = case
    model, x, logits, lte = offline[model_name]
    policy = build_policy(name, **mixed_params(name, fixed, key, score, logits, lte))
    expected = policy.decide(logits, **({"lte_outputs": lte} if lte is not None else {}))
    if fixed.get("patience") != 0:  # the thresholds really mix exits (patience 0 runs the full model by definition)
        assert len(expected.compute_index.unique()) >= 2, expected.compute_index
    regression = model_name == "regression"
    ones = [early_exit(model, policy, x[i:i + 1]) for i in range(N)]
    single = type(expected)(**{f: None if getattr(ones[0], f) is None else torch.cat([getattr(d, f) for d in ones])
                               for f in ("exit_index", "prediction", "compute_index", "output", "is_early")})
    assert_same(single, expected, regression)
    batched = batched_exit(model, policy, x)
    assert_same(batched, expected, regression)
    assert_same(batched, single, regression)


# ---------------------------------------------------------------------------------------------------------------
# the causal prefix decision on its own: exact for any finite placeholder
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_prefix_decision_is_exact_for_any_placeholder(case):
    name, fixed, key, score, models = case
    g = torch.Generator().manual_seed(7)
    rows, batch = 6, 64
    classes = 1 if models == ("regression",) else 3
    logits = torch.randn(rows, batch, classes, generator=g) * 4 * torch.rand(1, batch, 1, generator=g)
    logits[:, :16] = logits[:, :16].round()  # exact ties and repeated rows
    lte = torch.rand(rows - 1, batch, generator=g)
    params = mixed_params(name, fixed, key, score, logits, lte)
    policy = build_policy(name, **params)
    extra_full = {"lte_outputs": lte} if name == "berxit_lte" else {}
    full = policy.decide(logits, **extra_full)
    for fill in (0.0, 1e4, -3.0):
        for k in range(rows):
            part = logits.clone()
            part[k + 1:] = fill + torch.randn(part[k + 1:].shape, generator=g)
            part_lte = None
            if name == "berxit_lte":
                part_lte = lte.clone()
                part_lte[k + 1:] = torch.rand(part_lte[k + 1:].shape, generator=g)
            decision, settled = decide_prefix(policy, part, k, part_lte)
            assert torch.equal(settled, full.compute_index <= k)
            for field in ("exit_index", "compute_index", "prediction"):
                assert torch.equal(getattr(decision, field)[settled], getattr(full, field)[settled]), (field, k)
            torch.testing.assert_close(decision.output[settled], full.output[settled])
    assert bool((full.compute_index <= rows - 1).all())  # everything settles once all rows are real


# ---------------------------------------------------------------------------------------------------------------
# early return skips work
# ---------------------------------------------------------------------------------------------------------------

def count_calls(model):
    """Wrap the backbone's blocks and hook the heads; counts are in samples (batch sizes summed)."""
    counts = {"blocks": 0, "heads": 0}
    original = model.backbone.block

    def block(index, hidden, ctx):
        counts["blocks"] += hidden.shape[0]
        return original(index, hidden, ctx)

    model.backbone.block = block
    hooks = [h.register_forward_hook(lambda mod, args, out: counts.__setitem__("heads", counts["heads"]
                                                                                 + args[0].shape[0]))
             for h in model.heads]
    return counts, lambda: ([h.remove() for h in hooks], delattr(model.backbone, "block"))


def test_early_return_skips_blocks_and_heads(offline):
    model, x, logits, _ = offline["mixed"]
    policy = build_policy("lgvit_entropy", threshold=mixed_params("lgvit_entropy", {}, "threshold", ent, logits,
                                                                  None)["threshold"])
    expected = policy.decide(logits).compute_index
    layers = torch.tensor(model.row_layers)
    heads = torch.clamp(expected + 1, max=len(model.heads))  # every head up to the deciding row ran
    counts, restore = count_calls(model)
    try:
        for i in range(N):
            before = dict(counts)
            early_exit(model, policy, x[i:i + 1])
            assert counts["blocks"] - before["blocks"] == layers[expected[i]]
            assert counts["heads"] - before["heads"] == heads[i]
        for key in counts:
            counts[key] = 0
        batched_exit(model, policy, x)
        assert counts == {"blocks": int(layers[expected].sum()), "heads": int(heads.sum())}
    finally:
        restore()
    assert counts["blocks"] < N * model.backbone.num_layers  # some samples really left early


def test_live_inference_errors_are_one_line(offline):
    model, x, _, _ = offline["mixed"]
    policy = build_policy("lgvit_entropy", threshold=0.5)
    with pytest.raises(EEBenchError, match="batch of 2 .* use batched_exit"):
        early_exit(model, policy, x[:2])
    model.train()
    try:
        with pytest.raises(EEBenchError, match="call model.eval"):
            batched_exit(model, policy, x)
    finally:
        model.eval()


# ---------------------------------------------------------------------------------------------------------------
# Table 5 protocol on CPU
# ---------------------------------------------------------------------------------------------------------------

def test_table5_latency_on_cpu(offline):
    model, x, logits, _ = offline["mixed"]
    policy = build_policy("lgvit_confidence", threshold=0.8)
    labels = torch.randint(0, 4, (8,))
    result = table5_latency(model, policy, x[:8], labels, device="cpu", passes=2)
    (timing,) = result["timings"]
    for key in ("early_exit", "backbone"):
        r = timing[key]
        assert r["ms_per_query"]["std"] >= 0 and r["timed_queries"] == 16
        assert 0 <= result[key]["accuracy"] <= 1
    ee = result["early_exit"]
    assert 1 <= ee["mean_exit_layer"] <= ee["mean_executed_layers"] <= 6 and ee["layer_speedup"] >= 1
    assert sum(ee["exit_histogram"].values()) == 8
    assert result["protocol"]["timed_passes"] == 2 and math.isfinite(timing["wallclock_speedup"])
    assert result["decisions_match"] is None  # no cache given
    with pytest.raises(EEBenchError, match="CUDA graphs need a CUDA GPU"):
        table5_latency(model, policy, x[:2], device="cpu", passes=1, mode="graph")


def test_latency_cli_on_a_checkpoint(tmp_path, capsys):
    method = {"name": "m", "exit_layers": [2, 4], "heads": [{"type": "mlp"}] * 2}
    job = {"dataset": {"name": "digits"}, "backbone": dict(TINY_BACKBONE), "method": method, "seed": 0}
    from eebench.build import build_model

    model = build_model(job["backbone"], method, 10)
    save_torch(tmp_path / "ckpt.pt", {"model": model.state_dict(), "job": job})
    out = tmp_path / "latency.json"
    assert main(["latency", "--checkpoint", str(tmp_path / "ckpt.pt"), "--device", "cpu", "--passes", "2",
                 "--limit", "5", "--policy", '{"name": "lgvit_entropy", "params": {"threshold": 2.0}}',
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ms/query" in printed and "early exit" in printed and "backbone" in printed and "p99" in printed
    result = json.loads(out.read_text())
    assert result["protocol"]["queries"] == 5 and result["provenance"]["torch"] == torch.__version__
    assert result["runtime"] == {"name": "eager", "version": f"torch {torch.__version__}", "exit_check": "policy"}
    assert [t["threads"] for t in result["timings"]] == [1]
    assert main(["latency", "--checkpoint", str(tmp_path / "ckpt.pt"), "--device", "cpu",
                 "--policy", '{"name": "lgvit_entropy", "sweep": {"threshold": [1, 2]}}']) == 2
    assert "one operating point" in capsys.readouterr().err
