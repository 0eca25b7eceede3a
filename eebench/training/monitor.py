"""What a training job reports while it runs, so a long job can be watched and its speed measured.

- a per-epoch CSV (rewritten atomically after every epoch, so it is complete up to the last finished epoch and
  survives a resume): loss of every exit, learning rate, epoch seconds, samples/s, and the evaluation accuracy of
  every exit on the rows where the model was evaluated;
- TensorBoard event files (same scalars) when ``tensorboard`` is installed;
- the job's timing — startup (process start to first training step: imports, data, model), training, evaluation
  seconds and samples/s — printed as one ``timing: {json}`` line in the job log and stored in provenance.

Only the main process of a distributed job writes (``enabled``).
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from ..io import write_text


def process_start() -> float:
    """Wall-clock time this process started (Linux ``/proc``), so startup includes the interpreter and imports."""
    try:
        with open("/proc/self/stat") as fh:
            ticks = int(fh.read().rpartition(")")[2].split()[19])
        with open("/proc/stat") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration):
        from .. import IMPORTED_AT

        return IMPORTED_AT


class TrainingMonitor:
    """Collects per-epoch rows and job timings; ``csv_path`` / ``tensorboard_dir`` may be None (not written)."""

    def __init__(self, csv_path: str | Path | None = None, tensorboard_dir: str | Path | None = None,
                 enabled: bool = True, rows: list[dict[str, Any]] | None = None, started: float | None = None):
        self.enabled = enabled
        self.csv_path = Path(csv_path) if csv_path and enabled else None
        self.rows = list(rows or [])
        self.started = process_start() if started is None else started
        self.first_step: float | None = None
        self.train_seconds = 0.0
        self.train_samples = 0
        self.eval_seconds = 0.0
        self._tb = None
        # opened at the first epoch's end, so its import never counts as startup; tensorboard is optional
        self._tb_dir = str(tensorboard_dir) if tensorboard_dir and enabled else None

    def step_started(self) -> None:
        if self.first_step is None:
            self.first_step = time.time()

    def epoch(self, row: dict[str, Any], samples: int) -> None:
        """One finished epoch: ``row`` holds epoch, loss, loss_exit_L<k>, lr, seconds (its own time)."""
        self.train_seconds += row["seconds"]
        self.train_samples += samples
        row["samples_per_s"] = round(samples / max(row["seconds"], 1e-9), 1)
        self.rows.append(row)
        self._write()
        if self._tb_dir is not None and self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._tb_dir = None
            else:
                self._tb = SummaryWriter(self._tb_dir)
        if self._tb is not None:
            for key, value in row.items():
                if key not in ("epoch",) and isinstance(value, (int, float)):
                    self._tb.add_scalar(key.replace("_exit_", "/exit_"), value, row["epoch"])
            self._tb.flush()

    def evaluated(self, row_layers: list[int], accuracy: list[float], seconds: float) -> None:
        """The model was evaluated after the last epoch: its per-exit accuracy joins that epoch's row."""
        self.eval_seconds += seconds
        if not self.rows:
            return
        last = self.rows[-1]
        for layer, acc in zip(row_layers, accuracy):
            last[f"eval_acc_L{layer}"] = acc
            if self._tb is not None:
                self._tb.add_scalar(f"eval_acc/exit_L{layer}", acc, last["epoch"])
        self._write()

    def timing(self) -> dict[str, Any]:
        startup = (self.first_step or time.time()) - self.started
        return {"startup_s": round(startup, 3), "train_s": round(self.train_seconds, 3),
                "eval_s": round(self.eval_seconds, 3),
                "samples_per_s": round(self.train_samples / self.train_seconds, 1) if self.train_seconds else None}

    def report_timing(self) -> dict[str, Any]:
        t = self.timing()
        if self.enabled:
            print("timing: " + json.dumps(t), flush=True)
        return t

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def _write(self) -> None:
        if self.csv_path is None:
            return
        columns: list[str] = []
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.csv_path, buf.getvalue())
