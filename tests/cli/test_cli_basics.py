"""What the CLI does before it talks to any API: help, flags, usage errors, redaction."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest

from sendoso.cli import ExitCode
from sendoso.cli._commands_send import parse_metadata
from sendoso.cli._logging import RedactingFilter
from sendoso.cli._redact import REDACTED, redact, remember_secret

from ._support import EGIFT, FAKE_SECRET, Invoke, parse_json


def test_help_documents_commands_and_exit_codes(cli: Invoke) -> None:
    result = cli(["--help"])
    assert result.exit_code == 0
    for command in ("gifts", "send", "status", "auth", "sandbox", "demo"):
        assert command in result.stdout
    assert "Exit codes" in result.stdout
    for code in ("0 ", "1 ", "2 ", "3 ", "130"):
        assert code in result.stdout
    assert "--client-secret" not in result.stdout


def test_module_docstring_documents_exit_codes() -> None:
    import sendoso.cli

    doc = sendoso.cli.__doc__ or ""
    for code in ExitCode:
        assert str(int(code)) in doc
    assert "AmbiguousSendError" in doc


def test_there_is_no_client_secret_flag(cli: Invoke) -> None:
    result = cli(["--client-secret", FAKE_SECRET, "auth", "check"])
    assert result.exit_code == 2
    assert "No such option" in result.stderr


def test_version(cli: Invoke) -> None:
    from sendoso import __version__

    result = cli(["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_missing_credentials_is_a_configuration_error(cli: Invoke) -> None:
    result = cli(["gifts", "list"])
    assert result.exit_code == ExitCode.USAGE
    assert "client_id and client_secret are required" in result.stderr
    assert result.stdout == ""


def test_missing_credentials_as_json(cli: Invoke) -> None:
    result = cli(["auth", "check", "--json"])
    assert result.exit_code == ExitCode.USAGE
    error = parse_json(result)["error"]
    assert error["type"] == "ConfigurationError"
    assert error["exit_code"] == 2
    assert "SENDOSO_CLIENT_SECRET" in error["message"]


def test_plain_http_to_a_remote_host_is_refused_before_any_request(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", FAKE_SECRET)
    result = cli(["--base-url", "http://api.example.com", "--client-id", "x", "gifts", "list"])
    assert result.exit_code == ExitCode.USAGE
    assert "refusing plain http://" in result.stderr


def test_malformed_metadata_is_a_usage_error_naming_it(cli: Invoke) -> None:
    result = cli([*EGIFT, "--metadata", "campaign=q3", "--metadata", "oops", "--yes"])
    assert result.exit_code == ExitCode.USAGE
    assert "'oops'" in result.stderr
    assert "KEY=VALUE" in result.stderr


def test_malformed_metadata_as_json(cli: Invoke) -> None:
    result = cli([*EGIFT, "--metadata", "oops", "--json"])
    assert result.exit_code == ExitCode.USAGE
    assert "'oops'" in parse_json(result)["error"]["message"]


def test_parse_metadata() -> None:
    assert parse_metadata(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(ValueError, match="more than once"):
        parse_metadata(["a=1", "a=2"])
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        parse_metadata(["novalue"])


def test_redact_scrubs_tokens_and_known_secrets() -> None:
    remember_secret(FAKE_SECRET)
    text = (
        f"Authorization: Bearer abc.DEF-123_x== and secret {FAKE_SECRET} "
        'and {"access_token": "tok123", "client_secret": "s3"} access_token=zzz&x=1'
    )
    cleaned = redact(text)
    for leaked in ("abc.DEF-123_x", FAKE_SECRET, "tok123", '"s3"', "zzz"):
        assert leaked not in cleaned
    assert cleaned.count(REDACTED) == 5
    assert redact("GET /api/v3/gifts -> 200") == "GET /api/v3/gifts -> 200"


def test_redact_reads_the_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", "env-secret-value")
    assert redact("oops env-secret-value") == f"oops {REDACTED}"


def test_logging_filter_redacts_formatted_messages() -> None:
    record = logging.LogRecord(
        "sendoso", logging.DEBUG, __file__, 1, "header %s", ("Bearer xyz.123",), None
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f"header Bearer {REDACTED}"


def test_sandbox_serve_refuses_a_non_loopback_host(cli: Invoke) -> None:
    result = cli(["sandbox", "serve", "--host", "0.0.0.0", "--port", "0"])  # noqa: S104
    assert result.exit_code == ExitCode.USAGE
    assert "--allow-remote" in result.stderr
    assert "listening" not in result.stdout


def test_sandbox_serve_rejects_a_bad_setting(cli: Invoke) -> None:
    result = cli(["sandbox", "serve", "--port", "0", "--token-ttl", "0"])
    assert result.exit_code == ExitCode.USAGE
    assert "token_ttl" in result.stderr


def test_importing_the_cli_loads_neither_the_sdk_nor_its_heavy_dependencies() -> None:
    # ``sendoso --help`` must start fast. The SDK package's own __init__ is stubbed out here
    # so that only what the CLI itself imports is measured.
    script = textwrap.dedent(
        """
        import importlib.util, sys, types
        spec = importlib.util.find_spec("sendoso")
        stub = types.ModuleType("sendoso")
        stub.__path__ = list(spec.submodule_search_locations)
        sys.modules["sendoso"] = stub
        import sendoso.cli
        heavy = ["httpx", "pydantic", "rich", "uvicorn", "starlette", "sendoso._client",
                 "sendoso.sandbox", "sendoso.models", "decimal", "json"]
        print(",".join(name for name in heavy if name in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_main_maps_interrupts_to_130(monkeypatch: pytest.MonkeyPatch) -> None:
    import sendoso.cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sendoso.cli, "app", interrupted)
    with pytest.raises(SystemExit) as exited:
        sendoso.cli.main()
    assert exited.value.code == 130


def test_main_shows_unexpected_errors_briefly_and_redacted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sendoso.cli

    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", FAKE_SECRET)
    monkeypatch.setattr(sys, "argv", ["sendoso", "gifts", "list"])

    def broken() -> None:
        raise RuntimeError(f"boom with {FAKE_SECRET} and Bearer abc.def")

    monkeypatch.setattr(sendoso.cli, "app", broken)
    with pytest.raises(SystemExit) as exited:
        sendoso.cli.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "unexpected error: RuntimeError" in err
    assert FAKE_SECRET not in err
    assert "abc.def" not in err
    assert "Traceback" not in err


def test_main_maps_sdk_errors_that_escape_a_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sendoso
    import sendoso.cli

    monkeypatch.setattr(sys, "argv", ["sendoso", "send", "--json"])

    def ambiguous() -> None:
        raise sendoso.AmbiguousSendError("unknown outcome", idempotency_key="k-1")

    monkeypatch.setattr(sendoso.cli, "app", ambiguous)
    with pytest.raises(SystemExit) as exited:
        sendoso.cli.main()
    assert exited.value.code == 3
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["idempotency_key"] == "k-1"


def test_global_options_are_accepted_after_the_command(cli: Invoke, env: object) -> None:
    """-v, --profile (and the other global options) may follow the command too."""
    after = cli(["gifts", "list", "-v"])
    before = cli(["-v", "gifts", "list"])
    assert after.exit_code == before.exit_code == 0
    assert "GET" in after.stderr
    assert after.stdout == before.stdout
    profile_after = cli(["gifts", "list", "--profile", "nowhere"])
    profile_before = cli(["--profile", "nowhere", "gifts", "list"])
    assert profile_after.exit_code == profile_before.exit_code == ExitCode.USAGE
    assert profile_after.stderr == profile_before.stderr
    assert "nowhere" in profile_after.stderr


def test_json_is_accepted_before_the_command(cli: Invoke, env: object) -> None:
    """`sendoso --json gifts list` is `sendoso gifts list --json`."""
    before = cli(["--json", "gifts", "list", "--category", "egift"])
    after = cli(["gifts", "list", "--category", "egift", "--json"])
    assert before.exit_code == after.exit_code == 0
    assert parse_json(before) == parse_json(after)


def test_an_option_value_that_looks_like_a_global_option_stays_a_value(
    cli: Invoke, env: object
) -> None:
    """`--message -v` is a message, not --verbose."""
    args = [*EGIFT[:-2], "--message", "-v", "--dry-run", "--json"]
    result = cli(args)
    assert result.exit_code == 0, result.stdout
    assert result.stderr == ""


def test_a_reader_that_stops_reading_is_not_an_error(tmp_path: object) -> None:
    """`sendoso batch runs | head -1`: stdout closed early is exit 0, no traceback."""
    import os

    sendoso = os.path.join(os.path.dirname(sys.executable), "sendoso")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line: every write fails
    try:
        done = subprocess.run(
            [sendoso, "batch", "runs", "--ledger", f"sqlite:///{tmp_path}/ledger.db"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_a_group_without_its_command_still_names_the_group(cli: Invoke) -> None:
    """Moving global options never loses the words before them: `gifts --help` is the
    gifts group's help, `gifts lst` a typo inside that group."""
    shown = cli(["gifts", "--help"])
    assert shown.exit_code == 0
    assert "gifts [OPTIONS] COMMAND" in shown.stdout
    typo = cli(["gifts", "lst"])
    assert typo.exit_code == ExitCode.USAGE
    assert "gifts" in typo.stderr


def test_a_global_option_between_group_and_command(cli: Invoke, env: object) -> None:
    between = cli(["gifts", "-v", "list", "--json"])
    assert between.exit_code == 0
    assert "GET" in between.stderr
    assert parse_json(between)
