"""What a board records about the machine and the time its run took, from what the run left on disk.

- The CPU: ``/proc/cpuinfo``'s model name and the instruction-set flags that change CPU kernels and precision (AVX2,
  AVX-512, native bf16: AVX512-BF16 and AMX). It is the machine that builds the board, so a board is built where its
  run ran (``eebench board make`` does both).
- The wall time, in three counts (parallel jobs overlap, so none of them is the elapsed time):
  - ``train_epochs_s``: the training stages' own epoch seconds (every ``seconds`` of
    ``results/<run>/**/logs/train/**/*.epochs.csv``);
  - ``train_jobs_s``: that plus each training job's start-up (interpreter, imports, data, model) and final evaluation,
    from the ``timing:`` line its log ends with;
  - ``jobs_s``: every finished Snakemake job of the run (training, costs, curves, latency, reports, store,
    leaderboard) from its start and finish stamps in ``.snakemake/log/``, per rule; a job run more than once
    counts its last run (the one whose outputs are on the board). Absent where those logs are gone.
"""
from __future__ import annotations

import json
import os
import platform
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    model, flags = None, None
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and flags is None:
            flags = set(value.split())
    return {"model": model or platform.processor() or platform.machine() or None,
            "flags": {f: f in flags for f in FLAGS} if flags is not None else None,
            "logical_cpus": os.cpu_count(), "machine": platform.machine(), "host": platform.node(),
            "measured_on": "the machine that built the board (build it where its run ran)"}


def train_seconds(run_dir: str | Path) -> dict:
    """``train_epochs_s`` and ``train_jobs_s`` of the runs under ``results/<run>`` (a grid's cells included)."""
    run_dir = Path(run_dir)
    epochs, jobs, stages, logs = 0.0, 0.0, 0, 0
    for csv in sorted(run_dir.glob("**/logs/train/**/*.epochs.csv")):
        try:
            seconds = pd.read_csv(csv)["seconds"].astype(float).sum()
        except (KeyError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
        epochs += float(seconds)
        stages += 1
    for log in sorted(run_dir.glob("**/logs/train/**/*.log")):
        lines = [l for l in log.read_text(errors="replace").splitlines() if l.startswith("timing: ")]
        if not lines:
            continue
        try:
            t = json.loads(lines[-1][len("timing: "):])
            jobs += float(t.get("startup_s") or 0) + float(t.get("eval_s") or 0)
            logs += 1
        except (json.JSONDecodeError, TypeError, ValueError):
            continue
    return {"train_epochs_s": round(epochs, 1), "train_jobs_s": round(epochs + jobs, 1), "stages": stages,
            "job_logs": logs}


_STAMP = re.compile(r"^\[(\w{3} \w{3}\s+\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
_FINISHED = re.compile(r"^Finished job(?:id:)? (\d+)")


def _stamp(text: str) -> datetime:
    return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")


def snakemake_jobs(workdir: str | Path, prefixes: list[str]) -> dict | None:
    """Seconds per rule of the finished jobs with an output under one of ``prefixes`` (``results/<run>/``,
    ``reports/<run>/``), from every Snakemake log in ``workdir``; None where there is none."""
    logs = sorted((Path(workdir) / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        return None
    done: dict[tuple, tuple[datetime, str, float]] = {}
    for log in logs:
        started, stamp, job = {}, None, None
        for raw in log.read_text(errors="replace").splitlines():
            line = raw.strip()
            if m := _STAMP.match(line):
                stamp, job = _stamp(m.group(1)), None
            elif (m := _RULE.match(line)) and stamp is not None and not raw.startswith(" "):
                job = {"rule": m.group(1), "start": stamp, "outputs": ()}
            elif job is not None and line.startswith("output: "):
                job["outputs"] = tuple(o.strip() for o in line[len("output: "):].split(","))
            elif job is not None and line.startswith("jobid: "):
                started[line[len("jobid: "):]] = job
            elif (m := _FINISHED.match(line)) and stamp is not None and m.group(1) in started:
                j = started.pop(m.group(1))
                if any(o.startswith(p) for o in j["outputs"] for p in prefixes):
                    prev = done.get(j["outputs"])
                    if prev is None or prev[0] <= stamp:
                        done[j["outputs"]] = (stamp, j["rule"], (stamp - j["start"]).total_seconds())
    per_rule: dict[str, float] = {}
    for _, rule, seconds in done.values():
        key = re.sub(r"_[A-Za-z0-9_]*$", "", rule) if rule.startswith(("report_", "store_", "leaderboard_")) \
            else rule
        per_rule[key] = per_rule.get(key, 0.0) + seconds
    return {"per_rule": {k: round(v, 1) for k, v in sorted(per_rule.items())},
            "total": round(sum(per_rule.values()), 1), "jobs": len(done)}


def wall_time(root: str | Path, run: str) -> dict:
    """The three counts (module docstring) for the config run ``run`` (a grid: all its cells)."""
    root = Path(root)
    out = {**train_seconds(root / "results" / run),
           "jobs_s": snakemake_jobs(root, [f"results/{run}/", f"reports/{run}/"]),
           "counted": "train_epochs_s: training epochs only; train_jobs_s: + each training job's start-up and final "
                      "evaluation; jobs_s: every finished Snakemake job of the run, start to finish, per rule (the "
                      "last run of each; parallel jobs overlap, so these are job-seconds, not elapsed time)"}
    return out


def board_provenance(config: dict, plans: dict, stores: dict, root: Path, config_run: str) -> dict:
    """The commit and libraries the run ran with (its store rows), the CPU, precision and wall time."""
    from .. import __version__
    from ..provenance import _version, git_commit

    rows = pd.concat(stores.values(), ignore_index=True)

    def values(col):
        """The store's value of a provenance column: one value, or the sorted distinct values of the runs."""
        vals = sorted({str(v) for v in rows[col].dropna().tolist()})
        return vals[0] if len(vals) == 1 else (vals or None)

    training = config.get("training") or {}
    return {
        "git_commit": values("git_commit"),
        "device": values("device"),
        "store_created": values("created"),
        "libraries": {k: values(k) for k in ("eebench", "python", "torch", "transformers", "timm", "fvcore")},
        "precision": {"training.precision": training.get("precision"),
                      "training.cpu_precision": training.get("cpu_precision"),
                      "effective dtype (store)": values("dtype")},
        "threads": training.get("threads"),
        "cpu": cpu_info(),
        "wall_time": wall_time(root, config_run),
        "built": {"eebench": __version__, "git_commit": git_commit(), "numpy": _version("numpy"),
                  "pandas": _version("pandas"), "snakemake": _version("snakemake"),
                  "at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")},
    }
