"""The one place that names the training methods.

Each method lives in its own package, imported only when asked for: an L=1 worker on the
compiled engine never imports the clock method, and so never torch. Adding a method means a
package that exports ``METHOD`` (a ``model.method.Method``) and one line here.
"""

from __future__ import annotations

import importlib
from typing import Any

from model.method import Method

PACKAGES = {
    "l1": "model.l1",
    "clock": "model.clock",
}
"""Each method's package, imported by ``get`` alone. import-linter cannot see that route:
``tests/test_registry_contracts.py`` holds every package named here to the contracts."""
NAMES = tuple(PACKAGES)
DEFAULT = "l1"


def get(name: str) -> Method:
    """The method registered as ``name``; a one-line ``ValueError`` for any other name."""
    if name not in PACKAGES:
        raise ValueError(f"unknown training method {name!r} (known: {', '.join(NAMES)})")
    return importlib.import_module(PACKAGES[name]).METHOD


def of_config(config: Any) -> Method:
    """The method whose config ``config`` is (each config class names its method)."""
    return get(config.METHOD)
