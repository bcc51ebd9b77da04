"""Our own import-linter contract type, named in .importlinter's ``contract_types``.

``private_imports``: only the modules in ``allowed_importers`` may import a private module or
name of the external ``packages`` (a dotted component that starts with one underscore:
``optuna.storages._rdb``, ``from optuna.storages._rdb.storage import _create_scoped_session``).
import-linter's own ``forbidden`` contract cannot say this: its graph keeps an external package
as its top level only (``optuna``), so ``optuna.storages._rdb`` is not a module it can name.
The graph does keep where each import is, and this contract reads the statement there.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

import grimp
from importlinter import Contract, ContractCheck, fields, output


def private(dotted: str) -> bool:
    """Whether a component of ``dotted`` is private (``_x``, not a dunder like ``__init__``)."""
    return any(
        p.startswith("_") and not (p.startswith("__") and p.endswith("__"))
        for p in dotted.split(".")
    )


@cache
def _source_file(module: str) -> Path | None:
    root, *rest = module.split(".")
    spec = importlib.util.find_spec(root)  # a top-level package: found, not run
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@cache
def _statements(module: str) -> dict[int, list[str]]:
    """Line number -> the dotted names each import statement starting there brings in."""
    path = _source_file(module)
    if path is None:
        return {}
    names: dict[int, list[str]] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.setdefault(node.lineno, []).extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found = [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
            names.setdefault(node.lineno, []).extend(found or [node.module])
    return names


def imported_names(module: str, line_number: int, line_contents: str) -> list[str]:
    """The names the import statement at ``line_number`` of ``module`` brings in (the whole
    statement, also where it spans lines); its first line where the source cannot be read."""
    found = _statements(module).get(line_number)
    if found:
        return found
    words = line_contents.replace(",", " ").replace("(", " ").split()
    if words[:1] == ["from"] and "import" in words:
        at = words.index("import")
        return [f"{words[1]}.{w}" for w in words[at + 1 :] if w != "as" and w.isidentifier()]
    return [w for w in words[1:] if w != "as"]


class PrivateImportsContract(Contract):
    """Only ``allowed_importers`` (and their descendants) import private parts of ``packages``."""

    packages = fields.ListField(subfield=fields.StringField())
    allowed_importers = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        allowed = [m.name for m in self.allowed_importers]  # type: ignore[attr-defined]
        offending: set[tuple[str, int, str]] = set()
        for package in self.packages:  # type: ignore[attr-defined]
            if package not in graph.modules:
                continue  # imported by nobody
            for importer in sorted(graph.find_modules_that_directly_import(package)):
                if any(importer == a or importer.startswith(a + ".") for a in allowed):
                    continue
                for d in graph.get_import_details(importer=importer, imported=package):
                    names = imported_names(importer, d["line_number"], d["line_contents"])
                    for name in names:
                        if name.split(".")[0] == package and private(name):
                            offending.add((importer, d["line_number"], name))
        return ContractCheck(kept=not offending, metadata={"offending": sorted(offending)})

    def render_broken_contract(self, check: ContractCheck) -> None:
        allowed = ", ".join(m.name for m in self.allowed_importers)  # type: ignore[attr-defined]
        for importer, line, name in check.metadata["offending"]:
            output.print_error(f"{importer} (l.{line}) imports private {name}", bold=False)
        output.new_line()
        output.print_error(f"Only {allowed} may; reach through it, or use the public API.")
        output.new_line()
