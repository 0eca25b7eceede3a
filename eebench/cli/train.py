"""The training DAG steps: one stage (`train`), or several in one process (`train-group`)."""
from __future__ import annotations

import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout

from ..errors import fail
from .args import json_arg


def cmd_train(args) -> None:
    import os

    if args.nproc < 1:
        raise fail(f"--nproc {args.nproc} is not a number of processes", "pass 1 or more")
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:  # not yet under torchrun: start the ranks
        from ..training.distributed import relaunch

        relaunch(args.nproc, sys.argv[1:] if args.argv is None else args.argv)
    from ..training.loop import train_stage

    try:
        train_stage(json_arg(args.spec), args.out, init=args.init, logits_out=args.logits,
                    eval_batch_size=args.eval_batch_size, epochs_csv=args.epochs_csv,
                    tensorboard_dir=args.tensorboard, teacher=args.teacher)
    finally:
        from ..training.distributed import shutdown

        shutdown()


def add_train(sub) -> None:
    s = sub.add_parser("train", help="(DAG step) train one stage from a JSON job spec (+ its exit-logit cache)")
    s.add_argument("--spec", required=True, help="job spec JSON (see eebench.plan.Plan.train_job)")
    s.add_argument("--out", required=True, help="checkpoint to write")
    s.add_argument("--init", help="checkpoint of the previous stage")
    s.add_argument("--teacher", help="checkpoint of the model a distillation loss reads (a stage's teacher:)")
    s.add_argument("--logits", help="also write the trained model's exit-logit cache here (.npz)")
    s.add_argument("--eval-batch-size", type=int, default=256)
    s.add_argument("--epochs-csv", help="per-epoch record (losses per exit, lr, seconds, samples/s, eval accuracy)")
    s.add_argument("--tensorboard", help="TensorBoard event directory (written when tensorboard is installed)")
    s.add_argument("--nproc", type=int, default=1,
                   help="data-parallel processes (devices) on this node: >1 relaunches under torchrun (DDP)")
    s.set_defaults(func=cmd_train, argv=None)


def cmd_train_group(args) -> None:
    """Several stages in one process, in the given order (eebench.plan.Plan.train_groups): one startup for all. Each
    stage's output goes to its own log (``log``), as if it were its own job; the group's log keeps one line per stage."""
    import os
    import time

    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        from ..training.distributed import relaunch

        relaunch(args.nproc, sys.argv[1:] if args.argv is None else args.argv)
    from ..training.distributed import is_main, shutdown
    from ..training.loop import resume_file, train_stage

    spec = json_arg(args.spec)
    try:
        for i, item in enumerate(spec["jobs"]):
            job = item["job"]
            if is_main():
                print(f"== {job['method']['name']} seed {job['seed']} stage {job['stage']['name']} "
                      f"({i + 1} of {len(spec['jobs'])})" + (f": {item['log']}" if item.get("log") else ""), flush=True)
            with _output_to(item.get("log") if is_main() else None):
                train_stage(job, item["out"], init=item.get("init"), logits_out=item["logits"],
                            eval_batch_size=spec.get("eval_batch_size", 256), epochs_csv=item.get("epochs_csv"),
                            tensorboard_dir=item.get("tensorboard"), started=None if i == 0 else time.time(),
                            keep_resume=True, teacher=item.get("teacher"))
        if is_main():
            for item in spec["jobs"]:
                resume_file(item["out"]).unlink(missing_ok=True)
    finally:
        shutdown()


@contextmanager
def _output_to(path):
    """Send this process's stdout and stderr (file descriptors too: library and C-level output) to ``path``."""
    if not path:
        yield
        return
    import os
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(path, "w", buffering=1) as fh, redirect_stdout(fh), redirect_stderr(fh):
            os.dup2(fh.fileno(), 1)
            os.dup2(fh.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def add_train_group(sub) -> None:
    s = sub.add_parser("train-group", help="(DAG step) train several stages one after another in one process")
    s.add_argument("--spec", required=True,
                   help='{"eval_batch_size": N, "jobs": [{"job", "out", "init", "logits", "log", "epochs_csv", '
                        '"tensorboard"}]}')
    s.add_argument("--nproc", type=int, default=1, help="data-parallel processes (see train)")
    s.set_defaults(func=cmd_train_group, argv=None)
