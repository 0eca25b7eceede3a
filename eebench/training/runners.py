"""Stage kinds: which code trains a stage.

A stage is the loop's (``loop.train_stage``: parameters, loss, hyper-parameters) unless it sets the option of a
registered stage kind, whose runner then trains it: COST-EFF's ``slenderise:`` (its pruning run). The loop looks
the kind up here and never imports a method's package, so a method with a training procedure of its own adds a
runner, not a branch. A runner takes the arguments of ``loop.train_stage``, writes the same checkpoint (plus
``checkpoint_shape.shape_record``) and exit-logit cache, and returns the per-epoch log. The built-in kinds are
registered at the end of this module; a plugin file registers its own with ``register_stage_runner``.
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import fail
from ..registry import Registry

STAGE_RUNNERS: Registry[Callable[..., list]] = Registry("stage_runners")


def register_stage_runner(option: str):
    """Register a runner for the stages that set ``option`` (a stage key, e.g. ``slenderise``)."""
    return STAGE_RUNNERS.register(option)


def runner_for(stage: dict[str, Any]) -> Callable[..., list] | None:
    """The runner of the kind whose option ``stage`` sets (None: the loop's own)."""
    kinds = [option for option in STAGE_RUNNERS.names() if stage.get(option)]
    if len(kinds) > 1:
        raise fail(f"stage {stage.get('name')!r} sets {', '.join(kinds)}: options of different stage kinds",
                   "keep one of them")
    return STAGE_RUNNERS.get(kinds[0]) if kinds else None


from ..slender.train import train_slender_stage  # noqa: E402  (the built-in kinds)

register_stage_runner("slenderise")(train_slender_stage)
