"""Training losses of every scheme, as one family: the schemes differ only in how exit losses are weighted, which
steps see which terms, and what is distilled (spec methods §2.2, §3.2–3.3).

Notation: CE_m is the cross-entropy of internal exit m (block ℓ_m), CE_L that of the final classifier (block L).
An exit placed after the last block is DeeBERT's/BERxiT's off-ramp L: the official codes never train it, so no loss
here includes its cross-entropy. A loss is an ``nn.Module`` because some carry state (the alternation counter) or
parameters (the paper's aligning module); both go into checkpoints so training resumes exactly.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import fail
from ..heads.base import from_grid, patch_tokens, to_grid
from ..heads.gah import reduce_tokens
from ..heads.glh import subsample_sequence
from ..registry import Registry

LOSSES: Registry[type["ExitLoss"]] = Registry("losses")


class ExitLoss(nn.Module):
    """Base: ``forward(out, labels) → scalar``. ``options`` declares the switches a recipe may set (with defaults)."""

    options: dict[str, Any] = {}
    fixed: dict[str, Any] = {}  # options a named variant pins (e.g. LGViT stage 1 = alternating, weighted, global)
    needs_teacher = False

    def __init__(self, model, **params: Any):
        super().__init__()
        unknown = set(params) - set(self.options)
        if unknown:
            raise fail(f"loss {self.name!r} got unknown option(s) {sorted(unknown)}",
                       f"its options are {sorted(self.options) or 'none'}")
        self.params = {**self.options, **params, **self.fixed}
        self.exit_layers = list(model.exit_layers)
        self.num_layers = model.backbone.num_layers
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # training forwards seen
        self.epoch, self.epochs = 1, 1
        # exits the losses train: all but an off-ramp after the last block (DeeBERT/BERxiT's untrained off-ramp L)
        self.trained = [i for i, layer in enumerate(self.exit_layers) if layer < self.num_layers]

    name = "base"

    def new_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the loop before each epoch (1-based): schedules and per-epoch parity read it."""
        self.epoch, self.epochs = epoch, epochs

    def ce_terms(self, out, labels):
        return ([task_loss(out.exit_logits[i], labels) for i in self.trained],
                task_loss(out.final_logits, labels))

    def mean_loss(self, out, labels):
        exits, final = self.ce_terms(out, labels)
        return (sum(exits) + final) / (len(exits) + 1)

    def weighted_loss(self, out, labels):
        """PABEE-style static weights: (Σ ℓ_m·CE_m + L·CE_L) / (Σ ℓ_m + L)."""
        exits, final = self.ce_terms(out, labels)
        layers = [self.exit_layers[i] for i in self.trained]
        num = sum(l * ce for l, ce in zip(layers, exits)) + self.num_layers * final
        return num / (sum(layers) + self.num_layers)

    def tick(self) -> int:
        """Return this training forward's index and advance the counter (only in training mode, as in the code)."""
        s = int(self.step)
        if self.training:
            self.step += 1
        return s


def register_loss(cls):
    return LOSSES.register(cls.name)(cls)


@register_loss
class FinalOnly(ExitLoss):
    """Plain fine-tuning: CE_L (the backbone row; DeeBERT stage 1)."""
    name = "final_only"

    def forward(self, out, labels):
        return task_loss(out.final_logits, labels)


@register_loss
class Normal(ExitLoss):
    """BranchyNet-style joint training: (Σ_m CE_m + CE_L) / (M + 1)."""
    name = "normal"

    def forward(self, out, labels):
        return self.mean_loss(out, labels)


@register_loss
class Weighted(ExitLoss):
    """Weighted exit losses. ``schedule: static`` is the LGViT port's ``weighted`` (Σ ℓ_m CE_m + L·CE_L)/(Σ ℓ_m + L).
    ``schedule: sdn`` is SDN's official schedule (spec baselines §3b): an un-normalised Σ_m τ_m(e)·CE_m + CE_L with
    τ_m(e) = min(C_m, 0.01 + e·C_m/E) over epochs e = 1..E; SDN's caps C are the exits' fractions of the network's
    compute (0.15…0.9), so on a transformer C_m = ℓ_m / L."""
    name = "weighted"
    options = {"schedule": "static"}

    def __init__(self, model, **params):
        super().__init__(model, **params)
        if self.params["schedule"] not in ("static", "sdn"):
            raise fail(f"weighted option schedule={self.params['schedule']!r} is not valid", "use static or sdn")

    def sdn_weights(self) -> list[float]:
        caps = [self.exit_layers[i] / self.num_layers for i in self.trained]
        return [min(c, 0.01 + self.epoch * c / self.epochs) for c in caps]

    def forward(self, out, labels):
        if self.params["schedule"] == "static":
            return self.weighted_loss(out, labels)
        exits, final = self.ce_terms(out, labels)
        return sum(w * ce for w, ce in zip(self.sdn_weights(), exits)) + final


@register_loss
class WeightedAverage(Weighted):
    """PABEE / PCEE-BERT: Σ_i i·CE_i / Σ_i i over layers i with a classifier, the final one included (weight L) —
    the static ``weighted`` formula, under the name the PABEE code gives it."""
    name = "weighted_average"
    options = {}
    fixed = {"schedule": "static"}


@register_loss
class ExitsOnly(ExitLoss):
    """DeeBERT stage 2: Σ_{i<L} CE(off-ramp i) — a plain sum, the final classifier excluded."""
    name = "exits_sum"

    def forward(self, out, labels):
        exits, _ = self.ce_terms(out, labels)
        return sum(exits)


@register_loss
class Alternating(ExitLoss):
    """BERxiT's alternating fine-tuning: even steps CE_L, odd steps the exits' losses.

    Official BERxiT (default): odd steps Σ_{i<L} CE_i + CE_L, a plain sum (``reduce: sum``), parity of the batch index
    within the epoch (``parity: epoch``). With ``lte: true`` (``alternate-lte``) both steps add the learning-to-exit
    MSE and the odd step drops CE_L. The LGViT port: ``reduce: mean`` (÷ (M+1)), ``parity: global`` (a counter over all
    training forwards); ``reduce: weighted`` is LGViT's stage 1.
    """
    name = "alternating"
    options = {"reduce": "sum", "parity": "epoch", "lte": False}

    def __init__(self, model, **params):
        super().__init__(model, **params)
        for key, allowed in [("reduce", ("sum", "mean", "weighted")), ("parity", ("epoch", "global"))]:
            if self.params[key] not in allowed:
                raise fail(f"alternating option {key}={self.params[key]!r} is not valid", f"use one of {allowed}")
        if self.params["lte"] and model.lte is None:
            raise fail("alternating with lte: true needs the learning-to-exit module", "set lte: true in the recipe")

    def new_epoch(self, epoch, epochs):
        super().new_epoch(epoch, epochs)
        if self.params["parity"] == "epoch":
            self.step.zero_()

    def odd_loss(self, out, labels):
        exits, final = self.ce_terms(out, labels)
        if self.params["reduce"] == "weighted":
            return self.weighted_loss(out, labels)
        if self.params["reduce"] == "mean":
            return (sum(exits) + final) / (len(exits) + 1)
        return sum(exits) + (0.0 if self.params["lte"] else final)

    def forward(self, out, labels):
        odd = self.tick() % 2 == 1
        loss = self.odd_loss(out, labels) if odd else task_loss(out.final_logits, labels)
        return loss + lte_mse(out, labels, self.exit_layers, self.num_layers) if self.params["lte"] else loss


@register_loss
class AlternatingWeighted(Alternating):
    """LGViT stage 1 (spec methods §3.2): even steps CE_L, odd steps the weighted loss, one global step counter;
    the heads train on odd steps."""
    name = "alternating_weighted"
    options = {}
    fixed = {"reduce": "weighted", "parity": "global", "lte": False}


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on class labels; on float targets (a regression task such as STS-B, one output) the mean squared
    error, as HF's BertForSequenceClassification and the PABEE/BERxiT code use for num_labels = 1."""
    if labels.is_floating_point():
        return F.mse_loss(logits.squeeze(-1), labels)
    return F.cross_entropy(logits, labels)


def lte_mse(out, labels, exit_layers, num_layers) -> torch.Tensor:
    """BERxiT's learning-to-exit loss: mean over (exits × batch) of (u_i − t_i)², t_i = 1 − 1[argmax z_i = y]
    ("1 = this exit is wrong"; regression: t_i = tanh|ŷ_i − y|); off-ramp L is judged by the final classifier's
    answer. Targets are detached."""
    with torch.no_grad():
        logits = [out.final_logits if layer == num_layers else z for layer, z in zip(exit_layers, out.exit_logits)]
        if labels.is_floating_point():
            target = torch.stack([torch.tanh((z.squeeze(-1) - labels).abs()) for z in logits])
        else:
            target = torch.stack([1.0 - (z.argmax(-1) == labels).float() for z in logits])
    return F.mse_loss(out.lte_outputs, target)


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float, normalisation: str) -> torch.Tensor:
    """T²·KL(softmax(z_T/T) ‖ softmax(z_S/T)), summed over batch and classes, divided by B·C (code) or B (``batchmean``)."""
    t = temperature
    log_p_t = F.log_softmax(teacher / t, dim=-1)
    log_p_s = F.log_softmax(student / t, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
    denom = student.numel() if normalisation == "bc" else student.shape[0]
    return t * t * kl / denom


@register_loss
class JointDistillation(ExitLoss):
    """FastBERT-style joint distillation of the port: (1−γ)(Σ CE_m + CE_L)/(M+1) + γ·mean_m KD_m; the teacher
    (final logits) is not detached, so gradients reach the final classifier and backbone (spec methods §2.2)."""
    name = "distillation"
    options = {"gamma": 0.3, "temperature": 2.0, "kd_normalisation": "bc"}

    def forward(self, out, labels):
        p = self.params
        kd = [kd_loss(z, out.final_logits, p["temperature"], p["kd_normalisation"]) for z in out.exit_logits]
        return (1 - p["gamma"]) * self.mean_loss(out, labels) + p["gamma"] * sum(kd) / max(len(kd), 1)


class Aligner(nn.Module):
    """The paper's aligning module: depth-wise 3×3 conv (stride s) → GELU → BN on the reference feature map."""

    def __init__(self, dim: int, stride: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(dim, dim, 3, stride=stride, padding=1, groups=dim), nn.GELU(),
                                 nn.BatchNorm2d(dim))

    def forward(self, x):
        return self.net(x)


def channel_kl(student: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL(softmax_D(ref) ‖ softmax_D(F)) per token over channels, summed over tokens and channels, / batch.

    ``mask`` [B, N] (text) keeps padding tokens out of the sum, so the loss does not depend on how a batch is padded."""
    log_r = F.log_softmax(reference, dim=-1)
    log_s = F.log_softmax(student, dim=-1)
    per_token = (log_r.exp() * (log_r - log_s)).sum(dim=-1)
    if mask is not None:
        per_token = per_token * mask.to(per_token.dtype)
    return per_token.sum() / student.shape[0]


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over real tokens only where a padding mask [B, N] is given (a plain mean otherwise)."""
    if mask is None:
        return F.mse_loss(a, b)
    m = mask.to(a.dtype).unsqueeze(-1)
    return ((a - b) ** 2 * m).sum() / (m.sum() * a.shape[-1]).clamp_min(1.0)


def token_mask(out, layout, like: torch.Tensor) -> torch.Tensor:
    """The [B, N] padding mask of a text exit's tokens (its prefix dropped); all ones where the batch has none."""
    if out.mask is None:
        return torch.ones(like.shape[:2], dtype=torch.bool, device=like.device)
    return out.mask[:, layout.num_prefix:].bool()


def gram(feature: torch.Tensor) -> torch.Tensor:
    return feature.transpose(1, 2) @ feature  # [B, D, D]


@register_loss
class LGViTDistillation(ExitLoss):
    """LGViT stage 2 (spec methods §3.3): L_pred + α·L_hete + β·L_homo on a frozen backbone.

    Switches (spec §3.5), defaults = official code: ``pred_distill_exits`` all | last_of_type; ``kd_normalisation``
    bc | batchmean; ``teacher_logits`` pre_norm | final; ``hete_align`` subsample | dwconv; ``hete_reduce`` and
    ``homo_reduce`` sum | mean; ``homo_teacher_grad`` True (teacher features not detached) | False.
    On Swin, whose exits live at three widths, every head distils from a teacher of its own width (spec methods §3.4):
    the heterogeneous reference of an exit is the deepest block of its width (block L on ViT/DeiT, so the official
    behaviour is unchanged; on Swin-B 4 → 4, 7…22 → 22, 23 → 24), and a homogeneous student's teacher is the deepest
    head of its group with its width (none where a width has one head). The pairs used are printed when the loss is
    built (the training log).
    Head groups come from each head's ``distill_group``: "local" (LPH; also Table 3's conv heads) and "global" (GAH;
    also the attention heads); "first/last of each group" generalises the code's hard-coded indices (0, 3, 4, 7) to
    any number of exits. Heads without a feature (``mlp``) get prediction distillation only — how the official code
    ran Tables 3/6 "Ours" with other heads is not published, so this generalisation is eebench's [inferred].
    """
    name = "lgvit_distillation"
    options = {"alpha": 0.01, "beta": 0.01, "gamma": 0.3, "temperature": 2.0, "pred_distill_exits": "all",
               "kd_normalisation": "bc", "teacher_logits": "pre_norm", "hete_align": "subsample",
               "hete_reduce": "sum", "homo_reduce": "sum", "homo_teacher_grad": True}
    needs_teacher = True

    def __init__(self, model, **params):
        super().__init__(model, **params)
        p = self.params
        for key, allowed in [("pred_distill_exits", ("all", "last_of_type")), ("kd_normalisation", ("bc", "batchmean")),
                             ("teacher_logits", ("pre_norm", "final")), ("hete_align", ("subsample", "dwconv")),
                             ("hete_reduce", ("sum", "mean")), ("homo_reduce", ("sum", "mean"))]:
            if p[key] not in allowed:
                raise fail(f"lgvit_distillation option {key}={p[key]!r} is not valid", f"use one of {allowed}")
        self.lph = [i for i, h in enumerate(model.heads) if h.distill_group == "local"]
        self.gah = [i for i, h in enumerate(model.heads) if h.distill_group == "global"]
        self.strides = {i: getattr(model.heads[i], "stride", 1) for i in self.lph + self.gah}
        self.pairs = sorted({g[0] for g in (self.lph, self.gah) if g} | {g[-1] for g in (self.lph, self.gah) if g})
        bb, layers = model.backbone, model.exit_layers
        self.num_layers = bb.num_layers
        width = [bb.layout(p).width for p in layers]
        self.reference = {i: model.reference_layers[width[i]] for i in self.pairs}  # exit → reference block
        self.ref_layout = {i: bb.layout(self.reference[i]) for i in self.pairs}
        self.model_layouts = [bb.layout(p) for p in layers]
        # homogeneous: student → teacher, the deepest head of the same group and width (spec methods §3.4)
        self.teacher = {j: max(k for k in group if width[k] == width[j])
                        for group in (self.lph, self.gah) if len(group) >= 2 for j in group}
        self.teacher = {j: k for j, k in self.teacher.items() if k != j}
        if p["hete_align"] == "dwconv" and any(self.ref_layout[i].grid is None for i in self.pairs):
            raise fail("lgvit_distillation option hete_align=dwconv needs a patch grid, and a text backbone has none",
                       "use hete_align: subsample on text backbones")
        if p["hete_align"] == "dwconv":
            self.aligners = nn.ModuleDict({str(i): Aligner(self.ref_layout[i].width, self.strides[i])
                                           for i in self.pairs})
        self.pairs_used = ("heterogeneous (exit block ← reference block): "
                           + (", ".join(f"{layers[i]} ← {self.reference[i]}" for i in self.pairs) or "none")
                           + "; homogeneous (student ← teacher exit block): "
                           + (", ".join(f"{layers[j]} ← {layers[k]}" for j, k in sorted(self.teacher.items()))
                              or "none"))
        print(f"lgvit_distillation pairs: {self.pairs_used}", flush=True)

    def forward(self, out, labels):
        p = self.params
        teacher = out.teacher_logits if p["teacher_logits"] == "pre_norm" else out.final_logits
        teacher = teacher.detach()
        groups = [g for g in (self.lph, self.gah) if g]
        pred_exits = range(len(out.exit_logits)) if p["pred_distill_exits"] == "all" else [g[-1] for g in groups]
        ce = sum(task_loss(out.exit_logits[i], labels) for i in pred_exits)
        kd = sum(kd_loss(out.exit_logits[i], teacher, p["temperature"], p["kd_normalisation"]) for i in pred_exits)
        l_pred = (1 - p["gamma"]) * ce + p["gamma"] * kd
        return l_pred + p["alpha"] * self.hete(out) + p["beta"] * self.homo(out)

    def hete(self, out):
        if not self.pairs:
            return 0.0
        terms = []
        for i in self.pairs:
            layout, block = self.ref_layout[i], self.reference[i]
            hidden = out.references[block] if block in out.references or block != self.num_layers else out.last_hidden
            mask = None
            if layout.grid is None:  # text: sub-sample real tokens as the global branch does (glh.subsample_sequence)
                ref, mask = patch_tokens(hidden, layout).detach(), token_mask(out, layout, hidden)
                if self.strides[i] > 1:
                    ref, mask = subsample_sequence(ref, mask, self.strides[i])
            elif self.params["hete_align"] == "dwconv":
                ref = from_grid(self.aligners[str(i)](to_grid(patch_tokens(hidden, layout), layout.grid).detach()))
            else:
                ref = from_grid(reduce_tokens(to_grid(patch_tokens(hidden, layout), layout.grid).detach(),
                                              self.strides[i]))
            if out.features[i].shape != ref.shape:
                raise fail(f"lgvit_distillation: exit {i + 1}'s feature {tuple(out.features[i].shape)} "
                           f"does not match its reference {tuple(ref.shape)}", "check the head's stride and layout")
            terms.append(channel_kl(out.features[i], ref, mask))
        if not terms:
            return 0.0
        total = sum(terms)
        return total / len(terms) if self.params["hete_reduce"] == "mean" else total

    def local_mask(self, out):
        """Padding mask of the local features (text), None on images."""
        if not self.lph:
            return None
        layout = self.model_layouts[self.lph[0]]
        return None if layout.grid is not None else token_mask(out, layout, out.features[self.lph[0]])

    def homo(self, out):
        total = 0.0
        for group, transform in ((self.lph, lambda f: f), (self.gah, gram)):
            pairs = [(j, self.teacher[j]) for j in group if j in self.teacher]
            if not pairs:
                continue
            teachers = {k: transform(out.features[k]) for _, k in pairs}
            if not self.params["homo_teacher_grad"]:
                teachers = {k: t.detach() for k, t in teachers.items()}
            # text: local features are per real token (padding rows are zero in both, but must not count in the mean)
            mask = self.local_mask(out) if group is self.lph else None
            part = sum(masked_mse(transform(out.features[j]), teachers[k], mask) for j, k in pairs)
            total = total + (part / len(pairs) if self.params["homo_reduce"] == "mean" else part)
        return total


@register_loss
class ProgressiveDistillation(ExitLoss):
    """EEformer's third stage as eebench reconstructs it (spec methods §6; the paper's text is not public).

    Every row — each trained exit and the final classifier — is trained on (1−γ)·CE + γ·KD_T against a **frozen copy
    of the model this stage starts from** (the stage-2 model), averaged over rows. The copy is taken when the loss is
    built (after the stage's init checkpoint is loaded), never receives gradients, stays in eval mode (BatchNorm
    statistics frozen) and sees the very batch the student sees (a forward pre-hook on the student records it).
    ``exit_teacher: final`` (default) distils every exit from the copy's final classifier — the exits move toward the
    full model's answers, so confidence-based exits fire earlier ("efficiency rises"), while the final classifier is
    anchored to its own stage-2 predictions ("keeps its accuracy"); ``same_exit`` distils each exit from the copy's
    own exit at that position (a pure stabiliser). ``kd_normalisation``: batchmean (standard KD) | bc (LGViT's code).
    """
    name = "progressive_distillation"
    options = {"gamma": 0.5, "temperature": 2.0, "kd_normalisation": "batchmean", "exit_teacher": "final"}

    def __init__(self, model, **params):
        import copy

        super().__init__(model, **params)
        for key, allowed in [("kd_normalisation", ("bc", "batchmean")), ("exit_teacher", ("final", "same_exit"))]:
            if self.params[key] not in allowed:
                raise fail(f"progressive_distillation option {key}={self.params[key]!r} is not valid",
                           f"use one of {allowed}")
        self.teacher = copy.deepcopy(model)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self._inputs = None
        model.register_forward_pre_hook(self._record)

    def _record(self, module, args):
        self._inputs = args[0]

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the loop puts the loss in training mode every epoch; the teacher never is
        return self

    def forward(self, out, labels):
        p = self.params
        with torch.no_grad():
            ref = self.teacher(self._inputs)
        rows = [(out.exit_logits[i], ref.final_logits if p["exit_teacher"] == "final" else ref.exit_logits[i])
                for i in self.trained] + [(out.final_logits, ref.final_logits)]
        ce = sum(F.cross_entropy(z, labels) for z, _ in rows)
        kd = sum(kd_loss(z, t, p["temperature"], p["kd_normalisation"]) for z, t in rows)
        return ((1 - p["gamma"]) * ce + p["gamma"] * kd) / len(rows)


def build_loss(name: str, model, params: dict[str, Any] | None = None) -> ExitLoss:
    return LOSSES.get(name)(model, **(params or {}))
