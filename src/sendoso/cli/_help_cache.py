"""``sendoso … --help`` without importing typer: the help typer printed last time, replayed.

Typer, the click it embeds and the pydantic it builds parameters with take 50-120 ms to
import and set up, many times Python's own start-up, to print text that changes only when the
code does. So the first ``--help`` of a command runs typer as usual and keeps a copy of what
it printed; later ones print that copy without importing typer at all.

A copy is used only while everything typer's output depends on is unchanged, else typer runs
again and the copy is replaced:

- the code: path, size and modification time of every module of this package and of typer,
  click and rich (an edit or an upgrade changes them), and the Python version;
- the invocation: the arguments, the program name, stdout's encoding and whether it is a
  terminal, the terminal's width, and every environment variable typer, click or rich read
  to lay out or colour text.

Only help that exits 0, writes nothing to stderr and holds no terminal escape code is kept,
as UTF-8 text in the user cache directory, private to the user. Nothing but ``--help`` goes
through here; tests/cli/test_cli_startup.py checks the copy against typer for every command.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["cache_dir", "help_key", "replay", "run_and_keep"]

_FORMAT = "sendoso-help-1"
_HELP_FLAGS = frozenset({"--help", "-h"})
# Read by click (width, completion), typer (rich or not, markup, width) or rich (colour, size).
_ENVIRONMENT = (
    "COLUMNS",
    "LINES",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "FORCE_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "TERMINAL_WIDTH",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "JUPYTER_COLUMNS",
    "JUPYTER_LINES",
)
_ENVIRONMENT_PREFIXES = ("TYPER", "_TYPER", "CLICK", "_CLICK", "RICH", "_SENDOSO")
_LIBRARIES = ("typer", "click", "rich")
_MAX_KEPT = 200
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _is_word(arg: str) -> bool:
    return arg.isascii() and arg[:1].isalpha() and arg.replace("-", "").replace("_", "").isalnum()


def help_key(argv: list[str]) -> str | None:
    """What the help for ``argv`` depends on, or None when ``argv`` is not a plain help
    request (``sendoso [COMMAND …] --help``) or its output cannot be reused safely."""
    args = argv[1:]
    if not args or args[-1] not in _HELP_FLAGS or not all(_is_word(a) for a in args[:-1]):
        return None
    # Under ``python -m`` click names the program differently; a stream that is not UTF-8
    # makes click write through a wrapper of its own.
    main_module = sys.modules.get("__main__")
    if getattr(main_module, "__package__", None) not in (None, ""):
        return None
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    if encoding != "utf8":
        return None
    code = _code_fingerprint()
    if code is None:
        return None
    environment = sorted(
        (name, value)
        for name, value in os.environ.items()
        if name in _ENVIRONMENT
        or name.startswith(_ENVIRONMENT_PREFIXES)
        or name.endswith("_COMPLETE")
    )
    parts = [
        _FORMAT,
        sys.version,
        os.path.basename(argv[0]),
        *args,
        f"tty={_isatty(sys.stdout)}",
        f"terminal={_terminal_columns()}",
        *(f"{name}={value}" for name, value in environment),
        *code,
    ]
    # One line per part, each written out by repr: no value can pass for two.
    return "\n".join(map(repr, parts))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _terminal_columns() -> int | None:
    # What shutil.get_terminal_size() asks the terminal, besides $COLUMNS (in the key).
    stdout = sys.__stdout__
    if stdout is None:
        return None
    try:
        return os.get_terminal_size(stdout.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return None


def _library_root(name: str) -> str | None:
    """The directory ``import name`` would load from, found without importing it."""
    for entry in sys.path:
        root = os.path.join(entry or os.curdir, name)
        if os.path.isfile(os.path.join(root, "__init__.py")):
            return os.path.abspath(root)
    return None


def _code_fingerprint() -> list[str] | None:
    """Every module the help text may come from; None when some cannot be listed (a zip,
    an import hook), as then a change could go unnoticed."""
    if _library_root("typer") is None:
        return None
    lines: list[str] = []
    for root in (_PACKAGE, *filter(None, map(_library_root, _LIBRARIES))):
        listed = _tree(root)
        if listed is None:
            return None
        lines += listed
    return lines


def _tree(root: str) -> list[str] | None:
    """``path size mtime`` of every module under ``root``."""
    found: list[str] = []
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith((".py", ".pyi")):
                    stat = entry.stat()
                    found.append(f"{entry.path} {stat.st_size} {stat.st_mtime_ns}")
        except OSError:
            return None
    return found


def cache_dir() -> str:
    """Where copies are kept: ``help`` in the user cache directory of ``sendoso``."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "sendoso", "Cache", "help")
    if sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache")
    return os.path.join(base, "sendoso", "help")


def _path_for(key: str) -> str:
    import zlib

    return os.path.join(cache_dir(), f"{zlib.crc32(key.encode('utf-8')):08x}.txt")


def replay(key: str) -> bool:
    """Print the copy kept for ``key``; False (nothing printed) when there is none."""
    try:
        with open(_path_for(key), encoding="utf-8", newline="") as kept:
            if not _private(kept.fileno()):
                return False
            stored_key, separator, text = kept.read().partition("\0")
    except (OSError, UnicodeDecodeError):
        return False
    if not separator or stored_key != key:
        return False
    sys.stdout.write(text)
    sys.stdout.flush()
    return True


def _private(fd: int) -> bool:
    if os.name != "posix":
        return True
    stat = os.fstat(fd)
    return stat.st_uid == os.getuid() and not stat.st_mode & 0o022


class _Tee:
    """A text stream that passes everything on to ``stream`` and remembers it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.written: list[str] = []

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            # Look like the text stream this stands for: click probes with bytes.
            raise TypeError("write() argument must be str")
        self.written.append(text)
        return self._stream.write(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        # encoding, errors, isatty, flush, fileno, ... but not ``buffer``: every byte typer
        # prints must go through write() to be kept.
        if name == "buffer":
            raise AttributeError(name)
        return getattr(self._stream, name)


def run_and_keep(key: str, run: Callable[[], object]) -> None:
    """Run the app for a help request, keeping what it prints when that can be replayed."""
    out, err = _Tee(sys.stdout), _Tee(sys.stderr)
    real_out, real_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    code: object = "raised"  # an exception other than SystemExit: nothing is kept
    try:
        run()
        code = 0
    except SystemExit as exc:
        code = exc.code
        raise
    finally:
        sys.stdout, sys.stderr = real_out, real_err
        text = "".join(out.written)
        if (
            code in (0, None)
            and text
            and not err.written
            and "\x1b" not in text
            and _loaded_from_fingerprinted_typer()
        ):
            _keep(key, text)


def _loaded_from_fingerprinted_typer() -> bool:
    """Whether the typer that ran is the one the key lists (not one an import hook chose)."""
    typer = sys.modules.get("typer")
    where = getattr(typer, "__file__", None)
    return where is not None and os.path.dirname(os.path.abspath(where)) == _library_root("typer")


def _keep(key: str, text: str) -> None:
    directory = cache_dir()
    path = _path_for(key)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        kept_already = os.listdir(directory)
        if len(kept_already) >= _MAX_KEPT:
            # Copies for code or terminals long gone: start afresh (each is rebuilt on use).
            for name in kept_already:
                os.unlink(os.path.join(directory, name))
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8", newline="") as kept:
            kept.write(f"{key}\0{text}")
        os.replace(temporary, path)
    except OSError:
        # A cache that cannot be written only means the next --help is slow again.
        with contextlib.suppress(OSError):
            os.unlink(temporary)
