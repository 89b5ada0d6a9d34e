"""``sendoso batch`` against the sandbox: each valid row sent exactly once, through the ledger."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pytest
from typer.testing import Result

from sendoso.batch import Ledger, RowState
from sendoso.cli import ExitCode

from ._support import Invoke, parse_json

RECIPIENTS = Path(__file__).resolve().parents[2] / "examples" / "recipients.csv"
TEMPLATE = ["--message-template", "Hi {first_name}, thanks from {account_name}"]
#: Spreadsheet rows (the header is row 1) of examples/recipients.csv.
INVALID_ROWS = {15, 27, 28, 29, 30}
DUPLICATE_ROW = 31
VALID_ROWS = set(range(2, 27)) - INVALID_ROWS
EGIFT = "gft_egift_amazon_us_25"


class Batch(Protocol):
    def __call__(self, *args: str, input: str | None = None) -> Result: ...


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/ledger.db"


@pytest.fixture
def batch(cli: Invoke, env: Any, ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> Batch:
    """``sendoso batch ARGS --ledger URL`` against the sandbox, tables wide enough not to wrap."""
    monkeypatch.setenv("COLUMNS", "400")

    def invoke(*args: str, input: str | None = None) -> Result:
        return cli(["batch", *args, "--ledger", ledger_url], input=input)

    return invoke


def run(batch: Batch, *extra: str, file: Path = RECIPIENTS, run_id: str = "r1") -> Result:
    """``batch run FILE --yes --run-id RUN_ID`` with a message template that fits the file."""
    template = TEMPLATE if file == RECIPIENTS else ["--message-template", "Hi {first_name}"]
    return batch("run", str(file), "--yes", *template, "--run-id", run_id, *extra)


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def person(first: str, email: str, **extra: str) -> dict[str, str]:
    return {"first_name": first, "last_name": "Doe", "email": email, "gift_id": EGIFT, **extra}


def sent_rows(sends: list[dict[str, Any]]) -> list[int]:
    return sorted(int(s["request_body"]["send"]["metadata"]["sendoso_row"]) for s in sends)


def report_rows(batch: Batch, tmp_path: Path, run_id: str = "r1") -> list[dict[str, Any]]:
    out = tmp_path / f"{run_id}.json"
    assert batch("report", run_id, "--out", str(out)).exit_code == 0
    rows: list[dict[str, Any]] = json.loads(out.read_text("utf-8"))
    return rows


# batch run --------------------------------------------------------------------------


def test_run_sends_each_valid_row_once_with_its_key(
    batch: Batch, env: Any, ledger_url: str
) -> None:
    """24 valid rows: 24 sends, each carrying its ledger row's idempotency key; exit 2."""
    result = run(batch)
    assert result.exit_code == ExitCode.USAGE  # some rows are invalid
    sends = env.sends()
    assert sent_rows(sends) == sorted(VALID_ROWS)
    with Ledger(ledger_url) as ledger:
        rows = {r.number: r for r in ledger.rows("r1", states=[RowState.SUBMITTED])}
    assert set(rows) == VALID_ROWS
    for send in sends:
        row = rows[int(send["metadata"]["sendoso_row"])]
        assert send["idempotency_key"] == row.send_key
        assert send["id"] == row.send_id
    assert len({s["idempotency_key"] for s in sends}) == 24
    assert "Finished: 24 sent by this process." in result.stdout


def test_run_fills_the_message_template_per_row(batch: Batch, env: Any) -> None:
    """Each send's message is the template filled from its own row."""
    assert run(batch).exit_code == ExitCode.USAGE
    ada = next(s for s in env.sends() if s["email"] == "ada.lovelace@example.com")
    assert ada["request_body"]["send"]["message"] == "Hi Ada, thanks from Analytical Engines Inc"


def test_run_lists_invalid_rows_with_field_and_row_number(batch: Batch) -> None:
    """The plan names every invalid row, its field and its row number."""
    result = run(batch)
    for shown in (
        "variant_id is required for Branded Zip Hoodie",
        "(row 15)",
        "email 'niklaus.wirth@@example' is not valid",
        "(row 27)",
        "address.postal_code is required for physical gifts (row 28)",
        "gift_id 'gft_does_not_exist' is not in the catalog",
        "(row 29)",
        "is not available in GB",
        "(row 30)",
    ):
        assert shown in result.stdout
    assert "5 invalid rows were skipped" in result.stdout


def test_run_skips_the_duplicate_row(batch: Batch, env: Any) -> None:
    """Row 31 repeats row 3's recipient and gift (email case aside): sent once, from row 3."""
    result = run(batch)
    assert "already gets gft_phys_cookie_box from row 3 (row 31)" in result.stdout
    grace = [s for s in env.sends() if s["email"].lower() == "grace.hopper@example.com"]
    assert len(grace) == 1
    assert grace[0]["metadata"]["sendoso_row"] == "3"


def test_run_json_reports_the_counts(batch: Batch, env: Any) -> None:
    """--json prints one document with the final counts."""
    result = run(batch, "--json")
    assert result.exit_code == ExitCode.USAGE
    output = parse_json(result)
    assert output["run_id"] == "r1"
    assert output["end"] == "finished"
    assert output["sent_now"] == 24
    assert output["counts"] == {"submitted": 24, "skipped": 6}
    assert output["invalid_rows"] == 5
    assert len(env.sends()) == 24


def test_run_of_a_clean_file_exits_0(batch: Batch, env: Any, tmp_path: Path) -> None:
    """Every row valid: exit 0."""
    path = write_csv(tmp_path / "ok.csv", [person("Ann", "ann@example.com")])
    result = batch("run", str(path), "--yes", "--message-template", "Hi {first_name}")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert len(env.sends()) == 1


# --dry-run ----------------------------------------------------------------------------


def test_dry_run_sends_and_records_nothing(batch: Batch, env: Any) -> None:
    """A dry run shows the plan's totals; the sandbox and the ledger stay empty."""
    result = run(batch, "--dry-run")
    assert result.exit_code == ExitCode.USAGE  # the plan has invalid rows
    assert "Dry run plan" in result.stdout
    assert re.search(r"To send\W+24\b", result.stdout)
    assert "duplicate 1, invalid 5" in result.stdout
    assert "1074.00\u20131129.00 USD" in result.stdout
    assert "25.00 GBP" in result.stdout
    assert "nothing was sent and nothing was recorded" in result.stdout
    assert env.sends() == []
    assert env.stats()["requests"]["POST /api/v3/sends"] == 0
    assert parse_json(batch("runs", "--json")) == []
    assert "No runs yet" in batch("runs").stdout


def test_dry_run_json_lists_skipped_rows_with_reasons(batch: Batch, env: Any) -> None:
    """--dry-run --json: totals, and each skipped row with its reason and error."""
    plan = parse_json(run(batch, "--dry-run", "--json"))
    assert plan["dry_run"] is True
    assert plan["run_id"] == "r1"
    assert (plan["rows"], plan["to_send"]) == (30, 24)
    assert plan["skipped"] == {"invalid": 5, "duplicate": 1}
    assert plan["estimate"]["USD"] == {"low": "1074.00", "high": "1129.00"}
    reasons = {r["row"]: r["reason"] for r in plan["skipped_rows"]}
    assert reasons == {**dict.fromkeys(INVALID_ROWS, "invalid"), DUPLICATE_ROW: "duplicate"}
    assert all(
        r["state"] == "skipped" and f"(row {r['row']})" in r["error"] for r in plan["skipped_rows"]
    )
    assert env.sends() == []


# confirmation -------------------------------------------------------------------------


def test_without_yes_and_no_terminal_nothing_is_sent_but_the_plan_is_saved(
    batch: Batch, env: Any
) -> None:
    """No --yes and stdin not a terminal: exit 2, nothing sent; `resume` sends the plan."""
    result = batch("run", str(RECIPIENTS), *TEMPLATE, "--run-id", "r1", input="y\n")
    assert result.exit_code == ExitCode.USAGE
    assert "--yes" in result.stderr
    assert "sendoso batch resume r1" in result.stderr
    assert env.sends() == []
    (saved,) = parse_json(batch("runs", "--json"))
    assert saved["counts"] == {"planned": 24, "skipped": 6}

    resumed = batch("resume", "r1", "--yes", "--json")
    assert resumed.exit_code == ExitCode.USAGE  # still: the file had invalid rows
    assert parse_json(resumed)["sent_now"] == 24
    assert sent_rows(env.sends()) == sorted(VALID_ROWS)


@pytest.mark.parametrize(("answer", "sent"), [("n\n", 0), ("y\n", 24)])
def test_confirmation_prompt_on_a_terminal(
    batch: Batch, env: Any, monkeypatch: pytest.MonkeyPatch, answer: str, sent: int
) -> None:
    """On a terminal the plan is confirmed first; declining sends nothing (exit 130)."""
    monkeypatch.setattr("sendoso.cli._commands_batch.stdin_is_interactive", lambda: True)
    result = batch("run", str(RECIPIENTS), *TEMPLATE, "--run-id", "r1", input=answer)
    assert "Send 24 gifts for about" in result.stdout
    assert result.exit_code == (ExitCode.USAGE if sent else ExitCode.INTERRUPTED)
    assert len(env.sends()) == sent


# the same run id again ----------------------------------------------------------------


def test_a_declined_plan_is_asked_about_again_not_sent(
    batch: Batch, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declining saves the plan, but the same command later asks again: a saved plan is
    not consent."""
    monkeypatch.setattr("sendoso.cli._commands_batch.stdin_is_interactive", lambda: True)
    args = ("run", str(RECIPIENTS), *TEMPLATE, "--run-id", "r1")
    assert batch(*args, input="n\n").exit_code == ExitCode.INTERRUPTED
    again = batch(*args, input="n\n")
    assert again.exit_code == ExitCode.INTERRUPTED
    assert "Send 24 gifts for about" in again.stdout
    assert env.sends() == []
    assert batch(*args, input="y\n").exit_code == ExitCode.USAGE
    assert len(env.sends()) == 24


def test_resume_of_a_declined_plan_asks_again(
    batch: Batch, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`resume` of a plan never confirmed is no go-ahead: on a terminal it asks (declined:
    nothing sent, 130), without one it needs --yes (exit 2, nothing sent)."""
    terminal = {"on": True}
    monkeypatch.setattr("sendoso.cli._commands_batch.stdin_is_interactive", lambda: terminal["on"])
    args = ("run", str(RECIPIENTS), *TEMPLATE, "--run-id", "r1")
    assert batch(*args, input="n\n").exit_code == ExitCode.INTERRUPTED
    declined = batch("resume", "r1", input="n\n")
    assert declined.exit_code == ExitCode.INTERRUPTED
    assert "Send 24 gifts for about" in declined.stdout
    assert env.sends() == []
    terminal["on"] = False
    unattended = batch("resume", "r1")
    assert unattended.exit_code == ExitCode.USAGE
    assert "--yes" in unattended.stderr
    assert env.sends() == []
    terminal["on"] = True
    assert batch("resume", "r1", input="y\n").exit_code == ExitCode.USAGE  # invalid rows
    assert len(env.sends()) == 24


def test_the_same_command_without_a_run_id_resumes_instead_of_sending_again(
    batch: Batch, env: Any
) -> None:
    """No --run-id: the run is named after the file and its content, so running the
    command again (after a crash, say) continues the same run."""
    first = batch("run", str(RECIPIENTS), "--yes", *TEMPLATE, "--json")
    run_id = parse_json(first)["run_id"]
    assert run_id.startswith("recipients-")
    second = batch("run", str(RECIPIENTS), "--yes", *TEMPLATE, "--json")
    assert parse_json(second)["run_id"] == run_id
    assert parse_json(second)["sent_now"] == 0
    assert len(env.sends()) == 24


def test_resume_with_refused_credentials_is_a_clear_error(
    batch: Batch, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API refuses the secret: the error itself (exit 1, JSON with --json), not a
    task-group wrapper, and nothing sent."""
    assert batch("run", str(RECIPIENTS), *TEMPLATE, "--run-id", "r1").exit_code == 2
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", "wrong-secret")
    result = batch("resume", "r1", "--yes", "--json")
    assert result.exit_code == ExitCode.API_ERROR
    assert parse_json(result)["error"]["type"] == "AuthenticationError"
    assert env.sends() == []


def test_rerunning_a_finished_run_sends_nothing_more(batch: Batch, env: Any) -> None:
    """The same command with the same --run-id resumes the finished run: no new send."""
    assert run(batch).exit_code == ExitCode.USAGE
    again = run(batch)
    assert again.exit_code == ExitCode.USAGE
    assert "Resuming run r1." in again.stdout
    assert "Finished: 0 sent by this process." in again.stdout
    assert parse_json(run(batch, "--json"))["sent_now"] == 0
    assert len(env.sends()) == 24
    assert env.stats()["requests"]["POST /api/v3/sends"] == 24


def test_a_changed_file_under_the_same_run_id_is_refused(
    batch: Batch, env: Any, tmp_path: Path
) -> None:
    """The file changed since the run was planned: exit 2, nothing more sent."""
    path = tmp_path / "recipients.csv"
    shutil.copy(RECIPIENTS, path)
    assert run(batch, file=path).exit_code == ExitCode.USAGE
    with path.open("a", encoding="utf-8") as f:
        f.write("Zed,Zee,zed@example.com,Zeta,CEO,,,,,,gft_egift_amazon_us_25,003A000099\n")
    result = run(batch, file=path)
    assert result.exit_code == ExitCode.USAGE
    assert "different version of this file" in result.stderr
    assert len(env.sends()) == 24
    assert not any(s["email"] == "zed@example.com" for s in env.sends())


def test_other_options_under_the_same_run_id_are_refused(batch: Batch, env: Any) -> None:
    """A plan cannot change on resume: a new --max-spend for the same run id is refused
    (naming the flag), not silently ignored, and nothing more is sent."""
    assert run(batch, "--max-spend", "300").exit_code == ExitCode.USAGE
    sent = len(env.sends())
    result = run(batch, "--max-spend", "5000")
    assert result.exit_code == ExitCode.USAGE
    assert "--max-spend" in result.stderr
    assert len(env.sends()) == sent
    assert run(batch, "--max-spend", "300").exit_code == ExitCode.USAGE  # same plan: resumes


# safety rules -------------------------------------------------------------------------


def test_max_spend_plans_within_the_budget_and_sends_only_those(
    batch: Batch, env: Any, tmp_path: Path
) -> None:
    """--max-spend 300: the planned rows' high estimates add up to 300 or less."""
    result = run(batch, "--max-spend", "300", "--json")
    assert result.exit_code == ExitCode.USAGE
    rows = report_rows(batch, tmp_path)
    submitted = [r for r in rows if r["state"] == "submitted"]
    budget = [r for r in rows if r["reason"] == "budget"]
    assert submitted
    assert budget
    assert all("over --max-spend" in r["error"] for r in budget)
    assert sum(Decimal(r["estimate"]["USD"]["high"]) for r in submitted) <= 300
    assert all(set(r["estimate"]) == {"USD"} for r in submitted)
    assert sent_rows(env.sends()) == sorted(r["row"] for r in submitted)
    assert len(submitted) + len(budget) == 24


def readme_batch_command() -> list[str]:
    """The README's `sendoso batch run … --max-spend …` example, as its words."""
    import shlex

    readme = (RECIPIENTS.parents[1] / "README.md").read_text("utf-8")
    lines = readme.splitlines()
    for start, first in enumerate(lines):
        if not first.startswith("sendoso batch run"):
            continue
        command = ""
        for line in lines[start:]:
            command += line.split("#")[0].rstrip().removesuffix("\\") + " "
            if not line.rstrip().endswith("\\"):
                break
        if "--max-spend" in command:
            return shlex.split(command)[2:]
    raise AssertionError("the README has no `sendoso batch run ... --max-spend` example")


def test_the_readme_batch_example_plans_every_valid_row(batch: Batch, env: Any) -> None:
    """The README's example, run as printed on examples/recipients.csv: no row skipped for
    the budget (its GBP row too), and the plan shows each currency's cap."""
    args = readme_batch_command()
    assert str(RECIPIENTS.relative_to(RECIPIENTS.parents[1])) in args
    args = [str(RECIPIENTS) if a.endswith("recipients.csv") else a for a in args]
    result = batch(*args, "--dry-run", "--json")
    skipped = parse_json(result)["skipped"]
    assert "budget" not in skipped, skipped
    shown = batch(*args, "--dry-run")
    assert "5,000.00 USD" in shown.stdout
    assert "500.00 GBP" in shown.stdout


def test_the_plan_names_each_currency_cap_and_what_has_none(batch: Batch, env: Any) -> None:
    """`--max-spend 5000` is USD only: the plan says so, and that other currencies have no
    cap (their rows are skipped), instead of a bare "5000"."""
    shown = batch("run", str(RECIPIENTS), *TEMPLATE, "--max-spend", "5000", "--dry-run")
    (budget,) = [line for line in shown.stdout.splitlines() if "Budget" in line]
    assert "5,000.00 USD" in budget
    assert "no cap" in budget
    none = batch("run", str(RECIPIENTS), *TEMPLATE, "--dry-run")
    (budget,) = [line for line in none.stdout.splitlines() if "Budget" in line]
    assert "no cap in any currency" in budget


def test_cooldown_in_a_dry_run_skips_recipients_gifted_by_an_earlier_run(
    batch: Batch, env: Any
) -> None:
    """A dry run with --cooldown 30 after a run plans nothing for anyone it gifted."""
    assert run(batch, run_id="first").exit_code == ExitCode.USAGE
    plan = parse_json(
        run(batch, "--dry-run", "--cooldown", "30", "--allow-resend", "--json", run_id="second")
    )
    assert plan["to_send"] == 0
    # Row 31 is no longer a duplicate of row 3, which is not planned: it is cooling too.
    assert plan["skipped"] == {"cooldown": 25, "invalid": 5}
    cooled = sorted(r["row"] for r in plan["skipped_rows"] if r["reason"] == "cooldown")
    assert cooled == sorted(VALID_ROWS | {DUPLICATE_ROW})
    assert len(env.sends()) == 24


def test_cooldown_skips_recipients_gifted_by_an_earlier_run(batch: Batch, env: Any) -> None:
    """A second run with --cooldown 30 sends nothing to anyone the first run gifted."""
    assert run(batch, run_id="first").exit_code == ExitCode.USAGE
    second = run(batch, "--cooldown", "30", "--allow-resend", "--json", run_id="second")
    assert second.exit_code == ExitCode.USAGE
    assert parse_json(second)["counts"] == {"skipped": 30}
    assert len(env.sends()) == 24
    assert {s["metadata"]["sendoso_run"] for s in env.sends()} == {"first"}


def test_cooldown_ignores_recipients_not_gifted(batch: Batch, env: Any, tmp_path: Path) -> None:
    """--cooldown only skips recipients who were actually sent something."""
    first = write_csv(tmp_path / "a.csv", [person("Ann", "ann@example.com")])
    second = write_csv(
        tmp_path / "b.csv", [person("Ann", "ann@example.com"), person("Bob", "bob@example.com")]
    )
    assert run(batch, file=first, run_id="a").exit_code == 0
    assert run(batch, "--cooldown", "30", file=second, run_id="b").exit_code == 0
    assert [s["email"] for s in env.sends()] == ["ann@example.com", "bob@example.com"]


# gift, mapping, template, metadata ------------------------------------------------------


def test_gift_id_applies_to_every_row(batch: Batch, env: Any) -> None:
    """--gift-id replaces the file's gift column: rows 15 and 29 become valid, and row 28's
    incomplete address no longer matters (an eGift only needs its country); GB rows stay
    invalid."""
    result = run(batch, "--gift-id", EGIFT, "--json")
    assert result.exit_code == ExitCode.USAGE
    sends = env.sends()
    assert {s["gift_id"] for s in sends} == {EGIFT}
    assert sent_rows(sends) == sorted(VALID_ROWS - {20} | {15, 28, 29})
    assert parse_json(result)["counts"] == {"submitted": 26, "skipped": 4}
    skipped = parse_json(batch("show", "r1", "--state", "skipped", "--json"))["rows"]
    assert {r["row"]: r["reason"] for r in skipped} == {
        20: "invalid",  # a GB address: the US eGift is not available there
        27: "invalid",
        30: "invalid",
        31: "duplicate",
    }


def test_explicit_map_picks_the_column(batch: Batch, env: Any, tmp_path: Path) -> None:
    """--map email="Primary Email" picks one of two email columns, which are not guessed."""
    path = write_csv(
        tmp_path / "mapped.csv",
        [{"first_name": "Ann", "last_name": "Doe", "Primary Email": "ann@example.com",
          "Other Email": "ann@home.example", "gift_id": EGIFT}],
    )  # fmt: skip
    unmapped = run(batch, "--json", file=path, run_id="unmapped")
    assert unmapped.exit_code == ExitCode.USAGE
    assert "no column maps to email" in parse_json(unmapped)["error"]["message"]
    assert env.sends() == []
    assert run(batch, "--map", "email=Primary Email", file=path).exit_code == 0
    assert [s["email"] for s in env.sends()] == ["ann@example.com"]


def test_explicit_map_of_an_already_mapped_column(batch: Batch, env: Any) -> None:
    """--map email="Email" on the example file gives the same 24 sends."""
    assert run(batch, "--map", "email=Email").exit_code == ExitCode.USAGE
    assert sent_rows(env.sends()) == sorted(VALID_ROWS)


def test_map_to_a_missing_column_is_refused(batch: Batch, env: Any) -> None:
    """--map naming a column the file lacks: exit 2, the columns listed, nothing sent."""
    result = run(batch, "--map", "email=Work Mail")
    assert "no column 'Work Mail'" in result.stderr
    assert env.sends() == []
    assert result.exit_code == ExitCode.USAGE


def test_unknown_map_field_is_refused(batch: Batch, env: Any) -> None:
    """--map with a field that does not exist: exit 2 naming it, nothing sent."""
    result = run(batch, "--map", "emial=Email")
    assert "unknown field 'emial'" in result.stderr
    assert env.sends() == []
    assert parse_json(batch("runs", "--json")) == []
    assert result.exit_code == ExitCode.USAGE


def test_unknown_template_placeholder_is_refused(batch: Batch, env: Any) -> None:
    """An unknown {placeholder}: exit 2 naming it, nothing sent or recorded."""
    result = batch(
        "run", str(RECIPIENTS), "--yes", "--run-id", "r1", "--message-template", "Hi {frist_name}"
    )
    assert "{frist_name}" in result.stderr
    assert "did you mean {first_name}?" in result.stderr
    assert env.sends() == []
    assert parse_json(batch("runs", "--json")) == []
    assert result.exit_code == ExitCode.USAGE


def test_a_missing_file_is_a_clear_usage_error(batch: Batch, env: Any, tmp_path: Path) -> None:
    """A file that does not exist: exit 2 and a message naming it."""
    result = run(batch, file=tmp_path / "nope.csv")
    assert "nope.csv" in result.stderr
    assert "No such file" in result.stderr
    assert env.sends() == []
    assert result.exit_code == ExitCode.USAGE


def test_metadata_reaches_every_send(batch: Batch, env: Any) -> None:
    """--metadata campaign=Q4 is in each send's metadata, beside the run's own keys."""
    assert run(batch, "--metadata", "campaign=Q4").exit_code == ExitCode.USAGE
    sends = env.sends()
    assert len(sends) == 24
    for send in sends:
        metadata = send["request_body"]["send"]["metadata"]
        assert metadata["campaign"] == "Q4"
        assert metadata["sendoso_run"] == "r1"
        assert metadata["contact_id"].startswith("003A")


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        (["--metadata", "campaign"], "is not KEY=VALUE"),
        (["--map", "email"], "is not KEY=VALUE"),
        (["--format", "xlsx"], "--format must be auto, csv or jsonl"),
        (["--max-spend", "lots"], "is not an amount"),
        (["--cooldown", "-1"], "--cooldown must be 0 or more days"),
    ],
)
def test_bad_flags_are_usage_errors(batch: Batch, env: Any, flags: list[str], shown: str) -> None:
    """A malformed flag value: exit 2 with the reason, nothing sent."""
    result = run(batch, *flags)
    assert result.exit_code == ExitCode.USAGE
    assert shown in result.stderr
    assert env.sends() == []


# runs and show -------------------------------------------------------------------------


def test_runs_lists_the_run(batch: Batch) -> None:
    """`batch runs` (table and --json) shows the run with its counts."""
    run(batch)
    table = batch("runs")
    assert table.exit_code == 0
    assert "r1" in table.stdout
    assert "finished" in table.stdout
    (listed,) = parse_json(batch("runs", "--json"))
    assert listed["run_id"] == "r1"
    assert listed["rows"] == 30
    assert listed["counts"] == {"submitted": 24, "skipped": 6}
    assert listed["finished_at"]


def test_show_filters_by_state(batch: Batch) -> None:
    """`batch show RUN --state skipped` lists only the skipped rows, with their reasons."""
    run(batch)
    table = batch("show", "r1", "--state", "skipped")
    assert table.exit_code == 0
    assert "skipped (duplicate)" in table.stdout
    assert "submitted " not in table.stdout.split("Rows", 1)[1]
    shown = parse_json(batch("show", "r1", "--state", "skipped", "--json"))
    assert shown["counts"] == {"submitted": 24, "skipped": 6}
    assert sorted(r["row"] for r in shown["rows"]) == sorted(INVALID_ROWS | {DUPLICATE_ROW})
    assert {r["state"] for r in shown["rows"]} == {"skipped"}
    assert shown["options"]["message_template"] == TEMPLATE[1]


def test_show_limit_and_bad_state(batch: Batch) -> None:
    """--limit caps the rows listed; an unknown --state is exit 2."""
    run(batch)
    assert len(parse_json(batch("show", "r1", "--limit", "3", "--json"))["rows"]) == 3
    assert len(parse_json(batch("show", "r1", "--limit", "0", "--json"))["rows"]) == 30
    bad = batch("show", "r1", "--state", "lost")
    assert bad.exit_code == ExitCode.USAGE
    assert "--state must be one of" in bad.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["show", "nope"],
        ["resume", "nope"],
        ["status", "nope"],
        ["settle", "nope", "2", "--not-sent"],
    ],
    ids=lambda args: args[0],
)
def test_an_unknown_run_is_a_usage_error(batch: Batch, args: list[str]) -> None:
    """Naming a run the ledger does not have: exit 2 pointing at `batch runs`."""
    result = batch(*args)
    assert result.exit_code == ExitCode.USAGE
    assert "no run 'nope'" in result.stderr
    assert "batch runs" in result.stderr


# status --------------------------------------------------------------------------------


def test_status_stores_new_statuses_and_asks_only_about_open_sends(batch: Batch, env: Any) -> None:
    """Statuses move with the sandbox clock; final ones are never asked about again."""
    env.faults(token_ttl=30 * 86400)  # outlives the clock jumps: no 401 to retry
    run(batch)
    physical = sum(not s["gift_id"].startswith(("gft_egift", "gft_don")) for s in env.sends())
    assert 0 < physical < 24

    def asked() -> int:
        count: int = env.stats()["requests"]["GET /api/v3/sends/{id}"]
        return count

    env.advance(2 * 3600)  # eGifts and donations delivered; physical gifts processing
    first = parse_json(batch("status", "r1", "--json"))
    assert (first["asked"], first["changed"]) == (24, 24)
    assert first["statuses"] == {"delivered": 24 - physical, "processing": physical}
    assert asked() == 24

    env.advance(72 * 3600)
    second = parse_json(batch("status", "r1", "--json"))
    assert (second["asked"], second["changed"]) == (physical, physical)
    assert second["statuses"] == {"delivered": 24}
    assert asked() == 24 + physical

    third = batch("status", "r1")
    assert third.exit_code == 0
    assert "0 sends (0 changed)" in third.stdout
    assert asked() == 24 + physical
    stored = parse_json(batch("show", "r1", "--json", "--state", "submitted", "--limit", "0"))
    assert {r["status"] for r in stored["rows"]} == {"delivered"}


def test_status_shows_the_planned_cost_of_sends_whose_price_moved(
    batch: Batch, env: Any, tmp_path: Path
) -> None:
    """Planned at 25 USD a gift, sent at 20: `status` shows what the sends cost and, beside
    it, what the plan said they would; at an unchanged price only the first."""
    people = [person(f"P{i}", f"p{i}@example.com") for i in range(3)]
    file = write_csv(tmp_path / "moved.csv", people)
    planned = batch("run", str(file), "--message-template", "Hi", "--run-id", "moved")
    assert planned.exit_code == ExitCode.USAGE  # no --yes: the plan is saved, nothing sent
    env.set_price(EGIFT, "20.00")
    assert batch("resume", "moved", "--yes").exit_code == 0
    env.set_price(EGIFT, None)
    assert run(batch, file=file, run_id="same").exit_code == 0

    moved = batch("status", "moved")
    assert re.search(r"Estimated spend \(sent\)\s.*60\.00", moved.stdout)
    assert re.search(r"Estimated spend \(sent, as planned\)\s.*75\.00", moved.stdout)
    data = parse_json(batch("status", "moved", "--json"))
    assert data["estimated_spend"]["submitted"] == {"USD": {"low": "60.00", "high": "60.00"}}
    assert data["estimated_spend_as_planned"]["submitted"] == {
        "USD": {"low": "75.00", "high": "75.00"}
    }
    assert "as planned" not in batch("status", "same").stdout


# report --------------------------------------------------------------------------------


def test_report_has_one_line_per_input_row(batch: Batch, env: Any, tmp_path: Path) -> None:
    """CSV and JSON reports: 30 rows, each with its state and, when sent, its send id."""
    run(batch)
    out = tmp_path / "r.csv"
    result = batch("report", "r1", "--out", str(out))
    assert result.exit_code == 0
    assert "Wrote 30 rows" in result.stdout
    with out.open(encoding="utf-8", newline="") as f:
        lines = list(csv.DictReader(f))
    assert [int(line["row"]) for line in lines] == list(range(2, 32))
    send_ids = {s["id"] for s in env.sends()}
    for line in lines:
        if int(line["row"]) in VALID_ROWS:
            assert line["state"] == "submitted"
            assert line["send_id"] in send_ids
        else:
            assert line["state"] == "skipped"
            assert line["send_id"] == ""
            assert line["reason"] in ("invalid", "duplicate")
    as_json = report_rows(batch, tmp_path)
    assert [r["row"] for r in as_json] == list(range(2, 32))
    assert {r["send_id"] for r in as_json if r["send_id"]} == send_ids


def test_report_neutralises_formulas_in_csv_only(batch: Batch, env: Any, tmp_path: Path) -> None:
    """A cell a spreadsheet would run (= + - @) starts with ' in the CSV, not in the JSON."""
    hyperlink = '=HYPERLINK("http://x","y")'
    firsts = [hyperlink, "+cmd", "-1+1", "@SUM(1)"]
    path = write_csv(
        tmp_path / "formulas.csv",
        [person(first, f"p{n}@example.com") for n, first in enumerate(firsts)],
    )
    assert run(batch, file=path).exit_code == 0
    assert len(env.sends()) == 4
    out = tmp_path / "r.csv"
    assert batch("report", "r1", "--out", str(out)).exit_code == 0
    with out.open(encoding="utf-8", newline="") as f:
        names = [line["name"] for line in csv.DictReader(f)]
    assert names == [f"'{first} Doe" for first in firsts]
    assert [r["name"] for r in report_rows(batch, tmp_path)] == [f"{f} Doe" for f in firsts]


@pytest.mark.parametrize("name", ["x.txt", "x", "x.csv.bak"])
def test_report_needs_csv_or_json(batch: Batch, tmp_path: Path, name: str) -> None:
    """Any other --out is exit 2, and nothing is written."""
    run(batch)
    result = batch("report", "r1", "--out", str(tmp_path / name))
    assert result.exit_code == ExitCode.USAGE
    assert "must be .csv or .json" in result.stderr
    assert not (tmp_path / name).exists()


# unknown rows and settle ------------------------------------------------------------------


def make_unknown(ledger_url: str, run_id: str, number: int) -> None:
    """Leave a planned row as a crash would after an unanswered POST: unknown."""
    with Ledger(ledger_url) as ledger:
        assert ledger.move(run_id, number, RowState.SUBMITTING)
        assert ledger.move(run_id, number, RowState.UNKNOWN, error="connection lost")


def plan_only(batch: Batch, path: Path, *extra: str, run_id: str = "r1") -> None:
    """Plan a run without sending (no --yes, no terminal)."""
    result = batch(
        "run", str(path), "--message-template", "Hi {first_name}", "--run-id", run_id, *extra
    )
    assert result.exit_code == ExitCode.USAGE
    assert "--yes" in result.stderr


def untrusted(write_config: Any) -> None:
    """The client must not assume the sandbox deduplicates: ambiguous sends become unknown."""
    write_config('default_profile = "strict"\n[profiles.strict]\ntrust_idempotency = false\n')


def test_a_dropped_reply_on_an_untrusted_host_leaves_the_row_unknown(
    batch: Batch, env: Any, tmp_path: Path, write_config: Any
) -> None:
    """The reply is lost and the host is not trusted: the row is unknown, exit 3, never resent."""
    untrusted(write_config)
    path = write_csv(tmp_path / "one.csv", [person("Ann", "ann@example.com")])
    env.faults(drop_rate=1.0)
    result = run(batch, file=path)
    assert result.exit_code == ExitCode.AMBIGUOUS
    assert "1 row is unknown" in result.stdout
    assert len(env.sends()) == 1  # it was created; only the answer was lost

    env.faults(drop_rate=0.0)
    again = batch("resume", "r1")
    assert again.exit_code == ExitCode.AMBIGUOUS
    assert env.stats()["requests"]["POST /api/v3/sends"] == 1
    (row,) = parse_json(batch("show", "r1", "--json"))["rows"]
    assert row["state"] == "unknown"
    assert "batch settle r1 2" in row["error"]


def test_settle_sent_records_the_send(
    batch: Batch, env: Any, tmp_path: Path, write_config: Any
) -> None:
    """`settle RUN ROW --sent ID` makes an unknown row submitted with that send id."""
    untrusted(write_config)
    path = write_csv(tmp_path / "one.csv", [person("Ann", "ann@example.com")])
    env.faults(drop_rate=1.0)
    assert run(batch, file=path).exit_code == ExitCode.AMBIGUOUS
    env.faults(drop_rate=0.0)
    (send,) = env.sends()

    settled = batch("settle", "r1", "2", "--sent", send["id"], "--json")
    assert settled.exit_code == 0
    assert parse_json(settled) == {
        "run_id": "r1",
        "row": 2,
        "state": "submitted",
        "send_id": send["id"],
        "found": {
            "id": send["id"],
            "status": "pending",
            "email": "ann@example.com",
            "gift_id": EGIFT,
            "created_at": parse_json(settled)["found"]["created_at"],
        },
    }
    (row,) = parse_json(batch("show", "r1", "--json"))["rows"]
    assert (row["state"], row["send_id"]) == ("submitted", send["id"])
    assert batch("resume", "r1").exit_code == 0
    assert len(env.sends()) == 1


def unknown_after_a_lost_reply(
    batch: Batch, env: Any, tmp_path: Path, write_config: Any, *people: dict[str, str]
) -> list[dict[str, Any]]:
    """Run ``people`` on an untrusted host whose replies are all lost: every row unknown,
    every send created. Returns the sandbox's sends."""
    untrusted(write_config)
    path = write_csv(tmp_path / "lost.csv", list(people))
    env.faults(drop_rate=1.0)
    assert run(batch, "--concurrency", "1", file=path).exit_code == ExitCode.AMBIGUOUS
    env.faults(drop_rate=0.0)
    sends: list[dict[str, Any]] = env.sends()
    return sends


def test_settle_sent_refuses_a_send_the_api_does_not_know(
    batch: Batch, env: Any, tmp_path: Path, write_config: Any
) -> None:
    """`settle --sent snd_bogus` asks the API first: unknown id, exit 2, the row stays unknown."""
    unknown_after_a_lost_reply(batch, env, tmp_path, write_config, person("Ann", "ann@example.com"))
    result = batch("settle", "r1", "2", "--sent", "snd_bogus")
    assert result.exit_code == ExitCode.USAGE
    assert "no send snd_bogus at" in result.stderr
    assert result.stdout == ""
    (row,) = parse_json(batch("show", "r1", "--json"))["rows"]
    assert row["state"] == "unknown"


def test_settle_sent_shows_the_send_and_asks_when_it_is_someone_elses(
    batch: Batch, env: Any, tmp_path: Path, write_config: Any
) -> None:
    """Ann's send given for Bob's row: what the API found is shown, and without --yes (no
    terminal) nothing is recorded; with --yes it is."""
    sends = unknown_after_a_lost_reply(
        batch,
        env,
        tmp_path,
        write_config,
        person("Ann", "ann@example.com"),
        person("Bob", "bob@example.com"),
    )
    ann = next(s for s in sends if s["email"] == "ann@example.com")
    refused = batch("settle", "r1", "3", "--sent", ann["id"])
    assert refused.exit_code == ExitCode.USAGE
    assert f"Found {ann['id']}: Ann Doe <ann@example.com>" in refused.stdout
    assert "it went to ann@example.com, the row is for bob@example.com" in refused.stderr
    assert "--yes" in refused.stderr
    rows = parse_json(batch("show", "r1", "--json"))["rows"]
    assert [r["state"] for r in rows] == ["unknown", "unknown"]
    forced = batch("settle", "r1", "3", "--sent", ann["id"], "--yes", "--json")
    assert forced.exit_code == 0
    assert parse_json(forced)["found"]["mismatches"] == [
        "it went to ann@example.com, the row is for bob@example.com",
        "it belongs to row 2, not 3",
    ]


def test_settle_correct_needs_the_correct_flag(
    batch: Batch, env: Any, tmp_path: Path, write_config: Any
) -> None:
    """A settled row is not settled again by accident: the refusal names --correct."""
    (ann,) = unknown_after_a_lost_reply(
        batch, env, tmp_path, write_config, person("Ann", "ann@example.com")
    )
    assert batch("settle", "r1", "2", "--sent", ann["id"]).exit_code == 0
    again = batch("settle", "r1", "2", "--not-sent")
    assert again.exit_code == ExitCode.USAGE
    assert "row 2 is submitted, not unknown" in again.stderr
    assert "--correct" in again.stderr


def test_settle_correct_refuses_not_sent_when_the_send_exists(
    batch: Batch, env: Any, tmp_path: Path, write_config: Any
) -> None:
    """Correcting to "not sent" asks the API about the recorded send: it exists, so the row
    was sent and stays recorded so (resuming would send a second gift)."""
    (ann,) = unknown_after_a_lost_reply(
        batch, env, tmp_path, write_config, person("Ann", "ann@example.com")
    )
    assert batch("settle", "r1", "2", "--sent", ann["id"]).exit_code == 0
    result = batch("settle", "r1", "2", "--not-sent", "--correct", "--yes")
    assert result.exit_code == ExitCode.USAGE
    assert f"{ann['id']} exists at" in result.stderr
    (row,) = parse_json(batch("show", "r1", "--json"))["rows"]
    assert (row["state"], row["send_id"]) == ("submitted", ann["id"])


def test_settle_correct_replaces_a_wrong_send_id(
    batch: Batch, env: Any, tmp_path: Path, write_config: Any
) -> None:
    """Ann's row settled with Bob's send by mistake: `--sent ANN --correct` (confirmed on a
    terminal) replaces it."""
    sends = unknown_after_a_lost_reply(
        batch,
        env,
        tmp_path,
        write_config,
        person("Ann", "ann@example.com"),
        person("Bob", "bob@example.com"),
    )
    ids = {s["email"]: s["id"] for s in sends}
    wrong = batch("settle", "r1", "2", "--sent", ids["bob@example.com"], "--yes")
    assert wrong.exit_code == 0
    unattended = batch("settle", "r1", "2", "--sent", ids["ann@example.com"], "--correct")
    assert unattended.exit_code == ExitCode.USAGE
    assert "--yes" in unattended.stderr
    fixed = batch("settle", "r1", "2", "--sent", ids["ann@example.com"], "--correct", "--yes")
    assert fixed.exit_code == 0, fixed.stderr
    row = parse_json(batch("show", "r1", "--json"))["rows"][0]
    assert (row["state"], row["send_id"]) == ("submitted", ids["ann@example.com"])


def test_settle_not_sent_lets_resume_send_it(
    batch: Batch, env: Any, tmp_path: Path, ledger_url: str
) -> None:
    """`settle RUN ROW --not-sent` puts the row back to planned; `resume` sends it, once."""
    path = write_csv(
        tmp_path / "two.csv", [person("Ann", "ann@example.com"), person("Bob", "bob@example.com")]
    )
    plan_only(batch, path)
    make_unknown(ledger_url, "r1", 3)
    assert batch("resume", "r1", "--yes").exit_code == ExitCode.AMBIGUOUS
    assert [s["email"] for s in env.sends()] == ["ann@example.com"]

    settled = batch("settle", "r1", "3", "--not-sent")
    assert settled.exit_code == 0
    assert "batch resume r1" in settled.stdout
    resumed = batch("resume", "r1", "--json")
    assert resumed.exit_code == 0
    assert parse_json(resumed)["counts"] == {"submitted": 2}
    assert [s["email"] for s in env.sends()] == ["ann@example.com", "bob@example.com"]


def test_settle_refuses_a_row_that_is_not_unknown(batch: Batch, env: Any, tmp_path: Path) -> None:
    """Only unknown rows are settled: a submitted, planned or missing row is exit 2."""
    path = write_csv(tmp_path / "one.csv", [person("Ann", "ann@example.com")])
    assert run(batch, file=path).exit_code == 0
    submitted = batch("settle", "r1", "2", "--not-sent")
    assert submitted.exit_code == ExitCode.USAGE
    assert "row 2 is submitted, not unknown" in submitted.stderr
    missing = batch("settle", "r1", "9", "--sent", "snd_x")
    assert missing.exit_code == ExitCode.USAGE
    assert "has no row 9" in missing.stderr
    plan_only(batch, path, "--allow-resend", run_id="r2")
    planned = batch("settle", "r2", "2", "--sent", "snd_x")
    assert planned.exit_code == ExitCode.USAGE
    assert "row 2 is planned, not unknown" in planned.stderr
    (row,) = parse_json(batch("show", "r1", "--json"))["rows"]
    assert row["state"] == "submitted"
    assert row["send_id"] == env.sends()[0]["id"]


@pytest.mark.parametrize(
    "flags",
    [[], ["--sent", "snd_1", "--not-sent"], ["--sent", "  "]],
    ids=["neither", "both", "blank"],
)
def test_settle_needs_exactly_one_answer(
    batch: Batch, tmp_path: Path, ledger_url: str, flags: list[str]
) -> None:
    """Neither or both of --sent/--not-sent (or a blank id): exit 2, the row stays unknown."""
    plan_only(batch, write_csv(tmp_path / "one.csv", [person("Ann", "ann@example.com")]))
    make_unknown(ledger_url, "r1", 2)
    result = batch("settle", "r1", "2", *flags)
    assert result.exit_code == ExitCode.USAGE
    assert "--sent" in result.stderr
    with Ledger(ledger_url) as ledger:
        row = ledger.row("r1", 2)
    assert row is not None
    assert row.state is RowState.UNKNOWN


def test_status_that_cannot_ask_the_api_exits_1(
    batch: Batch, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every refresh refused (a wrong secret): the failures are counted and shown, and the
    command does not claim success."""
    assert run(batch).exit_code == ExitCode.USAGE
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", "wrong-secret")
    result = batch("status", "r1", "--json")
    assert result.exit_code == ExitCode.API_ERROR
    body = parse_json(result)
    assert body["failed"] == 24
    assert 0 < len(body["errors"]) <= 50


def test_status_after_the_sandbox_forgot_its_sends_lists_them_all_by_row(
    batch: Batch, env: Any
) -> None:
    """A sandbox restarted without --db knows none of the run's sends: the terminal lists the
    first ten by row, says how many more there are, and says why they are unknown (it used to
    say "24 sends could not be refreshed" and list ten, in completion order, with no more)."""
    env.faults(token_ttl=30 * 86400)
    run(batch)
    env.reset()  # what a restart of an in-memory sandbox does to its sends
    result = batch("status", "r1")
    assert result.exit_code == ExitCode.API_ERROR
    listed = [line for line in result.stderr.splitlines() if line.startswith("  - row ")]
    numbers = [int(line.split()[2].rstrip(":")) for line in listed]
    assert len(numbers) == 10
    assert numbers == sorted(numbers)
    assert "… and 14 more" in result.stderr
    assert "24 sends unknown to the API" in result.stderr
    assert "--db" in result.stderr


def test_a_fixed_and_re_exported_file_does_not_send_twice(
    batch: Batch, env: Any, tmp_path: Path
) -> None:
    """The file changed (a row appended), so it is a new run: the rows the first run sent
    are duplicates, only the new row goes out."""
    path = tmp_path / "crm.csv"
    shutil.copy(RECIPIENTS, path)
    assert batch("run", str(path), "--yes", *TEMPLATE).exit_code == ExitCode.USAGE
    with path.open("a", encoding="utf-8") as f:
        f.write("Zed,Zee,zed@example.com,Zeta,CEO,,,,,,gft_egift_amazon_us_25,003A000099\n")
    second = batch("run", str(path), "--yes", *TEMPLATE, "--json")
    assert parse_json(second)["sent_now"] == 1
    assert len(env.sends()) == 25


@pytest.mark.parametrize(
    ("concurrency", "rate", "workers"),
    [(None, None, 8), (None, 10.0, 8), (None, 200.0, 50), (None, 1000.0, 64), (3, 200.0, 3)],
)
def test_default_concurrency_keeps_up_with_the_rate(
    concurrency: int | None, rate: float | None, workers: int
) -> None:
    """--rate 200 with the old fixed 8 in flight reached 80 sends/s at 100 ms per reply."""
    from sendoso.cli._commands_batch import _workers

    assert _workers(concurrency, rate) == workers


# smaller things a newcomer met ------------------------------------------------------------


def test_show_never_breaks_a_send_id(
    batch: Batch, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an 80-column terminal the rows table folds recipients and reasons, never an id."""
    assert run(batch).exit_code == ExitCode.USAGE  # the example file has invalid rows
    monkeypatch.setenv("COLUMNS", "80")
    shown = batch("show", "r1", "--state", "submitted").stdout
    for sent in env.sends():
        assert sent["id"] in shown


def test_without_a_terminal_a_run_prints_progress_lines(
    batch: Batch, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No terminal: a progress line on stderr every PROGRESS_EVERY seconds (here a clock that
    jumps 10 s per reading, so every update is due), stdout untouched by them."""
    ticks = iter(range(0, 10**6, 10))
    monkeypatch.setattr("sendoso.cli._batch_views.clock", lambda: float(next(ticks)))
    result = run(batch)
    assert result.exit_code == ExitCode.USAGE
    lines = [line for line in result.stderr.splitlines() if line.startswith("sending: ")]
    assert lines, result.stderr
    assert any("/24" in line and "submitted" in line for line in lines)
    assert "sending: " not in result.stdout


def test_report_to_stdout(batch: Batch, env: Any) -> None:
    """`--out -` writes the report to stdout: CSV, or JSON with --json."""
    run(batch)
    as_csv = batch("report", "r1", "--out", "-")
    assert as_csv.exit_code == 0
    assert next(csv.reader(as_csv.stdout.splitlines()))[:2] == ["row", "recipient"]
    assert len(as_csv.stdout.splitlines()) == 31
    as_json = batch("report", "r1", "--out", "-", "--json")
    assert as_json.exit_code == 0
    assert len(parse_json(as_json)) == 30


def test_one_send_is_one_send(batch: Batch, env: Any, tmp_path: Path) -> None:
    """Counts of one read as one: "1 send", not "1 sends"."""
    path = write_csv(tmp_path / "one.csv", [person("Ann", "ann@example.com")])
    assert run(batch, file=path).exit_code == 0
    status = batch("status", "r1")
    assert "1 send (" in status.stdout


def test_settle_not_sent_needs_no_credentials(
    batch: Batch, env: Any, tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only `--sent` (and a correction) asks the API; `--not-sent` of an unknown row is local."""
    plan_only(batch, write_csv(tmp_path / "one.csv", [person("Ann", "ann@example.com")]))
    make_unknown(ledger_url, "r1", 2)
    monkeypatch.delenv("SENDOSO_CLIENT_SECRET")
    assert batch("settle", "r1", "2", "--not-sent").exit_code == 0


def test_settle_sent_that_cannot_be_checked_is_refused_unless_unchecked(
    batch: Batch, env: Any, tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials here to ask the API: `--sent` is refused (exit 2, the row stays
    unknown) and names --unchecked, which records it as given."""
    plan_only(batch, write_csv(tmp_path / "one.csv", [person("Ann", "ann@example.com")]))
    make_unknown(ledger_url, "r1", 2)
    monkeypatch.delenv("SENDOSO_CLIENT_SECRET")
    refused = batch("settle", "r1", "2", "--sent", "snd_from_the_dashboard")
    assert refused.exit_code == ExitCode.USAGE
    assert "--unchecked" in refused.stderr
    assert (
        batch("settle", "r1", "2", "--sent", "snd_from_the_dashboard", "--unchecked").exit_code == 0
    )
    (row,) = parse_json(batch("show", "r1", "--json"))["rows"]
    assert (row["state"], row["send_id"]) == ("submitted", "snd_from_the_dashboard")
