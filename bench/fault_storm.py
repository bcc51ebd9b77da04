"""A fault storm: the kill storm's checks under every fault a sweep meets, not only SIGKILL.

    python -m bench.fault_storm                                  # 30 faults on each back end
    python -m bench.fault_storm --faults 12 --backends sqlite    # a short one

Each round starts the sweep (SQLite: one ``study.py --workers 2``; PostgreSQL: three such
commands at once, the third as another machine: ``unshare -u`` and its own host name) and, once
it trains, strikes one to three times at random moments (0-1.5 s apart), each strike one of:

- ``kill``: SIGKILL a main process or a worker;
- ``stop``: SIGSTOP a worker, SIGCONT it 0.5-8 s later (the grace period is 4 s here: a stop
  past it on the other machine is taken over, and the woken worker must be fenced);
- ``restart`` (PostgreSQL): stop the server (``fast``: sessions ended; or ``immediate``: a
  crash and recovery), leave it down 0.5-3 s, start it;
- ``drop`` (PostgreSQL): end every session on the study's database from a side connection
  (``pg_terminate_backend``, as a failover or a network cut does).

PostgreSQL runs as a throwaway cluster of its own (``bench.pg_cluster``), one database per
study. After the last strike of a study the same commands run undisturbed until they succeed.
Then each study must hold exactly ``--trials`` finished trials, none RUNNING or WAITING, no
epoch trained twice, no gap in a curve (the kill storm's checks, ``bench.kill_storm._check``),
and every line the runs printed must be one of the sweep's own one-line messages: a traceback,
or a line that is none of them, fails the storm. Prints the counts; exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from bench import pg_cluster
from bench.kill_storm import Counts, Run, _check, _children, _training, _until

STUDY = "faults"
#: Heartbeat every second (grace 4 s), a 30 s reconnect window (every restart here is
#: shorter), and an unowned trial judged after 3 s (as in the kill storm).
ENV = {"LSTM_SWEEP_HEARTBEAT_S": "1", "LSTM_SWEEP_RECONNECT_S": "30"}
#: The other machine: a UTS namespace of its own, named so.
OTHER_MACHINE = ["unshare", "-u", "sh", "-c", 'hostname storm-machine-b && exec "$@"', "sh"]
#: Every line a sweep prints, each one line on its own (after "[worker N] ", if any).
KNOWN = [re.compile(p) for p in (
    r"^trial \d+ epoch \d+/\d+ lr ", r"^trial \d+ done \(", r"^trial \d+ \[[a-z_ ]+\] ",
    r"^trial \d+: continuing trial \d+ from epoch \d+$", r"^trial \d+: trial \d+ starts again",
    r"^warning: trial \d+: ", r"^study '.*': \d+ of \d+ trials finished; running with",
    r"^study '.*' already holds \d+ finished trials; nothing to run$",
    r"^continuing trials cut off earlier: [\d, ]+$", r"^compiled the kernels in ",
    r"^lost the connection to the database .*; retrying for up to \d+ s$",
    r"^reconnected to the database .* after [\d.]+ s$",
    r"^trial \d+ was taken over by another worker after this one's heartbeat had been silent ",
    r"^trial\(s\) [\d, ]+ (running on another machine|still running on|running in no known)",
    r"^best checkpoint attached for optuna-dashboard", r"^done\. See the results with:$",
    r"^  (python study\.py|optuna-dashboard) ", r"^study\.py: error: ",
    r"^study\.py: worker process \d+ ", r"^$", r"^(interrupted|terminated): finished trials",
)]  # fmt: skip
_WORKER = re.compile(r"^\[worker \d+\] ")
#: Where every run's output goes, with its exit code (``--log``); None: nowhere.
LOG: Path | None = None
_TRACEBACK = ("Traceback (most recent call last)", "Exception in thread", "Exception ignored")


@dataclass
class FaultCounts(Counts):
    faults: collections.Counter = field(default_factory=collections.Counter)
    lines: int = 0
    tracebacks: int = 0
    other_lines: list[str] = field(default_factory=list)
    messages: collections.Counter = field(default_factory=collections.Counter)

    def line(self) -> str:
        kills = super().line().split(": ", 1)[1]
        return (f"{self.backend}: faults {dict(self.faults)}; {kills}; lines {self.lines}, "
                f"tracebacks {self.tracebacks}, lines of no known message "
                f"{len(self.other_lines)}")  # fmt: skip


def _judge_lines(outputs: list[str], counts: FaultCounts) -> None:
    for raw in outputs:
        # Two workers' lines can share one line of the pipe (PYTHONUNBUFFERED writes the
        # newline on its own): split before each "[worker N] ".
        for text in re.split(r"(?=\[worker \d+\] )", raw) or [raw]:
            if not text and raw:
                continue
            counts.lines += 1
            bare = _WORKER.sub("", text)
            if any(t in bare for t in _TRACEBACK):
                counts.tracebacks += 1
            elif not any(k.search(bare) for k in KNOWN):
                counts.other_lines.append(text)
                continue
            for kind in ("lost the connection", "reconnected", "taken over", "error:",
                         "worker process", "another machine"):  # fmt: skip
                if kind in bare:
                    counts.messages[kind] += 1


class Striker:
    """The faults, struck at random. Stopped workers are woken by timers (``wake_all`` wakes
    them at once, before a run is waited for undisturbed)."""

    def __init__(self, rng: random.Random, cluster: pg_cluster.Cluster | None,
                 counts: FaultCounts) -> None:  # fmt: skip
        self.rng, self.cluster, self.counts = rng, cluster, counts
        self.timers: list[threading.Timer] = []
        self.kinds = ["kill", "stop", "restart", "drop"] if cluster else ["kill", "stop"]

    def strike(self, runs: list[Run], database: str | None) -> bool:
        """One fault; False when nothing was left to strike."""
        kind = self.rng.choice(self.kinds)
        mains = [(r.proc.pid, "main") for r in runs if r.proc.poll() is None]
        workers = [(k, "worker") for r in runs for k in _children(r.proc.pid)]
        if not mains:
            return False
        if kind == "kill":
            pid, target = self.rng.choice(mains + workers)
            if _signal(pid, signal.SIGKILL):
                self.counts.kills += 1
                self.counts.kills_by_target[target] += 1
                self.counts.kills_by_phase["training" if _training(runs) else "start-up"] += 1
        elif kind == "stop":
            if not workers:
                return True
            pid = self.rng.choice(workers)[0]
            if _signal(pid, signal.SIGSTOP):
                timer = threading.Timer(self.rng.uniform(0.5, 8.0), _signal, (pid, signal.SIGCONT))
                timer.start()
                self.timers.append(timer)
                kind = "stop past the grace period" if timer.interval > 4 else "stop"
        elif kind == "restart":
            assert self.cluster is not None
            mode = self.rng.choice(["fast", "immediate"])
            self.cluster.stop(mode)
            time.sleep(self.rng.uniform(0.5, 3.0))
            self.cluster.start()
            kind = f"restart ({mode})"
        else:
            assert self.cluster is not None and database is not None
            self.cluster.drop_connections(database)
        self.counts.faults[kind] += 1
        return True

    def wake_all(self) -> None:
        for timer in self.timers:
            timer.cancel()
            timer.function(*timer.args)
        self.timers.clear()


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def fault_storm(url_for: Callable[[int], tuple[str, str | None]], folder: Path, *,
                faults: int, processes: int, cluster: pg_cluster.Cluster | None,
                other_machine: bool, trials: int = 4, workers: int = 2, epochs: int = 6,
                samples: int = 1000, seed: int = 0) -> FaultCounts:  # fmt: skip
    """Run the storm in ``folder``; ``url_for(n)``: the storage URL of the n-th study and its
    PostgreSQL database name (None for SQLite)."""
    rng = random.Random(seed)
    counts = FaultCounts("postgresql" if cluster else "sqlite")
    striker = Striker(rng, cluster, counts)
    start, cycle, struck = time.monotonic(), 0, 0
    while struck < faults:
        url, database = url_for(cycle)
        name = f"{STUDY}-{cycle}"
        args = ["--trials", str(trials), "--workers", str(workers), "--samples", str(samples),
                "--epochs", str(epochs), "--storage", url, "--study-name", name]  # fmt: skip
        outputs: list[str] = []

        while struck < faults:
            runs = _start(args, folder, processes, other_machine)
            counts.runs += processes
            _until(lambda rs=runs: _training(rs) or all(r.proc.poll() is not None for r in rs),
                   120)  # fmt: skip
            alive = True
            for _ in range(min(rng.randint(1, 3), faults - struck)):
                time.sleep(rng.uniform(0.0, 1.5))
                alive = striker.strike(runs, database)
                if not alive:
                    break
                struck += 1
            _collect(runs, 300, counts, outputs)
            striker.wake_all()
            if not alive:
                break  # the study was complete before the strike
        for _ in range(4):  # undisturbed, until the study is complete
            runs = _start(args, folder, processes, other_machine)
            counts.final_runs += processes
            if all(rc == 0 for rc in _collect(runs, 300, counts, outputs)):
                break
        _check(url, name, trials, outputs, counts)
        _judge_lines(outputs, counts)
        cycle += 1
    counts.studies = cycle
    counts.seconds = time.monotonic() - start
    if counts.tracebacks:
        counts.problems.append(f"{counts.tracebacks} tracebacks printed")
    if counts.other_lines:
        counts.problems.append(f"{len(counts.other_lines)} lines of no known message, e.g. "
                               f"{counts.other_lines[:5]}")  # fmt: skip
    return counts


def _start(args: list[str], folder: Path, processes: int, other_machine: bool) -> list[Run]:
    """``processes`` commands at once; the third as the other machine, if there is one."""
    prefix = [OTHER_MACHINE if other_machine and i == 2 else None for i in range(processes)]
    return [Run(args, folder, prefix=p, env=ENV) for p in prefix]


def _collect(runs: list[Run], timeout: float, counts: FaultCounts,
             outputs: list[str]) -> list[int]:  # fmt: skip
    rcs = [r.wait(timeout) for r in runs]
    for r, rc in zip(runs, rcs, strict=True):
        counts.exit_codes[rc] += 1
        outputs.extend(r.lines)
        if LOG is not None:
            with LOG.open("a") as f:
                f.write(f"### {counts.backend} run {' '.join(r.proc.args[-6:])}: exit {rc}\n")
                f.writelines(ln + "\n" for ln in r.lines)
    return rcs


def _other_machine_works() -> bool:
    probe = subprocess.run([*OTHER_MACHINE, "true"], capture_output=True, check=False)
    return probe.returncode == 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--faults", type=int, default=30, help="faults struck per back end")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", type=Path, help="write every run's output here (appended)")
    args = p.parse_args(argv)
    global LOG
    LOG = args.log
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    failed = False
    for backend in args.backends.split(","):
        opts = dict(faults=args.faults, trials=args.trials, epochs=args.epochs,
                    samples=args.samples, seed=args.seed)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                counts = fault_storm(lambda n, t=tmp: (f"sqlite:///{t}/storm-{n}.db", None),
                                     Path(tmp), processes=1, cluster=None, other_machine=False,
                                     **opts)  # fmt: skip
            else:
                why = pg_cluster.unavailable()
                if why is not None:
                    print(f"postgresql: skipped, no throwaway cluster here ({why})")
                    continue
                other = _other_machine_works()
                if not other:
                    print("postgresql: no other machine (unshare -u failed): one host only")
                with pg_cluster.Cluster() as cluster:

                    def url_for(n: int, c: pg_cluster.Cluster = cluster) -> tuple[str, str]:
                        return c.create_database(f"storm{n}"), f"storm{n}"

                    counts = fault_storm(url_for, Path(tmp), processes=3, cluster=cluster,
                                         other_machine=other, **opts)  # fmt: skip
        print(counts.line(), flush=True)
        print(f"  messages: {dict(counts.messages)}")
        for problem in counts.problems:
            print(f"  FAILED: {problem}")
        failed |= bool(counts.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
