"""The CLI's words for what the library names: each library parameter's flag, each next step's
command. The library's errors name parameters and steps as parts of a
:class:`sendoso.errors.Text`; this module spells those parts for a terminal, so the library's
sentences are never edited here and the library never names a flag.

``FLAGS`` is the one table from a library parameter to the CLI flag that sets it; a parameter
missing from it is shown as the library names it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sendoso.errors import FieldProblem

__all__ = ["CLI_WORDING", "FLAGS", "flag", "say", "say_error", "say_problem"]

#: Library parameter -> the flag that sets it.
FLAGS: dict[str, str] = {
    # batch run / dry run (sendoso.batch.BatchSpec, Source, MessageTemplate)
    "run_id": "--run-id",
    "mapping": "--map",
    "format": "--format",
    "encoding": "--encoding",
    "delimiter": "--delimiter",
    "gift_id": "--gift-id",
    "variant_id": "--variant-id",
    "message_template": "--message-template",
    "metadata": "--metadata",
    "max_spend": "--max-spend",
    "cooldown_days": "--cooldown",
    "allow_resend": "--allow-resend",
    "correct": "--correct",
    # the client and the ledger
    "base_url": "--base-url",
    "ledger": "--ledger",
    "idempotency_key": "--idempotency-key",
    # servers (sandbox, mcp)
    "allow_remote": "--allow-remote",
    # mcp guardrails (sendoso.mcp.Guardrails)
    "allow_send": "--allow-send",
    "max_price": "--max-price",
    "daily_cap": "--daily-cap",
    "total_cap": "--total-cap",
    "allow_gifts": "--allow-gift",
    "allow_categories": "--allow-category",
    "approval_above": "--approval-above",
}


def flag(name: str) -> str:
    """The flag for library parameter ``name`` (``max_spend`` -> ``--max-spend``)."""
    return FLAGS.get(name, name)


def _settle(args: tuple[str, ...]) -> str:
    if len(args) >= 2:
        run_id, row = args[0], args[1]
        return f"`sendoso batch settle {run_id} {row} --sent SEND_ID` or `--not-sent`"
    return "`sendoso batch settle`"


def _command(words: str, args: tuple[str, ...]) -> str:
    return "`" + " ".join((words, *args)) + "`"


class _CliWording:
    def param(self, name: str) -> str:
        return flag(name)

    def step(self, action: str, args: tuple[str, ...]) -> str:
        if action == "settle":
            return _settle(args)
        if action == "front_end":
            return _command("sendoso", args)
        words = _STEPS.get(action)
        if words is None:
            from sendoso.errors import library_wording

            return library_wording.step(action, args)
        return _command(words, args)


#: Next step -> the command that takes it (its arguments follow).
_STEPS = {
    "resume": "sendoso batch resume",
    "show": "sendoso batch show",
    "runs": "sendoso batch runs",
    "approvals": "sendoso approvals list",
    "approve": "sendoso approvals approve",
}

CLI_WORDING = _CliWording()


def say(message: object) -> str:
    """A library message (a :class:`sendoso.errors.Text` or plain text) in the CLI's words."""
    from sendoso.errors import worded

    return worded(message, CLI_WORDING)


def say_error(exc: BaseException) -> str:
    """``str(exc)``, in the CLI's words (a library ``ValueError`` may carry a ``Text`` too)."""
    from sendoso.errors import SendosoError

    if isinstance(exc, SendosoError):
        return exc.worded(CLI_WORDING)
    return say(exc.args[0]) if len(exc.args) == 1 else str(exc)


def say_problem(problem: FieldProblem) -> str:
    return say(problem.message)
