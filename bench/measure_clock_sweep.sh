#!/usr/bin/env bash
# usage: bench/measure_clock_sweep.sh NAME SAMPLER_SEED (from the repository root)
# The default clock sweep as a user runs it, in a fresh clone of HEAD at /tmp/runNAME, under
# /usr/bin/time -v; then where its time went (bench.clock_spend), the best trial on fresh noise
# seeds 11 and 777 (study.py eval) and the report. Run it with nothing else on the machine.
set -u
name=$1; seed=$2
dir=/tmp/run$name
rm -rf $dir && git clone -q "$(git rev-parse --show-toplevel)" $dir && cd $dir
git log --oneline -1 > commit.txt
uptime > uptime_before.txt
date +%s > start.txt
/usr/bin/time -v python study.py --method clock --trials 20 --sampler-seed $seed > out.log 2> time.log
date +%s > end.txt
uptime > uptime_after.txt
python -m bench.clock_spend studies.db --json spend.jsonl > spend.txt 2>&1
best=$(python -c "
import optuna; optuna.logging.set_verbosity(optuna.logging.WARNING)
s=optuna.load_study(study_name='lstm-clock', storage='sqlite:///studies.db'); print(s.best_trial.number)")
for s in 11 777; do python study.py eval --study-name lstm-clock --trial $best --seed $s >> eval.txt 2>&1; done
python study.py report --study-name lstm-clock > report.txt 2>&1
echo done > finished.txt
