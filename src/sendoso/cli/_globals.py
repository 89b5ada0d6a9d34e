"""Global options in either position: ``sendoso gifts list -v`` is ``sendoso -v gifts list``,
and ``sendoso --json gifts list`` is ``sendoso gifts list --json``.

Click parses a group's options before its command's, so the root group reorders its
arguments first: a global option found among a command's arguments moves to the front, and
``--json`` given before the command moves to after it (``--json`` belongs to each command, as
not every command prints JSON). Only tokens that click itself would read as options move: a
value of the command's own option (``--message -v``) stays where it is, a command's own option
of the same name (``sandbox serve --client-id``) wins, and nothing after ``--`` moves.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

__all__ = ["GlobalOptionsGroup", "reader_gone"]

_JSON = "--json"


def _names(command: Any) -> tuple[set[str], set[str]]:
    """The option names of ``command``: all of them, and those that take a value."""
    every: set[str] = set()
    valued: set[str] = set()
    for param in command.params:
        if getattr(param, "param_type_name", None) != "option":
            continue
        names = {*param.opts, *param.secondary_opts}
        every |= names
        if not param.is_flag and not param.count:
            valued |= set(param.opts)
    return every, valued


class GlobalOptionsGroup(TyperGroup):
    """The root group: moves global options to where click reads them."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            reader_gone()

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        reordered: list[str] = super().parse_args(ctx, self._reordered(ctx, args))
        return reordered

    def _reordered(self, ctx: Any, args: list[str]) -> list[str]:
        root_all, root_valued = _names(self)
        root_all.discard("--help")
        # The root's own part: its options (and their values), up to the first command name.
        head: list[str] = []
        json_before = False
        i = 0
        while i < len(args) and args[i].startswith("-") and args[i] != "--":
            token = args[i]
            if token == _JSON:
                json_before = True
            else:
                head.append(token)
                if token in root_valued and i + 1 < len(args):
                    head.append(args[i + 1])
                    i += 1
            i += 1
        # The command path: group names down to the command that takes the rest.
        # A global option between group names (`gifts -v list`) moves too.
        path: list[str] = []
        moved: list[str] = []
        group: Any = self
        while i < len(args) and _is_group(group):
            token = args[i]
            name = token.split("=", 1)[0] if token.startswith("--") else token
            if token == _JSON:
                json_before = True
            elif token.startswith("-") and name in root_all:
                moved.append(token)
                if name in root_valued and "=" not in token and i + 1 < len(args):
                    moved.append(args[i + 1])
                    i += 1
            else:
                found = group.get_command(ctx, token)
                if found is None:
                    break
                path.append(token)
                group = found
            i += 1
        if _is_group(group) or not path:
            # No command reached (a typo, a bare group, --help): click says what is wrong.
            return [*head, *moved, *([_JSON] if json_before else []), *path, *args[i:]]
        own_all, own_valued = _names(group)
        rest: list[str] = []
        tail = args[i:]
        j = 0
        while j < len(tail):
            token = tail[j]
            if token == "--":
                rest += tail[j:]
                break
            name = token.split("=", 1)[0] if token.startswith("--") else token
            if token.startswith("-") and name not in own_all and name in root_all:
                moved.append(token)
                if name in root_valued and "=" not in token and j + 1 < len(tail):
                    moved.append(tail[j + 1])
                    j += 1
            else:
                rest.append(token)
                if name in own_valued and "=" not in token and j + 1 < len(tail):
                    rest.append(tail[j + 1])
                    j += 1
            j += 1
        if json_before and _JSON not in own_all:
            head.append(_JSON)  # click says the command has no such option
        elif json_before:
            rest.insert(0, _JSON)
        return [*head, *moved, *path, *rest]


def _is_group(command: Any) -> bool:
    return callable(getattr(command, "get_command", None))


def reader_gone() -> NoReturn:
    """The reader of stdout stopped reading (`sendoso batch show RUN | head -1`): what it
    wanted it has, so this is no failure: exit 0. Later writes, and the flush at exit, go
    nowhere."""
    _silence_stdout()
    raise typer.Exit(0)


def _silence_stdout() -> None:
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (a test's captured stream): nothing to flush later
