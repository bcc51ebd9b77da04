"""Who owns a RUNNING trial, and whether that process still lives.

Optuna's heartbeat notices a dead worker only after its grace period. A worker restarted on the
same machine can do better: each trial records ``host:pid:start-time`` of its process, and a
process that no longer exists (or a pid reused by another process, whose start time differs)
means the trial is dead now.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from optuna.trial import FrozenTrial


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) counts from after the ")" that closes the command name.
    return stat.rsplit(")", 1)[1].split()[19]


def worker_id(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def owner_dead(worker: str) -> bool:
    """True only when we can tell: same host, and that process is gone."""
    try:
        host, pid, start = worker.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return _start_time(int(pid)) != start


def alive(trial: FrozenTrial) -> bool:
    worker = trial.user_attrs.get("worker")
    return not (isinstance(worker, str) and owner_dead(worker))
