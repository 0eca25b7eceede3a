"""The one training loop every scheme shares: a stage is (which parameters train, which loss, hyper-parameters).

Optimiser and schedule follow the official LGViT runs (HF Trainer defaults of transformers 4.26): AdamW (β 0.9/0.999,
ε 1e-8), linear decay to 0 after an optional warm-up, grad-norm clip 1.0. A resume file is written atomically after
every epoch, so a killed job continues where it stopped; the final checkpoint replaces it when the stage completes.
Per-epoch records and job timings: ``monitor``; several processes (DDP under torchrun): ``distributed``.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..build import build_model
from ..checkpoint_shape import shape_record
from ..device import autocast, effective_precision, resolve_device, to_device
from ..data import load_dataset
from ..errors import fail
from .. import rng
from ..io import load_torch, save_torch
from ..provenance import provenance
from . import distributed as dist
from .losses import build_loss, task_loss
from .monitor import TrainingMonitor
from .optim import adamw, linear_schedule  # noqa: F401  (loop.adamw: the optimiser every stage runner builds)
from .runners import runner_for
from .start import (attach_teacher, frozen_backbone_mode, load_init, resume_file,  # noqa: F401  (loop.resume_file)
                    seed_everything, spec_hash)


def batches(data, backbone, batch_size: int, generator: torch.Generator):
    """One epoch of training batches for ``backbone`` (module level, so tests can simulate a kill mid-run)."""
    return data.train_batches(backbone, batch_size, generator)


def trainable_parameters(model, loss, train: str, keep_grads: bool = False):
    """Parameters the optimiser holds. ``keep_grads`` freezes by optimiser membership only (DeeBERT's official code:
    the rest still computes gradients, which enter the grad-norm clipping); otherwise the rest gets
    ``requires_grad=False``."""
    if train == "all":
        params = list(model.parameters())
    elif train == "heads":
        params = list(model.head_parameters())
    elif train == "backbone":
        params = list(model.backbone.parameters())
    else:
        raise fail(f"stage option train={train!r} is not valid", "use all, heads or backbone")
    chosen = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(keep_grads or id(p) in chosen)
    return params + list(loss.parameters())


def named_trainable(model, loss, params) -> list:
    """``params`` (trainable_parameters' list) as (name, parameter) pairs, the loss's own prefixed ``loss.``."""
    names = {id(p): n for n, p in model.named_parameters()}
    names.update({id(p): f"loss.{n}" for n, p in loss.named_parameters()})
    return [(names[id(p)], p) for p in params]




def enter_training(model, loss_fn, stage: dict[str, Any]) -> None:
    """Train mode for an epoch (an evaluation between epochs leaves the model in eval mode), with a frozen backbone
    back in eval mode every time where the stage asks for it."""
    model.train()
    loss_fn.train()
    if frozen_backbone_mode(stage) == "eval":
        model.backbone.eval()


class TrainStep(nn.Module):
    """Model and loss as one module, so DDP sees every trained parameter (the loss may own some) in one forward."""

    def __init__(self, model, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, x, y, frozen: bool):
        from .features import forward_cached, is_cached

        if is_cached(x):  # a frozen backbone's block outputs, read from the feature cache: only the heads run
            out = forward_cached(self.model, x)
        else:
            out = self.model(x, frozen_backbone=frozen, with_teacher=self.loss_fn.needs_teacher,
                             with_hidden=getattr(self.loss_fn, "needs_hidden", False))
        return self.loss_fn(out, y), out.stacked().detach()


# The per-row score of COST-EFF's selection (``do_eval_layer`` in the official code) where it is not the task's score:
# MRPC and QQP average F1 alone there, not the GLUE mean of F1 and accuracy.
SELECTION_PART = {"f1_accuracy": "f1"}


def mean_row_score(model, data, batch_size: int, precision) -> float:
    """Mean over rows (every exit and the final classifier) of the task metric on the evaluation split: COST-EFF's
    "best average per-layer dev score" checkpoint selection (``SELECTION_PART`` for MRPC/QQP)."""
    from ..evaluate import exit_logits
    from ..metrics import get_metric

    logits, labels, _ = exit_logits(model, data, batch_size, precision)
    name = getattr(data, "metric", None)  # image data: accuracy
    metric, part = get_metric(name), SELECTION_PART.get(name, "score")
    return float(sum(metric.evaluate(row.argmax(-1).numpy(), labels.numpy())[part] for row in logits) / len(logits))


def train_stage(job: dict[str, Any], out: str | Path, init: str | Path | None = None, progress: bool | None = None,
                logits_out: str | Path | None = None, eval_batch_size: int = 256, epochs_csv: str | Path | None = None,
                tensorboard_dir: str | Path | None = None, started: float | None = None,
                teacher: str | Path | None = None, keep_resume: bool = False):
    """Train one stage described by ``job`` (see ``eebench.plan.train_job``) and write its checkpoint to ``out``;
    with ``logits_out`` also evaluate the trained model once into its exit-logit cache (same process, no reload).
    Under torchrun every rank runs this; see ``distributed`` for what keeps it equal to one process. ``started``: when
    this stage's startup began (default: the process start; a process training several stages passes its own).
    ``teacher``: the checkpoint a distillation loss reads (a stage's ``teacher:``). A stage of another kind (e.g.
    ``slenderise:``, COST-EFF's pruning run) is trained by that kind's runner (``runners``).
    ``keep_resume``: leave the resume file of the finished stage (a process training several stages removes them when
    all are done, so a killed process does not retrain the stages it had finished: the scheduler deletes their
    checkpoints, the rerun only re-evaluates them)."""
    out = Path(out)
    stage, method = job["stage"], job["method"]
    runner = runner_for(stage)
    if runner is not None:
        return runner(job, out, init=init, progress=progress, logits_out=logits_out, eval_batch_size=eval_batch_size,
                      epochs_csv=epochs_csv, tensorboard_dir=tensorboard_dir, started=started, teacher=teacher,
                      keep_resume=keep_resume)
    select = stage.get("select")
    if select not in (None, "best_mean_row"):
        raise fail(f"stage option select={select!r} is not valid", "use best_mean_row or leave it out")
    torch.set_num_threads(int(job.get("threads", 1)))
    gen = seed_everything(int(job["seed"]))
    data = load_dataset(job["dataset"])
    model = build_model(job["backbone"], method, data.num_classes)
    if init:
        load_init(model, init)
    device = dist.init(resolve_device(job.get("device")))
    precision = effective_precision(job, device)
    loss_fn = build_loss(stage["loss"], model, stage.get("loss_params"))
    model.to(device)
    loss_fn.to(device)
    attach_teacher(loss_fn, teacher, device)
    freeze = stage.get("freeze", "requires_grad")
    if freeze not in ("requires_grad", "optimizer"):
        raise fail(f"stage option freeze={freeze!r} is not valid", "use requires_grad or optimizer")
    frozen = stage["train"] == "heads" and freeze == "requires_grad"
    params = trainable_parameters(model, loss_fn, stage["train"], keep_grads=freeze == "optimizer")
    clipped = list(model.parameters()) + list(loss_fn.parameters()) if freeze == "optimizer" else params
    trained = [p for p in params if p.requires_grad]
    opt = adamw(named_trainable(model, loss_fn, trained), float(stage["lr"]), float(stage.get("weight_decay", 0.0)),
                stage.get("no_decay"))
    bs, epochs = int(stage["batch_size"]), int(stage["epochs"])
    steps_per_epoch = math.ceil(data.train_size / bs)
    sched = linear_schedule(opt, steps_per_epoch * epochs, float(stage.get("warmup_ratio", 0.0)))
    key = spec_hash(job)
    resume_path = resume_file(out)
    log: list[dict[str, Any]] = []
    start_epoch = 0
    best: dict[str, Any] = {}
    if resume_path.exists():
        state = load_torch(resume_path)
        if state.get("spec_hash") == key:
            model.load_state_dict(state["model"])
            loss_fn.load_state_dict(state["loss"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            gen.set_state(state["generator"])
            exact = rng.restore_rank(state["rng"]) if "rng" in state else False
            log, start_epoch = state["log"], state["epoch"]
            best = state.get("best") or {}
            if dist.is_main():
                print(f"resuming {method['name']}/{stage['name']} from epoch {start_epoch}"
                      + ("" if exact else " (random draws not saved for these ranks: the rest does not replay the "
                                          "killed run bit for bit)"), flush=True)
    monitor = TrainingMonitor(epochs_csv, tensorboard_dir, enabled=dist.is_main(), rows=log, started=started)
    if dist.active() and dist.is_main():
        print(f"ranks: {dist.world_size()} ({dist.backend()}), global batch {bs}", flush=True)
    step_fn = dist.wrap(TrainStep(model, loss_fn), device)
    rows = model.row_layers
    features = None
    if stage.get("feature_cache"):  # heads on a frozen backbone: its block outputs computed once (training.features)
        from .features import frozen_features

        features = frozen_features(model, data, job, device, precision, eval_batch_size)

    bar = tqdm(range(start_epoch, epochs), desc=f"{method['name']}/{stage['name']} seed {job['seed']}",
               disable=True if progress is False or not dist.is_main() else None, mininterval=1.0,
               initial=start_epoch, total=epochs)
    for epoch in bar:
        enter_training(model, loss_fn, stage)
        loss_fn.new_epoch(epoch + 1, epochs)
        t0, sums = time.time(), torch.zeros(3 + len(rows), dtype=torch.float64)  # loss, correct, seen, per-exit
        epoch_batches = (features.epoch(data, model.backbone, bs, gen) if features is not None
                         else batches(data, model.backbone, bs, gen))
        for step, (x, y) in enumerate(epoch_batches):
            monitor.step_started()
            x, y, scale = dist.shard(x, y)
            x, y = to_device(x, device), y.to(device, non_blocking=True)
            with autocast(device, precision):
                loss, logits = step_fn(x, y, frozen)
            bad = 0.0 if torch.isfinite(loss) else 1.0
            if dist.sum_all([bad])[0]:
                raise fail(f"training loss became {loss.item() if bad else 'non-finite on another rank'} in "
                           f"{method['name']}/{stage['name']} at epoch {epoch + 1}, step {step + 1}",
                           "lower the learning rate (training.lr) or check the data")
            model.zero_grad(set_to_none=True)
            loss_fn.zero_grad(set_to_none=True)
            (loss * scale if scale != 1.0 else loss).backward()
            if stage.get("grad_clip"):
                torch.nn.utils.clip_grad_norm_([p for p in clipped if p.requires_grad], float(stage["grad_clip"]))
            opt.step()
            sched.step()
            with torch.no_grad():  # each exit's task loss (cross-entropy, or MSE on a regression task) and accuracy
                per_exit = [task_loss(row.float(), y).item() * len(y) for row in logits]
                correct = float("nan") if y.is_floating_point() else (logits[-1].argmax(-1) == y).sum().item()
            sums += torch.tensor([loss.item() * len(y), correct, len(y), *per_exit], dtype=torch.float64)
        total, correct, seen, *exit_sums = dist.sum_all(sums.tolist())
        row = {"epoch": epoch + 1, "loss": total / seen, "train_acc_final": correct / seen,
               "seconds": round(time.time() - t0, 3), "lr": sched.get_last_lr()[0],
               **{f"loss_exit_L{layer}": s_ / seen for layer, s_ in zip(rows, exit_sums)}}
        if select:  # keep the epoch with the best mean per-row dev score (COST-EFF's recovery)
            row["dev_mean_row_score"] = mean_row_score(model, data, eval_batch_size, precision)
            if not best or row["dev_mean_row_score"] > best["score"]:
                best = {"score": row["dev_mean_row_score"], "epoch": epoch + 1,
                        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        monitor.epoch(row, int(seen))
        log = monitor.rows
        bar.set_postfix(loss=f"{total / seen:.4f}")
        states = rng.capture_ranks()  # every rank's, so each resumes its own draws
        if dist.is_main():
            save_torch(resume_path, {"spec_hash": key, "model": model.state_dict(), "loss": loss_fn.state_dict(),
                                     "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                     "generator": gen.get_state(), "rng": states, "log": log, "epoch": epoch + 1,
                                     "best": best})
        dist.barrier()
    if best:
        model.load_state_dict(best["model"])
        if dist.is_main():
            print(f"kept epoch {best['epoch']} (mean per-row dev score {best['score']:.4f})", flush=True)
    if logits_out:
        from ..evaluate import write_cache

        t0 = time.time()
        info = write_cache(model, data, logits_out, eval_batch_size, precision, write=dist.is_main())
        monitor.evaluated(info["row_layers"], info["row_accuracy"], time.time() - t0)
        if dist.is_main():
            print("per-row accuracy:", ", ".join(f"L{l}: {a:.4f}" for l, a in zip(info["row_layers"],
                                                                                 info["row_accuracy"])), flush=True)
    timing = monitor.report_timing()
    if dist.is_main():
        save_torch(out, {"model": {k: v.cpu() for k, v in model.state_dict().items()}, "job": job, "log": log,
                         "spec_hash": key, **shape_record(model),
                         **({"selected_epoch": best["epoch"]} if best else {}),
                         "provenance": provenance(device=str(device), seed=job["seed"],
                                                  precision=precision, timing=timing,
                                                  world_size=dist.world_size())})
        if not keep_resume:
            resume_path.unlink(missing_ok=True)
    monitor.close()
    dist.barrier()
    return log
