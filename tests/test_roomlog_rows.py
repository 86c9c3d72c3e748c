"""The room log's schema version 2 (a row per read), in a real SQLite file: a version 1 log is
migrated and keeps every message, an older Parley refuses a version 2 log and leaves it as it
is, and everything that reads the log sees messages, never rows: history, resumes from inside
a row, retention by count and by age, clearing, tokens and the sender's ids."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import store
from app.messages import Chat, Replay
from app.room import Room
from app.store import ROOM_LOG, open_room_log

# The version 1 schema exactly as Parley shipped it (and what it wrote for a message).
V1_SCHEMA = """
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
"""
V1_INSERT = "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)"


def _v1_log(path: Path, rows: list[tuple[object, ...]], last_seq: int) -> None:
    """A room log as a version 1 Parley left it on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(V1_SCHEMA)
        with conn:
            conn.execute("PRAGMA user_version = 1")
            conn.execute("INSERT INTO meta VALUES ('epoch', 'v1epoch')")
            conn.execute("INSERT INTO meta VALUES ('last_seq', ?)", (str(last_seq),))
            conn.executemany(V1_INSERT, rows)
            conn.execute("INSERT INTO members VALUES ('tok-ann', 'Ann')")
    finally:
        conn.close()


def test_a_version_1_log_is_migrated_on_open_and_keeps_every_message(tmp_path: Path) -> None:
    now = time.time()
    rows: list[tuple[object, ...]] = [
        (seq, "Ann", f"line {seq}", now - 100 + seq, None, "tok-ann", None) for seq in range(1, 41)
    ]
    rows[4] = (5, "Ann", "with an id", now - 95, None, "tok-ann", "m5")
    rows[9] = (10, "Bob", "psst, Ann", now - 90, "Ann", "tok-bob", None)
    rows[19] = (20, "Bob", "two\nlines, ünïcode 👋", now - 80, None, None, None)
    _v1_log(tmp_path / ROOM_LOG, rows, last_seq=44)  # 41-44 were cleared by that Parley
    log, problem = open_room_log(tmp_path)
    assert problem is None
    assert log is not None
    assert (log.epoch, log.last_seq, log.count()) == ("v1epoch", 44, 40)
    kept = log.recent(100)
    assert [
        (x.chat.seq, x.chat.sender, x.chat.text, x.chat.time, x.chat.to, x.chat.id, x.token)
        for x in kept
    ] == [(seq, s, text, t, to, mid, tok) for seq, s, text, t, to, tok, mid in rows]
    assert log.members() == [("tok-ann", "Ann")]
    log.record_texts(45, "Ann", ["after", "the move"], now, "tok-ann")
    log.close()
    with sqlite3.connect(tmp_path / ROOM_LOG) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "messages" not in tables  # moved, not kept twice
        assert conn.execute("SELECT count(*) FROM chats").fetchone()[0] == 41
    again, _ = open_room_log(tmp_path)
    assert again is not None
    assert [x.chat.seq for x in again.recent(3)] == [40, 45, 46]
    again.close()


def test_an_older_parley_refuses_a_version_2_log_and_leaves_it_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, _ = open_room_log(tmp_path)
    assert log is not None
    log.record_texts(1, "Ann", ["one", "two", "three"], time.time(), "tok-ann")
    log.close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # An older Parley knows the first migration only (its open path is this one).
    monkeypatch.setattr(store, "_ROOM_MIGRATIONS", store._ROOM_MIGRATIONS[:1])
    old, problem = open_room_log(tmp_path)
    assert old is None
    assert problem is not None
    assert "made by a newer Parley (schema 2). Carrying on without it." in problem
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.undo()
    new, _ = open_room_log(tmp_path)
    assert new is not None
    assert [x.chat.text for x in new.recent(10)] == ["one", "two", "three"]
    new.close()


def test_a_read_is_one_row_and_reads_back_as_its_messages(tmp_path: Path) -> None:
    now = time.time()
    log, _ = open_room_log(tmp_path)
    assert log is not None
    log.on_pending = lambda: None  # commit by hand, as the host does
    texts = [f"bulk {n}" for n in range(1, 51)]
    log.record_texts(1, "Ann", texts, now, "tok-ann")
    log.record(Chat(51, "Bob", "alone", now + 1, "b1"), "tok-bob")
    log.record_many([Chat(seq, "Cy", f"c{seq}", now + 2) for seq in (52, 53, 54)], None)
    assert log.pending
    log.flush()
    with sqlite3.connect(tmp_path / ROOM_LOG) as conn:
        rows = conn.execute("SELECT first, last, sender, texts, msg_id FROM chats").fetchall()
    assert [(f, last, s, json.loads(t), m) for f, last, s, t, m in rows] == [
        (1, 50, "Ann", texts, None),
        (51, 51, "Bob", ["alone"], "b1"),
        (52, 54, "Cy", ["c52", "c53", "c54"], None),
    ]
    assert log.count() == 54
    # The newest 30: from inside the first row.
    recent = log.recent(30)
    assert [x.chat.seq for x in recent] == list(range(25, 55))
    assert [x.chat.text for x in recent[:3]] == ["bulk 25", "bulk 26", "bulk 27"]
    assert {x.token for x in recent[:26]} == {"tok-ann"}
    assert (recent[26].chat.id, recent[26].token) == ("b1", "tok-bob")
    log.close()


def test_retention_by_count_cuts_into_a_row_and_loses_nothing_within_the_limit(
    tmp_path: Path,
) -> None:
    now = 10 * 86400.0
    log, _ = open_room_log(tmp_path, keep_messages=70, clock=lambda: now)
    assert log is not None
    log.on_pending = lambda: None
    seq = 0
    for _read in range(6):  # six reads of 50: 300 messages
        log.record_texts(seq + 1, "Ann", [f"m{n}" for n in range(seq + 1, seq + 51)], now, None)
        seq += 50
        log.flush()
        log.prune()
        assert log.count() == min(seq, 70)
        assert [x.chat.seq for x in log.recent(1000)] == list(range(max(1, seq - 69), seq + 1))
    assert [x.chat.text for x in log.recent(2)] == ["m299", "m300"]
    log.close()
    again, _ = open_room_log(tmp_path, keep_messages=70, clock=lambda: now)
    assert again is not None
    assert (again.count(), again.last_seq) == (70, 300)
    assert again.recent(1000)[0].chat.text == "m231"
    again.close()


def test_retention_by_age_takes_whole_rows(tmp_path: Path) -> None:
    now = [10 * 86400.0]
    log, _ = open_room_log(tmp_path, keep_days=1, clock=lambda: now[0])
    assert log is not None
    log.record_texts(1, "Ann", ["old 1", "old 2", "old 3"], now[0] - 2 * 86400, None)
    log.record_texts(4, "Bob", ["new 4", "new 5"], now[0] - 60, None)
    log.prune()
    assert [x.chat.text for x in log.recent(10)] == ["new 4", "new 5"]
    assert log.count() == 2
    log.clear()
    assert (log.count(), log.recent(10)) == (0, [])
    log.close()
    again, _ = open_room_log(tmp_path, keep_days=1, clock=lambda: now[0])
    assert again is not None
    assert again.last_seq == 5  # numbers are never reused
    again.close()


def test_a_restarted_room_resumes_a_member_from_inside_a_row(tmp_path: Path) -> None:
    now = time.time()
    log, _ = open_room_log(tmp_path)
    assert log is not None
    room = Room(journal=log, new_token=lambda: "tok-ann", clock=lambda: now)
    room.join(1, "Ann", "app")
    room.join(2, "Bob", "text", encrypted=False)
    room.say_plain(2, [f"flood {n}" for n in range(1, 51)])  # one read: seqs 1..50, one row
    room.say(1, "mine", "a1")  # Ann's own, with its id: seq 51
    log.close()  # the host stops; Ann last saw number 20
    again, _ = open_room_log(tmp_path)
    assert again is not None
    room2 = Room(journal=again, clock=lambda: now)
    kept = again.recent(1000)
    room2.restore(again.last_seq, [(x.chat, x.token) for x in kept], again.members())
    sends = room2.join(7, "Ann", "app", token="tok-ann", last_seq=20)
    replay = sends[1].message
    assert isinstance(replay, Replay)
    assert (replay.after, replay.until) == (20, 51)
    chats, after = room2.replay_page(7, replay, replay.after, 100)
    assert after == 51
    assert [c.seq for c in chats] == list(range(21, 52))
    assert chats[0].text == "flood 21"
    assert (chats[-1].text, chats[-1].id) == ("mine", "a1")  # acknowledged as its own
    assert room2.last_seq == 51
    again.close()


@given(st.lists(st.text(), max_size=8))
def test_a_rows_texts_are_stored_as_json_dumps_would_write_them(texts: list[str]) -> None:
    stored = store._texts_json(texts)
    assert stored == json.dumps(texts, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(stored) == texts


@pytest.mark.parametrize(
    "texts", [["a"], ["a", "b"], ['say "hi"'], ["back\\slash"], ["tab\there"], ["", ""], ['"', ""]]
)
def test_the_hand_joined_json_meets_the_edges(texts: list[str]) -> None:
    assert json.loads(store._texts_json(texts)) == texts
