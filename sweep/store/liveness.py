"""Who owns a RUNNING trial, and whether that process still lives.

Optuna's heartbeat notices a dead worker only after its grace period. A worker restarted on the
same machine can do better: each trial records ``host:pid:start-time`` of its process, and a
process that no longer exists (or a pid reused by another process, whose start time differs)
means the trial is dead now. "host" is the host name and the process-id namespace, so two
containers that share a host name (and the database) never judge each other's processes.

Our workers record the owner in the transaction that makes a trial RUNNING
(``sweep.store.ownership``). A RUNNING trial with no owner was asked by another program (or by a
version that recorded the owner later), and whether its process lives cannot be known: it is
taken as dead once it is older than ``UNOWNED_GRACE_S``, and Optuna's stale check never would
if it never started a heartbeat.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path

from optuna.trial import FrozenTrial

from sweep import records as rec

#: Seconds after which a RUNNING trial that names no process is taken as dead.
UNOWNED_GRACE_S = 30.0
#: Overrides ``UNOWNED_GRACE_S`` (for tests).
UNOWNED_GRACE_ENV = "LSTM_SWEEP_UNOWNED_GRACE"


def unowned_grace() -> float:
    try:
        return float(os.environ.get(UNOWNED_GRACE_ENV, UNOWNED_GRACE_S))
    except ValueError:
        return UNOWNED_GRACE_S


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields count from after the ")" that closes the command name: field 3 is the state,
    # field 22 the start time. A zombie (killed, not yet reaped) is dead too.
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def host_id() -> str:
    try:
        ns = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/{ns.removeprefix('pid:[').removesuffix(']')}"


def worker_id(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{host_id()}:{pid}:{_start_time(pid) or '?'}"


def _on_this_host(worker: str) -> tuple[int, str] | None:
    """(pid, start time) of a worker stamp of this host; None for another host's or a bad one."""
    try:
        host, pid, start = worker.rsplit(":", 2)
    except ValueError:
        return None
    if host != host_id() or not pid.isdigit():
        return None
    return int(pid), start


def owner_dead(worker: str) -> bool:
    """True only when we can tell: same host, and that process is gone."""
    here = _on_this_host(worker)
    if here is None:
        return False
    pid, start = here
    if start == "?":  # no /proc here: whether the pid exists is all we can tell
        return not _pid_exists(pid)
    return _start_time(pid) != start


def owner_alive(worker: str) -> bool:
    """True only when we can tell: same host, and that very process still exists (stopped
    or not)."""
    return _on_this_host(worker) is not None and not owner_dead(worker)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def unowned_age(trial: FrozenTrial, now: datetime | None = None) -> float | None:
    """Seconds since an unowned trial started running; None when it names its process."""
    if isinstance(trial.user_attrs.get(rec.WORKER), str) or trial.datetime_start is None:
        return None
    return ((now or datetime.now()) - trial.datetime_start).total_seconds()


def alive(trial: FrozenTrial, now: datetime | None = None) -> bool:
    worker = trial.user_attrs.get(rec.WORKER)
    if isinstance(worker, str):
        return not owner_dead(worker)
    age = unowned_age(trial, now)
    return age is None or age < unowned_grace()
