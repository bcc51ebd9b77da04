"""The one place that names the training methods.

Each method lives in its own package, imported only when asked for: an L=1 worker on the
compiled engine never imports the clock method, and so never torch. Adding a method means a
package that exports ``METHOD`` (an instance of a ``model.method.Method`` subclass) and one line
here; nothing else names it.
"""

from __future__ import annotations

import importlib

from model.method import Method

PACKAGES = {
    "l1": "model.l1",
    "clock": "model.clock",
}
"""Each method's package, imported by ``get`` alone. import-linter cannot see that route:
``tests/test_registry_contracts.py`` holds every package named here to the contracts."""
DEFAULT = "l1"


def names() -> tuple[str, ...]:
    """The registered methods' names (read from ``PACKAGES`` on each call, so a test that
    registers a method of its own sees it everywhere)."""
    return tuple(PACKAGES)


def get(name: str) -> Method:
    """The method registered as ``name``; a one-line ``ValueError`` for any other name."""
    if name not in PACKAGES:
        raise ValueError(f"unknown training method {name!r} (known: {', '.join(names())})")
    return importlib.import_module(PACKAGES[name]).METHOD
