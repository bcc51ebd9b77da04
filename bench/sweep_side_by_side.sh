#!/usr/bin/env bash
# The default 20-trial sweep in another checkout (say, the previous engine's commit) and in this
# one, turn about, with the same 20 learning rates queued in both: wall and CPU seconds (the
# workers included) per run, and the machine's load when each started.
#
#   git worktree add /tmp/old c48fafc && bash bench/sweep_side_by_side.sh /tmp/old [rounds]
set -euo pipefail
old=$(cd "${1:?usage: sweep_side_by_side.sh OLD_CHECKOUT [ROUNDS]}" && pwd)
new=$(cd "$(dirname "$0")/.." && pwd)
rounds=${2:-2}
out=$(mktemp -d)
for round in $(seq "$rounds"); do
  for tree in "$old" "$new"; do
    d="$out/$(basename "$tree")-$round"; mkdir -p "$d"
    python -c "
import numpy as np, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
s = optuna.create_study(study_name='lstm-l1-lr', storage='sqlite:///$d/s.db', direction='minimize')
for lr in np.geomspace(3e-5, 3e-4, 20): s.enqueue_trial({'lr': float(lr)})"
    load=$(cut -d' ' -f1 /proc/loadavg)
    (cd "$d" && /usr/bin/time -f "%e %U %S" -o time.txt \
      python "$tree/study.py" --trials 20 --workers 2 --quiet --storage "sqlite:///$d/s.db" > log.txt 2>&1)
    echo "$(basename "$tree") round $round load $load wall/user/sys s: $(cat "$d/time.txt")"
  done
done
echo "studies kept in $out"
