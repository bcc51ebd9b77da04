"""A throwaway PostgreSQL cluster of its own, for the fault storm and the tests: made with
``initdb`` in a temporary folder, on a free port, and restarted, stopped or made to drop
connections at will (a server restart, a failover, a dropped connection are what a sweep
across machines meets).

PostgreSQL refuses to run as root: as root the cluster runs as the ``postgres`` user (made by
Debian's server package), or as ``nobody`` where there is none. ``unavailable()`` says why a
cluster cannot be made here (no ``initdb``, no such user), for a skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

#: Where Debian and Ubuntu put the server's programs (one folder per major version).
_BIN_GLOB = "/usr/lib/postgresql/*/bin"
#: Seconds pg_ctl waits for the server to start or stop.
_WAIT_S = 60


def _bin() -> Path | None:
    found = sorted(glob.glob(_BIN_GLOB), key=lambda p: int(Path(p).parent.name), reverse=True)
    for folder in [*found, *(os.environ.get("PATH", "").split(os.pathsep))]:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _run_as() -> list[str]:
    """The prefix that runs a server program as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}",
                "--clear-groups"]  # fmt: skip
    return []


def unavailable() -> str | None:
    """Why no throwaway cluster can be made here; None when one can."""
    if _bin() is None:
        return f"initdb not found (in {_BIN_GLOB} or on PATH)"
    if os.geteuid() == 0 and not _run_as():
        return "running as root with no postgres or nobody user to run the server as"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv not installed (needed to run the server as another user than root)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A cluster in a new temporary folder, trusting local connections, listening on
    127.0.0.1 only; ``close()`` stops it and removes the folder."""

    def __init__(self) -> None:
        why = unavailable()
        if why is not None:
            raise RuntimeError(why)
        self.bin = _bin()
        self.folder = Path(tempfile.mkdtemp(prefix="lstm-sweep-pg-", dir="/tmp"))
        self.data, self.log = self.folder / "data", self.folder / "server.log"
        self.port = free_port()
        prefix = _run_as()
        if prefix:
            user = pwd.getpwnam(prefix[1].removeprefix("--reuid="))
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self._as = prefix
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
                 "-E", "UTF8", "--locale=C")  # fmt: skip
        self.start()

    @property
    def server_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg(self, program: str, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self._as, str(self.bin / program), *args], cwd=self.folder,
                              capture_output=True, text=True, timeout=_WAIT_S + 30)  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"{program} failed ({proc.returncode}): "
                               f"{(proc.stderr or proc.stdout).strip()[-2000:]}")  # fmt: skip
        return proc

    def _ctl(self, *args: str) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=200")  # fmt: skip
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(_WAIT_S),
                 "-o", options, *args)  # fmt: skip

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: every session is ended at once ("terminating connection due to
        administrator command"), as in a restart; ``immediate``: a crash, then recovery."""
        self._ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        self._ctl("restart", "-m", mode)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """``statement`` run by psql; its output, unaligned, without headers."""
        return self._pg("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "-d", database, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c",
                        statement).stdout  # fmt: skip

    def drop_connections(self, database: str) -> int:
        """End every session on ``database`` from a side connection (``pg_terminate_backend``,
        as a failover or a network cut does); how many were ended."""
        out = self.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")  # fmt: skip
        return int(out.strip() or 0)

    def close(self) -> None:
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
