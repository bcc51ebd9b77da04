"""The clock trainer keeps freed memory in the process (glibc's mallopt), once."""

from __future__ import annotations

import ctypes.util

import pytest

from model.clock import memory


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library found")
def test_keep_freed_memory_sets_the_thresholds_once(monkeypatch) -> None:
    calls: list[tuple[int, int]] = []

    class Libc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    monkeypatch.setattr(memory, "_done", False)
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: Libc())
    assert memory.keep_freed_memory() and memory.keep_freed_memory()
    assert calls == [(-3, memory.KEEP_BYTES), (-1, memory.KEEP_BYTES)]


def test_without_a_c_library_training_goes_on(monkeypatch) -> None:
    def missing(name: str) -> None:
        raise OSError("no libc here")

    monkeypatch.setattr(memory, "_done", False)
    monkeypatch.setattr(memory.ctypes, "CDLL", missing)
    assert memory.keep_freed_memory() is False
