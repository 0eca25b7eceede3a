"""COST-EFF's collaborative slenderisation stage (spec methods §7.2 step 3): one training run of the student
(initialised from the TA, teacher = the TA) during which ``PruneSchedule`` events physically narrow it.

Each event: Taylor importance of every head and FFN neuron under the all-exit Taylor loss (dropout off, a
with-replacement resample of ``taylor_proportion`` × N training samples), keep the top heads/neurons per layer, SVD
the word embedding to the event's rank, then a fresh AdamW at the restored learning rate (``PruneSchedule.period``
gives every period's schedule). Between events the loss is ``costeff_distill`` with its hidden-only /
prediction+hidden phases. One process (no data parallelism). The checkpoint records the pruned shape and every event
(step, widths, learning rate) for provenance; a killed stage resumes across events (``resume``).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from .. import rng
from ..build import build_model
from ..data import load_dataset
from ..device import autocast, effective_precision, resolve_device, to_device
from ..errors import fail
from ..io import save_torch
from ..provenance import provenance
from ..checkpoint_shape import shape_record
from ..training.losses import build_loss
from ..training.monitor import TrainingMonitor
from ..training.optim import adamw, linear_schedule
from ..training.start import attach_teacher, load_init, resume_file, seed_everything, spec_hash
from . import resume
from .presets import resolve_target
from .prune import blocks, dims, factorise_embedding, embedding_rank, prune_ffn, prune_heads
from .schedule import PruneSchedule
from .taylor import taylor_importance, top_k

OPTIONS = {"target", "prune_rate", "repr_prop", "restore", "taylor_proportion", "taylor_batch_size"}


def prune_event(model, event, scores) -> None:
    """Narrow every layer to the event's widths, keeping the highest-scoring heads and neurons; SVD the embedding."""
    for layer, s in zip(blocks(model), scores):
        if event.heads < layer.attention.self.num_attention_heads:
            prune_heads(layer, top_k(s["heads"], event.heads))
        if event.ffn < layer.intermediate.dense.out_features:
            prune_ffn(layer, top_k(s["ffn"], event.ffn))
    if event.rank < (embedding_rank(model) or dims(model)["hidden"]):
        factorise_embedding(model, event.rank)


def batches(data, backbone, batch_size: int, generator: torch.Generator):
    """One epoch of training batches (module level, so tests can kill the stage at a given batch)."""
    return data.train_batches(backbone, batch_size, generator)


def period_optimizer(model, sched: PruneSchedule, events_done: int, stage: dict[str, Any]):
    """The AdamW and LR schedule that train after ``events_done`` events (``PruneSchedule.period``)."""
    lr, length, warmup = sched.period(events_done)
    opt = adamw(model.named_parameters(), lr, float(stage.get("weight_decay", 0.0)), stage.get("no_decay"))
    return opt, linear_schedule(opt, length, warmup_steps=warmup, first_step_zero=True)


def train_slender_stage(job: dict[str, Any], out: str | Path, init=None, progress: bool | None = None,
                        logits_out=None, eval_batch_size: int = 256, epochs_csv=None, tensorboard_dir=None,
                        started: float | None = None, teacher=None, keep_resume: bool = False):
    """The runner of ``slenderise:`` stages (``eebench.training.runners``); the arguments are ``train_stage``'s
    (``progress``: this stage prints one line per pruning event, no bar)."""
    import os

    out = Path(out)
    stage, method = job["stage"], job["method"]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise fail("COST-EFF's pruning stage runs in one process", "train it with one device (resources.train.gpu: 1)")
    opts = dict(stage["slenderise"])
    unknown = set(opts) - OPTIONS
    if unknown:
        raise fail(f"slenderise option(s) {sorted(unknown)} are unknown", f"use {sorted(OPTIONS)}")
    torch.set_num_threads(int(job.get("threads", 1)))
    gen = seed_everything(int(job["seed"]))
    data = load_dataset(job["dataset"])
    if not hasattr(data, "resample_batches"):
        raise fail("COST-EFF's slenderisation runs on text data sets", "use a GLUE data set")
    model = build_model(job["backbone"], method, data.num_classes)
    key, resume_path = spec_hash(job), resume_file(out)
    state = resume.read(resume_path, key)
    if state:
        resume.restore_model(model, state)
        print(f"resuming {method['name']}/{stage['name']} at step {state['step']} "
              f"({len(state['events'])} pruning events done)", flush=True)
    elif init:
        load_init(model, init)
    device = resolve_device(job.get("device"))
    precision = effective_precision(job, device)  # the training steps' autocast; Taylor scores stay fp32
    model.to(device)
    target = resolve_target(opts.get("target"), job["backbone"], method["name"])
    loss_fn = build_loss(stage["loss"], model, stage.get("loss_params"))
    taylor_fn = build_loss("costeff_taylor", model, {"max_seq_length": int(data.max_seq_length)})
    for fn in (loss_fn, taylor_fn):
        fn.to(device)
        teacher = attach_teacher(fn, teacher, device) or teacher  # loaded once, shared by both losses
    bs, epochs = int(stage["batch_size"]), int(stage["epochs"])
    steps_per_epoch = math.ceil(data.train_size / bs)
    d = dims(model)  # the backbone's full widths (its config), pruned or not
    sched = PruneSchedule(d["heads"], d["ffn"], d["hidden"], target, steps_per_epoch, epochs,
                          prune_rate=opts.get("prune_rate", "auto"), repr_prop=float(opts.get("repr_prop", 0.7)),
                          lr=float(stage["lr"]), restore=float(opts.get("restore", 0.12)))
    events = sched.events()
    taylor_size = int(round(float(opts.get("taylor_proportion", 1.0)) * data.train_size))
    taylor_bs = int(opts.get("taylor_batch_size", bs))
    done: list[dict[str, Any]] = list(state["events"]) if state else []
    pending = events[len(done):]
    opt, lr_sched = period_optimizer(model, sched, len(done), stage)
    if state:
        for fn, saved in zip((loss_fn, taylor_fn), state["losses"]):
            fn.load_state_dict(saved)
        opt.load_state_dict(state["optimizer"])
        lr_sched.load_state_dict(state["scheduler"])
    monitor = TrainingMonitor(epochs_csv, tensorboard_dir, rows=state["log"] if state else [], started=started)
    step = state["step"] if state else 0

    def save(epoch: int, batch: int | None = None, epoch_generator=None, sums=(0.0, 0)) -> None:
        save_torch(resume_path, resume.capture(key, model, (loss_fn, taylor_fn), opt, lr_sched, gen, done, step,
                                               monitor.rows, epoch, batch, epoch_generator, sums))

    def run_event(event, late: bool):
        nonlocal opt, lr_sched
        t0 = time.time()
        scores = taylor_importance(model, taylor_fn, data.resample_batches(model.backbone, taylor_bs, gen, taylor_size),
                                   device)
        prune_event(model, event, scores)
        model.to(device)
        opt, lr_sched = period_optimizer(model, sched, event.index, stage)
        done.append({"event": event.index, "planned_step": event.step, "step": step, "late": late,
                     "heads": event.heads, "ffn": event.ffn, "rank": event.rank, "lr": sched.lr_after(event.index),
                     "kept_heads": [layer.attention.self.kept_heads for layer in blocks(model)],
                     "seconds": round(time.time() - t0, 3)})
        print(f"pruning event {event.index}/{len(events)} at step {step}: heads {event.heads}, FFN {event.ffn}, "
              f"rank {event.rank}, lr {sched.lr_after(event.index):.3g}", flush=True)

    if state:
        gen.set_state(state["generator"])
        rng.restore(state["rng"])
    mid_epoch = state if state and state["batch"] is not None else None
    for epoch in range(state["epoch"] if state else 0, epochs):
        model.train()
        t0 = time.time()
        if mid_epoch:
            epoch_generator, first = mid_epoch["epoch_generator"], mid_epoch["batch"]
            total, seen = mid_epoch["sums"]
            epoch_batches = resume.replay_epoch(lambda: batches(data, model.backbone, bs, gen), gen, mid_epoch)
            mid_epoch = None
        else:
            epoch_generator, first, total, seen = gen.get_state(), 0, 0.0, 0
            epoch_batches = batches(data, model.backbone, bs, gen)
        for trained, (x, y) in enumerate(epoch_batches, start=first):
            if pending and pending[0].step <= step:
                while pending and pending[0].step <= step:
                    run_event(pending.pop(0), late=False)
                model.train()
                save(epoch, trained, epoch_generator, (total, seen))
            monitor.step_started()
            hidden_only = sched.hidden_only(step)
            loss_fn.use_prediction, loss_fn.use_hidden = not hidden_only, True
            x, y = to_device(x, device), y.to(device)
            with autocast(device, precision):
                loss = loss_fn(model(x, with_hidden=True), y)
            if not torch.isfinite(loss):
                raise fail(f"training loss became {loss.item()} in {method['name']}/{stage['name']} at step {step + 1}",
                           "lower the learning rate or check the data")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if stage.get("grad_clip"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(stage["grad_clip"]))
            opt.step()
            lr_sched.step()
            total, seen, step = total + loss.item() * len(y), seen + len(y), step + 1
        monitor.epoch({"epoch": epoch + 1, "loss": total / max(seen, 1), "seconds": round(time.time() - t0, 3),
                       "lr": lr_sched.get_last_lr()[0], "events_done": len(done)}, seen)
        save(epoch + 1)
    while pending:  # the last event lands on the final step; a too-short stage ends with the rest
        event = pending.pop(0)
        run_event(event, late=event.step > step)
        save(epochs)
    if logits_out:
        from ..evaluate import write_cache

        t0 = time.time()
        info = write_cache(model, data, logits_out, eval_batch_size, precision)
        monitor.evaluated(info["row_layers"], info["row_accuracy"], time.time() - t0)
        print("per-row accuracy:", ", ".join(f"L{l}: {a:.4f}" for l, a in zip(info["row_layers"],
                                                                             info["row_accuracy"])), flush=True)
    timing = monitor.report_timing()
    save_torch(out, {"model": {k: v.cpu() for k, v in model.state_dict().items()}, "job": job, "log": monitor.rows,
                     "spec_hash": key, **shape_record(model),
                     "slenderise": {"target": target, "prune_step": sched.prune_step, "events": done,
                                    "prune_rate": opts.get("prune_rate", "auto"), "taylor_samples": taylor_size},
                     "provenance": provenance(device=str(device), seed=job["seed"],
                                              precision=precision, timing=timing)})
    if not keep_resume:
        resume_path.unlink(missing_ok=True)
    monitor.close()
    return monitor.rows
