"""The send journal: every send id the API returned, kept outside the ledger's database.

A send the API confirmed exists on the server whatever happens to the ledger next. The one
send attempt appends it here (one JSON line, ``fsync``'d) *before* it asks the database to
record ``submitted``, so that a database that fails at that moment (a full disk, a server
gone, a process killed between the reply and the commit) loses no send id. Opening the
ledger applies the journal before anything else: a row still ``submitting`` (or given up as
``unknown``) whose key the journal holds becomes ``submitted`` with its send id. And a row
about to be sent whose key the journal already holds (its ledger was lost and the run
planned again under the same id) is recorded from the journal instead of being sent again.

Where it lives: beside a SQLite ledger (``ledger.db`` -> ``ledger.db-sends``, next to
SQLite's own ``-wal`` file); for PostgreSQL, a local file in the user's state directory
named after a digest of the database URL (without its password), so every process of this
user on this host that sends through that database shares it; an in-memory ledger keeps it
in memory. Append-only: lines are never rewritten, and each is applied at most once to a
row that needs it, so replaying it is harmless. Readable by the owner only, like the ledger.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

#: Room kept allocated past the journal's end (about 300 sends), and when to top it up: a
#: disk that fills up (often the very reason the ledger failed) still takes the next lines.
_RESERVE = 64 * 1024
_TOP_UP = 16 * 1024
#: Linux fallocate(2): allocate without changing the file's size.
_FALLOC_FL_KEEP_SIZE = 1

__all__ = ["JournalEntry", "SendJournal", "UnrecordedSend", "journal_path"]


@dataclass(frozen=True)
class JournalEntry:
    """One send the API confirmed: the row it was for, its key, the id the API gave it."""

    run_id: str
    number: int
    send_key: str
    send_id: str
    status: str | None = None


@dataclass(frozen=True)
class UnrecordedSend:
    """A send the API confirmed that the ledger failed to record. ``journalled``: whether
    the send journal holds it (then the next open of the ledger records it; otherwise only
    this report has its id, and a person settles the row with it)."""

    run_id: str
    number: int
    send_id: str
    journalled: bool


def journal_path(url: sa.URL) -> Path | None:
    """Where the journal of the ledger at ``url`` lives; ``None`` for an in-memory one."""
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        return Path(f"{Path(url.database).expanduser()}-sends")
    import platformdirs

    shown = url.render_as_string(hide_password=True)
    digest = hashlib.sha256(shown.encode()).hexdigest()[:24]
    return Path(platformdirs.user_state_dir("sendoso")) / "journals" / f"{digest}.sends"


class SendJournal:
    """The journal at ``path`` (``None``: in memory only). Thread-safe; several processes
    may append to one file (each line is one ``O_APPEND`` write)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._by_key: dict[str, JournalEntry] = {}
        self._read_to = 0
        self._fd: int | None = None
        self._reserved_to = 0

    def record(self, entry: JournalEntry) -> None:
        """Append ``entry`` and wait until it is on disk. Raises ``OSError`` if it cannot
        be written (the caller still has the id, and says so)."""
        # Led by a newline too: a line an earlier writer left cut short (a full disk, a
        # kill mid-write) then stays a line of its own instead of spoiling this one.
        line = ("\n" + json.dumps(asdict(entry), sort_keys=True) + "\n").encode()
        with self._lock:
            self._by_key[entry.send_key] = entry
            if self.path is None:
                return
            if self._fd is None:
                self._fd = self._open()
            os.write(self._fd, line)
            end = os.lseek(self._fd, 0, os.SEEK_END)
            os.fsync(self._fd)
            if end + _TOP_UP > self._reserved_to:
                self._reserve(end)

    def prepare(self) -> None:
        """Create the file and reserve room in it now, while there is room (the ledger
        calls this when it opens); failing that, the first :meth:`record` tries again."""
        if self.path is None:
            return
        with self._lock, contextlib.suppress(OSError):
            if self._fd is None:
                self._fd = self._open()
                self._reserve(os.lseek(self._fd, 0, os.SEEK_END))

    def _reserve(self, end: int) -> None:
        """Allocate room past ``end`` without growing the file (Linux; elsewhere, and on a
        disk already full, nothing happens: appends then need room of their own)."""
        assert self._fd is not None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fallocate = libc.fallocate
        except (OSError, AttributeError):
            return
        fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        if fallocate(self._fd, _FALLOC_FL_KEEP_SIZE, end, _RESERVE) == 0:
            self._reserved_to = end + _RESERVE

    def lookup(self, send_key: str) -> JournalEntry | None:
        """The journalled send of ``send_key``, by this process or any other so far."""
        with self._lock:
            self._read_new()
            return self._by_key.get(send_key)

    def entries(self) -> list[JournalEntry]:
        """Every journalled send, oldest first (a later line for a key wins)."""
        with self._lock:
            self._read_new()
            return list(self._by_key.values())

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _open(self) -> int:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if created:
            # The new file's name must survive a power cut as well as its lines.
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return fd

    def _read_new(self) -> None:
        """Take in the lines appended since the last read (by any process)."""
        if self.path is None:
            return
        try:
            with self.path.open("rb") as journal:
                journal.seek(self._read_to)
                data = journal.read()
        except FileNotFoundError:
            return
        # A line cut short (a process killed mid-write, a full disk) is no send: its
        # writer never went on to record or report it as journalled.
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                entry = JournalEntry(**json.loads(line))
            except (ValueError, TypeError):
                continue
            self._by_key[entry.send_key] = entry
        self._read_to += end
