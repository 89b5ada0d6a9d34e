"""One rule for errors, checked for every command of the tree.

Without ``--json`` an error goes to stderr, once, and nothing of it to stdout; with ``--json``
stdout holds exactly one JSON document ``{"error": ...}`` and stderr nothing. The exit code
says who refused: ``2`` this program, before or instead of sending (a bad flag, an unknown
id, an unreadable file, a refusal by a guardrail), ``1`` the API, ``3`` an ambiguous send.
Only a command that sends says "Not sent".

To cover a new command: add its error case to ``CASES``; ``test_every_command_has_an_error_case``
fails until then.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import typer.main

from sendoso.cli import ExitCode, app

from ._support import EGIFT, Invoke


@dataclass(frozen=True)
class Case:
    command: str
    args: tuple[str, ...]
    exit_code: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return " ".join(self.args)[:60]


USAGE, API = int(ExitCode.USAGE), int(ExitCode.API_ERROR)
WRONG_SECRET = {"SENDOSO_CLIENT_SECRET": "not-the-secret"}
BAD_LEDGER = ("--ledger", "bogus://x")

#: Commands that send: only they may say what was not sent.
SENDING = {"send", "batch run", "batch resume", "approvals approve", "demo"}

CASES = [
    Case("auth check", ("auth", "check"), API, WRONG_SECRET),
    Case("gifts list", ("gifts", "list", "--category", "egifts"), USAGE),
    Case("gifts list", ("gifts", "list", "--min-price", "abc"), USAGE),
    Case("gifts list", ("gifts", "list"), API, WRONG_SECRET),
    Case("send", (*EGIFT[:8], "ada@", *EGIFT[9:], "--yes"), USAGE),
    Case("status", ("status", "snd_nope"), API),
    Case("batch run", ("batch", "run", "/nowhere/people.csv", "--yes"), USAGE),
    Case("batch resume", ("batch", "resume", "nope"), USAGE),
    Case("batch runs", ("batch", "runs", *BAD_LEDGER), USAGE),
    Case("batch show", ("batch", "show", "nope"), USAGE),
    Case("batch status", ("batch", "status", "nope"), USAGE),
    Case("batch report", ("batch", "report", "nope", "--out", "nope.csv"), USAGE),
    Case("batch settle", ("batch", "settle", "nope", "2", "--not-sent"), USAGE),
    Case("demo", ("demo", "--recipients", "/nowhere/people.csv"), USAGE),
    Case("sandbox serve", ("sandbox", "serve", "--host", "0.0.0.0"), USAGE),  # noqa: S104
    Case("sandbox clock show", ("sandbox", "clock", "show", "--url", "http://127.0.0.1:9"), API),
    Case("sandbox clock advance", ("sandbox", "clock", "advance", "soon"), USAGE),
    Case("sandbox clock set", ("sandbox", "clock", "set", "2000-01-01T00:00:00Z"), USAGE),
    Case("mcp", ("mcp", "--http", "--host", "0.0.0.0"), USAGE),  # noqa: S104
    Case("approvals list", ("approvals", "list", *BAD_LEDGER), USAGE),
    Case("approvals approve", ("approvals", "approve", "apr_nope"), USAGE),
    Case("approvals reject", ("approvals", "reject", "apr_nope"), USAGE),
]


def _commands() -> dict[str, Any]:
    def walk(command: Any, prefix: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
        children = getattr(command, "commands", None)
        if not children:
            yield " ".join(prefix), command
            return
        for name, child in children.items():
            yield from walk(child, (*prefix, name))

    return dict(walk(typer.main.get_command(app), ()))


def _has_json(command: str) -> bool:
    return any("--json" in getattr(p, "opts", ()) for p in _commands()[command].params)


def _said(line: str) -> str:
    """A line without its label ("API error 404:", "- id:"), to find a message said twice."""
    return re.sub(r"^\s*(-\s*[\w.]+:|[A-Z][A-Za-z ]*?( \d{3})?:)\s*", "", line).strip()


def test_every_command_has_an_error_case() -> None:
    missing = set(_commands()) - {c.command for c in CASES}
    assert not missing, f"commands with no error case: {sorted(missing)}"


@pytest.fixture
def in_tmp(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENDOSO_LEDGER", f"sqlite:///{tmp_path}/ledger.db")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_an_error_goes_to_stderr_once_with_its_exit_code(
    cli: Invoke, env: Any, in_tmp: None, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    result = cli(case.args)
    assert result.exit_code == case.exit_code, (result.stdout, result.stderr)
    assert result.stdout == "", "an error (or a partial result) on stdout"
    lines = [_said(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines, "an error with no message"
    assert len(lines) == len(set(lines)), f"a message printed twice: {lines}"
    if case.command not in SENDING:
        assert "not sent" not in result.stderr.lower(), "a command that sends nothing"


@pytest.mark.parametrize("case", [c for c in CASES if _has_json(c.command)], ids=lambda c: c.id)
def test_an_error_with_json_is_one_document_on_stdout(
    cli: Invoke, env: Any, in_tmp: None, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    result = cli([*case.args, "--json"])
    assert result.exit_code == case.exit_code, (result.stdout, result.stderr)
    document = json.loads(result.stdout)
    assert set(document) >= {"error"}, document
    assert result.stderr == ""


def test_a_mistyped_category_is_caught_before_any_request(cli: Invoke, env: Any) -> None:
    """`--category egifts`: refused here, with the likely meant one, in one line."""
    result = cli(["gifts", "list", "--category", "egifts"])
    assert result.exit_code == ExitCode.USAGE
    assert "did you mean 'egift'?" in result.stderr
    assert result.stderr.count("egifts") == 1
    assert env.stats()["requests"].get("GET /api/v3/gifts", 0) == 0
