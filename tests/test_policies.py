"""Hand-derived edge cases of every exit policy (spec: baselines.md §3–§9, §11, §12; methods.md §2.3).

Rows are in evaluation order: internal exits by depth, then the final classifier (last row). Two-class rows used:
  CONF  = [5, 0]   p_max = σ(5)   = 0.99331, class 0, entropy 0.0402 nats
  CONF1 = [0, 5]   p_max = 0.99331, class 1, entropy 0.0402
  UNSURE= [0.1, 0] p_max = σ(0.1) = 0.52498, class 0, entropy 0.6919
  TIE   = [0, 0]   p_max = 0.5 exactly, class 0 (argmax tie → lowest index), entropy ln 2 = 0.6931
  SAT   = [0, -200] p_max = 1 and entropy 0 exactly in float32 (e^-200 underflows)
"""
from __future__ import annotations

import math

import pytest
import torch

from eebench.errors import EEBenchError
from eebench.policies import build_policy
from eebench.policies.base import entropy, max_prob

CONF, CONF1, UNSURE, TIE, SAT = [5.0, 0.0], [0.0, 5.0], [0.1, 0.0], [0.0, 0.0], [0.0, -200.0]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is fastest and avoids oversubscription on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def one(*rows):
    """One sample: a list of per-row logits → tensor [rows, 1, classes]."""
    return torch.tensor(rows, dtype=torch.float32).unsqueeze(1)


def decide(name, logits, extra=None, **params):
    d = build_policy(name, **params).decide(logits, **(extra or {}))
    return d


def idx(d):
    """(exit_index, compute_index, prediction) of the single sample."""
    return int(d.exit_index[0]), int(d.compute_index[0]), d.prediction[0].item()


def ent(row):
    return float(entropy(torch.tensor(row)))


def conf(row):
    return float(max_prob(torch.tensor(row)))


# --------------------------------------------------------------------------------------------------------------
# LGViT port (§9, methods §2.3): highways rows 0..R-2 tested, final never tested
# --------------------------------------------------------------------------------------------------------------

def test_lgvit_confidence_tie_is_strict():
    # highways p = 0.5, 0.5; threshold 0.5: 0.5 > 0.5 is False → no highway fires → final row 2
    assert idx(decide("lgvit_confidence", one(TIE, TIE, CONF), threshold=0.5)) == (2, 2, 0)
    # threshold 0.49: highway 0 p = 0.5 > 0.49 → exit row 0, argmax tie [0, 0] → class 0
    assert idx(decide("lgvit_confidence", one(TIE, TIE, CONF), threshold=0.49)) == (0, 0, 0)


def test_lgvit_confidence_first_firing_highway_and_output():
    # p = 0.525, 0.9933, 0.9933; thr 0.9 → first > 0.9 is row 1 (class 1); its logits are the output
    logits = one(UNSURE, CONF1, CONF, TIE)
    d = decide("lgvit_confidence", logits, threshold=0.9)
    assert idx(d) == (1, 1, 1)
    assert torch.equal(d.output, logits[1])
    assert d.is_early is None


def test_lgvit_confidence_final_never_thresholded():
    # highways unsure (0.525), final unsure too (0.5): with thr 0.9 nothing fires → the final answers anyway
    assert idx(decide("lgvit_confidence", one(UNSURE, UNSURE, TIE), threshold=0.9)) == (2, 2, 0)
    # thr = 1: p ≤ 1 never exceeds it (strict >) → always final, even when every highway is confident
    assert idx(decide("lgvit_confidence", one(CONF, CONF, CONF1), threshold=1.0)) == (2, 2, 1)


def test_lgvit_confidence_single_exit():
    # rows = 1: only the final classifier, never tested → row 0
    assert idx(decide("lgvit_confidence", one(UNSURE), threshold=0.9)) == (0, 0, 0)
    # rows = 2: one highway (p = 0.9933 > 0.9) → row 0; an unsure highway → final row 1
    assert idx(decide("lgvit_confidence", one(CONF1, CONF), threshold=0.9)) == (0, 0, 1)
    assert idx(decide("lgvit_confidence", one(UNSURE, CONF1), threshold=0.9)) == (1, 1, 1)


def test_lgvit_confidence_argmax_tie_goes_to_lowest_class():
    # [3, 3, 0]: p_max = e^3 / (2e^3 + 1) = 0.4876 > 0.4 → exit row 0; classes 0 and 1 tie → class 0
    assert idx(decide("lgvit_confidence", one([3.0, 3.0, 0.0], [0.0, 9.0, 0.0]), threshold=0.4)) == (0, 0, 0)


def test_lgvit_entropy_tie_is_strict():
    # SAT has entropy exactly 0; thr 0: 0 < 0 is False → never exits → final
    assert idx(decide("lgvit_entropy", one(SAT, SAT, CONF1), threshold=0.0)) == (2, 2, 1)
    # thr = the highway's own entropy (ln 2 as computed): H < H is False → final
    assert idx(decide("lgvit_entropy", one(TIE, CONF1), threshold=ent(TIE))) == (1, 1, 1)
    # a hair above → H < thr → exit row 0
    assert idx(decide("lgvit_entropy", one(TIE, CONF1), threshold=ent(TIE) + 1e-6)) == (0, 0, 0)


def test_lgvit_entropy_final_never_tested():
    # highways H = 0.6919 ≥ 0.5, final H = 0.04 < 0.5 but untested → fallback final row 2 all the same
    # and with a very high final entropy (TIE) the final still answers
    assert idx(decide("lgvit_entropy", one(UNSURE, UNSURE, TIE), threshold=0.5)) == (2, 2, 0)
    # first highway with H < 0.5 is row 1 (CONF1, H = 0.04)
    assert idx(decide("lgvit_entropy", one(UNSURE, CONF1, CONF, TIE), threshold=0.5)) == (1, 1, 1)


def test_lgvit_patience_run_length_starts_at_one():
    # t = 1: run length is 1 on the first highway → exit row 0 whatever its confidence
    assert idx(decide("lgvit_patience", one(UNSURE, CONF1, CONF1), patience=1)) == (0, 0, 0)
    # highway argmaxes 0, 0 → runs 1, 2; t = 2 → exit row 1
    assert idx(decide("lgvit_patience", one(CONF, UNSURE, CONF1, CONF1), patience=2)) == (1, 1, 0)


def test_lgvit_patience_counter_resets_to_one():
    # argmaxes 0,1,1,0,0,0 | final → runs 1,1,2,1,2,3; t = 3 first reached at row 5
    rows = [CONF, CONF1, CONF1, CONF, CONF, CONF, CONF1]
    assert idx(decide("lgvit_patience", one(*rows), patience=3)) == (5, 5, 0)


def test_lgvit_patience_never_reached_and_final_not_in_run():
    # argmaxes 0,1,0,1 → runs all 1; t = 2 never → final row 4
    assert idx(decide("lgvit_patience", one(CONF, CONF1, CONF, CONF1, CONF1), patience=2)) == (4, 4, 1)
    # highways 0,0 → runs 1,2; the final (class 0) does not extend the run, so t = 3 never fires → final row 2
    # (counting the final would have made the run 3 at row 2 — same row index, but via the fallback, not the run)
    assert idx(decide("lgvit_patience", one(CONF, CONF, CONF), patience=3)) == (2, 2, 0)
    # t = 0: run lengths are ≥ 1, never 0 → always the final
    assert idx(decide("lgvit_patience", one(CONF, CONF, CONF1), patience=0)) == (2, 2, 1)


def test_lgvit_patience_is_pabee_minus_one():
    # argmaxes 1,0,0,0 | final 1. LGViT runs 1,1,2,3; PABEE counters 0,0,1,2.
    # LGViT t = 3 → row 3; PABEE t = 2 → row 3 (LGViT t ≡ PABEE t−1)
    logits = one(CONF1, CONF, CONF, CONF, CONF1)
    assert idx(decide("lgvit_patience", logits, patience=3)) == (3, 3, 0)
    assert idx(decide("pabee_patience", logits, patience=2)) == (3, 3, 0)


def test_lgvit_patience_single_exit():
    # rows = 1: no highway → final; rows = 2, t = 1 → the one highway (run 1) exits at row 0
    assert idx(decide("lgvit_patience", one(CONF1), patience=1)) == (0, 0, 1)
    assert idx(decide("lgvit_patience", one(CONF1, CONF), patience=1)) == (0, 0, 1)
    assert idx(decide("lgvit_patience", one(CONF1, CONF), patience=2)) == (1, 1, 0)


def test_lgvit_pcee_raw_entropy():
    # 100 classes, row [0, 0, -200 × 98]: H = ln 2 = 0.693 nats raw (0.693 / ln 100 = 0.15 normalized).
    # thr 0.5 on RAW entropy: 0.693 < 0.5 False → counter 0 → never 1 → final (the normalized 0.15 would count)
    half = [0.0, 0.0] + [-200.0] * 98
    sharp = [0.0] + [-200.0] * 99  # H = 0
    assert idx(decide("lgvit_pcee", one(half, half, sharp), threshold=0.5, patience=1)) == (2, 2, 0)
    # thr 0.7 > 0.693 → counter 1 at row 0 → exit row 0
    assert idx(decide("lgvit_pcee", one(half, half, sharp), threshold=0.7, patience=1)) == (0, 0, 0)


def test_lgvit_pcee_counter_reset_and_no_agreement_needed():
    # H < 0.5? rows C,U,C,C1 | final → counters 1,0,1,2; patience 2 → row 3 (classes 0 then 1: no agreement needed)
    assert idx(decide("lgvit_pcee", one(CONF, UNSURE, CONF, CONF1, TIE), threshold=0.5, patience=2)) == (3, 3, 1)
    # C,U,C,U | final → counters 1,0,1,0 → never 2 → final row 4
    assert idx(decide("lgvit_pcee", one(CONF, UNSURE, CONF, UNSURE, CONF1), threshold=0.5, patience=2)) == (4, 4, 1)


def test_lgvit_pcee_patience_zero_exits_at_first_non_confident_highway():
    # rows C,C,U,C | final: counters 1,2,0,1 → first counter == 0 is row 2
    assert idx(decide("lgvit_pcee", one(CONF, CONF, UNSURE, CONF, CONF1), threshold=0.5, patience=0)) == (2, 2, 0)
    # all highways confident → counter never 0 → final
    assert idx(decide("lgvit_pcee", one(CONF, CONF, CONF1), threshold=0.5, patience=0)) == (2, 2, 1)


def test_lgvit_pcee_final_not_tested():
    # highways U,U, final C: final would make counter 1 but it is never tested → final row 2 via the fallback;
    # with patience 1 and highways U,C → exit row 1
    assert idx(decide("lgvit_pcee", one(UNSURE, CONF, CONF1), threshold=0.5, patience=1)) == (1, 1, 0)


def test_lgvit_exit_layers_stored_and_checked():
    p = build_policy("lgvit_confidence", threshold=0.9, exit_layers=[6, 12])  # ViT-EE: one highway at 6 + final
    assert p.exit_layers == [6, 12]
    assert idx(p.decide(one(CONF, CONF1))) == (0, 0, 0)
    with pytest.raises(EEBenchError, match="exit_layers"):
        p.decide(one(CONF, CONF, CONF1))
    with pytest.raises(EEBenchError, match="exit_layers"):
        build_policy("lgvit_entropy", exit_layers=[0, 12])


# --------------------------------------------------------------------------------------------------------------
# SDN (§3(c))
# --------------------------------------------------------------------------------------------------------------

def test_sdn_tie_is_non_strict():
    # IC0 p = 0.5 ≥ q = 0.5 → exit row 0, early, compute row 0
    d = decide("sdn_confidence", one(TIE, CONF1, CONF1), q=0.5)
    assert idx(d) == (0, 0, 0) and bool(d.is_early[0])
    # q = IC0's own computed confidence: ≥ holds on equality
    d = decide("sdn_confidence", one(UNSURE, CONF1, CONF1), q=conf(UNSURE))
    assert idx(d) == (0, 0, 0) and bool(d.is_early[0])


def test_sdn_most_confident_fallback_and_compute_index():
    # ICs p = σ(1) = 0.731 (class 0), σ(2) = 0.881 (class 1); final σ(0.5) = 0.622 (class 0); q = 0.95 → no IC
    # fires.
    # official fallback: most confident of ALL rows = IC row 1 → exit 1, prediction class 1, NOT early,
    # compute_index = last row 2 (the whole network and every IC ran)
    logits = one([1.0, 0.0], [0.0, 2.0], [0.5, 0.0])
    d = decide("sdn_confidence", logits, q=0.95)
    assert idx(d) == (1, 2, 1) and not bool(d.is_early[0])
    assert torch.equal(d.output, logits[1])
    # paper reading (fallback="final"): the final classifier answers
    d = decide("sdn_confidence", logits, q=0.95, fallback="final")
    assert idx(d) == (2, 2, 0) and not bool(d.is_early[0])


def test_sdn_most_confident_ties_go_to_first_row():
    # p = 0.881, 0.881 (class 1 then 0), final 0.5; q = 0.99 → no IC fires; tie between rows 0 and 1 → row 0
    d = decide("sdn_confidence", one([0.0, 2.0], [2.0, 0.0], TIE), q=0.99)
    assert idx(d) == (0, 2, 1) and not bool(d.is_early[0])


def test_sdn_final_never_compared_with_q():
    # IC p = 0.5 < q = 0.9; final p = 0.9933 ≥ 0.9 but the final is not an IC → non-early, answer = most
    # confident = final row 1
    d = decide("sdn_confidence", one(TIE, CONF1), q=0.9)
    assert idx(d) == (1, 1, 1) and not bool(d.is_early[0])


def test_sdn_single_output_network():
    # rows = 1: the final output, marked non-early (both fallbacks)
    for fb in ("most_confident", "final"):
        d = decide("sdn_confidence", one(CONF1), q=0.1, fallback=fb)
        assert idx(d) == (0, 0, 1) and not bool(d.is_early[0])


def test_sdn_extreme_q():
    # q = 1/C = 0.25 with C = 4: every max-prob ≥ 1/C → everyone exits at IC row 0 (uniform row: p = 0.25 ≥ 0.25)
    d = decide("sdn_confidence", one([0.0] * 4, [9.0, 0, 0, 0], [0.0, 9.0, 0, 0]), q=0.25)
    assert idx(d) == (0, 0, 0) and bool(d.is_early[0])
    # q = 1.01 (the official grid's sentinel) disables early exits: most confident row answers (row 1, p 0.99989), non-early
    d = decide("sdn_confidence", one(CONF, [9.0, 0.0], CONF1), q=1.01)
    assert idx(d) == (1, 2, 0) and not bool(d.is_early[0])


# --------------------------------------------------------------------------------------------------------------
# DeeBERT (§4(c)): rows = off-ramps at layers 1..L, then the final classifier
# --------------------------------------------------------------------------------------------------------------

def test_deebert_tie_is_strict_and_defaults_never_fire():
    # SAT entropy = 0 exactly; S = 0: 0 < 0 False → final
    assert idx(decide("deebert_entropy", one(SAT, SAT, CONF1), entropy_threshold=0.0)) == (2, 2, 1)
    # default S = −1 never fires
    assert idx(decide("deebert_entropy", one(SAT, SAT, CONF1))) == (2, 2, 1)
    # S = off-ramp 1's own entropy: H < H False → next off-ramp (CONF, H 0.04 < 0.69) → row 1
    assert idx(decide("deebert_entropy", one(TIE, CONF, CONF1), entropy_threshold=ent(TIE))) == (1, 1, 0)


def test_deebert_last_offramp_fires():
    # edge_last_offramp_fires: off-ramp 1 unsure (H 0.69), off-ramp L (row 1) confident class 1 (H 0.04),
    # final class 0. S = 0.5. Official (test_last_offramp=True): off-ramp L is tested → exit row 1, class 1,
    # compute_index 1 (the final classifier did not run)
    logits = one(UNSURE, CONF1, CONF)
    assert idx(decide("deebert_entropy", logits, entropy_threshold=0.5)) == (1, 1, 1)
    # paper reading: the last off-ramp is skipped → the final classifier answers (row 2, class 0)
    assert idx(decide("deebert_entropy", logits, entropy_threshold=0.5, test_last_offramp=False)) == (2, 2, 0)


def test_deebert_single_exit():
    # rows = 1 → final row 0; rows = 2 (off-ramp L + final): True tests row 0, False tests nothing
    assert idx(decide("deebert_entropy", one(CONF1), entropy_threshold=0.5)) == (0, 0, 1)
    assert idx(decide("deebert_entropy", one(CONF1, CONF), entropy_threshold=0.5)) == (0, 0, 1)
    assert idx(decide("deebert_entropy", one(CONF1, CONF), entropy_threshold=0.5, test_last_offramp=False)) \
        == (1, 1, 0)


def test_deebert_per_layer_thresholds():
    # S = [0.01, 0.8] for off-ramps 1, 2: row 0 CONF (H 0.04 ≥ 0.01 no), row 1 UNSURE (H 0.6919 < 0.8 yes) → row 1
    assert idx(decide("deebert_entropy", one(CONF, UNSURE, CONF1), entropy_threshold=[0.01, 0.8])) == (1, 1, 0)
    with pytest.raises(EEBenchError, match="entropy_threshold"):
        decide("deebert_entropy", one(CONF, UNSURE, UNSURE, CONF1), entropy_threshold=[0.01, 0.8])


# --------------------------------------------------------------------------------------------------------------
# BERxiT (§5(c)): off-ramps 1..L−1 tested, off-ramp L (row R-2) never
# --------------------------------------------------------------------------------------------------------------

def test_berxit_entropy_never_tests_layer_l():
    # same rows as DeeBERT's last-off-ramp case: off-ramp L (row 1) is confident but never tested → final row 2
    assert idx(decide("berxit_entropy", one(UNSURE, CONF1, CONF), entropy_threshold=0.5)) == (2, 2, 0)
    # off-ramp 1 confident → row 0; tie at S is strict
    assert idx(decide("berxit_entropy", one(CONF1, UNSURE, CONF), entropy_threshold=0.5)) == (0, 0, 1)
    assert idx(decide("berxit_entropy", one(SAT, UNSURE, CONF1), entropy_threshold=0.0)) == (2, 2, 1)
    # rows = 2: only off-ramp L, never tested → final
    assert idx(decide("berxit_entropy", one(CONF1, CONF), entropy_threshold=0.5)) == (1, 1, 0)


def lte(*u):
    return {"lte_outputs": torch.tensor(u, dtype=torch.float32).unsqueeze(1)}


def test_berxit_lte_error_below():
    # u = 0.3, 0.05, 0.01 at off-ramps 1..3 (rows 0..2), final row 3; τ = 0.2: u < τ first at row 1
    logits = one(TIE, CONF1, CONF, CONF)
    assert idx(decide("berxit_lte", logits, lte(0.3, 0.05, 0.01), lte_th=0.2)) == (1, 1, 1)
    # only off-ramp L (row 2) has u < τ: never tested → final row 3
    assert idx(decide("berxit_lte", logits, lte(0.3, 0.5, 0.01), lte_th=0.2)) == (3, 3, 0)
    # the entropy does not matter: LTE says "wrong" (u = 0.9) at confident rows → no exit
    assert idx(decide("berxit_lte", one(CONF, CONF, CONF, CONF1), lte(0.9, 0.9, 0.0), lte_th=0.2)) == (3, 3, 1)


def test_berxit_lte_tie_strict_and_zero_threshold():
    # u = τ = 0.25 exactly: 0.25 < 0.25 False → the next off-ramp (u 0.125 < 0.25) → row 1
    assert idx(decide("berxit_lte", one(TIE, CONF1, CONF, CONF), lte(0.25, 0.125, 0.0), lte_th=0.25)) == (1, 1, 1)
    # τ = 0 ("record" mode): u ≥ 0, never < 0 → final
    assert idx(decide("berxit_lte", one(TIE, CONF1, CONF, CONF), lte(0.0, 0.0, 0.0), lte_th=0.0)) == (3, 3, 0)


def test_berxit_lte_direction_certainty_above():
    # paper semantics: certainty c = 1 − u must be > τ. u = 0.3, 0.05 → c = 0.7, 0.95; τ = 0.8 → row 1
    logits = one(TIE, CONF1, CONF, CONF)
    assert idx(decide("berxit_lte", logits, lte(0.3, 0.05, 0.0), lte_th=0.8, lte_semantics="certainty_above")) \
        == (1, 1, 1)
    # the inverted reading with the same τ = 0.8: u < 0.8 already at row 0 → exit row 0
    assert idx(decide("berxit_lte", logits, lte(0.3, 0.05, 0.0), lte_th=0.8)) == (0, 0, 0)
    # strict tie in paper terms: u = 0.25 → c = 0.75 (exact), τ = 0.75: 0.75 > 0.75 False; next c = 0.875 → row 1
    assert idx(decide("berxit_lte", logits, lte(0.25, 0.125, 0.0), lte_th=0.75, lte_semantics="certainty_above")) \
        == (1, 1, 1)


def test_berxit_lte_per_layer_thresholds():
    # τ per off-ramp: [0.1, 0.5, 0.9] (one per internal row) or [0.1, 0.5] (one per tested row): u = 0.3, 0.4 →
    # row 0: 0.3 < 0.1 no; row 1: 0.4 < 0.5 yes → row 1
    logits = one(TIE, CONF1, CONF, CONF)
    for th in ([0.1, 0.5, 0.9], [0.1, 0.5]):
        assert idx(decide("berxit_lte", logits, lte(0.3, 0.4, 0.0), lte_th=th)) == (1, 1, 1)
    with pytest.raises(EEBenchError, match="lte_th"):
        decide("berxit_lte", logits, lte(0.3, 0.4, 0.0), lte_th=[0.1])


def test_berxit_lte_input_errors():
    logits = one(TIE, CONF1, CONF)
    with pytest.raises(EEBenchError, match="lte_outputs"):
        decide("berxit_lte", logits, lte_th=0.2)
    with pytest.raises(EEBenchError, match="lte_outputs"):
        decide("berxit_lte", logits, lte(0.1, 0.1, 0.1), lte_th=0.2)  # 3 rows of LTE for 2 off-ramps
    with pytest.raises(EEBenchError, match="lte_th"):
        build_policy("berxit_lte")  # no official default: must be given
    with pytest.raises(EEBenchError, match="lte_semantics"):
        build_policy("berxit_lte", lte_th=0.2, lte_semantics="above")


# --------------------------------------------------------------------------------------------------------------
# PABEE (§6(c)): every row is a classifier, the last is the final one
# --------------------------------------------------------------------------------------------------------------

def test_pabee_patience_zero_is_full_model():
    # t = 0 (default): the final classifier, even though all rows agree from the start
    assert idx(decide("pabee_patience", one(CONF, CONF, CONF, CONF1))) == (3, 3, 1)
    assert idx(decide("pabee_patience", one(CONF, CONF, CONF, CONF1), patience=0)) == (3, 3, 1)


def test_pabee_counter_starts_at_zero():
    # argmaxes 0,0,… → counters 0,1,…; t = 1 → row 1 (layer 2 = t + 1), never row 0
    assert idx(decide("pabee_patience", one(CONF, UNSURE, CONF1, CONF1), patience=1)) == (1, 1, 0)
    # t = 3: needs 4 identical consecutive predictions → argmaxes 0,0,0,0,1 → counters 0,1,2,3 → row 3
    assert idx(decide("pabee_patience", one(CONF, CONF, CONF, CONF, CONF1), patience=3)) == (3, 3, 0)


def test_pabee_counter_reset():
    # argmaxes 0,0,1,1,1,0 → counters 0,1,0,1,2,0; t = 2 → row 4
    rows = [CONF, CONF, CONF1, CONF1, CONF1, CONF]
    assert idx(decide("pabee_patience", one(*rows), patience=2)) == (4, 4, 1)


def test_pabee_patience_never_reached():
    # argmaxes alternate 0,1,0,1 → counters all 0; t = 1 → final row 3
    assert idx(decide("pabee_patience", one(CONF, CONF1, CONF, CONF1), patience=1)) == (3, 3, 1)
    # t ≥ L (rows): counters reach at most rows−1 = 2 → never fires → final row 2
    assert idx(decide("pabee_patience", one(CONF, CONF, CONF), patience=3)) == (2, 2, 0)


def test_pabee_single_exit():
    # rows = 1: counter 0 ≠ 1 → row 0; rows = 2 with agreement, t = 1 → counter 1 at row 1
    assert idx(decide("pabee_patience", one(CONF1), patience=1)) == (0, 0, 1)
    assert idx(decide("pabee_patience", one(CONF1, CONF1), patience=1)) == (1, 1, 1)


def vals(*v):
    return torch.tensor(v, dtype=torch.float32).reshape(-1, 1, 1)


def test_pabee_regression():
    # ŷ = 1.0, 1.0625, 1.125, 2.0, 3.0; δ = 0.1: counters 0, 1 (|Δ| 0.0625 < δ), 2 → t = 2 exits at row 2 (1.125)
    d = decide("pabee_patience_regression", vals(1.0, 1.0625, 1.125, 2.0, 3.0), patience=2, regression_threshold=0.1)
    assert idx(d) == (2, 2, 1.125)
    assert d.output.shape == (1, 1)
    # strict: |Δ| = 0.5 = δ exactly → 0.5 < 0.5 False → counter stays 0 → final row 2, value 2.0
    d = decide("pabee_patience_regression", vals(1.0, 1.5, 2.0), patience=1, regression_threshold=0.5)
    assert idx(d) == (2, 2, 2.0)
    # default δ = 0 never counts: identical values, t = 1 → final
    assert idx(decide("pabee_patience_regression", vals(1.0, 1.0, 1.0, 4.0), patience=1)) == (3, 3, 4.0)


def test_pabee_regression_and_classification_are_not_mixed():
    with pytest.raises(EEBenchError, match="regression"):
        decide("pabee_patience", vals(1.0, 1.0), patience=1)
    with pytest.raises(EEBenchError, match="regression"):
        decide("pabee_patience_regression", one(CONF, CONF), patience=1)


# --------------------------------------------------------------------------------------------------------------
# PCEE-BERT (§7(c)): every row is a classifier, the last is the final one
# --------------------------------------------------------------------------------------------------------------

def test_pcee_patience_zero_is_full_model():
    # patience 0 (default): the final classifier's logits, no ensemble even with do_ensemble = 1 (default)
    logits = one(CONF, CONF, UNSURE)
    d = decide("pcee_bert", logits)
    assert idx(d) == (2, 2, 0)
    assert torch.equal(d.output, logits[2])


def test_pcee_layer_one_counts_and_no_agreement():
    # C = 2, ln C = ln 2. ĥ(CONF) = 0.0402/0.693 = 0.058 < τ = 0.2 → layer 1 counts: patience 1 → row 0
    assert idx(decide("pcee_bert", one(CONF, UNSURE, UNSURE), patience=1, exiting_threshold=0.2, do_ensemble=0)) \
        == (0, 0, 0)
    # confident layers with different classes (0 then 1), patience 2 → counters 1,2 → row 1, class 1
    assert idx(decide("pcee_bert", one(CONF, CONF1, UNSURE), patience=2, exiting_threshold=0.2, do_ensemble=0)) \
        == (1, 1, 1)


def test_pcee_counter_reset_and_never_reached():
    # ĥ: C 0.058, U 0.998, C, C1 → counters 1,0,1,2; patience 2 → row 3
    assert idx(decide("pcee_bert", one(CONF, UNSURE, CONF, CONF1, UNSURE), patience=2, do_ensemble=0)) == (3, 3, 1)
    # C,U,C,U,U → counters 1,0,1,0,0 → never 2 → final row 4
    assert idx(decide("pcee_bert", one(CONF, UNSURE, CONF, UNSURE, UNSURE), patience=2, do_ensemble=0)) == (4, 4, 0)


def test_pcee_tie_is_strict():
    # SAT: ĥ = 0 exactly; τ = 0 → 0 < 0 False → counter 0 → final
    assert idx(decide("pcee_bert", one(SAT, SAT, CONF1), patience=1, exiting_threshold=0.0, do_ensemble=0)) \
        == (2, 2, 1)
    # τ = UNSURE's own normalized entropy → not < → no count; row 1 (CONF1) counts → patience 1 exits at row 1
    tau = ent(UNSURE) / math.log(2)
    assert idx(decide("pcee_bert", one(UNSURE, CONF1, CONF), patience=1, exiting_threshold=tau, do_ensemble=0)) \
        == (1, 1, 1)


def test_pcee_normalized_vs_raw_entropy():
    # C = 4, row [0, 0, −200, −200]: H = ln 2 = 0.693 nats, ĥ = ln 2 / ln 4 = 0.5. τ = 0.6:
    # normalized 0.5 < 0.6 counts → patience 1 exits at row 0; raw 0.693 < 0.6 does not → final row 1
    half = [0.0, 0.0, -200.0, -200.0]
    final = [0.0, 0.0, 9.0, 0.0]
    assert idx(decide("pcee_bert", one(half, final), patience=1, exiting_threshold=0.6, do_ensemble=0)) == (0, 0, 0)
    assert idx(decide("pcee_bert", one(half, final), patience=1, exiting_threshold=0.6, do_ensemble=0,
                      entropy="raw")) == (1, 1, 2)


def mean_softmax(logits, rows):
    return torch.softmax(logits[rows], dim=-1).mean(dim=0)


def test_pcee_ensemble_includes_previous_non_confident():
    # edge_ensemble_includes_prev_nonconfident. Rows C, U, C, C1 | final U; patience 2 → counters 1,0,1,2 → row 3.
    # do_ensemble=1 (argparse default): the list was reset to [p1] at row 1 (counter 0), then p2, p3 appended →
    # output = mean softmax of rows 1, 2, 3
    logits = one(CONF, UNSURE, CONF, CONF1, UNSURE)
    d = decide("pcee_bert", logits, patience=2)
    assert int(d.exit_index[0]) == 3 and int(d.compute_index[0]) == 3
    assert torch.allclose(d.output, mean_softmax(logits, [1, 2, 3]))
    # mean of p1 = (.525, .475), p2 = (.9933, .0067), p3 = (.0067, .9933) → class 0 (0.508) although row 3 says 1
    assert int(d.prediction[0]) == 0
    # do_ensemble=2: every layer computed, rows 0..3
    d = decide("pcee_bert", logits, patience=2, do_ensemble=2)
    assert torch.allclose(d.output, mean_softmax(logits, [0, 1, 2, 3]))
    # do_ensemble=0: the exit's logits
    d = decide("pcee_bert", logits, patience=2, do_ensemble=0)
    assert torch.equal(d.output, logits[3]) and int(d.prediction[0]) == 1


def test_pcee_ensemble_streak_from_layer_one_and_fallback():
    # rows C, C1 | …: counters 1, 2 → exit row 1; no non-confident layer before it → mean of rows 0, 1 only
    logits = one(CONF, CONF1, UNSURE, UNSURE)
    d = decide("pcee_bert", logits, patience=2)
    assert torch.allclose(d.output, mean_softmax(logits, [0, 1]))
    # no exit: rows C, U, C | final C1 with patience 3 → counters 1,0,1,2 → final row 3; the official loop ends
    # with the list [p1, p2, p3] (reset at row 1) → mean of rows 1..3
    logits = one(CONF, UNSURE, CONF, CONF1)
    d = decide("pcee_bert", logits, patience=3)
    assert int(d.exit_index[0]) == 3
    assert torch.allclose(d.output, mean_softmax(logits, [1, 2, 3]))


def test_pcee_single_exit():
    # rows = 1: patience 1 and a confident layer → counter 1 → row 0; ensemble of that row alone = its softmax
    logits = one(CONF1)
    d = decide("pcee_bert", logits, patience=1)
    assert idx(d) == (0, 0, 1)
    assert torch.allclose(d.output, torch.softmax(logits[0], dim=-1))


# --------------------------------------------------------------------------------------------------------------
# parameter and input validation: one clear EEBenchError each
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,params,match", [
    ("pabee_patience", {"patience": -1}, "patience"),
    ("pcee_bert", {"patience": -1}, "patience"),  # −1 is PCEE's "evaluate every layer" mode, not a policy
    ("lgvit_patience", {"patience": 1.5}, "patience"),
    ("lgvit_pcee", {"patience": -2}, "patience"),
    ("pcee_bert", {"do_ensemble": 3}, "do_ensemble"),
    ("pcee_bert", {"entropy": "bits"}, "entropy"),
    ("sdn_confidence", {}, "q"),
    ("sdn_confidence", {"q": 0.5, "fallback": "last"}, "fallback"),
    ("deebert_entropy", {"test_last_offramp": "yes"}, "test_last_offramp"),
    ("deebert_entropy", {"entropy_threshold": "0.3"}, "entropy_threshold"),
    ("lgvit_confidence", {"threshold": None}, "threshold"),
    ("lgvit_confidence", {"thresh": 0.5}, "unknown parameter"),
    ("pabee_patience_regression", {"regression_threshold": float("nan")}, "regression_threshold"),
])
def test_bad_parameters(name, params, match):
    with pytest.raises(EEBenchError, match=match):
        build_policy(name, **params)


@pytest.mark.parametrize("bad", [torch.zeros(3, 5), torch.zeros(2, 3, 4, 5), [[[0.0, 1.0]]], torch.zeros(0, 2, 3)])
def test_bad_logits(bad):
    with pytest.raises(EEBenchError, match="policy"):
        build_policy("lgvit_confidence").decide(bad)


def test_one_class_is_rejected_for_classification():
    with pytest.raises(EEBenchError, match="class"):
        build_policy("sdn_confidence", q=0.5).decide(torch.zeros(3, 2, 1))
