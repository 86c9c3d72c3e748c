"""Conversations kept on disk: the host's room log and each joiner's transcripts, in SQLite.

How this works
--------------
This is the only module that imports `sqlite3`. Two small databases, each in the data folder:

* `RoomLog` (the host, ``room-log.sqlite3``): every message the room stamped, private ones
  marked with their recipient, plus the tokens of members who may come back. Since schema
  version 2 a row holds the messages one member's read gave the room (numbers ``first`` to
  ``last``, their texts as a JSON list, one sender, one time): a flood's 50 lines cost one
  row, not 50 (SQLite's 1.6–2 µs a row was a third of the host's work in a bulk flood). A
  version 1 log (a row per message) is turned into rows of one message each when it is
  opened; an older Parley refuses a version 2 log and leaves it as it is. A restarted host
  reads its last sequence number, its room *epoch* and the recent log from here, so numbers are
  never reused, newcomers get the history from before the restart and members returning within
  the grace period get exactly what they missed. A log that had to be started afresh (none yet,
  or the old one was lost) gets a new random epoch: joiners key what they keep by host
  identity + epoch + sequence number, so new numbers are never mistaken for old ones.
* `Transcripts` (each joiner, ``transcripts.sqlite3``): what this person saw in each room,
  keyed by (host identity, epoch, seq), so a rejoin shows the earlier lines once.

Rules kept: one connection per thread that uses it (the worker's loop thread opens and uses
both), ``PRAGMA journal_mode=WAL``, one transaction per ``with conn:``, parameters always bound,
the schema version in ``PRAGMA user_version`` with small numbered migrations. Retention is
bounded by a message count and an age in days.

A database that cannot be opened or written (damaged, locked by another process, a read-only
folder) never stops the app: `open_*` returns None with a sentence to show once, and a write that
fails turns the store off (`problem` says why) so the caller can say so once and carry on
without history.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.messages import Chat
from app.paths import KEEP_DAYS, KEEP_MESSAGES

log = logging.getLogger(__name__)

ROOM_LOG = "room-log.sqlite3"
TRANSCRIPTS = "transcripts.sqlite3"
AGE_PRUNE = 3600.0  # seconds between two deletions of messages past keep_days (a scan each)
BUSY_WAIT = 1.0  # seconds to wait for a lock held by another process before giving up

_ROOM_MIGRATIONS = (
    # 1: the log, the room's own facts (epoch, last sequence number), members who may return.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,
        sender TEXT NOT NULL,
        text TEXT NOT NULL,
        time REAL NOT NULL,
        recipient TEXT,
        token TEXT,
        msg_id TEXT
    );
    CREATE INDEX messages_time ON messages (time);
    CREATE TABLE members (token TEXT PRIMARY KEY, name TEXT NOT NULL);
    """,
    # 2: a row per read (or per message said alone): `first`..`last` are its numbers, every
    # one of them its own (no gaps), `texts` their texts as a JSON list, in order; one sender,
    # time, recipient and token for all; `msg_id` only on a row of one message. No index on
    # time (age is pruned by a scan at most hourly). Every version 1 row becomes a row of one.
    """
    CREATE TABLE chats (
        first INTEGER PRIMARY KEY,
        last INTEGER NOT NULL,
        sender TEXT NOT NULL,
        texts TEXT NOT NULL,
        time REAL NOT NULL,
        recipient TEXT,
        token TEXT,
        msg_id TEXT
    );
    """,
)


def _rows_of_one(conn: sqlite3.Connection) -> None:
    """Migration 2's data: each version 1 message as a row of one (done in Python, so it
    needs no JSON functions in the SQLite the app happens to run on)."""
    old = conn.execute(
        "SELECT seq, sender, text, time, recipient, token, msg_id FROM messages ORDER BY seq"
    )
    conn.executemany(
        "INSERT INTO chats VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (seq, seq, sender, _texts_json([text]), stamp, to, token, msg_id)
            for seq, sender, text, stamp, to, token, msg_id in old
        ),
    )
    conn.execute("DROP TABLE messages")


# What runs after a migration's script, in the same transaction (by the version it makes).
_ROOM_DATA: dict[int, Callable[[sqlite3.Connection], None]] = {2: _rows_of_one}


def _texts_json(texts: list[str]) -> str:
    """A row's texts as stored: a JSON list (not ASCII-escaped: the text as it is).

    Texts that JSON keeps as they are (no quote, no backslash, nothing unprintable, which
    covers every control character it escapes) are joined by hand, byte for byte what
    `json.dumps` gives, a thirtieth of its time (it was 0.16 µs a message in a flood)."""
    joined = '","'.join(texts)
    if joined.count('"') == 2 * len(texts) - 2 and "\\" not in joined and joined.isprintable():
        return f'["{joined}"]'
    return json.dumps(texts, ensure_ascii=False, separators=(",", ":"))


_TRANSCRIPT_MIGRATIONS = (
    # 1: one row per line seen, keyed so that the same line is kept once.
    """
    CREATE TABLE lines (
        host TEXT NOT NULL,
        epoch TEXT NOT NULL,
        seq INTEGER NOT NULL,
        sender TEXT NOT NULL,
        text TEXT NOT NULL,
        time REAL NOT NULL,
        private TEXT,
        mine INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (host, epoch, seq)
    );
    CREATE INDEX lines_time ON lines (host, time);
    """,
)


def new_epoch() -> str:
    """A room epoch: random, so two fresh logs never share one."""
    return secrets.token_hex(8)


def _connect(
    path: Path,
    migrations: tuple[str, ...],
    data: dict[int, Callable[[sqlite3.Connection], None]] | None = None,
) -> sqlite3.Connection:
    """Open (creating if need be) and bring the schema up to date, each migration (its script,
    then `data[number]` if any) in one transaction with its version; raises sqlite3.Error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_WAIT)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; no fsync per commit
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(migrations):
            raise sqlite3.DatabaseError(f"made by a newer Parley (schema {version})")
        for number, script in enumerate(migrations[version:], start=version + 1):
            with conn:
                conn.execute("BEGIN")  # the script's DDL too: all of it, or none of it
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if data is not None and number in data:
                    data[number](conn)
                conn.execute(f"PRAGMA user_version = {number:d}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the whole header
    except BaseException:
        conn.close()
        raise
    return conn


def _problem(what: str, path: Path, exc: BaseException) -> str:
    return f"{what} ({path}) cannot be used: {exc}. Carrying on without it."


@dataclass(frozen=True)
class Logged:
    """One message of the room log: the chat as stamped (with the sender's id, for its own
    acknowledgement) and the token of the member who sent it."""

    chat: Chat
    token: str | None


class _Database:
    """What the host's log and a joiner's transcripts share: one connection, writes in one
    transaction each, and a failure that switches the database off and is said once."""

    WHAT = "The database"  # how the one sentence about a failure names it
    _conn: sqlite3.Connection | None
    path: Path
    problem: str | None
    _pending: Sequence[object]  # what `flush` will write
    on_problem: Callable[[str], None] | None

    def flush(self) -> None:
        raise NotImplementedError

    def _write(self, action: Callable[[sqlite3.Connection], object]) -> bool:
        """Run `action` in one transaction; on failure switch the database off, say why once."""
        if self._conn is None:
            return False
        try:
            with self._conn:
                action(self._conn)
        except sqlite3.Error as exc:
            self.problem = _problem(self.WHAT, self.path, exc)
            log.warning("%s", self.problem)
            self.close()
            if self.on_problem is not None:
                self.on_problem(self.problem)
            return False
        return True

    def close(self) -> None:
        if self._conn is not None and self._pending:
            self.flush()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


# A room log row before it is written: (first, last, sender, texts, time, recipient, token, id).
_Row = tuple[int, int, str, list[str], float, "str | None", "str | None", "str | None"]


class RoomLog(_Database):
    """The host's room log. Use from one thread (the worker's loop); `close()` when done.

    A row is a run of messages with consecutive numbers that one member's read gave the room
    (`record_texts`), or one message said alone (`record`): see the schema's version 2. What
    reads the log sees messages, never rows: `recent` expands them, `count` counts messages,
    and pruning by count cuts into the oldest row it keeps part of, so exactly the newest
    `keep_messages` stay (age needs no cut: a row's messages share one time)."""

    WHAT = "The room's history"

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        keep_messages: int = KEEP_MESSAGES,
        keep_days: float = KEEP_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self.keep_messages = keep_messages
        self.keep_days = keep_days
        self._clock = clock
        self.problem: str | None = None  # set once a write failed; the log is off from then
        self.on_problem: Callable[[str], None] | None = None  # told that once
        # With `on_pending` (the host: `Host._commit_soon`), records made in one loop
        # iteration (or a gathered flush's turns) go in one transaction, committed before
        # the bytes that carry them are sent, so a number that reached anyone is on disk.
        self.on_pending: Callable[[], object] | None = None
        # Rows to write: (first, last, sender, texts, time, recipient, token, msg_id).
        self._pending: list[_Row] = []
        self._pending_count = 0  # messages in them
        self._since_prune = 0  # messages committed since the last pruning by count
        self._aged = 0.0  # when messages past keep_days were last deleted
        with conn:
            epoch = self._meta("epoch")
            if epoch is None:
                epoch = new_epoch()
                conn.execute("INSERT INTO meta VALUES ('epoch', ?)", (epoch,))
        self.epoch = epoch
        top = conn.execute("SELECT max(last) FROM chats").fetchone()[0] or 0
        self.last_seq = max(int(self._meta("last_seq") or 0), int(top))
        self.prune()

    @property
    def working(self) -> bool:
        return self._conn is not None

    def _meta(self, key: str) -> str | None:
        assert self._conn is not None
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # --- what the room asks ----------------------------------------------------------------

    def recent(self, limit: int) -> list[Logged]:
        """The newest `limit` messages, oldest first (private ones included: the room decides
        who may see them)."""
        if self._conn is None or limit <= 0:
            return []
        self.flush()
        rows: list[tuple[int, str, str, float, str | None, str | None, str | None]] = []
        found = 0
        try:  # the newest rows, read until they hold `limit` messages
            for first, last, sender, texts, stamp, to, token, msg_id in self._conn.execute(
                "SELECT first, last, sender, texts, time, recipient, token, msg_id FROM chats "
                "ORDER BY first DESC"
            ):
                rows.append((first, sender, texts, stamp, to, token, msg_id))
                found += last - first + 1
                if found >= limit:
                    break
        except sqlite3.Error as exc:
            self.problem = _problem(self.WHAT, self.path, exc)
            self.close()
            return []
        out: list[Logged] = []
        for first, sender, texts, stamp, to, token, msg_id in reversed(rows):
            said = json.loads(texts)
            one = msg_id if len(said) == 1 else None
            out += [
                Logged(Chat(seq, sender, text, stamp, one, to=to), token)
                for seq, text in enumerate(said, first)
            ]
        return out[-limit:]

    def members(self) -> list[tuple[str, str]]:
        """(token, name) of members who were in the room when it last stopped."""
        if self._conn is None:
            return []
        try:
            rows = self._conn.execute("SELECT token, name FROM members").fetchall()
        except sqlite3.Error:
            return []
        return [(str(token), str(name)) for token, name in rows]

    # --- what the room tells ---------------------------------------------------------------

    def record(self, chat: Chat, token: str | None) -> None:
        """Keep a message the room just stamped (`chat.id` is the sender's own id, if any)."""
        row = (chat.seq, chat.seq, chat.sender, [chat.text], chat.time, chat.to, token, chat.id)
        self._add(row, 1)

    def record_texts(
        self, first: int, sender: str, texts: list[str], stamp: float, token: str | None
    ) -> None:
        """Keep public messages numbered `first`, `first + 1`, ... that `sender` (`token`'s
        member) said in one read, stamped at `stamp`, without ids: one row for them all."""
        if texts:
            last = first + len(texts) - 1
            self._add((first, last, sender, texts, stamp, None, token, None), len(texts))

    def record_many(self, chats: list[Chat], token: str | None) -> None:
        """`record` each of `chats` (in order, all sent by `token`'s member): a run of them
        that `record_texts` can take (consecutive numbers, one sender and time, public, no
        id) is one row."""
        run: list[Chat] = []
        for chat in chats:
            if chat.id is not None or chat.to is not None:
                self._record_run(run, token)
                run = []
                self.record(chat, token)
                continue
            if run and (
                chat.seq != run[-1].seq + 1
                or chat.sender != run[0].sender
                or chat.time != run[0].time
            ):
                self._record_run(run, token)
                run = []
            run.append(chat)
        self._record_run(run, token)

    def _record_run(self, run: list[Chat], token: str | None) -> None:
        if run:
            self.record_texts(run[0].seq, run[0].sender, [c.text for c in run], run[0].time, token)

    def _add(self, row: _Row, count: int) -> None:
        """Queue `row` (of `count` messages) for the next `flush`."""
        if self._conn is None:
            return
        first_pending = not self._pending
        self._pending.append(row)
        self._pending_count += count
        self.last_seq = max(row[1], self.last_seq)
        if self.on_pending is None:
            self.flush()
        elif first_pending:
            self.on_pending()

    @property
    def pending(self) -> bool:
        """`record` was given messages that are not committed yet."""
        return bool(self._pending)

    def flush(self) -> None:
        """Write what `record` was given, in one transaction."""
        rows, self._pending = self._pending, []
        if not rows:
            return
        count, self._pending_count = self._pending_count, 0
        prune = self._since_prune + count >= 200
        stored = [
            (first, last, sender, _texts_json(texts), stamp, to, token, msg_id)
            for first, last, sender, texts, stamp, to, token, msg_id in rows
        ]

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR REPLACE INTO chats VALUES (?, ?, ?, ?, ?, ?, ?, ?)", stored)
            # The last number is the newest row's until rows are deleted: `meta` is written
            # with each deletion (`_prune`, `clear`), not with every commit (a second page
            # per commit: a paced room's commit took 27 µs with it, 16 without).
            if prune:  # in the same transaction: one commit, not two
                self._prune(conn, by_age=False)

        if self._write(insert):
            self._since_prune = 0 if prune else self._since_prune + count

    def member_in(self, token: str, name: str) -> None:
        self._write(
            lambda c: c.execute("INSERT OR REPLACE INTO members VALUES (?, ?)", (token, name))
        )

    def member_out(self, token: str) -> None:
        self._write(lambda c: c.execute("DELETE FROM members WHERE token = ?", (token,)))

    def members_out(self) -> None:
        """The room ended: nobody is coming back to it."""
        self._write(lambda c: c.execute("DELETE FROM members"))

    def clear(self) -> None:
        """Forget every message (the sequence numbering goes on: numbers are never reused)."""
        self.flush()

        def delete(conn: sqlite3.Connection) -> None:
            self._keep_last_seq(conn)
            conn.execute("DELETE FROM chats")

        self._write(delete)

    def _keep_last_seq(self, conn: sqlite3.Connection) -> None:
        """Write the last number down before rows are deleted (it may be the newest row's)."""
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)", (str(self.last_seq),))

    def prune(self) -> None:
        """Keep at most `keep_messages` messages, none older than `keep_days`."""
        self._since_prune = 0
        self._write(self._prune)

    def _prune(self, conn: sqlite3.Connection, by_age: bool = True) -> None:
        self._keep_last_seq(conn)
        now = self._clock()
        if by_age or now - self._aged >= AGE_PRUNE:
            self._aged = now
            conn.execute("DELETE FROM chats WHERE time < ?", (now - self.keep_days * 86400,))
        oldest = self.last_seq - self.keep_messages  # the newest number not to keep
        conn.execute("DELETE FROM chats WHERE first <= ? AND last <= ?", (oldest, oldest))
        # At most one row is left holding it: keep that row's newer messages only.
        cut = conn.execute("SELECT first, texts FROM chats WHERE first <= ?", (oldest,)).fetchone()
        if cut is not None:
            first, texts = cut
            kept = json.loads(texts)[oldest + 1 - first :]
            conn.execute(
                "UPDATE chats SET first = ?, texts = ?, msg_id = NULL WHERE first = ?",
                (oldest + 1, _texts_json(kept), first),
            )

    def count(self) -> int:
        """Messages kept (not rows)."""
        if self._conn is None:
            return 0
        self.flush()
        row = self._conn.execute("SELECT coalesce(sum(last - first + 1), 0) FROM chats").fetchone()
        return int(row[0])


def open_room_log(
    folder: Path,
    *,
    keep_messages: int = KEEP_MESSAGES,
    keep_days: float = KEEP_DAYS,
    clock: Callable[[], float] = time.time,
) -> tuple[RoomLog | None, str | None]:
    """The room log in `folder`, or (None, why not) if it cannot be used."""
    path = folder / ROOM_LOG
    try:
        conn = _connect(path, _ROOM_MIGRATIONS, _ROOM_DATA)
        room_log = RoomLog(
            conn, path, keep_messages=keep_messages, keep_days=keep_days, clock=clock
        )
        if not room_log.working:  # its first write (the pruning) failed: locked, read-only
            return None, room_log.problem
        return room_log, None
    except (sqlite3.Error, OSError) as exc:
        problem = _problem(RoomLog.WHAT, path, exc)
        log.warning("%s", problem)
        return None, problem


# --- joiners --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """A line of a kept transcript."""

    epoch: str
    seq: int
    sender: str
    text: str
    time: float
    private: str | None = None  # the other person of a private message
    mine: bool = False


class Transcripts(_Database):
    """One person's transcripts of the rooms they joined. Use from one thread."""

    WHAT = "Your kept transcripts"

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        keep_messages: int = KEEP_MESSAGES,
        keep_days: float = KEEP_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self.keep_messages = keep_messages
        self.keep_days = keep_days
        self._clock = clock
        self.problem: str | None = None
        self.on_problem: Callable[[str], None] | None = None
        self.on_pending: Callable[[], object] | None = None
        self._pending: list[tuple[object, ...]] = []

    def add(self, host: str, lines: Iterable[Line]) -> None:
        """Keep lines (a line already kept stays as it is). With `on_pending` set, what is
        added in one loop iteration is written together by `flush`."""
        rows = [
            (host, x.epoch, x.seq, x.sender, x.text, x.time, x.private, int(x.mine)) for x in lines
        ]
        if not rows or self._conn is None:
            return
        first = not self._pending
        self._pending += rows
        if self.on_pending is None:
            self.flush()
        elif first:
            self.on_pending()

    def flush(self) -> None:
        rows, self._pending = self._pending, []
        if rows:
            self._write(
                lambda c: c.executemany(
                    "INSERT OR IGNORE INTO lines VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
            )

    def recent(self, host: str, limit: int = 200) -> list[Line]:
        """The newest `limit` kept lines of the room at `host`, oldest first."""
        if self._conn is None:
            return []
        oldest = self._clock() - self.keep_days * 86400
        try:
            rows = self._conn.execute(
                "SELECT epoch, seq, sender, text, time, private, mine FROM lines "
                "WHERE host = ? AND time >= ? ORDER BY time DESC, seq DESC LIMIT ?",
                (host, oldest, min(limit, self.keep_messages)),
            ).fetchall()
        except sqlite3.Error as exc:
            self.problem = _problem(self.WHAT, self.path, exc)
            self.close()
            return []
        return [
            Line(epoch, seq, sender, text, stamp, private, bool(mine))
            for epoch, seq, sender, text, stamp, private, mine in reversed(rows)
        ]

    def clear(self, host: str) -> None:
        self.flush()
        self._write(lambda c: c.execute("DELETE FROM lines WHERE host = ?", (host,)))

    def prune(self, host: str) -> None:
        """Keep at most `keep_messages` lines of this room, none older than `keep_days`."""
        oldest = self._clock() - self.keep_days * 86400

        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM lines WHERE time < ?", (oldest,))
            conn.execute(
                "DELETE FROM lines WHERE host = ? AND rowid NOT IN (SELECT rowid FROM lines "
                "WHERE host = ? ORDER BY time DESC, seq DESC LIMIT ?)",
                (host, host, self.keep_messages),
            )

        self._write(delete)


def open_transcripts(
    folder: Path, *, keep_messages: int = KEEP_MESSAGES, keep_days: float = KEEP_DAYS
) -> tuple[Transcripts | None, str | None]:
    path = folder / TRANSCRIPTS
    try:
        conn = _connect(path, _TRANSCRIPT_MIGRATIONS)
        with conn:  # a first write now: a locked or read-only file is found here, not later
            conn.execute("DELETE FROM lines WHERE time < ?", (time.time() - keep_days * 86400,))
        return Transcripts(conn, path, keep_messages=keep_messages, keep_days=keep_days), None
    except (sqlite3.Error, OSError) as exc:
        problem = _problem(Transcripts.WHAT, path, exc)
        log.warning("%s", problem)
        return None, problem
