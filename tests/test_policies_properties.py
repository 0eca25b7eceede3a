"""Properties of every exit policy on seeded random inputs:

* the batched decision equals the per-sample decisions (batch of 1 each);
* the vectorised policies equal per-sample reference implementations written straight from the spec's wording
  (baselines.md §3(c), §4(c), §5(c), §6(c), §7(c), §9), in plain Python (only each row's softmax is taken in
  fp32 with torch, as the official code computes it, so that saturated rows tie the same way).
"""
from __future__ import annotations

import functools
import math

import pytest
import torch

from eebench.policies import build_policy

# (name, params, needs LTE outputs, regression)
CASES = [
    ("sdn_confidence", {"q": 0.8}, False, False),
    ("sdn_confidence", {"q": 0.6, "fallback": "final"}, False, False),
    ("deebert_entropy", {"entropy_threshold": 0.5}, False, False),
    ("deebert_entropy", {"entropy_threshold": 0.5, "test_last_offramp": False}, False, False),
    ("berxit_entropy", {"entropy_threshold": 0.4}, False, False),
    ("berxit_lte", {"lte_th": 0.3}, True, False),
    ("berxit_lte", {"lte_th": 0.7, "lte_semantics": "certainty_above"}, True, False),
    ("pabee_patience", {"patience": 2}, False, False),
    ("pabee_patience", {"patience": 0}, False, False),
    ("pabee_patience_regression", {"patience": 2, "regression_threshold": 0.5}, False, True),
    ("pcee_bert", {"patience": 2, "exiting_threshold": 0.4}, False, False),
    ("pcee_bert", {"patience": 2, "exiting_threshold": 0.4, "do_ensemble": 0}, False, False),
    ("pcee_bert", {"patience": 1, "exiting_threshold": 0.5, "do_ensemble": 2, "entropy": "raw"}, False, False),
    ("lgvit_confidence", {"threshold": 0.8}, False, False),
    ("lgvit_entropy", {"threshold": 0.5}, False, False),
    ("lgvit_patience", {"patience": 2}, False, False),
    ("lgvit_pcee", {"threshold": 0.5, "patience": 2}, False, False),
    ("lgvit_pcee", {"threshold": 0.5, "patience": 0}, False, False),
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is fastest and avoids oversubscription on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_inputs(seed: int, rows: int, batch: int = 32, classes: int = 3, regression: bool = False):
    """Logits with per-sample scales (some flat, some peaked) and few classes so that every rule fires sometimes;
    regression values as a random walk with small steps."""
    g = torch.Generator().manual_seed(seed)
    if regression:
        steps = torch.randn(rows, batch, 1, generator=g) * torch.rand(1, batch, 1, generator=g)
        return steps.cumsum(dim=0), None
    scale = 6 * torch.rand(1, batch, 1, generator=g)
    logits = torch.randn(rows, batch, classes, generator=g) * scale
    logits[:, : batch // 4] = logits[:, : batch // 4].round()  # exact argmax ties and repeated rows
    lte = torch.rand(rows - 1, batch, generator=g)
    return logits, lte


def extra_for(lte, needs_lte, sl=slice(None)):
    return {"lte_outputs": lte[:, sl]} if needs_lte else {}


@pytest.mark.parametrize("name,params,needs_lte,regression", CASES)
@pytest.mark.parametrize("rows", [1, 2, 5])
def test_batched_equals_per_sample(name, params, needs_lte, regression, rows):
    policy = build_policy(name, **params)
    logits, lte = random_inputs(rows * 7 + len(name), rows, regression=regression)
    full = policy.decide(logits, **extra_for(lte, needs_lte))
    for b in range(logits.shape[1]):
        single = policy.decide(logits[:, b : b + 1], **extra_for(lte, needs_lte, slice(b, b + 1)))
        for field in ("exit_index", "compute_index", "prediction"):
            assert torch.equal(getattr(full, field)[b : b + 1], getattr(single, field)), (field, b)
        assert torch.allclose(full.output[b : b + 1], single.output, atol=1e-6)
        if full.is_early is not None:
            assert torch.equal(full.is_early[b : b + 1], single.is_early)


# ----------------------------------------------------------------------------------------------------------------
# per-sample references, from the spec's wording (one sample: a list of rows, each a list of logits)
# ----------------------------------------------------------------------------------------------------------------

def softmax(z):
    """One row's probabilities, computed in fp32 like the official code (so saturated rows tie at exactly 1.0)."""
    return list(_softmax(tuple(z)))


@functools.lru_cache(maxsize=None)
def _softmax(z):
    return tuple(torch.softmax(torch.tensor(z, dtype=torch.float32), dim=0).tolist())


def argmax(v):
    return v.index(max(v))  # ties → lowest index


def entropy(z):
    return -sum(p * math.log(p) for p in softmax(z) if p > 0)


def ref_sdn(rows, q, fallback="most_confident"):
    """§3(c): first IC with max-prob >= q (early); else the most confident of all outputs (first on ties) or the
    final; non-early answers charge the whole network."""
    confs = [max(softmax(z)) for z in rows]
    for i in range(len(rows) - 1):
        if confs[i] >= q:
            return i, i, True, rows[i]
    last = len(rows) - 1
    answer = confs.index(max(confs)) if fallback == "most_confident" else last
    return answer, last, False, rows[answer]


def ref_lgvit_confidence(rows, threshold):
    """§9: only highways are tested, in order; exit if max-prob > thr; the final classifier is the fallback."""
    for i in range(len(rows) - 1):
        if max(softmax(rows[i])) > threshold:
            return i
    return len(rows) - 1


def ref_lgvit_patience(rows, t):
    """§9: run length of identical highway argmaxes, 1 on the first highway, reset to 1 on a change; exit when it
    equals t; the final classifier is not part of the run."""
    run, prev = 0, None
    for i in range(len(rows) - 1):
        label = argmax(rows[i])
        run = run + 1 if label == prev else 1
        prev = label
        if run == t:
            return i
    return len(rows) - 1


def ref_pabee(rows, t):
    """§6(c): t = 0 → full model. Counter starts at 0; layer 1 only records its prediction; later layers: +1 if
    argmax equals the previous one, else 0; stop right after the first layer where counter == t; else layer L."""
    last = len(rows) - 1
    if t == 0:
        return last
    counter, prev = 0, None
    for i, z in enumerate(rows):
        label = argmax(z)
        if prev is not None:
            counter = counter + 1 if label == prev else 0
        prev = label
        if counter == t:
            return i
    return last


def ref_pcee(rows, patience, tau, do_ensemble=1, normalized=True):
    """§7(c) (mechanism V1): ĥ_i = H_i / ln C (or raw H); counter +1 if ĥ_i < τ else 0; exit when counter ==
    patience, otherwise layer L. Output: do_ensemble 0 → that layer's logits; 1 → mean softmax over the list that
    is reset to the current layer whenever the counter is 0 (the streak plus the last non-confident layer);
    2 → mean softmax over every layer computed. Patience 0 → the final classifier's logits."""
    last = len(rows) - 1
    if patience == 0:
        return last, rows[last]
    counter, streak_list, all_list = 0, [], []
    exit_at = last
    for i, z in enumerate(rows):
        h = entropy(z) / (math.log(len(z)) if normalized else 1.0)
        counter = counter + 1 if h < tau else 0
        p = softmax(z)
        all_list.append(p)
        streak_list = [p] if counter == 0 else streak_list + [p]
        if counter == patience:
            exit_at = i
            break
    if do_ensemble == 0:
        return exit_at, rows[exit_at]
    chosen = streak_list if do_ensemble == 1 else all_list
    return exit_at, [sum(col) / len(chosen) for col in zip(*chosen)]


def ref_first_entropy(rows, s, tested):
    """DeeBERT §4(c) (tested = L off-ramps incl. L) / BERxiT §5(c) (tested = 1..L−1): first entropy < S."""
    for i in range(tested):
        if entropy(rows[i]) < s:
            return i
    return len(rows) - 1


def ref_lgvit_pcee(rows, tau, patience):
    """§9 patient_and_confident: counter over highways, +1 if RAW entropy < thr else 0; exit when == patience."""
    counter = 0
    for i in range(len(rows) - 1):
        counter = counter + 1 if entropy(rows[i]) < tau else 0
        if counter == patience:
            return i
    return len(rows) - 1


def samples(logits):
    return [[logits[r, b].double().tolist() for r in range(logits.shape[0])] for b in range(logits.shape[1])]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rows", [1, 2, 3, 6, 12])
def test_vectorised_equals_reference(seed, rows):
    logits, _ = random_inputs(1000 * seed + rows, rows, batch=24, classes=2 + seed % 3)
    per_sample = samples(logits)

    def check(name, ref, **params):
        d = build_policy(name, **params).decide(logits)
        assert d.exit_index.tolist() == [ref(s) for s in per_sample], (name, params)
        return d

    for q in (0.5, 0.7, 0.95, 1.01):
        for fallback in ("most_confident", "final"):
            d = build_policy("sdn_confidence", q=q, fallback=fallback).decide(logits)
            for b, s in enumerate(per_sample):
                exit_i, compute_i, early, out = ref_sdn(s, q, fallback)
                assert (int(d.exit_index[b]), int(d.compute_index[b]), bool(d.is_early[b])) == \
                       (exit_i, compute_i, early), (q, fallback, b)
                assert d.output[b].tolist() == pytest.approx(out, abs=1e-6)
    for thr in (0.5, 0.7, 0.9):
        check("lgvit_confidence", lambda s: ref_lgvit_confidence(s, thr), threshold=thr)
    for t in range(0, 5):
        check("lgvit_patience", lambda s: ref_lgvit_patience(s, t), patience=t)
        check("pabee_patience", lambda s: ref_pabee(s, t), patience=t)
        check("lgvit_pcee", lambda s: ref_lgvit_pcee(s, 0.4, t), threshold=0.4, patience=t)
    for s_thr in (0.1, 0.4, 0.7):
        check("deebert_entropy", lambda s: ref_first_entropy(s, s_thr, len(s) - 1), entropy_threshold=s_thr)
        check("deebert_entropy", lambda s: ref_first_entropy(s, s_thr, len(s) - 2), entropy_threshold=s_thr,
              test_last_offramp=False)
        check("berxit_entropy", lambda s: ref_first_entropy(s, s_thr, len(s) - 2), entropy_threshold=s_thr)
    for patience in range(0, 4):
        for tau in (0.2, 0.5, 0.8):
            for ens in (0, 1, 2):
                for kind in ("normalized", "raw"):
                    d = build_policy("pcee_bert", patience=patience, exiting_threshold=tau, do_ensemble=ens,
                                     entropy=kind).decide(logits)
                    for b, s in enumerate(per_sample):
                        exit_i, out = ref_pcee(s, patience, tau, ens, kind == "normalized")
                        assert int(d.exit_index[b]) == exit_i and int(d.compute_index[b]) == exit_i
                        assert d.output[b].tolist() == pytest.approx(out, abs=1e-5)
                        assert int(d.prediction[b]) == argmax(out) or \
                            sorted(out)[-1] - sorted(out)[-2] < 1e-5  # near-ties may round either way


def test_pabee_regression_reference():
    logits, _ = random_inputs(7, 8, batch=64, regression=True)
    for t in range(0, 4):
        for delta in (0.0, 0.3, 1.0):
            d = build_policy("pabee_patience_regression", patience=t, regression_threshold=delta).decide(logits)
            for b in range(logits.shape[1]):
                y = logits[:, b, 0].tolist()
                expected = len(y) - 1
                if t > 0:
                    counter = 0
                    for i in range(1, len(y)):
                        counter = counter + 1 if abs(y[i] - y[i - 1]) < delta else 0
                        if counter == t:
                            expected = i
                            break
                assert int(d.exit_index[b]) == expected
                assert float(d.prediction[b]) == y[expected]


def test_berxit_lte_reference():
    logits, lte = random_inputs(11, 7, batch=64)
    for th in (0.0, 0.3, 0.6):
        for semantics in ("error_below", "certainty_above"):
            d = build_policy("berxit_lte", lte_th=th, lte_semantics=semantics).decide(logits, lte_outputs=lte)
            for b in range(logits.shape[1]):
                expected = logits.shape[0] - 1
                for i in range(logits.shape[0] - 2):  # off-ramps 1..L−1
                    u = float(lte[i, b])
                    if (u < th) if semantics == "error_below" else (1 - u > th):
                        expected = i
                        break
                assert int(d.exit_index[b]) == expected
