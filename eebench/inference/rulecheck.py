"""The batch-1 exit check in numpy (a runtime's ``exit_check = "rule"``): the policy at its operating point compiled
once into the plain rule an exported model is checked with (``export.rules``), then fed row by row by the exported
runner's ``ExitCheck``, the code a shipped export folder decides with.

Why it exists: the vectorised torch policy on the rows so far (``causal``) costs tens of microseconds per exit at
batch 1, which is most of a tiny model's segment; the compiled rule costs a few. It decides as the policy does: each
rule compares a row's score with the threshold the policy itself resolved for that row, or counts a run, and the
export tests check it against ``policy.decide`` for every registered policy. A policy the compiler does not know (a
plugin's) has no rule, and the loop checks it with the policy.
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

from ..errors import EEBenchError
from ..export.rules import compile_rule
from ..export.run_early_exit import ExitCheck
from ..policies import Decision, Policy

_CHECKS: dict[int, tuple[Any, dict[str, Any], tuple[int, int, bool], ExitCheck | None]] = {}


def rule_check(policy: Policy, rows: int, classes: int, lte: bool) -> ExitCheck | None:
    """The numpy check of ``policy`` on a model with ``rows`` rows, compiled once per policy object and parameters
    (compiling runs the policy once, far too slow per query); None where the policy has no compiled rule."""
    shape = (rows, classes, lte)
    hit = _CHECKS.get(id(policy))
    if hit is not None and hit[0]() is policy and hit[2] == shape and hit[1] == vars(policy):
        return hit[3]
    try:
        check = ExitCheck(compile_rule(policy, rows, classes, lte=lte), rows)
    except EEBenchError:
        check = None
    if len(_CHECKS) > 256:  # policies of a long sweep: forget the ones no longer alive
        for key in [k for k, v in _CHECKS.items() if v[0]() is None]:
            del _CHECKS[key]
    _CHECKS[id(policy)] = (weakref.ref(policy), dict(vars(policy)), shape, check)
    return check


def _sample(value: Any) -> np.ndarray:
    """The one sample of a batch-1 output, as numpy."""
    if torch.is_tensor(value):
        return value[0].detach().float().cpu().numpy()
    return np.asarray(value)[0]


def observe(check: ExitCheck, row: int, logits: Any, lte: Any | None) -> bool:
    """Row ``row``'s outputs (``[1, classes]`` logits, ``[1]`` learning-to-exit output) into the check; True once the
    answer is settled."""
    return check.observe(row, _sample(logits), None if lte is None else float(_sample(lte)))


def rule_decision(check: ExitCheck) -> Decision:
    """The settled answer as the ``Decision`` the policy returns for one sample (CPU tensors, made from numpy
    arrays: a tensor from a Python list costs several times more)."""
    answer = check.answer()
    pred = answer["prediction"]
    early = answer["is_early"]
    return Decision(exit_index=torch.from_numpy(np.array([answer["exit_index"]], dtype=np.int64)),
                    prediction=torch.from_numpy(np.array([pred], dtype=np.float32 if isinstance(pred, float)
                                                         else np.int64)),
                    compute_index=torch.from_numpy(np.array([answer["compute_index"]], dtype=np.int64)),
                    output=torch.from_numpy(np.asarray(answer["output"], dtype=np.float32).reshape(1, -1)),
                    is_early=None if early is None else torch.from_numpy(np.array([bool(early)])))
