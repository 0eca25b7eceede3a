"""An eebench policy at one operating point → the plain-data exit rule the standalone runner checks row by row
(``run_early_exit.ExitCheck``).

What depends on the model's rows (how many rows a policy tests, per-row and per-layer thresholds) is resolved here
by the policy's own code, so the runner holds no copy of those edge cases: it only compares a row's score with the
resolved threshold, or counts a run. The runner's decisions are tested against ``policy.decide`` on random logits.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..errors import fail
from ..policies import Policy
from ..policies.berxit import layer_thresholds, tested_rows
from ..policies.deebert import EntropyExit


def _floats(t: torch.Tensor) -> list[float]:
    """Per-row thresholds as the policy compares them (float32), written as exact decimals of those values."""
    return [float(v) for v in t.reshape(-1).float().tolist()]


def _entropy(policy: EntropyExit, rows: int) -> dict[str, Any]:
    tested = max(policy.tested_rows(rows), 0)
    return {"kind": "entropy_below", "tested": tested, "thresholds": _floats(policy.thresholds(rows, tested, "cpu"))}


def _lgvit_score(kind: str) -> Callable[[Policy, int], dict[str, Any]]:
    def rule(policy: Policy, rows: int) -> dict[str, Any]:
        return {"kind": kind, "tested": rows - 1, "thresholds": _floats(torch.full((rows - 1,), policy.threshold))}

    return rule


def _sdn(policy: Policy, rows: int) -> dict[str, Any]:
    return {"kind": "confidence_at_least", "tested": rows - 1, "fallback": policy.fallback,
            "thresholds": _floats(torch.full((rows - 1,), policy.q))}


def _berxit_lte(policy: Policy, rows: int) -> dict[str, Any]:
    tested = max(tested_rows(policy, rows), 0)
    return {"kind": "lte", "tested": tested, "semantics": policy.lte_semantics,
            "thresholds": _floats(layer_thresholds(policy, "lte_th", rows, tested, "cpu"))}


def _pabee(policy: Policy, rows: int) -> dict[str, Any]:
    rule = {"kind": "agreement_run", "tested": rows, "patience": int(policy.patience), "offset": 0,
            "zero_runs_full": True}
    if policy.regression:
        rule.update(regression=True, tolerance=_floats(torch.tensor([policy.regression_threshold]))[0])
    return rule


def _lgvit_patience(policy: Policy, rows: int) -> dict[str, Any]:
    return {"kind": "agreement_run", "tested": rows - 1, "patience": int(policy.patience), "offset": 1,
            "zero_runs_full": False}


def _pcee(policy: Policy, rows: int) -> dict[str, Any]:
    return {"kind": "entropy_run", "tested": rows, "patience": int(policy.patience),
            "threshold": _floats(torch.tensor([policy.exiting_threshold]))[0],
            "normalized": policy.entropy == "normalized", "ensemble": int(policy.do_ensemble), "zero_runs_full": True}


def _lgvit_pcee(policy: Policy, rows: int) -> dict[str, Any]:
    return {"kind": "entropy_run", "tested": rows - 1, "patience": int(policy.patience),
            "threshold": _floats(torch.tensor([policy.threshold]))[0], "normalized": False, "ensemble": 0,
            "zero_runs_full": False}


RULES: dict[str, Callable[[Policy, int], dict[str, Any]]] = {
    "deebert_entropy": _entropy,
    "berxit_entropy": _entropy,
    "costeff_entropy": _entropy,
    "lgvit_entropy": _lgvit_score("entropy_below"),
    "lgvit_confidence": _lgvit_score("confidence_above"),
    "sdn_confidence": _sdn,
    "berxit_lte": _berxit_lte,
    "pabee_patience": _pabee,
    "pabee_patience_regression": _pabee,
    "lgvit_patience": _lgvit_patience,
    "pcee_bert": _pcee,
    "lgvit_pcee": _lgvit_pcee,
}


def supported() -> list[str]:
    return sorted(RULES)


def check_supported(name: str) -> None:
    if name not in RULES:
        raise fail(f"the standalone runner cannot check policy {name!r}",
                   f"export with one of: {', '.join(supported())}")


def compile_rule(policy: Policy, rows: int, classes: int, lte: bool = False) -> dict[str, Any]:
    """The rule of ``policy`` on a model with ``rows`` rows. The policy first decides once on zero logits, so a
    parameter that does not fit the rows (a list of the wrong length, ``exit_layers``) fails here, in one line."""
    name = policy.name
    check_supported(name)
    if type(policy).name != name or type(policy).__module__.split(".")[:2] != ["eebench", "policies"]:
        raise fail(f"policy {name!r} is not eebench's own", f"export with one of: {', '.join(supported())}")
    extra = {"lte_outputs": torch.zeros(rows - 1, 1)} if lte and name == "berxit_lte" else {}
    if name == "berxit_lte" and not lte:
        raise fail("policy 'berxit_lte' needs a model with a learning-to-exit module", "export with berxit_entropy")
    policy.decide(torch.zeros(rows, 1, classes), **extra)
    return {"policy": name, **RULES[name](policy, rows)}
