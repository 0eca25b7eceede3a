"""Per-job overhead of a finished run: startup (process start → first training step: interpreter, imports, data,
model) against compute (training + evaluation), summed over its training jobs, from the ``timing:`` line every
training job prints into its log (eebench.training.monitor). Not a test: a measurement to read.

    snakemake --cores all && python workflow/scripts/bench_overhead.py              # the embedded run
    python workflow/scripts/bench_overhead.py results/tiny --max-startup 0.15        # exit 1 above 15 %

The run's other jobs (one costs, curves, latency and report job per run) print no timing; they are listed as such.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def job_timings(run_dir: Path) -> dict[str, dict]:
    """Log name (+ #k for the k-th stage of a process that trains several) → that stage's timing."""
    timings = {}
    for log in sorted((run_dir / "logs" / "train").rglob("*.log")):
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("timing: ")]
        name = str(log.relative_to(run_dir / "logs" / "train").with_suffix(""))
        for k, line in enumerate(lines):  # a process training several stages prints one line per stage
            timings[name + (f"#{k + 1}" if len(lines) > 1 else "")] = json.loads(line[8:])
    return timings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", nargs="?", default="results/default")
    ap.add_argument("--max-startup", type=float, help="exit 1 when startup exceeds this fraction of job time")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per job")
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir)
    timings = job_timings(run_dir)
    if not timings:
        print(f"bench_overhead: error: no training job logs with a timing line under {run_dir}/logs/train — run the "
              f"DAG first (snakemake --cores all)", file=sys.stderr)
        return 2
    startup = sum(t["startup_s"] for t in timings.values())
    train = sum(t["train_s"] for t in timings.values())
    evaluate = sum(t["eval_s"] for t in timings.values())
    total = startup + train + evaluate
    if args.verbose:
        print(f"{'job':48s} {'startup s':>9s} {'train s':>8s} {'eval s':>7s} {'samples/s':>10s}")
        for name, t in timings.items():
            print(f"{name:48s} {t['startup_s']:9.2f} {t['train_s']:8.2f} {t['eval_s']:7.2f} "
                  f"{t['samples_per_s'] or 0:10.1f}")
    others = sorted(p.stem for p in (run_dir / "logs").glob("*.log"))
    print(f"{run_dir}: {len(timings)} training stages, summed job time {total:.1f} s = startup {startup:.1f} s "
          f"({startup / total:.1%}) + training {train:.1f} s ({train / total:.1%}) + evaluation {evaluate:.1f} s "
          f"({evaluate / total:.1%}); mean startup {startup / len(timings):.2f} s per job")
    if others:
        print(f"not timed (one per run, no per-step timing): {', '.join(others)}")
    if args.max_startup is not None and startup / total > args.max_startup:
        print(f"startup {startup / total:.1%} is above {args.max_startup:.0%}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
