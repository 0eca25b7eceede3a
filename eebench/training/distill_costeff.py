"""COST-EFF's distillation losses (spec methods §7.2–§7.3), against a frozen teacher model loaded from another stage's
checkpoint (the stage's ``teacher:``): the fine-tuned backbone for the teaching assistant (TA), the multi-exit TA for
the slender student. The teacher sees the very batch the student sees (a forward pre-hook records it), stays in eval
mode and is not part of the loss's state (checkpoints keep only the student).

Notation: z_i / t_i the student's / teacher's logits at exit i (1..L−1), z_L / t_L the final classifiers';
softCE(z, t) = −Σ_c softmax(t)_c · log softmax(z)_c, batch mean, T = 1 and no T² factor (the official code);
H = the masked MSE over all L+1 hidden states (embedding output and every block).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import fail
from .losses import ExitLoss, register_loss, task_loss


def soft_ce(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    return -(F.softmax(teacher / temperature, -1) * F.log_softmax(student / temperature, -1)).sum(-1).mean()


def masked_hidden_mse(student: list[torch.Tensor], teacher: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Σ_layers mean_batch [Σ_tokens mask · mean_d (s − t)² / #real tokens]: padding zeroed (spec methods §7.2)."""
    mask = mask.to(student[0].dtype)
    count = mask.sum(1).clamp_min(1.0)
    return sum((((s - t) ** 2).mean(-1) * mask).sum(1).div(count).mean() for s, t in zip(student, teacher))


def padded_hidden_mse(student: list[torch.Tensor], teacher: list[torch.Tensor], mask: torch.Tensor | None,
                      max_seq_length: int) -> torch.Tensor:
    """Σ_layers Σ_{real tokens, d} (s − t)² / (B · max_seq_length · D): the Taylor pass's hidden term (spec methods
    §7.3). The official code zeroes padded positions of student and teacher and takes a plain mean over inputs padded
    to ``max_seq_length``; batches here are padded to their own longest sample, so the sum runs over the real tokens
    and the divisor is the fixed padded length, which gives the official value whatever the batch's padding."""
    total = 0
    for s, t in zip(student, teacher):
        sq = (s - t) ** 2
        if mask is not None:
            sq = sq * mask.to(sq.dtype).unsqueeze(-1)
        total = total + sq.sum() / (s.shape[0] * int(max_seq_length) * s.shape[-1])
    return total


class TeacherLoss(ExitLoss):
    """Base of the losses that read a frozen teacher (attached by the training loop before the first step)."""

    needs_hidden = True
    needs_teacher_model = True

    def __init__(self, model, **params):
        super().__init__(model, **params)
        self._teacher: list = []
        self._inputs = None
        model.register_forward_pre_hook(self._record, with_kwargs=False)

    def _record(self, module, args):
        self._inputs = args[0]

    def attach_teacher(self, teacher) -> None:
        teacher.requires_grad_(False)
        teacher.eval()
        self._teacher[:] = [teacher]

    def teacher_out(self):
        if not self._teacher:
            raise fail(f"loss {self.name!r} needs a teacher model", "give the stage a teacher: (e.g. backbone:finetune)")
        with torch.no_grad():
            return self._teacher[0](self._inputs, with_hidden=True)

    def mask(self):
        return self._inputs["attention_mask"] if isinstance(self._inputs, dict) else None


@register_loss
class CostEffHidden(TeacherLoss):
    """TA phase a: hidden-state distillation only, H (student = full-width multi-exit BERT, teacher = the backbone)."""
    name = "costeff_hidden"

    def forward(self, out, labels):
        ref = self.teacher_out()
        return masked_hidden_mse(out.hidden_states, ref.hidden_states, self.mask())


@register_loss
class CostEffPrediction(TeacherLoss):
    """TA phase b, exactly as the official code writes it:
    ½·[softCE(z_L/T, t_L/T) + Σ_i softCE(z_i/T, t_L/T) + (Σ_i CE(z_i, y) + CE(z_L, y))], T = 1 by default."""
    name = "costeff_prediction"
    options = {"temperature": 1.0}
    needs_hidden = False

    def forward(self, out, labels):
        t = self.teacher_out().final_logits
        temp = float(self.params["temperature"])
        exits, final = self.ce_terms(out, labels)
        soft = soft_ce(out.final_logits, t, temp) + sum(soft_ce(out.exit_logits[i], t, temp) for i in self.trained)
        return 0.5 * (soft + sum(exits) + final)


@register_loss
class CostEffDistill(TeacherLoss):
    """The slender student's loss (spec methods §7.3): [softCE(z_L, t_L) + Σ_i softCE(z_i, t_i)] + H, each exit
    distilled from the TA's exit at the same depth, no hard-label term. ``prediction``/``hidden`` switch the terms
    (the pruning stage's phase logic flips them per step; recovery: hidden-only, then both)."""
    name = "costeff_distill"
    options = {"prediction": True, "hidden": True, "temperature": 1.0}

    def __init__(self, model, **params):
        super().__init__(model, **params)
        self.use_prediction, self.use_hidden = bool(self.params["prediction"]), bool(self.params["hidden"])

    def forward(self, out, labels):
        ref = self.teacher_out()
        loss = out.final_logits.new_zeros(())
        if self.use_prediction:
            temp = float(self.params["temperature"])
            loss = loss + soft_ce(out.final_logits, ref.final_logits, temp) + sum(
                soft_ce(out.exit_logits[i], ref.exit_logits[i], temp) for i in self.trained)
        if self.use_hidden:
            loss = loss + masked_hidden_mse(out.hidden_states, ref.hidden_states, self.mask())
        return loss


@register_loss
class CostEffTaylor(TeacherLoss):
    """The Taylor-importance pass's loss (spec methods §7.3): 0.9·[softCE(z_L,t_L) + Σ_i softCE(z_i,t_i)]
    + 0.1·[Σ_i CE(z_i,y) + CE(z_L,y)] + the hidden-state MSE over inputs padded to ``max_seq_length`` (the data
    set's; ``padded_hidden_mse``) — every exit's loss, so importance reflects every exit, not only the last."""
    name = "costeff_taylor"
    options = {"soft_weight": 0.9, "hard_weight": 0.1, "max_seq_length": None}

    def __init__(self, model, **params):
        super().__init__(model, **params)
        n = self.params["max_seq_length"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise fail(f"loss {self.name!r} option max_seq_length={n!r} is not a positive integer",
                       "pass the data set's max_seq_length (the length the official code pads every input to)")

    def forward(self, out, labels):
        ref = self.teacher_out()
        soft = soft_ce(out.final_logits, ref.final_logits) + sum(
            soft_ce(out.exit_logits[i], ref.exit_logits[i]) for i in self.trained)
        exits, final = self.ce_terms(out, labels)
        return (float(self.params["soft_weight"]) * soft + float(self.params["hard_weight"]) * (sum(exits) + final)
                + padded_hidden_mse(out.hidden_states, ref.hidden_states, self.mask(), self.params["max_seq_length"]))


__all__ = ["soft_ce", "masked_hidden_mse", "padded_hidden_mse", "task_loss"]
