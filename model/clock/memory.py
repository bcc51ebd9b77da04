"""Keep freed memory in the process: a long clock update allocates and frees hundreds of MB.

glibc serves blocks over its mmap threshold (32 MiB at most by default) with fresh ``mmap``
calls and returns them on free, so every full-length update pays its activations again in
page faults: measured on one core, a batch-16 update spent 0.35-0.45 s of its 0.75 s in the
kernel (``sys`` time), and about 0 s with the thresholds below (0.42-0.56 s an update)."""

from __future__ import annotations

import ctypes
import ctypes.util

#: mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap, and the heap keeps up to this much free memory.
KEEP_BYTES = 1 << 30

_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; False where there is no glibc
    (the training is the same, only slower)."""
    global _done
    if _done:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _done = bool(mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)) & bool(
        mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES)
    )
    return _done


def release_freed_memory() -> bool:
    """Hand the heap's free memory back to the system (glibc's malloc_trim): called as a run
    starts and before every polish epoch, whose compiled passes (``model.sequence``) need
    little of the heap the grow stage's torch passes left, while numba, loaded for them,
    costs ~120 MB. A few milliseconds a call. False where there is no glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True
