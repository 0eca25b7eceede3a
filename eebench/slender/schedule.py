"""COST-EFF's pruning-event schedule (spec methods §7.2 step 3).

Every ``prune_step = PRUNE_RATE × steps_per_epoch`` training steps one event prunes one head per layer, until h heads
are left: A−h events (one, if only FFN/rank shrink). FFN width and embedding rank follow linearly with the event
count. ``prune_rate: auto`` (default) spreads the events over the whole stage — prune_step = total steps // events —
which is what the shipped epoch tables do (EPOCHs_P ≈ (A−h)·PRUNE_RATE: the last event lands on the final step); a
number is the official rate as given. Events a too-short stage never reaches happen at its end (``late``).
Within each period the first REPR_PROP of the steps distil hidden states only, the rest predictions + hidden states.

Learning rate (``period``), as ``do_train_1t`` and ``iterative_pruning`` of the official run_glue_costeff.py set it,
every schedule HF's get_linear_schedule_with_warmup (the first step of a warm-up trains at LR 0), warm-up proportion
0.1 (run.sh):
- before the first event: the stage's AdamW at the base LR, warm-up int(0.1·prune_step) steps, then linear decay to
  0 at the end of the whole pruning run (``num_training_steps=max_optimization_steps``, the run's total steps). The
  decay never completes: the first event replaces the schedule;
- after event k: a fresh AdamW at base·(1+restore)^k — the base LR scaled, not the decayed LR restored (the decayed
  value is only logged) — warm-up max(10, int(0.1·prune_step)), linear decay to 0 over prune_step steps (its
  ``remain_steps`` is computed but unused), so each later period ends near LR 0 when the next event comes.
Spec methods §7.2 gives the second rule alone; issue 22 the first alone; each holds for its periods.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import fail

WARMUP_PROPORTION = 0.1  # run.sh's --warmup_proportion, every stage


@dataclass
class Event:
    index: int  # 1-based
    step: int  # training steps done before it
    heads: int
    ffn: int
    rank: int


@dataclass
class PruneSchedule:
    full_heads: int
    full_ffn: int
    hidden: int
    target: dict
    steps_per_epoch: int
    epochs: int
    prune_rate: float | str = "auto"
    repr_prop: float = 0.7
    lr: float = 1e-5
    restore: float = 0.12

    def __post_init__(self):
        if not 0.0 <= float(self.repr_prop) <= 1.0:
            raise fail(f"slenderise option repr_prop={self.repr_prop!r} is not in [0, 1]", "use e.g. 0.7 (0.5 on MRPC/CoLA)")
        if self.prune_rate != "auto" and (isinstance(self.prune_rate, bool) or not isinstance(self.prune_rate, (int, float))
                                          or self.prune_rate <= 0):
            raise fail(f"slenderise option prune_rate={self.prune_rate!r} is not valid", "give auto or a positive number")

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def num_events(self) -> int:
        n = self.full_heads - self.target["heads"]
        shrinks = self.target["ffn"] < self.full_ffn or self.target["rank"] < self.hidden
        return max(n, 1 if shrinks else 0)

    @property
    def prune_step(self) -> int:
        if self.num_events == 0:
            return max(self.total_steps, 1)
        if self.prune_rate == "auto":
            return max(self.total_steps // self.num_events, 1)
        return max(int(float(self.prune_rate) * self.steps_per_epoch), 1)

    def events(self) -> list[Event]:
        n, t = self.num_events, self.target
        out = []
        for k in range(1, n + 1):
            out.append(Event(k, k * self.prune_step, self.full_heads - min(k, self.full_heads - t["heads"]),
                             round(self.full_ffn - (self.full_ffn - t["ffn"]) * k / n),
                             round(self.hidden - (self.hidden - t["rank"]) * k / n)))
        return out

    def lr_after(self, events_done: int) -> float:
        return self.lr * (1.0 + self.restore) ** events_done

    def warmup(self) -> int:
        return max(10, int(WARMUP_PROPORTION * self.prune_step))

    def period(self, events_done: int) -> tuple[float, int, int]:
        """(learning rate, schedule length, warm-up steps) of the optimiser that runs after ``events_done`` events."""
        if events_done == 0:
            return self.lr, max(self.total_steps, 1), int(WARMUP_PROPORTION * self.prune_step)
        return self.lr_after(events_done), self.prune_step, self.warmup()

    def hidden_only(self, step: int) -> bool:
        """Whether training step ``step`` (0-based, counted over the stage) distils hidden states only."""
        period_start = (step // self.prune_step) * self.prune_step if self.num_events else 0
        return step - period_start < math.ceil(self.repr_prop * self.prune_step) if self.num_events else False
