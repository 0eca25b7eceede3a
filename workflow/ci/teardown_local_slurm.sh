#!/usr/bin/env bash
# Stops exactly the daemons setup_local_slurm.sh started: the PIDs listed in $EEBENCH_SLURM_DIR/pids, newest first,
# each only if that PID still runs the program it was recorded for (SIGTERM, up to 15 s, then SIGKILL); then removes
# the /etc/slurm links it made. Safe to call twice, or after a setup that failed half-way.
STATE=${EEBENCH_SLURM_DIR:-/tmp/eebench-slurm}
PIDS="$STATE/pids"
alive() {  # alive NAME PID: PID runs NAME (guards against a recycled PID) and is not a zombie waiting to be reaped
  [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$2/status" 2>/dev/null
}

status=0
[ -s "$PIDS" ] || echo "[slurm-teardown] no daemons recorded in $PIDS"
[ -s "$PIDS" ] && while read -r name pid; do
  [ -n "$pid" ] || continue
  if ! alive "$name" "$pid"; then
    echo "[slurm-teardown] $name ($pid) already gone"
    continue
  fi
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 75); do alive "$name" "$pid" || break; sleep 0.2; done
  if alive "$name" "$pid"; then
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
  fi
  if alive "$name" "$pid"; then
    echo "[slurm-teardown] could not stop $name ($pid)" >&2
    status=1
  else
    echo "[slurm-teardown] stopped $name ($pid)"
  fi
done < <(tac "$PIDS")
# the /etc/slurm links setup made, if they still point into our state folder
if [ -s "$STATE/links" ]; then
  while read -r link; do
    case "$(readlink "$link" 2>/dev/null)" in "$STATE"/*) rm -f "$link" && echo "[slurm-teardown] removed $link" ;; esac
  done < "$STATE/links"
  : > "$STATE/links"
fi
[ "$status" = 0 ] && [ -e "$PIDS" ] && : > "$PIDS"
exit "$status"
