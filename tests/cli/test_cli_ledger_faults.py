"""A ledger that cannot be created is a ledger error: exit 2, one JSON error when asked."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sendoso.cli import ExitCode

from ._support import Invoke, parse_json


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a filesystem mounted read-only (root ignores file modes, so a chmod
    would not stop it; a read-only mount stops everyone)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a read-only filesystem needs root")
    target = tmp_path / "ro"
    target.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


@pytest.mark.parametrize("inside", ["ledger.db", "sub/ledger.db"])
def test_a_ledger_on_a_read_only_filesystem_is_a_ledger_error(
    cli: Invoke, read_only_dir: Path, inside: str
) -> None:
    url = f"sqlite:///{read_only_dir / inside}"
    result = cli(["batch", "runs", "--ledger", url, "--json"])
    assert result.exit_code == ExitCode.USAGE
    error = parse_json(result)["error"]
    assert error["type"] == "LedgerError"
    assert "Read-only file system" in error["message"]

    shown = cli(["batch", "runs", "--ledger", url])
    assert shown.exit_code == ExitCode.USAGE
    assert "unexpected error" not in shown.stdout + shown.stderr


def test_a_ledger_under_a_file_is_a_ledger_error(cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("x")
    url = f"sqlite:///{tmp_path / 'not-a-dir' / 'ledger.db'}"
    result = cli(["batch", "runs", "--ledger", url, "--json"])
    assert result.exit_code == ExitCode.USAGE
    assert parse_json(result)["error"]["type"] == "LedgerError"
