"""Checks of the SLURM CI stage (workflow/ci/slurm_stage.sh), after the same run went through sbatch and locally:

(a) the jobs went through sbatch: every SLURM job id Snakemake logged is in the scheduler's own records (sacct when
    accounting is on, else `squeue --states=all`, which keeps finished jobs for MinJobAge); every submitted rule has
    its entry under the profile's set-resources (a renamed rule would silently fall back to its defaults), the rules
    the profile gives a GPU carry their GPU request, and the report rule (a localrule) never reached the scheduler;
(b) the numbers match the local run: the operating curves and table1.csv are byte-identical;
(c) the retry: the training job the watcher cancelled ended CANCELLED, Snakemake logged the failure and restarted the
    job, the resubmitted job completed, and the DAG finished;
(d) with --train-gpus N > 1: every training job asked SLURM for N GPUs and ran N data-parallel ranks (its log).

    python workflow/ci/check_slurm_run.py --slurm-dir D1 --local-dir D2 --log D1.log --cancelled FILE --run tiny \
        --profile profiles/slurm/config.yaml

Prints what it checks; exit code 1 when any check fails.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import yaml

SUBMITTED = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.?$", re.M)
FAILED = "SLURM-job '{id}' failed, SLURM status is: '{state}'"
LOCAL_RULES = ("table1", "report")  # the report rule (table1 in older trees) is a localrule: never sbatch


def sh(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True)


def scheduler_records(run_uuid: str) -> tuple[str, dict[str, dict[str, str]]]:
    """SLURM's own view of this run's jobs (job name = the Snakemake run id): id -> state, comment, GPU request."""
    records: dict[str, dict[str, str]] = {}
    acct = sh("sacct", "-X", "--parsable2", "--noheader", "--starttime", "now-1days", "--name", run_uuid,
              "--format=JobIDRaw,State,Comment%120,ReqTRES%120,ReqMem,Timelimit")
    if acct.returncode == 0 and acct.stdout.strip():
        for line in acct.stdout.splitlines():
            jid, state, comment, tres, mem, limit = (line.split("|") + [""] * 6)[:6]
            gpu = ",".join(t for t in tres.split(",") if "gpu" in t)
            records[jid] = {"state": state.split()[0], "comment": comment, "gpu": gpu, "mem": mem, "time": limit}
        source = "sacct (accounting)"
    else:
        why = (acct.stderr.strip().splitlines() or ["no records"])[0]
        queue = sh("squeue", "--states=all", "--noheader", "--name", run_uuid,
                   "--Format=JobID:20|,State:20|,tres-per-job:40|,MinMemory:20|,TimeLimit:20|,Comment:200")
        if queue.returncode != 0:
            raise SystemExit(f"squeue failed: {queue.stderr.strip()}")
        for line in queue.stdout.splitlines():
            parts = [p.strip() for p in line.split("|")]
            jid, state, tres, mem, limit, comment = (parts + [""] * 6)[:6]
            records[jid] = {"state": state, "comment": comment, "gpu": tres, "mem": mem, "time": limit}
        source = f"squeue --states=all (sacct: {why})"
    return source, records


def check_sbatch(log: str, profile: dict, failures: list[str]) -> tuple[str, dict, list]:
    print("\n== (a) jobs went through sbatch")
    m = re.search(r"^SLURM run ID: (\S+)", log, re.M)
    if not m:
        failures.append("(a) no 'SLURM run ID' in the Snakemake log: the slurm executor did not run")
        return "", {}, []
    run_uuid = m.group(1)
    submitted = [(int(sj), sid, Path(p)) for sj, sid, p in SUBMITTED.findall(log)]
    source, records = scheduler_records(run_uuid)
    for _, sid, path in submitted:  # name jobs after the plugin's log path where the records lack the comment
        if sid in records and records[sid]["comment"] in ("", "(null)"):
            records[sid]["comment"] = f"{path.parent.parent.name}_wildcards_{path.parent.name}"
    print(f"Snakemake run {run_uuid}: {len(submitted)} sbatch submissions; scheduler records from {source}:")
    print(f"  {'slurm id':>8}  {'state':<10} {'GPU request':<14} {'memory':<8} {'time limit':<11} job")
    for sid, rec in sorted(records.items(), key=lambda kv: int(kv[0].split('_')[0])):
        gpu = rec["gpu"] if rec["gpu"] not in ("", "N/A", "(null)") else "-"
        print(f"  {sid:>8}  {rec['state']:<10} {gpu:<14} {rec['mem']:<8} {rec['time']:<11} {rec['comment']}")
    if not submitted:
        failures.append("(a) Snakemake logged no sbatch submission")
    if not records:
        failures.append(f"(a) the scheduler has no job of run {run_uuid}")
    missing = [sid for _, sid, _ in submitted if sid not in records]
    if missing:
        failures.append(f"(a) SLURM ids logged by Snakemake but unknown to the scheduler: {missing}")
    per_rule = profile.get("set-resources") or {}
    gpu_rules = {r for r, res in per_rule.items() if {"gpu", "gpu_model", "gres"} & set(res or {})}
    for sid, rec in records.items():
        rule = rec["comment"].removeprefix("rule_").split("_wildcards_")[0]
        if rule in LOCAL_RULES or rule.startswith("report_"):
            failures.append(f"(a) {rule} (a localrule) was submitted to SLURM as job {sid}")
        elif rule not in per_rule:
            failures.append(f"(a) rule {rule!r} (job {sid}) has no entry under set-resources in the profile: its "
                            f"requests fell back to the rule's defaults; add it to profiles/slurm/config.yaml")
        if rule in gpu_rules and "gpu" not in rec["gpu"]:
            failures.append(f"(a) {rule} job {sid} was submitted without a GPU request ({rec['gpu']!r})")
    gpu_jobs = sum(1 for rec in records.values() if "gpu" in rec["gpu"])
    logs = [p for _, _, p in submitted if p.exists()]
    print(f"per-job SLURM logs kept: {len(logs)} (e.g. {logs[0] if logs else '-'})")
    if not failures:
        print(f"OK: {len(records)} jobs ran through sbatch with the profile's requests ({gpu_jobs} with one GPU: "
              f"{', '.join(sorted(gpu_rules))}); the report stayed local")
    return run_uuid, records, submitted


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def first_difference(a: Path, b: Path) -> str:
    ra, rb = list(csv.reader(a.open())), list(csv.reader(b.open()))
    if len(ra) != len(rb):
        return f"{len(ra)} vs {len(rb)} rows"
    header = ra[0] if ra else []
    for i, (x, y) in enumerate(zip(ra, rb)):
        for j, (u, v) in enumerate(zip(x, y)):
            if u != v:
                col = header[j] if j < len(header) else j
                return f"row {i}, column {col}: {u!r} (slurm) vs {v!r} (local)"
        if len(x) != len(y):
            return f"row {i}: {len(x)} vs {len(y)} columns"
    return "same cells, different bytes"


def check_outputs(slurm: Path, local: Path, run: str, failures: list[str]) -> None:
    print("\n== (b) outputs of the SLURM run vs the local run (byte-for-byte)")
    patterns = [f"results/{run}/curves/*/*.csv", f"reports/{run}/table1.csv"]
    names = sorted({str(p.relative_to(d)) for d in (slurm, local) for pat in patterns for p in d.glob(pat)})
    if not names:
        failures.append("(b) no CSV to compare: neither run produced curves or table1.csv")
        return
    print(f"  {'file':<44} {'rows':>4}  {'sha256 (slurm)':<14} {'sha256 (local)':<14} result")
    for name in names:
        a, b = slurm / name, local / name
        if not (a.exists() and b.exists()):
            failures.append(f"(b) {name} exists only in the {'slurm' if a.exists() else 'local'} run")
            print(f"  {name:<44} {'':>4}  {'':<14} {'':<14} MISSING in {'local' if a.exists() else 'slurm'} run")
            continue
        rows = sum(1 for _ in csv.reader(a.open())) - 1
        same = a.read_bytes() == b.read_bytes()
        result = "identical" if same else f"DIFFERENT: {first_difference(a, b)}"
        print(f"  {name:<44} {rows:>4}  {sha(a):<14} {sha(b):<14} {result}")
        if not same:
            failures.append(f"(b) {name} differs between the SLURM and the local run: {first_difference(a, b)}")
    table = slurm / f"reports/{run}/table1.csv"
    if table.exists():
        print(f"\n{table.relative_to(slurm)} (SLURM run):")
        for row in csv.reader(table.open()):
            print("  " + " | ".join(row[:5] + row[6:9]))
    if not any(f.startswith("(b)") for f in failures):
        print(f"OK: {len(names)} CSVs identical")


def check_retry(log: str, cancelled_file: Path, records: dict, submitted: list, failures: list[str]) -> None:
    print("\n== (c) a cancelled job is retried and the DAG completes")
    text = cancelled_file.read_text().split() if cancelled_file.exists() else []
    if len(text) < 2:
        failures.append("(c) the watcher cancelled no training job (is the job too short, or did it never run?)")
        return
    sid, comment = text[0], text[1]
    print(f"watcher: scancel of running SLURM job {sid} ({comment})")
    state = records.get(sid, {}).get("state", "?")
    print(f"scheduler: job {sid} is {state}")
    if state != "CANCELLED":
        failures.append(f"(c) cancelled job {sid} is {state} in the scheduler's records, not CANCELLED")
    smk = [sj for sj, s, _ in submitted if s == sid]
    if not smk:
        failures.append(f"(c) Snakemake never logged SLURM job {sid}")
        return
    sj = smk[0]
    failed_line = FAILED.format(id=sid, state="CANCELLED")
    restart_line = f"Trying to restart job {sj}."
    lines = [ln for ln in log.splitlines() if failed_line in ln or restart_line in ln
             or re.match(rf"^Job {sj} has been submitted with SLURM jobid", ln)]
    print("Snakemake log:")
    for ln in lines:
        print("  " + ln.strip()[:160])
    resubmitted = [s for j, s, _ in submitted if j == sj and s != sid]
    if failed_line not in log:
        failures.append(f"(c) the Snakemake log does not report job {sid} as CANCELLED")
    if restart_line not in log:
        failures.append(f"(c) the Snakemake log has no '{restart_line}'")
    if not resubmitted:
        failures.append(f"(c) Snakemake job {sj} was not resubmitted after the cancel")
    elif records.get(resubmitted[-1], {}).get("state") != "COMPLETED":
        failures.append(f"(c) the retry of job {sj} (SLURM {resubmitted[-1]}) did not complete: "
                        f"{records.get(resubmitted[-1], {}).get('state')}")
    done = re.findall(r"^(\d+) of (\d+) steps \(100%\) done", log, re.M)
    if not done:
        failures.append("(c) the SLURM run did not reach '100% done'")
    elif resubmitted:
        first, retry = records.get(sid, {}), records.get(resubmitted[-1], {})
        print(f"retry: SLURM job {resubmitted[-1]} (attempt 2: memory {first.get('mem')} -> {retry.get('mem')}, "
              f"time limit {first.get('time')} -> {retry.get('time')}) {retry.get('state')}; "
              f"DAG: {done[-1][0]} of {done[-1][1]} steps (100%) done")
    if not any(f.startswith("(c)") for f in failures):
        print("OK: the cancelled job was retried by Snakemake and the DAG completed")


def check_multi_gpu(slurm: Path, run: str, n: int, records: dict, failures: list[str]) -> None:
    print(f"\n== (d) multi-GPU training jobs: {n} GPUs requested, {n} DDP ranks started")
    train = {sid: rec for sid, rec in records.items() if rec["comment"].startswith("rule_train_")}
    asked = {sid for sid, rec in train.items() if re.search(rf"gpu[:=](?:[A-Za-z0-9_-]+:)?{n}\b", rec["gpu"])}
    if not train or asked != set(train):
        failures.append(f"(d) training jobs without a {n}-GPU request: "
                        f"{sorted((sid, train[sid]['gpu']) for sid in set(train) - asked) or 'no training job'}")
    logs = sorted((slurm / "results" / run / "logs" / "train").rglob("*.log"))
    ranked = [p for p in logs if f"ranks: {n} " in p.read_text(errors="replace")]
    print(f"{len(asked)} of {len(train)} training jobs requested {n} GPUs; {len(ranked)} of {len(logs)} training logs "
          f"report {n} ranks")
    if not logs or len(ranked) != len(logs):
        failures.append(f"(d) training logs that do not report {n} ranks: "
                        f"{[str(p) for p in logs if p not in ranked] or 'no training log'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slurm-dir", type=Path, required=True)
    ap.add_argument("--local-dir", type=Path, required=True)
    ap.add_argument("--log", type=Path, required=True, help="the SLURM run's Snakemake output")
    ap.add_argument("--cancelled", type=Path, required=True, help="'<slurm id> <comment>' written by the watcher")
    ap.add_argument("--run", default="tiny")
    ap.add_argument("--profile", type=Path, required=True, help="the profile's config.yaml")
    ap.add_argument("--train-gpus", type=int, default=1, help="GPUs (DDP ranks) each training job was given")
    args = ap.parse_args()
    log = args.log.read_text(errors="replace")
    failures: list[str] = []
    profile = yaml.safe_load(args.profile.read_text()) or {}
    _, records, submitted = check_sbatch(log, profile, failures)
    check_outputs(args.slurm_dir, args.local_dir, args.run, failures)
    check_retry(log, args.cancelled, records, submitted, failures)
    if args.train_gpus > 1:
        check_multi_gpu(args.slurm_dir, args.run, args.train_gpus, records, failures)
    if failures:
        print("\nSLURM stage FAILED:", *failures, sep="\n  - ")
        return 1
    print("\nSLURM stage checks passed: (a) sbatch, (b) identical outputs, (c) retry"
          + (f", (d) {args.train_gpus}-GPU DDP training jobs" if args.train_gpus > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
