"""Secret and data hygiene: every CLI command, run with a known fake secret against a sandbox
that accepts it, leaks neither the secret nor any access token it obtained.

Each scenario runs plain and again with ``--verbose`` (and ``--json`` where the command has
it), on success and on error paths; stdout, stderr, every log record, every file the run left
(reports, the ledger database, the token cache, config) and file names are scanned. The token
cache must be private (0600 files in a 0700 directory, named by a hash). Recipients' streets
and emails must never be in a log record.

To cover a new command: add a :class:`Scenario` to ``SCENARIOS`` (or, for a command that
serves until stopped, a test below and its name to ``COVERED_ELSEWHERE``);
``test_every_command_has_a_scenario`` fails until then.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import typer.main
from typer.testing import CliRunner, Result

from sendoso import ConfigurationError, Sendoso
from sendoso.cli import app
from sendoso.cli._redact import forget_secrets
from sendoso.sandbox import SandboxConfig, SandboxControl, SandboxServer

from ._support import FAKE_SECRET

CLIENT_ID = "hygiene-client"
#: A recipient whose street and email must never reach a log record.
STREET = "742 Evergreen Terrace"
EMAIL = "hygiene.recipient@example.com"
RECIPIENTS = Path(__file__).resolve().parents[2] / "examples" / "recipients.csv"
SENDOSO = str(Path(sys.executable).with_name("sendoso"))
TEMPLATE = ("--message-template", "Hi {first_name}, thanks from {account_name}")
#: A database password in a ledger URL, and a secret written unquoted in a profile file.
LEDGER_PASSWORD = "ledger-Pa55word-91f3"
NUMERIC_SECRET = "987654321987654"
EGIFT = "gft_egift_amazon_us_25"
COFFEE = "gft_phys_coffee_sampler"
SEND_EGIFT: tuple[str, ...] = (
    "send",
    "--gift-id",
    EGIFT,
    "--first-name",
    "Ann",
    "--last-name",
    "Lee",
)
SEND_EGIFT += ("--email", EMAIL, "--message", "Thank you!", "--yes")
SEND_COFFEE: tuple[str, ...] = (
    "send",
    "--gift-id",
    COFFEE,
    "--first-name",
    "Ann",
    "--last-name",
    "Lee",
)
SEND_COFFEE += ("--email", EMAIL, "--message", "Thank you!", "--yes", "--address-line1", STREET)
SEND_COFFEE += ("--city", "Springfield", "--state", "IL", "--postal-code", "62704")
SEND_COFFEE += ("--country", "US")


@dataclass(frozen=True)
class Scenario:
    """One invocation: ``command`` is its place in the command tree (``"batch run"``).

    ``args`` may use ``{tmp}`` (the test's directory), ``{send_id}`` (a send made first) and
    ``{approval}`` (an approval waiting for a decision). ``needs`` names preparations
    (:data:`PREPARATIONS`); ``rotate`` makes the sandbox refuse the secret (the error path of
    credentials revoked); ``env`` overrides the environment; ``exit_codes`` what it may end with.
    """

    command: str
    args: tuple[str, ...]
    exit_codes: frozenset[int] = frozenset({0})
    needs: tuple[str, ...] = ()
    rotate: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    verbose_only: bool = False
    label: str = ""
    #: Other secrets this scenario puts somewhere (a file, a URL) to be scanned for.
    secrets: tuple[str, ...] = ()
    #: A config file to write first (mode 0600).
    config: str | None = None

    @property
    def id(self) -> str:
        return self.label or self.command.replace(" ", "-")


OK, API_ERROR, USAGE, AMBIGUOUS = frozenset({0}), frozenset({1}), frozenset({2}), frozenset({3})

SCENARIOS = [
    Scenario("auth check", ("auth", "check")),
    Scenario("auth check", ("auth", "check"), API_ERROR, rotate=True, label="auth-revoked"),
    Scenario(
        "auth check",
        ("auth", "check"),
        USAGE,
        env={"SENDOSO_BASE_URL": "http://api.example.com"},
        label="auth-plain-http-remote",
    ),
    Scenario("gifts list", ("gifts", "list", "--category", "egift")),
    Scenario("gifts list", ("gifts", "list"), API_ERROR, rotate=True, label="gifts-revoked"),
    Scenario("send", SEND_EGIFT, label="send-egift"),
    Scenario("send", SEND_COFFEE, label="send-physical"),
    Scenario("send", (*SEND_COFFEE, "--dry-run"), label="send-dry-run"),
    Scenario("send", SEND_COFFEE, API_ERROR, rotate=True, label="send-revoked"),
    Scenario(
        "send",
        (*SEND_EGIFT[:8], "ann+undeliverable@example.com", *SEND_EGIFT[9:]),
        API_ERROR,
        label="send-refused-422",
    ),
    Scenario("status", ("status", "{send_id}"), needs=("send",)),
    Scenario("status", ("status", "snd_nope"), API_ERROR, label="status-unknown"),
    Scenario(
        "batch run",
        ("batch", "run", str(RECIPIENTS), "--yes", *TEMPLATE, "--run-id", "h1"),
        frozenset({2}),
    ),  # the example file has invalid rows on purpose
    Scenario(
        "batch run",
        ("batch", "run", str(RECIPIENTS), "--dry-run", *TEMPLATE),
        frozenset({0, 2}),
        label="batch-run-dry",
    ),
    Scenario(
        "batch run",
        ("batch", "run", str(RECIPIENTS), "--yes", *TEMPLATE, "--run-id", "h2"),
        frozenset({1, 2}),
        rotate=True,
        label="batch-run-revoked",
    ),
    Scenario("batch resume", ("batch", "resume", "h1"), frozenset({0, 2}), needs=("batch",)),
    Scenario("batch runs", ("batch", "runs"), needs=("batch",)),
    Scenario("batch show", ("batch", "show", "h1"), needs=("batch",)),
    Scenario("batch status", ("batch", "status", "h1"), needs=("batch",)),
    Scenario(
        "batch status",
        ("batch", "status", "h1"),
        API_ERROR,
        needs=("batch",),
        rotate=True,
        label="batch-status-revoked",
    ),
    Scenario(
        "batch report", ("batch", "report", "h1", "--out", "{tmp}/report.csv"), needs=("batch",)
    ),
    Scenario(
        "batch report",
        ("batch", "report", "h1", "--out", "{tmp}/report.json"),
        needs=("batch",),
        label="batch-report-json",
    ),
    Scenario("batch settle", ("batch", "settle", "u1", "2", "--not-sent"), needs=("unknown",)),
    Scenario(
        "batch settle",
        ("batch", "settle", "h1", "2", "--sent", "snd_x"),
        USAGE,
        needs=("batch",),
        label="batch-settle-refused",
    ),
    Scenario(
        "batch runs",
        ("batch", "runs", "--ledger", f"postgresql+psycopg://u:{LEDGER_PASSWORD}@127.0.0.1:1/db"),
        USAGE,
        secrets=(LEDGER_PASSWORD,),
        label="batch-runs-ledger-password",
    ),
    Scenario(
        "auth check",
        ("auth", "check"),
        USAGE,
        env={"SENDOSO_CLIENT_SECRET": ""},
        config='default_profile = "p"\n[profiles.p]\nclient_id = "x"\n'
        f"client_secret = {NUMERIC_SECRET}\n",
        secrets=(NUMERIC_SECRET,),
        label="auth-unquoted-secret-in-profile",
    ),
    Scenario("demo", ("demo",), verbose_only=True),
    Scenario(
        "sandbox serve",
        ("sandbox", "serve", "--host", "0.0.0.0", "--port", "0"),  # noqa: S104
        USAGE,
        label="sandbox-serve-remote-refused",
    ),
    Scenario("approvals list", ("approvals", "list", "--all"), needs=("approvals",)),
    Scenario("approvals approve", ("approvals", "approve", "{approval}"), needs=("approvals",)),
    Scenario(
        "approvals reject",
        ("approvals", "reject", "{approval}", "--reason", "no"),
        needs=("approvals",),
    ),
    Scenario(
        "approvals approve",
        ("approvals", "approve", "apr_nope"),
        frozenset({1, 2}),
        needs=("approvals",),
        label="approvals-approve-unknown",
    ),
]

#: Commands that obtain no token of their own (the demo's is its embedded sandbox's).
OFFLINE = {"demo", "sandbox serve"}

#: Commands that serve until stopped, covered by their own tests in this module.
COVERED_ELSEWHERE = {
    "sandbox serve": "test_sandbox_serve_in_the_foreground_shows_no_user_secret",
    "mcp": "test_mcp_over_stdio_leaks_nothing",
}


def _command_paths() -> set[str]:
    def walk(command: Any, prefix: tuple[str, ...]) -> Iterator[str]:
        children = getattr(command, "commands", None)
        if not children:
            yield " ".join(prefix)
            return
        for name, child in children.items():
            yield from walk(child, (*prefix, name))

    return set(walk(typer.main.get_command(app), ()))


def test_every_command_has_a_scenario() -> None:
    covered = {s.command for s in SCENARIOS} | set(COVERED_ELSEWHERE)
    missing = _command_paths() - covered
    assert not missing, f"commands with no secret-hygiene scenario: {sorted(missing)}"
    assert not covered - _command_paths(), "a scenario names a command that does not exist"


# The harness.


@pytest.fixture(scope="module")
def hygiene_server() -> Iterator[SandboxServer]:
    config = SandboxConfig(client_id=CLIENT_ID, client_secret=FAKE_SECRET, rate_limit=None)
    with SandboxServer(config) as server:
        yield server


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Harness:
    """Runs the CLI in-process, in the test's own HOME, and keeps everything it printed."""

    tmp: Path
    server: SandboxServer
    control: SandboxControl
    monkeypatch: pytest.MonkeyPatch
    outputs: list[str] = field(default_factory=list)
    records: list[logging.LogRecord] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    approvals_template: Callable[[], tuple[Path, list[str]]] = field(default=lambda: (Path(), []))

    def environment(self, overrides: Mapping[str, str] = {}) -> dict[str, str]:
        env = {
            "SENDOSO_BASE_URL": self.server.url,
            "SENDOSO_CLIENT_ID": CLIENT_ID,
            "SENDOSO_CLIENT_SECRET": FAKE_SECRET,
            "SENDOSO_LEDGER": f"sqlite:///{self.tmp / 'ledger.db'}",
            "SENDOSO_CONFIG": str(self.tmp / "config" / "config.toml"),
            "XDG_CACHE_HOME": str(self.tmp / "cache"),
            "XDG_CONFIG_HOME": str(self.tmp / "config-home"),
            "XDG_DATA_HOME": str(self.tmp / "data"),
            "HOME": str(self.tmp / "home"),
            "COLUMNS": "200",
        }
        env.update(overrides)
        return env

    def _fill(self, arg: str) -> str:
        # Not str.format: message templates hold {first_name} placeholders of their own.
        for name, value in {"tmp": str(self.tmp), **self.values}.items():
            arg = arg.replace("{" + name + "}", value)
        return arg

    def invoke(
        self, args: Sequence[str], *, env: Mapping[str, str] = {}, input: str | None = None
    ) -> Result:
        for name, value in self.environment(env).items():
            self.monkeypatch.setenv(name, value)
        args = [self._fill(a) for a in args]
        handler = _Records()
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            result = CliRunner().invoke(app, args, input=input)
        finally:
            root.removeHandler(handler)
            forget_secrets()
        self.records += handler.records
        self.outputs += [result.stdout, result.stderr]
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result


@pytest.fixture(scope="module")
def approvals_template(
    tmp_path_factory: pytest.TempPathFactory, hygiene_server: SandboxServer
) -> Callable[[], tuple[Path, list[str]]]:
    made: list[tuple[Path, list[str]]] = []

    def make() -> tuple[Path, list[str]]:
        if not made:
            home = tmp_path_factory.mktemp("approvals")
            with SandboxControl(hygiene_server.url) as control:
                h = Harness(home, hygiene_server, control, pytest.MonkeyPatch())
                _run_mcp(h, "--allow-send", "--approval-above", "0")
            made.append((home, h.outputs))
        return made[0]

    return make


@pytest.fixture
def harness(
    tmp_path: Path,
    hygiene_server: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
    approvals_template: Callable[[], tuple[Path, list[str]]],
) -> Iterator[Harness]:
    with SandboxControl(hygiene_server.url) as control:
        control.reset()
        try:
            yield Harness(
                tmp_path,
                hygiene_server,
                control,
                monkeypatch,
                approvals_template=approvals_template,
            )
        finally:
            control.reset()


def _prepare_send(h: Harness) -> None:
    result = h.invoke([*SEND_EGIFT, "--json"])
    assert result.exit_code == 0, result.output
    h.values["send_id"] = json.loads(result.stdout)["send"]["id"]


def _prepare_batch(h: Harness) -> None:
    run = ["batch", "run", str(RECIPIENTS), "--yes", *TEMPLATE, "--run-id", "h1"]
    assert h.invoke(run).exit_code == 2  # sent; the example's invalid rows are listed


def _prepare_unknown(h: Harness) -> None:
    """A run whose sends all lost their replies, to a host not trusted to deduplicate: its
    rows are left ``unknown``. The secret comes from a profile file this time."""
    config = h.tmp / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'default_profile = "hygiene"\n[profiles.hygiene]\nbase_url = "{h.server.url}"\n'
        f'client_id = "{CLIENT_ID}"\nclient_secret = "{FAKE_SECRET}"\n'
        "trust_idempotency = false\n",
        encoding="utf-8",
    )
    config.chmod(0o600)
    rows = h.tmp / "three.csv"
    rows.write_text(
        "First Name,Last Name,Email\nAnn,Lee,ann@example.com\nBo,Ng,bo@example.com\n",
        encoding="utf-8",
    )
    h.control.faults(drop_rate=1.0)
    env = {"SENDOSO_BASE_URL": "", "SENDOSO_CLIENT_ID": "", "SENDOSO_CLIENT_SECRET": ""}
    run = ["batch", "run", str(rows), "--yes", "--gift-id", EGIFT, "--run-id", "u1"]
    result = h.invoke([*run, "--message-template", "Hi {first_name}"], env=env)
    h.control.faults(drop_rate=0.0)
    assert result.exit_code == 3, result.output


def _prepare_approvals(h: Harness) -> None:
    """Two sends an agent asked for through `sendoso mcp`, held for approval: the ledger (and
    token cache) of one such session, made once per module and copied, since starting the
    MCP server is the slowest step here."""
    template, said = h.approvals_template()
    shutil.copytree(template, h.tmp, dirs_exist_ok=True)
    h.outputs += said
    listed = h.invoke(["approvals", "list", "--json"])
    pending = [a for a in json.loads(listed.stdout) if a.get("state") == "pending"]
    assert len(pending) == 2, listed.stdout
    h.values["approval"] = next(str(v) for k, v in pending[0].items() if k in ("id", "approval_id"))


PREPARATIONS: dict[str, Callable[[Harness], None]] = {
    "send": _prepare_send,
    "batch": _prepare_batch,
    "unknown": _prepare_unknown,
    "approvals": _prepare_approvals,
}


# What may never appear.


def _tokens(h: Harness) -> list[str]:
    """Every access token the runs cached (the CLI's, and the MCP server's)."""
    tokens = []
    for path in h.tmp.rglob("*.json"):
        if path.parent.name == "tokens":
            tokens.append(json.loads(path.read_text("utf-8"))["access_token"])
    return tokens


def _check_token_cache(h: Harness) -> None:
    for directory in {p.parent for p in h.tmp.rglob("*.json") if p.parent.name == "tokens"}:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        for path in directory.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            # A hash: neither the client id, the host nor anything secret in the name.
            assert re.fullmatch(r"[0-9a-f]{32}\.json", path.name), path.name
            assert FAKE_SECRET not in path.read_text("utf-8")


def _recipient_data() -> set[str]:
    """Streets and emails the runs send to, none of which may be logged."""
    import csv

    found = {STREET, EMAIL}
    with RECIPIENTS.open(encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            found |= {v for k, v in row.items() if k in ("Email", "Mailing Street") and v}
    return found


RECIPIENT_DATA = _recipient_data()


def _scan(h: Harness, *extra_secrets: str) -> None:
    tokens = _tokens(h)
    secrets = [FAKE_SECRET, *tokens, *extra_secrets]
    for text in h.outputs:
        for secret in secrets:
            assert secret not in text, f"leaked in output: {secret[:6]}...\n{text[:2000]}"
        assert "Traceback" not in text
    for record in h.records:
        line = record.getMessage()
        for secret in secrets:
            assert secret not in line, f"leaked in a log record: {line}"
        # Recipients' addresses: not even at DEBUG (the default level shows WARNING up).
        for private in RECIPIENT_DATA:
            assert private not in line, f"a recipient's address was logged: {line}"
    for path in h.tmp.rglob("*"):
        for secret in secrets:
            assert secret not in str(path.relative_to(h.tmp)), f"secret in a file name: {path}"
        if not path.is_file() or (path.suffix == ".csv" and path.parent == h.tmp):
            continue
        data = path.read_bytes()
        if path.name != "config.toml":  # where the user wrote it
            for secret in (FAKE_SECRET, *extra_secrets):
                assert secret.encode() not in data, f"a secret is in {path}"
        if path.parent.name != "tokens":
            for token in tokens:
                assert token.encode() not in data, f"an access token is in {path}"
    _check_token_cache(h)


def _variants() -> Iterator[Any]:
    for scenario in SCENARIOS:
        json_capable = _has_json(scenario.command)
        if not scenario.verbose_only:
            yield pytest.param(scenario, (), id=f"{scenario.id}-plain")
        extra = ("-v",) if not json_capable else ("-v", "--json")
        yield pytest.param(scenario, extra, id=f"{scenario.id}-verbose{'-json' * json_capable}")


def _has_json(command: str) -> bool:
    node: Any = typer.main.get_command(app)
    for part in command.split():
        node = node.commands[part]
    return any("--json" in getattr(p, "opts", ()) for p in node.params)


@pytest.mark.parametrize(("scenario", "extra"), list(_variants()))
def test_no_secret_or_token_leaks(
    scenario: Scenario, extra: tuple[str, ...], harness: Harness
) -> None:
    for need in scenario.needs:
        PREPARATIONS[need](harness)
    if scenario.config is not None:
        path = harness.tmp / "config" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(scenario.config, encoding="utf-8")
        path.chmod(0o600)
    if scenario.rotate:
        # A token cached first, so the revoked path also refuses a token it still holds.
        assert harness.invoke(["auth", "check"]).exit_code == 0
        harness.control.rotate_secret("rotated-" + FAKE_SECRET[::-1])
    args = list(scenario.args)
    global_flags = [flag for flag in extra if flag == "-v"]
    if "--json" in extra:
        args.append("--json")
    result = harness.invoke([*global_flags, *args], env=scenario.env)
    assert result.exit_code in scenario.exit_codes, result.output
    if "--json" in extra and result.stdout.strip():
        json.loads(result.stdout)  # JSON only, errors included
    reached_api = 0 in scenario.exit_codes or scenario.rotate
    if reached_api and not scenario.env and scenario.command not in OFFLINE:
        assert _tokens(harness), "no token was obtained: the scan would prove little"
    _scan(harness, *scenario.secrets)


def test_the_scan_finds_a_leak(harness: Harness) -> None:
    """The scanner itself: a secret in output, a token in a file, an address in a log."""
    assert harness.invoke(["auth", "check"]).exit_code == 0
    token = _tokens(harness)[0]
    for leak in (
        lambda: harness.outputs.append(f"oops {FAKE_SECRET}"),
        lambda: (harness.tmp / "report.json").write_text(token, encoding="utf-8"),
        lambda: harness.records.append(
            logging.LogRecord("sendoso", logging.DEBUG, __file__, 1, EMAIL, None, None)
        ),
    ):
        saved = (list(harness.outputs), list(harness.records))
        leak()
        with pytest.raises(AssertionError):
            _scan(harness)
        harness.outputs, harness.records = saved
        (harness.tmp / "report.json").unlink(missing_ok=True)
    _scan(harness)


# Rules checked on their own.


def test_plain_http_to_a_remote_host_is_refused_before_any_request() -> None:
    with pytest.raises(ConfigurationError, match="refusing plain http://"):
        Sendoso(base_url="http://api.example.com", client_id="x", client_secret=FAKE_SECRET)
    for host in ("127.0.0.1", "localhost", "[::1]"):
        Sendoso(base_url=f"http://{host}:9", client_id="x", client_secret=FAKE_SECRET).close()


def test_sandbox_refuses_a_remote_bind_unless_allowed(harness: Harness) -> None:
    refused = harness.invoke(["sandbox", "serve", "--host", "0.0.0.0", "--port", "0"])  # noqa: S104
    assert refused.exit_code == 2
    assert "--allow-remote" in refused.stderr
    assert "listening" not in refused.stdout
    # With --allow-remote the refusal is lifted and it tries to bind: to an address this
    # machine does not have (TEST-NET-1), so nothing is exposed while proving it.
    allowed = harness.invoke(
        ["sandbox", "serve", "--host", "192.0.2.1", "--port", "0", "--allow-remote"]
    )
    assert allowed.exit_code == 2
    assert "cannot listen on 192.0.2.1" in allowed.stderr
    assert "--allow-remote" not in allowed.stderr


def test_sandbox_serve_in_the_foreground_shows_no_user_secret(harness: Harness) -> None:
    """`sandbox serve` prints its own public test credential by design, never the user's."""
    env = {**os.environ, **harness.environment()}
    process = subprocess.Popen(
        [SENDOSO, "-v", "sandbox", "serve", "--port", "0", "--rate-limit", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        ready = []
        for line in process.stdout:
            ready.append(line)
            if line.startswith("Press Ctrl+C"):
                break
        url = re.search(r"listening on (\S+)", "".join(ready))
        assert url, ready
        httpx.get(url.group(1) + "/api/v3/gifts", timeout=10)  # something to log
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    harness.outputs += ["".join(ready) + out, err]
    _scan_outputs_only(harness)


def _scan_outputs_only(h: Harness) -> None:
    for text in h.outputs:
        assert FAKE_SECRET not in text
        assert "Traceback" not in text


def _run_mcp(h: Harness, *args: str) -> None:
    """`sendoso -v mcp ARGS` over stdio, driven by the official MCP client: the tools an agent
    uses, a send with the recipient's address among them. Everything it said is kept."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    env = {"PATH": os.environ.get("PATH", ""), **h.environment()}
    params = StdioServerParameters(command=SENDOSO, args=["-v", "mcp", *args], env=env)
    stderr_path = h.tmp / "mcp-stderr.log"
    recipient = {"first_name": "Ann", "last_name": "Lee", "email": EMAIL}
    address = {"line1": STREET, "city": "Springfield", "state": "IL", "postal_code": "62704",
               "country": "US"}  # fmt: skip

    async def agent() -> list[str]:
        said = []
        with stderr_path.open("a", encoding="utf-8") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                calls: list[tuple[str, dict[str, Any]]] = [
                    ("list_gifts", {"category": "egift"}),
                    ("estimate_cost", {"gift_id": COFFEE, "country": "US"}),
                    ("validate_recipient", {"gift_id": EGIFT, "recipient": recipient}),
                    ("send_gift", {"gift_id": EGIFT, "recipient": recipient,
                                   "message": "Thanks!", "request_id": "hygiene-1"}),
                    ("send_gift", {"gift_id": COFFEE,
                                   "recipient": {**recipient, "address": address},
                                   "message": "Thanks!", "request_id": "hygiene-2"}),
                    ("get_send_status", {"request_id": "hygiene-1"}),
                    ("list_sends", {}),
                ]  # fmt: skip
                for name, arguments in calls:
                    result = await session.call_tool(name, arguments)
                    said += [getattr(block, "text", "") for block in result.content]
        return said

    h.outputs += anyio.run(agent)
    stderr = stderr_path.read_text("utf-8")
    h.outputs.append(stderr)
    # The server logs each request with -v: its log lines must not carry the recipient.
    assert STREET not in stderr
    assert EMAIL not in stderr


def test_mcp_over_stdio_leaks_nothing(harness: Harness) -> None:
    _run_mcp(harness, "--allow-send")
    _scan(harness)
