"""What a checkpoint records about its model's shape beyond the job spec, and how loading rebuilds it.

A method whose training changes a model's shape (COST-EFF narrows heads, FFN layers and the word embedding) registers
a hook under the checkpoint key it writes. A stage's checkpoint carries every hook's record (``shape_record``), and
whoever loads one (the next stage's init, a teacher, evaluation, costs, latency) rebuilds the freshly built model
first (``apply_recorded_shape``). Shared code so never learns which methods reshape a model: the next one adds a hook,
not a branch. The built-in hooks are registered at the end of this module; a plugin file registers its own with
``register_shape_hook``.
"""
from __future__ import annotations

from typing import Any, Protocol

from .registry import Registry


class ShapeHook(Protocol):
    def record(self, model) -> Any | None:
        """The value a checkpoint of ``model`` saves under the hook's key; None: the shape its job builds."""

    def apply(self, model, value: Any, where: str) -> None:
        """Rebuild a freshly built model at ``value`` before its weights load (``where`` names the file in errors)."""


SHAPE_HOOKS: Registry[ShapeHook] = Registry("shape_hooks")


def register_shape_hook(key: str):
    return SHAPE_HOOKS.register(key)


def shape_record(model) -> dict[str, Any]:
    """What a checkpoint of ``model`` adds: each hook's record under its key, where it has one."""
    records = {key: SHAPE_HOOKS.get(key).record(model) for key in SHAPE_HOOKS.names()}
    return {key: value for key, value in records.items() if value is not None}


def apply_recorded_shape(model, ckpt: dict[str, Any], where: str) -> None:
    """Rebuild ``model`` at every shape the checkpoint ``ckpt`` records, before its weights load."""
    for key in SHAPE_HOOKS.names():
        if ckpt.get(key) is not None:
            SHAPE_HOOKS.get(key).apply(model, ckpt[key], where)


from .slender.prune import SlenderShape  # noqa: E402  (the built-in hooks)

register_shape_hook("slender_shape")(SlenderShape())
