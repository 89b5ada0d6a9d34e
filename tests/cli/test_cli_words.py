"""The library names parameters and next steps; the CLI words them with its flags and commands.

The library's own text says ``max_spend``; the CLI's says ``--max-spend``, from one table
(``sendoso.cli._words``), without editing the library's sentences.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from sendoso.batch import RunOptionsChangedError, Source, SourceError
from sendoso.cli._words import FLAGS, say, say_error
from sendoso.errors import (
    FieldProblem,
    Param,
    Step,
    Text,
    ValidationError,
    library_wording,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "sendoso"


def test_a_text_is_the_library_s_words_and_keeps_its_parts() -> None:
    message = Text("unknown ", Param("encoding"), " 'klingon'")
    assert message == "unknown encoding 'klingon'"
    assert say(message) == "unknown --encoding 'klingon'"
    wrapped = Text("in.csv: ", message)  # a message around another keeps its parts
    assert say(wrapped) == "in.csv: unknown --encoding 'klingon'"
    copied = pickle.loads(pickle.dumps(wrapped))  # noqa: S301 (bytes made just above)
    assert copied == wrapped
    assert say(copied) == say(wrapped)


def test_a_stored_text_is_worded_when_it_is_shown() -> None:
    """A row's error is stored in the ledger and worded by whoever shows it later."""
    reason = Text("over ", Param("max_spend"), "; then ", Step("settle", ("r1", "3")))
    stored = reason.stored()
    assert isinstance(stored, str)
    assert not isinstance(stored, Text)
    back = Text.from_stored(stored)
    assert back == reason
    assert say(back) == (
        "over --max-spend; then `sendoso batch settle r1 3 --sent SEND_ID` or `--not-sent`"
    )
    assert Text("plain").stored() == "plain"
    assert Text.from_stored("an error written before texts were stored") == (
        "an error written before texts were stored"
    )


def test_an_error_reads_in_the_library_s_words_and_the_cli_s() -> None:
    with pytest.raises(SourceError) as caught:
        Source("in.csv", delimiter=";;")
    assert caught.value.field == "delimiter"
    assert str(caught.value).startswith("delimiter must be one character")
    assert say_error(caught.value).startswith("--delimiter must be one character")


def test_a_refused_resume_lists_the_changed_options_as_fields() -> None:
    refused = RunOptionsChangedError("r1", ["cooldown_days", "max_spend"])
    assert refused.changed == ("cooldown_days", "max_spend")
    assert "(cooldown_days, max_spend)" in str(refused)
    assert "`sendoso batch resume`" not in str(refused)
    cli = say_error(refused)
    assert "(--cooldown, --max-spend)" in cli
    assert "`sendoso batch resume`" in cli
    assert "start a new --run-id" in cli


def test_problems_are_worded_one_by_one() -> None:
    error = ValidationError(
        [FieldProblem("max_spend", "invalid", Text(Param("max_spend"), " must be 0 or more"))],
        row=3,
    )
    assert str(error) == "max_spend must be 0 or more (row 3)"
    assert say_error(error) == "--max-spend must be 0 or more (row 3)"


def _named(call: str) -> set[str]:
    """The first argument of every ``call("...")`` written in the package's source."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == call
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names.add(node.args[0].value)
    return names


def test_every_parameter_the_library_names_has_a_flag() -> None:
    named = _named("Param")
    assert named, "no Param found: the scan is broken"
    assert sorted(named - FLAGS.keys()) == []


def test_every_step_the_library_names_has_a_command() -> None:
    named = _named("Step")
    assert named, "no Step found: the scan is broken"
    for action in sorted(named):
        worded = say(Text(Step(action, ("r1", "4"))))
        assert worded.startswith("`sendoso "), (action, worded)
        assert worded != library_wording.step(action, ("r1", "4"))
