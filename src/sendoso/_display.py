"""Text from recipients' files, shown to a person: nothing in it may hide or reorder itself.

A recipient written as ``"\\u202emoc.elpmaxe@ada"`` displays as ``ada@example.com`` in a
terminal or a spreadsheet, and an ESC byte in a name can drive the terminal. Tables and CSV
reports show such characters as ``\\uXXXX`` escapes instead; JSON output keeps the exact text.
"""

from __future__ import annotations

import re

__all__ = ["visible"]

# Control characters (C0 except tab, DEL, C1), bidirectional marks, embeddings, overrides and
# isolates, and the invisible separators that can split a word unseen. Zero-width joiners
# (U+200C/U+200D) stay: several scripts and emoji need them and they reorder nothing.
_HIDDEN = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb]"
)


def visible(value: str) -> str:
    """``value`` with hidden or reordering characters written as ``\\uXXXX``."""
    return _HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
