#!/usr/bin/env bash
# CI stage: prove profiles/slurm against a real SLURM. On this machine it
#   1. installs (apt, when missing) and starts a single-node SLURM with two fake GPUs (setup_local_slurm.sh);
#   2. runs the CI-sized DAG (config/tiny.yaml, every training job on two data-parallel ranks: resources.train.gpu 2,
#      so each asks SLURM for two GPUs and starts two gloo ranks under torchrun) with `--profile profiles/slurm` in one
#      folder, while a watcher scancels the first training job it sees running (Snakemake must retry it);
#   3. runs the same target locally (`--cores 2`, the default profile) in another folder;
#   4. checks (check_slurm_run.py): (a) every job went through sbatch (the scheduler's own records), (b) the curves
#      and table1.csv are byte-identical to the local run, (c) the cancelled job was retried and the DAG completed,
#      (d) every training job requested two GPUs and ran two ranks;
#   5. stops every daemon it started, by PID, also when something failed, and prints its wall time.
#
#   bash workflow/ci/slurm_stage.sh          # as root, Debian/Ubuntu, no SLURM running; about 7 min on 2 cores
#
# Environment: EEBENCH_SLURM_CI_WORK (run folders, default /tmp/eebench-slurm-ci, recreated), EEBENCH_SLURM_DIR
# (cluster state, default /tmp/eebench-slurm), SLURM_CI_ACCOUNTING=1 (also slurmdbd: status and checks via sacct),
# and the node knobs of setup_local_slurm.sh.
set -euo pipefail
start=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CI="$REPO/workflow/ci"
WORK=${EEBENCH_SLURM_CI_WORK:-/tmp/eebench-slurm-ci}
CONFIG="$REPO/config/tiny.yaml"
export EEBENCH_SLURM_DIR=${EEBENCH_SLURM_DIR:-/tmp/eebench-slurm}
# the jobs import eebench from this checkout (sbatch exports the environment to them)
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
RUN=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["run"])' "$CONFIG")

watcher=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$watcher" ] && kill -0 "$watcher" 2>/dev/null; then kill "$watcher"; wait "$watcher" 2>/dev/null; fi
  # a run that failed half-way may leave jobs behind: cancel them while slurmctld still runs
  if [ -s "$EEBENCH_SLURM_DIR/pids" ]; then
    left=$(squeue -h -o %i 2>/dev/null)
    if [ -n "$left" ]; then
      echo "cancelling jobs still queued or running: $left"
      scancel $left
      for _ in $(seq 1 30); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 1; done
    fi
  fi
  echo "== stopping the local SLURM cluster"
  bash "$CI/teardown_local_slurm.sh" || rc=1
  echo "SLURM stage: $([ "$rc" = 0 ] && echo passed || echo "FAILED (exit $rc)"); wall time $(( $(date +%s) - start )) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# scancel the first training job seen RUNNING (after a few seconds, so it is really at work), once; write
# "<slurm id> <comment>" to $1 for the checks
cancel_one_training_job() {
  local out=$1 jid comment
  local deadline=$((SECONDS + 600))
  while [ "$SECONDS" -lt "$deadline" ]; do
    jid="" comment=""
    read -r jid comment < <(squeue -h -t RUNNING -o '%i %k' 2>/dev/null | awk '$2 ~ /^rule_train_/ {print; exit}') || true
    if [ -n "$jid" ]; then
      sleep 4
      if [ "$(squeue -h -j "$jid" -o %T 2>/dev/null)" = RUNNING ] && scancel "$jid" 2>/dev/null; then
        echo "$jid $comment" > "$out"
        echo "[watcher] scancel $jid ($comment) — Snakemake has to retry it"
        return 0
      fi
    fi
    sleep 1
  done
  echo "[watcher] saw no running training job to cancel" >&2
}

echo "== local single-node SLURM cluster (workflow/ci/setup_local_slurm.sh)"
if [ -s "$EEBENCH_SLURM_DIR/pids" ]; then  # daemons an earlier run of this stage left behind
  bash "$CI/teardown_local_slurm.sh"
fi
bash "$CI/setup_local_slurm.sh"

rm -rf "$WORK"
mkdir -p "$WORK/slurm" "$WORK/local"
RANKS=2  # data-parallel ranks (and GPUs requested) per training job, in both runs
smk() { timeout 900 snakemake -s "$REPO/Snakefile" --configfile "$CONFIG" --config "resources={\"train\": {\"gpu\": $RANKS}}" "$@"; }

echo "== run '$RUN' through SLURM: snakemake --profile profiles/slurm --configfile config/tiny.yaml (in $WORK/slurm)"
t0=$(date +%s)
cancel_one_training_job "$WORK/cancelled" &
watcher=$!
set +e
smk -d "$WORK/slurm" --profile "$REPO/profiles/slurm" --slurm-keep-successful-logs 2>&1 \
  | tee "$WORK/slurm.log" \
  | { grep --line-buffered -E "SLURM run ID|submitted with SLURM jobid|failed, SLURM status|Trying to restart|Error in rule|steps \(100%\) done" || true; }
rc=${PIPESTATUS[0]}
set -e
wait "$watcher" 2>/dev/null || true
watcher=""
echo "SLURM run: exit $rc, $(( $(date +%s) - t0 )) s"
if [ "$rc" != 0 ]; then
  echo "--- last lines of $WORK/slurm.log"; tail -60 "$WORK/slurm.log"
  exit 1
fi

echo "== the same run locally: snakemake --cores 2 --configfile config/tiny.yaml (in $WORK/local)"
t0=$(date +%s)
if ! smk -d "$WORK/local" --cores 2 > "$WORK/local.log" 2>&1; then
  echo "--- last lines of $WORK/local.log"; tail -60 "$WORK/local.log"
  exit 1
fi
echo "local run: $(grep -E 'steps \(100%\) done' "$WORK/local.log" | tail -1), $(( $(date +%s) - t0 )) s"

python "$CI/check_slurm_run.py" --slurm-dir "$WORK/slurm" --local-dir "$WORK/local" --log "$WORK/slurm.log" \
  --cancelled "$WORK/cancelled" --run "$RUN" --profile "$REPO/profiles/slurm/config.yaml" --train-gpus "$RANKS"
echo "logs and outputs of both runs: $WORK"
