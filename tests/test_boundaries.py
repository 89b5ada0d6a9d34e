"""The import rules (pyproject.toml's ``[tool.importlinter]``) hold on the tree, and each one
fails when a module breaks it; and the library's messages name no CLI flag or command.

The rules are checked by import-linter, as ``make lint`` runs it. Here it runs on a copy of the
package with one import planted, to show that each rule bites: a check that cannot fail proves
nothing.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the ``sendoso`` package found in ``tree/src``."""
    # The copy's package first; the repository root for scripts/import_rules.py.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(ROOT)])}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its pyproject.toml, to plant imports in."""
    shutil.copytree(
        ROOT / "src" / "sendoso",
        tmp_path / "src" / "sendoso",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_rule(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # Another package's private module, instead of the name its __init__ exports.
        (
            "mcp/_planted.py",
            "from sendoso.batch._sources import Source",
            "A package's private modules are imported only from inside it",
        ),
        # Another module's private function, as the demo once took the batch command's.
        (
            "cli/_planted.py",
            "from sendoso.cli._commands_batch import _confirm",
            "A module's private names are its own",
        ),
        # The SDK core's transport, from outside the core.
        (
            "batch/_planted.py",
            "from sendoso._http import Call",
            "The SDK core's transport and credentials are its own",
        ),
        # A lower layer reaching up: a pure module importing the batch engine.
        (
            "validation.py",
            "import sendoso.batch",
            "Layers: front ends > batch > ledger > SDK core > pure modules",
        ),
        # The sandbox using the engine it is there to check.
        (
            "sandbox/_planted.py",
            "from sendoso.batch import Source",
            "The sandbox never imports the client, the batch engine or the ledger",
        ),
    ],
)
def test_a_planted_import_breaks_its_rule(tree: Path, module: str, line: str, broken: str) -> None:
    planted = tree / "src" / "sendoso" / module
    before = planted.read_text() if planted.exists() else '"""Planted by a test."""\n'
    planted.write_text(f"{before}\n{line}\n")
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout
    assert f"{broken} BROKEN" in result.stdout, result.stdout


# --- the library speaks no CLI ----------------------------------------------------------------

# A flag (--max-spend) or a command (`sendoso batch resume`) in a string the code uses. Docstrings
# and comments may mention the CLI; messages may not: the front ends word those.
_CLI_WORDS = re.compile(
    r"(?<![\w-])--[a-z][a-z-]*|`sendoso\b|`batch |"
    r"\bsendoso (?:batch|approvals|mcp|sandbox|send|gifts|demo|auth)\b"
)
# The front ends, which own those words.
_FRONT_ENDS = ("cli/", "mcp/_server.py")
# KNOWN, TEMPORARY: modules whose messages still name flags or commands, until they name
# parameters and steps (sendoso.errors.Text) for the front ends to word. Remove each as it is
# done; one with nothing left to find fails, so none lingers.
_STILL_WORDED_FOR_THE_CLI = frozenset(
    {
        "batch/_plan.py",
        "ledger/_approvals.py",
        "ledger/_attempt.py",
        "ledger/_history.py",
        "ledger/_ledger.py",
        "mcp/_desk.py",
        "mcp/_guardrails.py",
    }
)


def cli_words(source: str) -> list[tuple[int, str]]:
    """``(line, words)`` for each string in ``source`` that is not a docstring and names a
    flag or a command."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and (match := _CLI_WORDS.search(node.value))
        ):
            found.append((node.lineno, match.group(0)))
    return sorted(found)


def test_the_library_names_no_flag_and_no_command() -> None:
    package = ROOT / "src" / "sendoso"
    wording: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        if not name.startswith(_FRONT_ENDS):
            found = cli_words(path.read_text(encoding="utf-8"))
            if found:
                wording[name] = found
    assert {k: v for k, v in wording.items() if k not in _STILL_WORDED_FOR_THE_CLI} == {}
    assert sorted(_STILL_WORDED_FOR_THE_CLI - wording.keys()) == []


def test_the_cli_words_check_finds_a_flag_in_a_message_not_in_a_docstring() -> None:
    source = '''
def cap(value):
    """Like --max-spend; see `sendoso batch run`."""
    # --max-spend, in a comment
    raise ValueError(f"{value}: use --max-spend")


NEXT = "then run `sendoso batch resume`"
'''
    assert cli_words(source) == [(5, "--max-spend"), (8, "`sendoso")]
