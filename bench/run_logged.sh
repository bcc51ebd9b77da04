#!/bin/bash
# usage: bench/run_logged.sh NAME OMP_THREADS -- python -m bench.clock ARGS...
# Logs the exact command, uptime before/after, and /usr/bin/time's CPU (user+sys) and wall.
name=$1; omp=$2; shift 3
log=bench/results/logs/$name.log
{ echo "# command: OMP_NUM_THREADS=$omp $*"; echo "# git: $(git rev-parse --short HEAD) $(git status --porcelain | tr '\n' ' ')";
  echo "# start $(date -u +%FT%TZ) uptime: $(uptime)"; } > "$log"
OMP_NUM_THREADS=$omp /usr/bin/time -f "# /usr/bin/time: user %U s sys %S s wall %e s maxrss %M KB cpu %P" "$@" >> "$log" 2>&1
echo "# end $(date -u +%FT%TZ) rc $? uptime: $(uptime)" >> "$log"
