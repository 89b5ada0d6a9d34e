"""A ledger that cannot be created is a ledger error: exit 2, one JSON error when asked."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import wait_until

from sendoso.batch import Ledger, RowState
from sendoso.cli import ExitCode

from ._support import Invoke, parse_json


@contextmanager
def _tmpfs(target: Path, options: str) -> Iterator[Path]:
    """A small filesystem of its own at ``target`` (root only: a chmod would not stop root,
    and a full disk cannot be made otherwise without filling the machine's)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a filesystem needs root")
    target.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    with _tmpfs(tmp_path / "ro", "ro,size=64k") as target:
        yield target


@pytest.fixture
def small_dir(tmp_path: Path) -> Iterator[Path]:
    with _tmpfs(tmp_path / "small", "size=4m") as target:
        yield target


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


def _fill(directory: Path) -> None:
    """Write until the filesystem is full."""
    with (directory / "filler").open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass


def test_a_disk_filling_up_mid_run_loses_no_send_id(
    cli: Invoke, env: Any, small_dir: Path, tmp_path: Path
) -> None:
    """The disk under the ledger fills while four sends are in flight: the run ends as a
    ledger failure, lists every send the API confirmed and the ledger could not record (in
    --json too), and once there is room again, the resume records them all, none twice."""
    url = f"sqlite:///{small_dir / 'ledger.db'}"
    path = tmp_path / "r.csv"
    path.write_text(
        "first_name,last_name,email,gift_id\n"
        + "".join(f"P{i},Q,p{i}@example.com,gft_egift_amazon_us_25\n" for i in range(12))
    )
    env.hold(1000, endpoint="POST /api/v3/sends")

    def fill_once_four_are_in_flight() -> None:
        wait_until(lambda: env.hold_state()["arrived"] >= 4, "four sends in flight")
        _fill(small_dir)
        env.release_hold()

    filler = threading.Thread(target=fill_once_four_are_in_flight)
    filler.start()
    args = ["batch", "run", str(path), "--yes", "--run-id", "full", "--concurrency", "4"]
    # The resume runs in this same (live) process: short leases, not a wait of a minute.
    args += ["--lease-seconds", "1"]
    result = cli([*args, "--message-template", "Hi {first_name}", "--ledger", url, "--json"])
    filler.join()
    (small_dir / "filler").unlink()

    outcome = parse_json(result)
    on_server = {send["idempotency_key"]: send["id"] for send in env.sends()}
    assert outcome["end"] == "ledger"
    assert "disk is full" in outcome["message"]
    unrecorded = {u["send_id"] for u in outcome["unrecorded"]}
    assert unrecorded
    assert unrecorded <= set(on_server.values())

    resumed = cli(["batch", "resume", "full", "--ledger", url, "--json"])
    assert parse_json(resumed)["end"] == "finished"
    with Ledger(url) as ledger:
        recorded = {row.send_key: row.send_id for row in ledger.rows("full")}
        assert ledger.counts("full") == {RowState.SUBMITTED: 12}
    assert recorded == {send["idempotency_key"]: send["id"] for send in env.sends()}
    assert len(env.sends()) == 12
