"""A kill storm: SIGKILL sweep processes at random moments, then check that nothing was lost.

    python -m bench.kill_storm                      # 30 kills on SQLite, then on PostgreSQL
    python -m bench.kill_storm --kills 4 --backends sqlite   # the short form (the test's)

Each round starts the sweep (SQLite: one ``study.py --workers 2``; PostgreSQL: three such
commands at once, on a temporary database dropped afterwards) and kills one of its processes (a
main process or a worker, chosen at random): the first kill of each study within its first
second (start-up and table creation), the others at a random moment after the first epoch is
reported (training, evaluation, recording). After the last kill the same command runs
undisturbed until it succeeds. Then the study must hold exactly ``--trials`` finished trials
and none RUNNING or WAITING, no checkpointed epoch may have been trained twice (each "trial N
epoch E" line, mapped to the trial N continues, is printed once), every finished trial's curve
must cover its epochs 1..n with no gap (nothing checkpointed was dropped), and SQLite's
integrity check must say ok. Prints the counts; exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState

from sweep import records as rec
from sweep.trial_record import TrialRecord
from sweep.trial_record import read as read_record

ROOT = Path(__file__).resolve().parent.parent
STUDY = "storm"
PG_SERVER = os.environ.get("LSTM_SWEEP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
#: A RUNNING trial that names no process is taken over after this many seconds (instead of
#: 30): a kill between Optuna's ask() and the owner's record cannot happen with our storage,
#: but a killed foreign process could; the storm should not wait for it.
UNOWNED_GRACE = "3"
_EPOCH = re.compile(r"trial (\d+) epoch (\d+)/")


@dataclass
class Counts:
    backend: str
    kills: int = 0
    kills_by_target: collections.Counter = field(default_factory=collections.Counter)
    kills_by_phase: collections.Counter = field(default_factory=collections.Counter)
    exit_codes: collections.Counter = field(default_factory=collections.Counter)
    runs: int = 0
    final_runs: int = 0
    states: collections.Counter = field(default_factory=collections.Counter)
    epochs_printed: int = 0
    epochs_trained_twice: int = 0
    studies: int = 0
    finished_per_study: list[int] = field(default_factory=list)
    running: int = 0
    gaps: int = 0
    integrity: collections.Counter = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.backend}: {self.kills} kills ({dict(self.kills_by_target)}; "
            f"{dict(self.kills_by_phase)}), {self.runs} runs + {self.final_runs} final, "
            f"exit codes {dict(sorted(self.exit_codes.items()))}; trials {dict(self.states)}; "
            f"{self.studies} studies, finished per study {self.finished_per_study}, running "
            f"{self.running}; epochs printed {self.epochs_printed}, trained twice "
            f"{self.epochs_trained_twice}, curve gaps {self.gaps}; integrity_check "
            f"{dict(self.integrity) or 'n/a'}; {self.seconds:.0f} s"
        )


class Run:
    """One ``study.py`` process; its output is collected line by line. ``prefix``: a command
    that runs python (``unshare -u ...``, for another machine); ``env``: added variables."""

    def __init__(self, args: list[str], cwd: Path, prefix: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "LSTM_SWEEP_UNOWNED_GRACE": UNOWNED_GRACE,
               **(env or {})}  # fmt: skip
        self.proc = subprocess.Popen(
            [*(prefix or []), sys.executable, str(ROOT / "study.py"), *args], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._reader.join(5)
        return rc


def _training(runs: list[Run]) -> bool:
    return any(_EPOCH.search(ln) for r in runs for ln in list(r.lines))


def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    kids = [int(p) for p in out.split()]
    # Workers only: multiprocessing's resource tracker is not ours to kill.
    return [k for k in kids if "spawn_main" in _cmdline(k)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def storm(url_for: Callable[[int], str], folder: Path, *, kills: int, processes: int,
          trials: int = 6, workers: int = 2, epochs: int = 8, samples: int = 300,
          seed: int = 0) -> Counts:  # fmt: skip
    """Run the storm (in ``folder``) and check every study it made. ``url_for(n)`` is the
    storage of the n-th study: tiny sweeps finish in seconds, so when one is complete before
    the last kill the storm goes on with a new study (for SQLite, a new database file, so
    table creation is cut off again)."""
    rng = random.Random(seed)
    counts = Counts("sqlite" if url_for(0).startswith("sqlite") else "postgresql")
    start = time.monotonic()
    cycle = 0
    while counts.kills < kills:
        url, name = url_for(cycle), f"{STUDY}-{cycle}"
        args = ["--trials", str(trials), "--workers", str(workers), "--samples", str(samples),
                "--epochs", str(epochs), "--storage", url, "--study-name", name]  # fmt: skip
        outputs: list[str] = []
        kills_here = 0
        while counts.kills < kills:
            runs = [Run(args, folder) for _ in range(processes)]
            counts.runs += processes
            if kills_here == 0:  # the first kill of a study lands in start-up or creation
                time.sleep(rng.uniform(0.05, 1.0))
            else:  # the others while trials train (or evaluate, or are recorded)
                _until(lambda rs=runs: _training(rs) or all(r.proc.poll() is not None for r in rs),
                       60)  # fmt: skip
                time.sleep(rng.uniform(0.0, 1.5))
            targets = [(r.proc.pid, "main") for r in runs if r.proc.poll() is None]
            targets += [(k, "worker") for r in runs for k in _children(r.proc.pid)]
            if targets:
                pid, kind = rng.choice(targets)
                started = _training(runs)
                try:
                    os.kill(pid, signal.SIGKILL)
                    counts.kills += 1
                    kills_here += 1
                    counts.kills_by_target[kind] += 1
                    counts.kills_by_phase["training" if started else "start-up"] += 1
                except ProcessLookupError:
                    pass
            rcs = [r.wait(180) for r in runs]
            for r, rc in zip(runs, rcs, strict=True):
                counts.exit_codes[rc] += 1
                outputs.extend(r.lines)
            if not targets:
                break  # the study was complete before the kill
        for _ in range(4):  # undisturbed, until the study is complete
            runs = [Run(args, folder) for _ in range(processes)]
            counts.final_runs += processes
            rcs = [r.wait(300) for r in runs]
            for r, rc in zip(runs, rcs, strict=True):
                counts.exit_codes[rc] += 1
                outputs.extend(r.lines)
            if all(rc == 0 for rc in rcs):
                break
        _check(url, name, trials, outputs, counts)
        cycle += 1
    counts.studies = cycle
    counts.seconds = time.monotonic() - start
    return counts


def _check(url: str, name: str, trials: int, outputs: list[str], counts: Counts) -> None:
    """Add the study's numbers to ``counts``, and what is wrong with it to its problems."""
    storage = optuna.storages.RDBStorage(_resolve(url), skip_table_creation=True)
    try:
        ts = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()
    states = collections.Counter(t.state.name for t in ts)
    counts.states.update(states)
    finished = [t for t in ts if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    counts.finished_per_study.append(len(finished))
    running = states.get("RUNNING", 0)
    counts.running += running
    waiting = states.get("WAITING", 0)
    line_of = {t.number: t.system_attrs.get("retry_history", [t.number])[0] for t in ts}
    seen = collections.Counter()
    for text in outputs:  # (finditer: two workers' lines can share one line of the pipe)
        for m in _EPOCH.finditer(text):
            seen[(line_of.get(int(m[1]), int(m[1])), int(m[2]))] += 1
    twice = sum(n - 1 for n in seen.values() if n > 1)
    counts.epochs_printed += sum(seen.values())
    counts.epochs_trained_twice += twice
    gaps = 0
    for t in finished:
        n = (read_record(t) or TrialRecord()).epochs or 0
        printed = [e for (line, e) in seen if line == line_of[t.number]]
        curve = rec.curve(t, rec.VAL_MSE_CURVE)
        if sorted(t.intermediate_values) != list(range(1, n + 1)) or len(curve) != n or (
            printed and max(printed) > n
        ):  # fmt: skip
            gaps += 1
    counts.gaps += gaps
    integrity = "n/a"
    db = _sqlite_file(url)
    if db is not None:
        con = sqlite3.connect(db)
        try:
            integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            con.close()
        counts.integrity[integrity] += 1
    where = f"study {name}"
    if len(finished) != trials:
        counts.problems.append(f"{where}: {len(finished)} finished trials, not {trials}")
    if running:
        counts.problems.append(f"{where}: {running} trials left RUNNING")
    if waiting:
        counts.problems.append(f"{where}: {waiting} trials left WAITING (queued, never run)")
    if twice:
        counts.problems.append(f"{where}: {twice} epochs trained twice")
    if gaps:
        counts.problems.append(f"{where}: {gaps} finished trials lost checkpointed epochs")
    if integrity not in ("ok", "n/a"):
        counts.problems.append(f"{where}: integrity check: {integrity}")


def _resolve(url: str) -> str:
    sys.path.insert(0, str(ROOT))
    from sweep.store.storage import resolve_url

    return resolve_url(url)


def _sqlite_file(url: str) -> str | None:
    return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None


class TemporaryPostgres:
    """A database of its own on the server, dropped afterwards; None when none answers."""

    def __init__(self, server: str) -> None:
        from sqlalchemy.engine import make_url

        self.server = make_url(server)
        self.name = f"storm_{os.getpid()}_{int(time.time())}"

    def _admin(self):  # noqa: ANN202 - a psycopg2 connection
        import psycopg2

        s = self.server
        con = psycopg2.connect(host=s.host, port=s.port or 5432, user=s.username,
                               password=s.password, dbname=s.database or "postgres",
                               connect_timeout=3)  # fmt: skip
        con.autocommit = True
        return con

    def __enter__(self) -> str:
        con = self._admin()
        try:
            con.cursor().execute(f'CREATE DATABASE "{self.name}"')
        finally:
            con.close()
        return self.server.set(database=self.name).render_as_string(hide_password=False)

    def __exit__(self, *_exc: object) -> None:
        con = self._admin()
        try:
            cur = con.cursor()
            others = "WHERE datname = %s AND pid <> pg_backend_pid()"
            cur.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity {others}",
                        (self.name,))  # fmt: skip
            cur.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
        finally:
            con.close()


def postgres_answers(server: str = PG_SERVER) -> str | None:
    """None when the server answers, else why not."""
    try:
        TemporaryPostgres(server)._admin().close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        return f"{type(exc).__name__}: {str(exc).strip()}"
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=30, help="SIGKILLs per back end")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--postgres", default=PG_SERVER, help="server URL (a database on it)")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    failed = False
    for backend in args.backends.split(","):
        opts = dict(kills=args.kills, trials=args.trials, epochs=args.epochs,
                    samples=args.samples, seed=args.seed)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                counts = storm(lambda n, t=tmp: f"sqlite:///{t}/storm-{n}.db", Path(tmp),
                               processes=1, **opts)  # fmt: skip
            else:
                why = postgres_answers(args.postgres)
                if why is not None:
                    print(f"postgresql: skipped, no server at {args.postgres} ({why})")
                    continue
                with TemporaryPostgres(args.postgres) as url:
                    counts = storm(lambda _n, u=url: u, Path(tmp), processes=3, **opts)
        print(counts.line(), flush=True)
        for problem in counts.problems:
            print(f"  FAILED: {problem}")
        failed |= bool(counts.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
