"""Running ``python ARGS`` as the unprivileged user ``nobody``, for what root is exempt from:
file permissions (a read-only database) and the limit on processes (``ulimit -u``).

The tests run as root here, and this Python may live where ``nobody`` cannot read it (pyenv
under ``/root``, mode 700). Then a private mount namespace shows the installation at a
world-readable place (a bind mount, read-only to ``nobody`` like the rest of it) and
``nobody`` runs it from there. Where none of this works, ``command`` says why, for a skip.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SETPRIV = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def writable_folder() -> Path:
    """A new folder that ``nobody`` can write and reach (pytest's own are root's, mode 700)."""
    folder = Path(tempfile.mkdtemp(prefix="lstm-sweep-nobody-", dir="/tmp"))
    folder.chmod(0o777)
    return folder


def _python(home: Path) -> list[str]:
    exe = home / "bin" / Path(sys.executable).name
    return ["env", f"PYTHONHOME={home}", f"LD_LIBRARY_PATH={home / 'lib'}", str(exe)]


class Nobody:
    """``python ARGS`` as nobody (``prefix`` runs this Python so); ``why`` is not empty where
    that cannot be done here."""

    def __init__(self, prefix: list[str], why: str = "") -> None:
        self.prefix, self.why = prefix, why
        self.home = writable_folder() if prefix else None  # its HOME and numba's cache

    def run(self, args: list[str], cwd: Path, nproc: int | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        """``python ARGS`` in ``cwd``; ``nproc``: the most processes (and threads) the user
        may have (RLIMIT_NPROC, which root is exempt from)."""
        assert self.home is not None, self.why

        def limit() -> None:
            if nproc is not None:
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

        # numba caches compiled code beside the sources, which nobody cannot write.
        extra = {"HOME": str(self.home), "NUMBA_CACHE_DIR": str(self.home / "numba"),
                 "PYTHONUNBUFFERED": "1", **(env or {})}  # fmt: skip
        return subprocess.run([*self.prefix, *args], cwd=cwd, env={**os.environ, **extra},
                              capture_output=True, text=True, timeout=180,
                              preexec_fn=limit)  # fmt: skip

    def close(self) -> None:
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)


@contextmanager
def nobody() -> Iterator[Nobody]:
    """A ``Nobody`` while the context lasts (the bind mount, where one is needed, lives in the
    namespace of each command it runs)."""
    if os.geteuid() != 0:
        yield Nobody([sys.executable])
        return
    if sys.prefix != sys.base_prefix:
        yield Nobody([], "a virtual environment: one mount cannot show its Python to nobody")
        return
    missing = [t for t in ("setpriv", "unshare", "mount") if shutil.which(t) is None]
    if missing:
        yield Nobody([], f"{', '.join(missing)} not installed")
        return
    mount = Path(tempfile.mkdtemp(prefix="lstm-sweep-python-", dir="/tmp"))
    mount.chmod(0o755)
    direct = [*_SETPRIV, sys.executable]
    shown = ["unshare", "-m", "sh", "-c", f'mount --bind "$0" "{mount}" && exec "$@"',
             sys.base_prefix, *_SETPRIV, *_python(mount)]  # fmt: skip
    prefix = next((p for p in (direct, shown) if _imports(p)), None)
    user = Nobody(prefix or [], "" if prefix else "nobody cannot run this Python here, not "
                  "even through a bind mount")  # fmt: skip
    try:
        yield user
    finally:
        user.close()
        mount.rmdir()


def _imports(prefix: list[str]) -> bool:
    probe = subprocess.run([*prefix, "-c", "import optuna, numba"], capture_output=True,
                           cwd="/tmp", timeout=120)  # fmt: skip
    return probe.returncode == 0
