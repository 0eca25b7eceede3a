"""Exit policies: ``build_policy(name, **params).decide(logits, **extra)``."""
from __future__ import annotations

from typing import Any

from .base import POLICIES, Decision, Policy, register_policy  # noqa: F401
from . import berxit, deebert, lgvit, pabee, pcee, sdn  # noqa: F401  (importing a module registers its policies)


def build_policy(name: str, **params: Any) -> Policy:
    return POLICIES.get(name)(**params)
