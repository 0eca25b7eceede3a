#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for proving profiles/slurm in CI (Debian/Ubuntu, as root, no systemd).
#
# Installs munge + slurmctld + slurmd + the client tools with apt when they are missing, writes the configuration
# into $EEBENCH_SLURM_DIR and links it from /etc/slurm, where every SLURM command looks (SLURM_CONF is not enough:
# the plugin's job step drops every SLURM_* variable before its inner srun), and starts the daemons directly, in
# their foreground mode (-D / --foreground), as background processes whose PIDs are written to
# $EEBENCH_SLURM_DIR/pids. teardown_local_slurm.sh stops exactly those PIDs and removes the links.
#
#   bash workflow/ci/setup_local_slurm.sh      # then sinfo, sbatch, snakemake --profile profiles/slurm …
#   bash workflow/ci/teardown_local_slurm.sh
#
# The node is "localhost" in partition "debug" (the default partition). Knobs (environment):
#   EEBENCH_SLURM_DIR   state folder: config, logs, spool, PID list, fake GPUs   (default /tmp/eebench-slurm)
#   SLURM_CI_NGPU       fake GPUs announced as GRES gpu:<type>:N                  (default 2)
#   SLURM_CI_GPU_TYPE   their type (what --gpus=<type>:1 / gpu_model would name)  (default fake)
#   SLURM_CI_CPUS       CPUs the node announces                                   (default 16)
#   SLURM_CI_MEM_MB     memory the node announces, MB                             (default 262144)
#   SLURM_CI_ACCOUNTING 1 = also slurmdbd + MariaDB, so that sacct works           (default 0: squeue only)
# The node announces CPUs and memory from the knobs, not from the hardware (SlurmdParameters=config_overrides), so
# the profile's paper-size requests (8 cores and 64 GB per training job) schedule unchanged on a small CI runner.
# Nothing enforces them (no cgroups here), and the CI jobs are tiny.
#
# Facts this relies on (observed with slurm 22.05.8 / munge 0.5.15 on Debian 12, in a gVisor sandbox):
# - no cgroups: proctrack/linuxproc + task/none;
# - a GPU GRES needs File= pointing at *character devices* (mknod c 1 3 = /dev/null's numbers): regular files
#   schedule but leave CUDA_VISIBLE_DEVICES empty, and Count= without File= marks the node INVAL;
# - without a MaxMemPerNode-sized default, a job without --mem takes the whole node: DefMemPerCPU is set;
# - with accounting off, finished jobs are known only to slurmctld for MinJobAge seconds: the Snakemake plugin polls
#   them with `squeue --states=all`, so MinJobAge must comfortably exceed its polling interval (>= 120 s).
set -euo pipefail

STATE=${EEBENCH_SLURM_DIR:-/tmp/eebench-slurm}
NGPU=${SLURM_CI_NGPU:-2}
GPU_TYPE=${SLURM_CI_GPU_TYPE:-fake}
NCPU=${SLURM_CI_CPUS:-16}
MEM_MB=${SLURM_CI_MEM_MB:-262144}
ACCOUNTING=${SLURM_CI_ACCOUNTING:-0}
export DEBIAN_FRONTEND=noninteractive

say() { echo "[slurm-setup] $*"; }
# a setup that fails half-way stops what it already started
trap 'echo "setup_local_slurm: failed (line $LINENO); stopping what was started" >&2;
      bash "$(dirname "${BASH_SOURCE[0]}")/teardown_local_slurm.sh" >&2' ERR

# ---- refuse to start a second cluster next to one we did not start (ports 6817/6818 are fixed per host)
if [ -s "$STATE/pids" ]; then
  echo "setup_local_slurm: $STATE/pids exists — a local cluster from an earlier run may still be up;" \
       "run workflow/ci/teardown_local_slurm.sh first" >&2
  exit 1
fi
for d in slurmctld slurmd slurmdbd; do
  if ps -eo stat=,comm= | awk -v d="$d" '$1 !~ /^Z/ && $2 == d {found = 1} END {exit !found}'; then
    echo "setup_local_slurm: a $d is already running on this machine (not started by this script);" \
         "stop it or run on a machine without SLURM daemons" >&2
    exit 1
  fi
done

# ---- packages
pkgs=(munge slurmctld slurmd slurm-client)
[ "$ACCOUNTING" = 1 ] && pkgs+=(slurmdbd mariadb-server)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  t0=$(date +%s)
  say "installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef \
      -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
  say "installed in $(( $(date +%s) - t0 )) s"
fi

# ---- state folder (fresh each time: job ids start at 1, no jobs from an earlier run)
rm -rf "$STATE"
mkdir -p "$STATE"/{ctld,spool,log,fakegpu}
: > "$STATE/pids"
record() { echo "$1 $2" >> "$STATE/pids"; }   # name pid: teardown kills exactly these

# ---- fake GPUs: character devices (see above); fall back to /dev/null (one GPU) where mknod is not allowed
GRES=""
if [ "$NGPU" -gt 0 ]; then
  files="$STATE/fakegpu/nvidia[0-$((NGPU - 1))]"
  for i in $(seq 0 $((NGPU - 1))); do
    if ! mknod "$STATE/fakegpu/nvidia$i" c 1 3 2>/dev/null; then
      say "mknod not permitted: one fake GPU backed by /dev/null"
      NGPU=1 files=/dev/null
      break
    fi
  done
  GRES="Gres=gpu:$GPU_TYPE:$NGPU"
  cat > "$STATE/gres.conf" <<EOF
AutoDetect=off
NodeName=localhost Name=gpu Type=$GPU_TYPE File=$files
EOF
fi

if [ "$ACCOUNTING" = 1 ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux"
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

cat > "$STATE/slurm.conf" <<EOF
# written by eebench workflow/ci/setup_local_slurm.sh — a throw-away single-node test cluster
ClusterName=eebench-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
$ACCT
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
SchedulerType=sched/backfill
ReturnToService=2
# finished jobs stay visible to squeue --states=all for an hour: the plugin's squeue status path needs >= 120 s
MinJobAge=3600
SlurmdParameters=config_overrides
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmdSpoolDir=$STATE/spool
StateSaveLocation=$STATE/ctld
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
GresTypes=gpu
NodeName=localhost CPUs=$NCPU RealMemory=$MEM_MB $GRES State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
# /etc/slurm/<name> -> our file; an existing real configuration is never replaced
unset SLURM_CONF
link_conf() {
  if [ -e "/etc/slurm/$1" ] || [ -L "/etc/slurm/$1" ]; then
    if [ "$(readlink "/etc/slurm/$1")" != "$STATE/$1" ]; then
      echo "setup_local_slurm: /etc/slurm/$1 exists and is not ours: this machine has a SLURM configuration;" \
           "run the CI stage on a machine without one" >&2
      exit 1
    fi
  fi
  mkdir -p /etc/slurm
  ln -sfn "$STATE/$1" "/etc/slurm/$1"
  echo "/etc/slurm/$1" >> "$STATE/links"
}
link_conf slurm.conf
[ -z "$GRES" ] || link_conf gres.conf

# ---- munge (slurm's authentication): reuse one that is already running, else start ours
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "munged already running: reusing it (not ours to stop)"
else
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    /usr/sbin/mungekey --create --force 2>/dev/null \
      || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  # setpriv execs munged as user munge (no intermediate process): the recorded PID is munged's own
  setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground \
      >"$STATE/log/munged.log" 2>&1 </dev/null &
  record munged $!
  for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
  munge -n | unmunge >/dev/null || { echo "setup_local_slurm: munged did not come up" >&2; exit 1; }
fi

# ---- optional accounting: MariaDB + slurmdbd (makes sacct, --slurm-efficiency-report, account checks work)
if [ "$ACCOUNTING" = 1 ]; then
  mkdir -p "$STATE/mysql" && chown mysql:mysql "$STATE/mysql"
  mariadb-install-db --user=mysql --datadir="$STATE/mysql" --auth-root-authentication-method=socket \
      >"$STATE/log/mariadb-install.log" 2>&1
  /usr/sbin/mariadbd --user=mysql --datadir="$STATE/mysql" --socket="$STATE/mysql/mysqld.sock" \
      --pid-file="$STATE/mysql/mysqld.pid" --skip-networking=0 --bind-address=127.0.0.1 --port=3307 \
      >"$STATE/log/mariadb.log" 2>&1 </dev/null &
  record mariadbd $!
  for _ in $(seq 1 60); do mariadb --socket="$STATE/mysql/mysqld.sock" -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
  mariadb --socket="$STATE/mysql/mysqld.sock" -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
      CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'eebench-ci';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
  cat > "$STATE/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3307
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=eebench-ci
EOF
  chmod 600 "$STATE/slurmdbd.conf"
  link_conf slurmdbd.conf
  slurmdbd -D >"$STATE/log/slurmdbd.out" 2>&1 </dev/null &
  record slurmdbd $!
  for _ in $(seq 1 60); do sacctmgr -n show cluster >/dev/null 2>&1 && break; sleep 0.5; done
  sacctmgr -i add cluster eebench-ci >/dev/null
  sacctmgr -i add account eebench-ci Description=ci Organization=ci >/dev/null
  sacctmgr -i add user "$(id -un)" Account=eebench-ci DefaultAccount=eebench-ci >/dev/null
fi

# ---- slurmctld (-c: start from a clean state) and slurmd (-N: the node is "localhost" whatever `hostname` says)
slurmctld -D -c >"$STATE/log/slurmctld.out" 2>&1 </dev/null &
record slurmctld $!
for _ in $(seq 1 50); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
slurmd -D -N localhost >"$STATE/log/slurmd.out" 2>&1 </dev/null &
record slurmd $!
for _ in $(seq 1 60); do sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 0.5; done
if ! sinfo -h -o %T | grep -qx idle; then
  echo "setup_local_slurm: the node did not become idle:" >&2
  sinfo -N -l >&2 || true
  tail -20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
  exit 1
fi
sinfo -N -o "%N %P %T cpus=%c mem=%m gres=%G"
srun -N1 -t 1 true
if [ "$NGPU" -gt 0 ]; then  # a 1-GPU step sees exactly one (fake) device
  say "srun --gpus=1: CUDA_VISIBLE_DEVICES=$(srun -N1 -t 1 --gpus=1 printenv CUDA_VISIBLE_DEVICES)"
fi
say "ready in $STATE (accounting=$ACCOUNTING, gpus=$NGPU x $GPU_TYPE); daemons: $(tr '\n' ' ' < "$STATE/pids")"
