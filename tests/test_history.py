"""The host's room log in SQLite: numbering, history and resumes survive a restart; retention is
bounded; a damaged or locked database is survived; --no-history writes nothing."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

from app import events as ev
from app.messages import Chat
from app.store import ROOM_LOG, open_room_log
from tests.helpers import Proc, cli_host

# --- the store alone ---------------------------------------------------------------------------


def test_the_log_keeps_numbering_epoch_and_members_across_opens(tmp_path: Path) -> None:
    log, problem = open_room_log(tmp_path)
    assert log is not None
    assert problem is None
    epoch = log.epoch
    now = time.time()
    log.record(Chat(1, "Ann", "hello", now, "m1"), "tok-ann")
    log.record(Chat(2, "Bob", "psst", now, to="Ann"), "tok-bob")
    log.member_in("tok-ann", "Ann")
    log.close()
    again, _ = open_room_log(tmp_path)
    assert again is not None
    assert (again.epoch, again.last_seq) == (epoch, 2)
    kept = again.recent(10)
    assert [(x.chat.seq, x.chat.text, x.chat.to, x.chat.id, x.token) for x in kept] == [
        (1, "hello", None, "m1", "tok-ann"),
        (2, "psst", "Ann", None, "tok-bob"),
    ]
    assert again.members() == [("tok-ann", "Ann")]
    again.clear()
    assert again.count() == 0
    again.close()
    third, _ = open_room_log(tmp_path)
    assert third is not None
    assert third.last_seq == 2
    with sqlite3.connect(tmp_path / ROOM_LOG) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2  # a row per read
    third.close()


def test_retention_is_bounded_by_count_and_by_age(tmp_path: Path) -> None:
    now = 10 * 86400.0
    log, _ = open_room_log(tmp_path, keep_messages=3, keep_days=2, clock=lambda: now)
    assert log is not None
    log.record(Chat(1, "Ann", "ancient", now - 3 * 86400), None)
    for seq in range(2, 8):
        log.record(Chat(seq, "Ann", f"m{seq}", now - 60 + seq), None)
    log.prune()
    assert [x.chat.seq for x in log.recent(100)] == [5, 6, 7]
    log.close()


def test_a_busy_log_prunes_as_it_commits(tmp_path: Path) -> None:
    # Every 200 messages the log prunes itself in the same transaction as the commit: a
    # room that talks on never holds more than keep_messages plus one commit's worth.
    now = 10 * 86400.0
    log, _ = open_room_log(tmp_path, keep_messages=50, clock=lambda: now)
    assert log is not None
    log.on_pending = lambda: None  # commit by hand, a turn's worth at a time (as the host)
    seq = 0
    for _turn in range(20):
        for _ in range(30):
            seq += 1
            log.record(Chat(seq, "Ann", f"m{seq}", now), None)
        log.flush()
        assert log.count() <= 50 + 200 + 30
    assert log.count() < 600
    kept = [x.chat.seq for x in log.recent(1000)]
    assert kept == list(range(seq - len(kept) + 1, seq + 1))  # the newest, in order
    assert log.last_seq == 600
    log.close()


def test_a_busy_log_forgets_old_messages_within_the_hour_without_an_index(tmp_path: Path) -> None:
    # Age is pruned at open and then at most once an hour (a scan: the time index is gone,
    # since it cost every message a second b-tree insert); count as ever every 200.
    now = [10 * 86400.0]
    log, _ = open_room_log(tmp_path, keep_messages=5000, keep_days=1, clock=lambda: now[0])
    assert log is not None
    log.on_pending = lambda: None
    for seq in range(1, 201):
        log.record(Chat(seq, "Ann", f"old {seq}", now[0]), None)
    log.flush()
    now[0] += 2 * 86400  # two days on: the first 200 are past keep_days
    seq = 200
    for _turn in range(3):
        for _ in range(100):
            seq += 1
            log.record(Chat(seq, "Ann", f"new {seq}", now[0]), None)
        log.flush()
    assert log.recent(1000)[0].chat.text == "new 201"
    assert log.count() == 300
    conn = sqlite3.connect(tmp_path / ROOM_LOG)
    try:
        indexes = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        assert ("messages_time",) not in indexes
        # Version 2 (a row per read); an older Parley refuses it and leaves it alone (below).
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        conn.close()
    log.close()


def test_a_corrupt_or_locked_log_is_refused_with_one_sentence(tmp_path: Path) -> None:
    (tmp_path / ROOM_LOG).write_bytes(b"this is not a database" * 100)
    log, problem = open_room_log(tmp_path)
    assert log is None
    assert problem is not None
    assert "Carrying on without it" in problem
    other = tmp_path / "other"
    first, _ = open_room_log(other)
    assert first is not None
    holder = sqlite3.connect(other / ROOM_LOG, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holding the database
    try:
        locked, why = open_room_log(other)
        assert locked is None
        assert why is not None
        assert "locked" in why
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        first.close()


# --- a real host -------------------------------------------------------------------------------


def test_a_restarted_host_gives_newcomers_the_earlier_history_and_numbers_on(
    start_host, join, tmp_path: Path
) -> None:
    host, hrec, port = start_host(data="kept")
    ann, arec = join(port, "Ann")
    ann.send("before the restart")
    ann.send('/msg Hal "a secret for Hal"')
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "before the restart")
    last = hrec.wait_for(ev.MessageReceived, lambda e: "secret" in e.text).seq
    epoch_before = arec.wait_for(ev.Connected).epoch
    host.stop()
    ann.stop()
    host2, hrec2, port2 = start_host(data="kept")
    carl, crec = join(port2, "Carl", data_dir=tmp_path / "carl")  # a newcomer: its own folder
    early = crec.wait_for(ev.MessageReceived, lambda e: e.text == "before the restart")
    assert early.earlier
    assert crec.wait_for(ev.Connected).epoch == epoch_before
    carl.send("after")
    new = hrec2.wait_for(ev.MessageReceived, lambda e: e.text == "after")
    assert new.seq is not None
    assert last is not None
    assert new.seq > last
    # Private messages are never given to newcomers.
    assert not [e for e in crec.of(ev.MessageReceived) if "secret" in e.text]


def test_no_history_keeps_nothing_on_disk(start_host, join, tmp_path: Path) -> None:
    host, hrec, port = start_host(data="bare", keep_history=False)
    ann, arec = join(port, "Ann")
    ann.send("gone with the wind")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "gone with the wind")
    assert arec.wait_for(ev.Connected).epoch  # a fresh epoch all the same
    host.stop()
    assert not list((tmp_path / "bare").glob("*.sqlite3*"))
    host2, hrec2, port2 = start_host(data="bare", keep_history=False)
    bob, brec = join(port2, "Bob")
    bob.send("marker")
    brec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    assert "gone with the wind" not in brec.texts()


def test_a_corrupt_database_is_survived_once_and_the_room_runs(start_host, join, tmp_path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / ROOM_LOG).write_bytes(b"\x00garbage" * 512)
    host, hrec, port = start_host(data="broken")
    said = hrec.wait_for(ev.ErrorShown, lambda e: "history" in e.text)
    assert "Carrying on without it" in said.text
    ann, arec = join(port, "Ann")
    ann.send("still chatting")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "still chatting")
    assert len([e for e in hrec.of(ev.ErrorShown) if "history" in e.text]) == 1
    assert (folder / ROOM_LOG).read_bytes().startswith(b"\x00garbage")  # left for the person


def test_a_host_killed_resumes_members_with_exactly_what_they_missed(join, tmp_path) -> None:
    host = cli_host(0)
    port = int(host.expect(r"on port (\d+)").group(1))
    try:
        ann, arec = join(port, "Ann", reconnect_initial=0.05)
        bob, brec = join(port, "Bob", reconnect_initial=1.5, reconnect_max=1.5)
        ann.send("one")
        brec.wait_for(ev.MessageReceived, lambda e: e.text == "one")
        host.p.send_signal(signal.SIGKILL)
        host.wait()
        host.kill()  # closes its pipes
        host = cli_host(port)
        arec.wait_for(ev.Connected, lambda e: e.resumed)
        ann.send("two, while Bob is still away")
        host.expect("Ann: two, while Bob is still away")
        back = brec.wait_for(ev.Connected, lambda e: e.resumed)
        assert back.name == "Bob"
        missed = brec.wait_for(ev.MessageReceived, lambda e: e.text.startswith("two"))
        newcomer, nrec = join(port, "Nell", data_dir=tmp_path / "nell")
        nrec.wait_for(ev.MessageReceived, lambda e: e.text.startswith("two") and e.earlier)
        earlier = [e.text for e in nrec.of(ev.MessageReceived) if e.earlier]
        assert earlier[-2:] == ["one", "two, while Bob is still away"]
        ann.send("three")
        brec.wait_for(ev.MessageReceived, lambda e: e.text == "three")
        assert [e.text for e in brec.of(ev.MessageReceived)] == ["one", missed.text, "three"]
        seqs = [e.seq for e in brec.of(ev.MessageReceived)]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == 3
    finally:
        host.kill()


# --- joiners' transcripts ----------------------------------------------------------------------


def test_a_rejoining_terminal_shows_its_earlier_transcript_once(
    start_host, join, tmp_path: Path
) -> None:
    host, hrec, port = start_host(history=2)  # newcomers get only the last two from the host
    bob, brec = join(port, "Bob", data_dir=tmp_path / "bob-data")  # Bob's own transcripts
    ann = Proc("join", f"127.0.0.1:{port}", "--name", "Ann")
    try:
        ann.expect("You are Ann")
        for n in range(1, 5):
            bob.send(f"line {n}")
            ann.expect(f"^Bob: line {n}$")
        bob.send("/msg Ann a private word")
        ann.expect("a private word")
        ann.say("bye")
        assert ann.wait() == 0
    finally:
        ann.kill()
    again = Proc("join", f"127.0.0.1:{port}", "--name", "Ann")
    try:
        again.expect("You are Ann")
        again.expect("^----- earlier -----$")
        again.expect(r"^\(earlier\) Ann: bye$")  # also the last of the welcome's history
        bob.send("marker")
        again.expect("^Bob: marker$")
        seen = again.seen
        start = seen.index("----- earlier -----")
        shown = [line for line in seen[start:] if "line " in line or "private" in line]
        assert shown == [
            "(earlier) Bob: line 1",
            "(earlier) Bob: line 2",
            "(earlier) Bob: line 3",
            "(earlier) Bob: line 4",
            "(earlier) (private) Bob: a private word",
        ]
        for n in range(1, 5):
            assert sum(1 for line in seen if line.endswith(f"Bob: line {n}")) == 1, n
        assert sum(1 for line in seen if line.endswith("a private word")) == 1
        again.say("bye")
        again.wait()
    finally:
        again.kill()


def test_no_history_joiner_keeps_no_transcript(start_host, join, tmp_path: Path) -> None:
    host, hrec, port = start_host()
    mine = tmp_path / "ann-data"
    ann, arec = join(port, "Ann", data_dir=mine, keep_history=False)
    host.send("hello")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "hello")
    ann.stop()
    assert not list(mine.glob("transcripts.sqlite3*"))


def test_a_corrupt_transcript_file_is_said_once_and_the_chat_goes_on(start_host, join, tmp_path):
    host, hrec, port = start_host()
    mine = tmp_path / "ann-data"
    mine.mkdir()
    (mine / "transcripts.sqlite3").write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)
    ann, arec = join(port, "Ann", data_dir=mine)
    said = arec.wait_for(ev.ErrorShown, lambda e: "transcripts" in e.text)
    assert "Carrying on without it" in said.text
    host.send("still here")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "still here")
    assert len([e for e in arec.of(ev.ErrorShown) if "transcripts" in e.text]) == 1


def test_numbering_survives_when_every_row_was_pruned_away(tmp_path: Path) -> None:
    # The last number is written down with each deletion, not with each commit: a log whose
    # rows all aged away still numbers on from where it was, across two restarts.
    now = [10 * 86400.0]
    log, _ = open_room_log(tmp_path, keep_days=1, clock=lambda: now[0])
    assert log is not None
    log.on_pending = lambda: None  # commit by hand, as the host does
    log.record_many([Chat(seq, "Ann", f"m{seq}", now[0]) for seq in (1, 2, 3)], "tok-ann")
    log.flush()
    assert [(x.chat.seq, x.token) for x in log.recent(10)] == [
        (1, "tok-ann"),
        (2, "tok-ann"),
        (3, "tok-ann"),
    ]
    log.close()
    now[0] += 3 * 86400  # past keep_days: the next open deletes all three
    for _ in range(2):
        again, _ = open_room_log(tmp_path, keep_days=1, clock=lambda: now[0])
        assert again is not None
        assert again.count() == 0
        assert again.last_seq == 3
        again.close()
