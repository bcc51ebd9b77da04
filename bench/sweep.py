"""The default full sweep (`python study.py --trials 20`) into a temporary database, timed.

    python -m bench.sweep [extra study.py flags...]

Prints the wall time, the trials per state, and the peak resident memory of any sweep process.
"""

from __future__ import annotations

import collections
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from sweep.trial_record import TrialRecord
from sweep.trial_record import read as read_record


def main(argv: list[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/studies.db"
        cmd = [sys.executable, str(root / "study.py"), "--trials", "20", "--storage", url, *extra]
        print("running:", " ".join(cmd), flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            return proc.returncode
        study = optuna.load_study(study_name="lstm-l1-lr", storage=url)
        trials = study.get_trials(deepcopy=False)
        states = collections.Counter(t.state.name for t in trials)
        records = [read_record(t) or TrialRecord() for t in trials]
        verdicts = collections.Counter(r.verdict for r in records)
        peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        peak_trials = max((r.peak_rss_mb or 0 for r in records), default=0)
        epochs = sum(r.epochs or 0 for r in records)
        best = min(r.val_mse for r in records if r.val_mse is not None)
    print(f"wall time: {wall:.1f} s ({wall / 60:.2f} min)")
    print(f"trials per state: {dict(states)}; verdicts: {dict(verdicts)}")
    print(f"epochs trained in all: {epochs}; best honest validation MSE: {best:.4f}")
    print(f"peak resident memory of any sweep process: {max(peak_children, peak_trials):.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
