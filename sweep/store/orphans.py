"""Worker processes never outlive the sweep that started them."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

#: prctl(2): deliver a signal to this process when its parent thread dies.
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int, parent: int) -> None:
    """Ask the kernel to send ``sig`` when the parent (pid ``parent``) dies; if it died
    already (before this call), send it now. Linux only: elsewhere nothing is done, and a
    worker killed with its parent is left to the liveness checks."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died between fork and prctl
        signal.raise_signal(sig)
