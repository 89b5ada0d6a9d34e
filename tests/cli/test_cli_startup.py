"""Start-up: importing the CLI loads nothing heavy, and ``--help`` is answered from a copy of
typer's own output, which must be exactly what typer prints."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import typer.main

import sendoso.cli
from sendoso.cli import _help_cache

HEAVY = (
    "typer",
    "click",
    "httpx",
    "pydantic",
    "rich",
    "sqlalchemy",
    "starlette",
    "uvicorn",
    "mcp",
    "email_validator",
    "anyio",
)

# Runs the console script's code as `sendoso ARGS`, then reports which heavy modules it loaded.
RUN_MAIN = textwrap.dedent(
    f"""
    import sys
    sys.argv = ["sendoso", *sys.argv[1:]]
    import sendoso.cli
    code = 0
    try:
        sendoso.cli.main()
    except SystemExit as exc:
        code = exc.code
    loaded = [name for name in {HEAVY!r} if name in sys.modules]
    sys.stderr.write("loaded:" + ",".join(loaded) + "\\n")
    sys.exit(code)
    """
)


def run_cli(args: list[str], cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-c", RUN_MAIN, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def loaded(result: subprocess.CompletedProcess[str]) -> list[str]:
    line = next(x for x in result.stderr.splitlines() if x.startswith("loaded:"))
    return [name for name in line.removeprefix("loaded:").split(",") if name]


def test_importing_the_cli_loads_nothing_heavy() -> None:
    script = f"import sys, sendoso.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_the_command_modules_import_only_typer_at_module_level() -> None:
    """What a cold run pays before typer: every command module, none of the SDK's weight."""
    heavy = tuple(m for m in HEAVY if m not in ("typer", "click"))
    heavy += ("sendoso.models", "sendoso.batch", "sendoso.sandbox", "sendoso.mcp")
    script = f"import sys, sendoso.cli._app; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [["--help"], ["gifts", "list", "--help"], ["batch", "-h"]])
def test_help_is_typers_output_then_a_copy_of_it_without_typer(
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = run_cli(args, tmp_path)
    again = run_cli(args, tmp_path)

    assert first.returncode == again.returncode == 0
    assert "typer" in loaded(first)
    assert loaded(again) == []  # answered from the copy: nothing heavy imported
    assert again.stdout == first.stdout
    monkeypatch.setenv("COLUMNS", "100")
    assert first.stdout == typer_output(args, capsys)


def typer_output(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What the typer app itself prints for ``sendoso ARGS`` (no copy involved)."""
    with pytest.raises(SystemExit) as exited:
        sendoso.cli.app(args, prog_name="sendoso")
    assert exited.value.code in (0, None), args
    out, err = capsys.readouterr()
    assert err == ""
    return out


def command_paths() -> list[list[str]]:
    """Every command and group of the real app, as the words that reach it."""
    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(sendoso.cli.app), [])
    return paths


@pytest.fixture
def as_console_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """main() as the installed script runs it: program ``sendoso``, a private cache."""
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "100")
    return tmp_path / "cache"


def main_output(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    monkeypatch.setattr(sys, "argv", ["sendoso", *args])
    code: object = 0
    try:
        sendoso.cli.main()  # returns when it replays a copy, exits when typer runs
    except SystemExit as exc:
        code = exc.code
    assert code in (0, None), args
    out, err = capsys.readouterr()
    assert err == ""
    return out


def typer_must_not_run(*_: object) -> None:
    raise AssertionError("typer ran although a copy was kept")


@pytest.mark.usefixtures("as_console_script")
def test_every_commands_help_copy_equals_what_typer_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = command_paths()
    assert ["gifts", "list"] in paths
    assert len(paths) > 10
    for path in paths:
        args = [*path, "--help"]
        shown = typer_output(args, capsys)
        assert shown.startswith("Usage: sendoso"), args
        assert main_output(args, monkeypatch, capsys) == shown, args

        with monkeypatch.context() as patched:
            patched.setattr(_help_cache, "run_and_keep", typer_must_not_run)
            assert main_output(args, patched, capsys) == shown, args


def test_only_plain_help_requests_are_answered_from_a_copy() -> None:
    assert _help_cache.help_key(["sendoso", "--help"]) is not None
    assert _help_cache.help_key(["sendoso", "gifts", "list", "-h"]) is not None
    for argv in (
        ["sendoso"],
        ["sendoso", "gifts", "list"],
        ["sendoso", "--json", "--help"],
        ["sendoso", "gifts", "--help", "list"],
        ["sendoso", "status", "snd/../x", "--help"],
    ):
        assert _help_cache.help_key(argv) is None, argv


def test_the_key_changes_with_the_code_and_the_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    package = tmp_path / "package"
    package.mkdir()
    module = package / "module.py"
    module.write_text("HELP = 'one'\n")
    monkeypatch.setattr(_help_cache, "_PACKAGE", str(package))
    monkeypatch.setenv("COLUMNS", "100")
    argv = ["sendoso", "--help"]
    before = _help_cache.help_key(argv)

    module.write_text("HELP = 'two, longer'\n")
    after_edit = _help_cache.help_key(argv)
    monkeypatch.setenv("COLUMNS", "60")
    narrower = _help_cache.help_key(argv)

    assert len({before, after_edit, narrower}) == 3


@pytest.mark.usefixtures("as_console_script")
def test_a_copy_kept_for_another_key_or_writable_by_others_is_not_used(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["auth", "--help"]
    real = main_output(args, monkeypatch, capsys)
    key = _help_cache.help_key(["sendoso", *args])
    assert key is not None
    kept = Path(_help_cache._path_for(key))
    assert kept.is_file()

    kept.write_text("another key\0forged help\n", encoding="utf-8")
    assert main_output(args, monkeypatch, capsys) == real  # typer ran, and kept it again
    assert kept.read_text(encoding="utf-8") == f"{key}\0{real}"

    if os.name == "posix":
        kept.write_text(f"{key}\0forged help\n", encoding="utf-8")
        kept.chmod(0o666)
        assert main_output(args, monkeypatch, capsys) == real


def test_help_that_fails_is_not_kept(tmp_path: Path) -> None:
    first = run_cli(["no-such-command", "--help"], tmp_path)
    assert first.returncode == 2
    help_dir = tmp_path / "sendoso" / "help"
    assert not help_dir.exists() or not any(help_dir.iterdir())


def test_help_interrupted_halfway_is_not_kept(
    as_console_script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def half_then_interrupted() -> None:
        sys.stdout.write("Usage: sendoso [OPTIONS]\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(sendoso.cli, "app", half_then_interrupted)
    monkeypatch.setattr(sys, "argv", ["sendoso", "--help"])
    with pytest.raises(SystemExit) as exited:
        sendoso.cli.main()
    assert exited.value.code == 130
    assert capsys.readouterr().out == "Usage: sendoso [OPTIONS]\n"
    help_dir = as_console_script / "sendoso" / "help"
    assert not help_dir.exists() or not any(help_dir.iterdir())
