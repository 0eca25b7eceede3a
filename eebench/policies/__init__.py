"""Exit policies: ``build_policy(name, **params).decide(logits, **extra)``."""
from __future__ import annotations

from typing import Any

from .base import POLICIES, Decision, Policy, register_policy  # noqa: F401
from . import berxit, costeff, deebert, lgvit, pabee, pcee, sdn  # noqa: F401  (importing a module registers its policies)


def build_policy(name: str, **params: Any) -> Policy:
    return POLICIES.get(name)(**params)


def policy_for_rows(name: str, params: dict[str, Any], row_layers: list[int]) -> Policy:
    """``build_policy`` for a model whose rows sit after blocks ``row_layers`` (final classifier last): a policy
    that declares ``exit_layers`` gets them (BERxiT decides which rows it tests from them)."""
    params = dict(params)
    if "exit_layers" in POLICIES.get(name).params and params.get("exit_layers") is None:
        params["exit_layers"] = [int(v) for v in row_layers]
    return build_policy(name, **params)
