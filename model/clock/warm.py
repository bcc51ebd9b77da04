"""Fill numba's cache with the polish's compiled loops, in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: The folder that holds the ``model`` package: the child process imports it from there.
_ROOT = Path(__file__).resolve().parents[2]
#: Long enough to compile on a slow, busy machine (~20-40 s on these 2-core ones).
TIMEOUT_S = 600


def fill_kernel_cache(hidden: int, n_in: int) -> bool:
    """Run ``model.sequence_kernels.warm_up`` in a child process, so that a worker later only
    loads the machine code from numba's cache. False when the child failed or timed out:
    the worker then compiles at its first polish, as numba always can (more memory, the same
    numbers)."""
    path = [str(_ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    code = f"from model.sequence_kernels import warm_up; warm_up({hidden}, {n_in})"
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=_ROOT, env=env,
                              capture_output=True, timeout=TIMEOUT_S)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
