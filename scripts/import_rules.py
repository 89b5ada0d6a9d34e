"""An import-linter contract type that import-linter lacks: no module imports another
module's private *name* (``from sendoso.validation import _clean``).

import-linter's graph records which modules import which, not the names imported, and ruff's
``import-private-name`` (PLC2701) ignores imports within the same first-party package; so this
one rule reads the import statements itself. Registered in pyproject.toml's
``[tool.importlinter]`` as ``private_names``; ``lint-imports`` runs it with the others.

Importing a private *module* (``from sendoso.cli import _help_cache``) is left to the
``private_modules`` contract; a module may of course use its own private names.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from importlinter import Contract, ContractCheck, fields, output


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def private_name_imports(modules: set[str]) -> list[tuple[str, str, int]]:
    """``(importer, imported name, line)`` for each private name imported from another module
    of ``modules`` (names of modules, resolved to files with the import system)."""
    found: list[tuple[str, str, int]] = []
    for module in sorted(modules):
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        is_package = spec.submodule_search_locations is not None
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _absolute(module, node, is_package)
            if source == module or source not in modules:
                continue
            for alias in node.names:
                target = f"{source}.{alias.name}"
                if _private(alias.name) and target not in modules:
                    found.append((module, target, node.lineno))
    return found


class PrivateNamesContract(Contract):
    """Private names (``_x``) are used only by the module that defines them.

    Options: ``ignore_imports``, entries ``importer -> module._name`` that are allowed for now;
    one that no longer matches breaks the contract, so that none lingers.
    """

    ignore_imports = fields.SetField(subfield=fields.StringField(), required=False)

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        ignored = {str(entry) for entry in cast(Iterable[object], self.ignore_imports or ())}
        found = private_name_imports(set(graph.modules))
        illegal = [(a, b, line) for a, b, line in found if f"{a} -> {b}" not in ignored]
        used = {f"{a} -> {b}" for a, b, _ in found}
        stale = sorted(ignored - used)
        return ContractCheck(
            kept=not illegal and not stale,
            metadata={"illegal": illegal, "stale": stale},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, name, line in check.metadata["illegal"]:
            output.print_error(f"- {importer} imports {name} (l.{line})", bold=False)
            output.new_line()
        for entry in check.metadata["stale"]:
            output.print_error(f"- ignore_imports entry matches nothing: {entry}", bold=False)
            output.new_line()
