"""Where a measurement ran: the commit (with a mark when the tree had changes) and the CPU, for
the records bench scripts write."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def commit() -> str:
    """HEAD's short hash, with ``+dirty`` when tracked files differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return ""


def machine() -> str:
    return f"{platform.processor() or platform.machine()} {cpu_name()}"
