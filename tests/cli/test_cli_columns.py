"""``sendoso batch run`` with a column missing for every row: one error, up front, worded with
the flag that fixes it; nothing planned, nothing sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sendoso.batch import Ledger
from sendoso.cli import ExitCode

from ._support import Invoke

EGIFT = "gft_egift_amazon_us_25"


@pytest.fixture
def people(tmp_path: Path) -> Path:
    """Thirty rows with two columns of email addresses, 'Office E-mail' and 'Home E-mail'."""
    rows = "".join(f"Ada{i},Lovelace,ada{i}@work.example,ada{i}@home.example\n" for i in range(30))
    path = tmp_path / "people.csv"
    path.write_text("First Name,Last Name,Office E-mail,Home E-mail\n" + rows, encoding="utf-8")
    return path


def batch_run(cli: Invoke, ledger: str, path: Path, *extra: str) -> Any:
    args = ["batch", "run", str(path), "--gift-id", EGIFT, "--run-id", "r1", *extra]
    return cli([*args, "--ledger", ledger])


@pytest.mark.parametrize("dry", [True, False])
def test_a_missing_column_is_one_error_naming_the_flag(
    cli: Invoke, env: Any, tmp_path: Path, people: Path, dry: bool
) -> None:
    ledger = f"sqlite:///{tmp_path}/ledger.db"
    extra = ["--dry-run"] if dry else ["--yes"]
    result = batch_run(cli, ledger, people, "--message-template", "Hi {first_name}", *extra)
    assert result.exit_code == ExitCode.USAGE
    error = " ".join(result.stderr.split())
    assert error.count("no column maps to email") == 1
    assert "columns that look like email: 'Office E-mail', 'Home E-mail'" in error
    assert "(use --map email='Office E-mail')" in error
    assert "(row" not in result.stdout + result.stderr
    assert env.sends() == []
    with Ledger(ledger) as opened:
        assert opened.run("r1") is None


def test_no_message_source_names_both_ways_to_give_one(
    cli: Invoke, env: Any, tmp_path: Path, people: Path
) -> None:
    ledger = f"sqlite:///{tmp_path}/ledger.db"
    result = batch_run(cli, ledger, people, "--map", "email=Office E-mail", "--yes")
    assert result.exit_code == ExitCode.USAGE
    error = " ".join(result.stderr.split())
    assert error.count("no column maps to message") == 1
    assert "--message-template" in error
    assert "--map message=COLUMN" in error
    assert env.sends() == []


def test_the_mapping_the_error_suggests_makes_the_run_work(
    cli: Invoke, env: Any, tmp_path: Path, people: Path
) -> None:
    ledger = f"sqlite:///{tmp_path}/ledger.db"
    result = batch_run(
        cli, ledger, people, "--map", "email=Office E-mail", "--message-template", "Hi", "--yes"
    )
    assert result.exit_code == ExitCode.OK, result.stdout + result.stderr
    assert sorted(s["email"] for s in env.sends()) == sorted(
        f"ada{i}@work.example" for i in range(30)
    )
