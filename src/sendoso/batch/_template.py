"""``message_template``: a gift note with ``{first_name}``-style placeholders per row.

Only plain names are allowed. ``str.format`` would also run attribute and index lookups and
format specs (``{x.__class__}``, ``{x:>999999999}``), so the template is parsed with
:class:`string.Formatter` for its syntax but filled by simple concatenation: no code runs and
the result is never much longer than the template plus the values it takes.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterable, Mapping

from sendoso.batch._columns import FIELDS, field_placeholder
from sendoso.batch._records import SourceRow
from sendoso.errors import InputError, Param, Text

__all__ = ["MessageTemplate", "TemplateError", "template_values"]

_OPTION = Param("message_template")
# A name, but not all digits: "{0}" is positional in str.format and means nothing here.
_NAME = re.compile(r"(?!\d+\Z)\w+\Z")
_FIELD_PLACEHOLDERS = tuple(field_placeholder(f) for f in FIELDS)
_FIELD_OF = dict(zip(_FIELD_PLACEHOLDERS, FIELDS, strict=True))


class TemplateError(InputError):
    """The message template cannot be used; nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="message_template")


def _spelled(name: str, spec: str | None, conversion: str | None) -> str:
    conv = f"!{conversion}" if conversion else ""
    return "{" + name + conv + (f":{spec}" if spec else "") + "}"


class MessageTemplate:
    """A parsed template. ``{{`` and ``}}`` are literal braces."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise TemplateError(
                Text(_OPTION, f" is not valid ({exc}); write {{{{ and }}}} for literal braces")
            ) from None
        self._parts: list[tuple[str, str | None]] = []
        for literal, name, spec, conversion in parsed:
            if name is None:
                self._parts.append((literal, None))
                continue
            written = _spelled(name, spec, conversion)
            if not name or name.isdecimal():
                raise TemplateError(
                    Text(
                        f"{written} in ",
                        _OPTION,
                        " has no name; use a named placeholder such as {first_name}",
                    )
                )
            if conversion is not None or spec:
                raise TemplateError(
                    Text(
                        f"{written} in ",
                        _OPTION,
                        ": conversions and format specs are not supported; "
                        f"write {{{name.split('.')[0].split('[')[0]}}}",
                    )
                )
            if not _NAME.match(name):
                raise TemplateError(
                    Text(
                        f"{written} in ",
                        _OPTION,
                        " is not a plain name; placeholders are letters, digits and _ only, "
                        "e.g. {first_name} (no attributes, indexes or spaces)",
                    )
                )
            self._parts.append((literal, name))
        self.placeholders = frozenset(n for _, n in self._parts if n is not None)
        # Where each placeholder's value is in a row, worked out once rather than per row:
        # a send field's name means that field (see template_values).
        self._sources = [
            (literal, name, _FIELD_OF.get(name) if name is not None else None)
            for literal, name in self._parts
        ]

    def check(self, available: Iterable[str]) -> None:
        """Raise :class:`TemplateError` if a placeholder is not among ``available``."""
        names = set(available)
        unknown = sorted(self.placeholders - names)
        if not unknown:
            return
        # The send fields first, in their usual order, then the file's own columns.
        ordered = [n for n in _FIELD_PLACEHOLDERS if n in names]
        ordered += sorted(names.difference(ordered))
        listed = ", ".join("{" + n + "}" for n in unknown)
        plural = "s" if len(unknown) > 1 else ""
        close = difflib.get_close_matches(unknown[0], ordered, n=1)
        hint = f" (did you mean {{{close[0]}}}?)" if close else ""
        raise TemplateError(
            Text(
                f"unknown placeholder{plural} {listed} in ",
                _OPTION,
                f"{hint}; use one of: {', '.join(ordered) or '(none)'}",
            )
        )

    def render(self, values: Mapping[str, str]) -> str:
        """The text with each placeholder replaced by its value; a missing one by ``""``."""
        out: list[str] = []
        for literal, name in self._parts:
            out.append(literal)
            if name is not None:
                value = values.get(name)
                if isinstance(value, str):
                    out.append(value)
        return "".join(out)

    def render_row(self, row: SourceRow) -> str:
        """``render(template_values(row))``, without building every value of the row."""
        out: list[str] = []
        for literal, name, field in self._sources:
            out.append(literal)
            if name is None:
                continue
            value = row.fields.get(field) if field is not None else row.columns.get(name)
            if isinstance(value, str):
                out.append(value)
        return "".join(out)

    def __repr__(self) -> str:
        return f"MessageTemplate({self.text!r})"


def template_values(row: SourceRow) -> dict[str, str]:
    """A row's placeholder values: its columns, then its send fields (``address_city``).

    A send field's name always means that field, even when it is empty and some unmapped
    column has the same name, so that ``{email}`` is the address the gift goes to.
    """
    values = dict(row.columns)
    for field, name in zip(FIELDS, _FIELD_PLACEHOLDERS, strict=True):
        values[name] = row.fields.get(field, "")
    return values
