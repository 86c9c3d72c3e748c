"""Private routing in the room, /msg parsing, mentions and transcript export: pure logic."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app import events as ev
from app.export import Entry, ExportLog, export, render_html
from app.mentions import mention_spans, mentions
from app.messages import Chat, Error
from app.room import Room, split_target
from tests.helpers import replayed


def _room() -> Room:
    room = Room(clock=lambda: 1000.0, new_token=iter(f"t{i}" for i in range(99)).__next__)
    room.join(0, "Hal", "local")
    room.join(1, "Ann", "app")
    room.join(2, "Bob Smith", "app")
    room.join(3, None, "text")
    return room


def test_a_private_message_goes_to_its_target_and_its_sender_only() -> None:
    room = _room()
    sends = room.say(1, "/msg Bob Smith psst", "m1")
    assert [(s.to, s.message) for s in sends] == [
        ((2,), Chat(1, "Ann", "psst", 1000.0, None, "Bob Smith")),
        ((1,), Chat(1, "Ann", "psst", 1000.0, "m1", "Bob Smith")),
    ]
    # Sent again (a reconnect): the same acknowledgement, nobody gets it twice.
    assert [(s.to, s.message.id) for s in room.tell(1, "Bob Smith", "psst", "m1")] == [
        ((1,), "m1")  # type: ignore[union-attr]
    ]
    # A text peer has no echo, but sees its line go.
    sends = room.say(3, '/msg "Ann" hi')
    assert [s.to for s in sends] == [(1,), (3,)]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("/msg Zed hi", "Zed is not in the room: nothing was sent."),
        ("/msg Ann hi", "That is you: nothing was sent."),
        ("/msg Bob", None),  # no text: the usage line
    ],
)
def test_unknown_absent_or_empty_targets_are_one_error(line: str, error: str | None) -> None:
    room = _room()
    sends = room.say(1, line, "m9")
    assert len(sends) == 1
    assert sends[0].to == (1,)
    assert isinstance(sends[0].message, Error)
    if error is not None:
        assert sends[0].message.text == error
    assert room.last_seq == 0  # nothing was numbered


def test_a_member_away_is_absent_for_private_messages() -> None:
    room = _room()
    room.leave(1, "connection lost", hold=True)
    [send] = room.say(2, "/msg Ann are you there")
    assert isinstance(send.message, Error)
    assert send.message.text == "Ann is away (connection lost): nothing was sent."


def test_newcomers_never_get_private_messages_but_returning_members_do() -> None:
    room = _room()
    room.say(2, "/msg Ann for Ann", "b1")
    room.say(2, "for everyone", "b2")
    # History follows the welcome, as a replay of the room's log.
    assert [c.text for c in replayed(room, room.join(4, "Cat", "app"), 4)] == ["for everyone"]
    room.leave(1, "connection lost", hold=True)
    room.say(2, "/msg Ann missed this", "b3")  # refused: Ann is away
    room.say(0, "while away")
    back = room.join(5, "Ann", "app", token="t0", last_seq=0)
    assert [c.text for c in replayed(room, back, 5)] == [
        "for Ann",
        "for everyone",
        "while away",
    ]


def test_split_target_reads_quotes_and_names_with_spaces() -> None:
    names = ["Ann", "Bob Smith", "Bob"]
    assert split_target('"Bob Smith" hello there', names) == ("Bob Smith", "hello there")
    assert split_target("Bob Smith hello", names) == ("Bob Smith", "hello")
    assert split_target("Bob hello", names) == ("Bob", "hello")
    assert split_target("Zed hello", names) == ("Zed", "hello")
    assert split_target("Ann", names) is None
    assert split_target('"Ann hi', names) is None


def test_mentions_are_whole_names_in_any_case() -> None:
    assert mentions("hi @Ann!", "Ann")
    assert mentions("ann, look", "Ann")
    assert mentions("(Bob Smith)", "Bob Smith")
    assert not mentions("Annabel and Joanne", "Ann")
    assert not mentions("anything", "")
    assert mention_spans("Ann and @ann", "Ann") == [(0, 3), (8, 12)]


def _entries() -> list[Entry]:
    stamp = time.mktime((2026, 12, 2, 21, 5, 9, 0, 0, -1))
    return [
        Entry(stamp, "Ann", "hello <b>all</b> & <script>alert(1)</script>"),
        Entry(stamp, "Bob<i>", 'psst "quoted"', private="Ann", mine=False),
        Entry(stamp, "Ann", "two\nlines", private="Bob", mine=True),
    ]


def test_export_text_has_date_time_sender_text_and_private_marks(tmp_path: Path) -> None:
    path = export(tmp_path / "chat.txt", "Hal's room", _entries())
    text = path.read_text(encoding="utf-8")
    assert text.startswith("Parley transcript: Hal's room\n")
    assert "2026-12-02 21:05:09  Ann: hello <b>all</b> & <script>alert(1)</script>" in text
    assert '2026-12-02 21:05:09  (private from Ann) Bob<i>: psst "quoted"' in text
    assert "2026-12-02 21:05:09  (private to Bob) Ann: two\n" in text
    assert "    lines\n" in text


def test_export_html_escapes_everything_from_others(tmp_path: Path) -> None:
    path = export(tmp_path / "chat.HTML", "<Hal's> room", _entries())
    page = path.read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "<b>all" not in page
    assert "Bob<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Bob&lt;i&gt;" in page
    assert "&lt;Hal&#x27;s&gt; room" in page
    assert "psst &quot;quoted&quot;" in page
    assert "2026-12-02 21:05:09" in page
    assert page.count('class="private"') == 2
    assert render_html("r", []).count("<tr") == 0


def test_export_refuses_other_extensions_and_keeps_what_was_shown(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.txt or \.html"):
        export(tmp_path / "chat.pdf", "room", _entries())
    assert not list(tmp_path.iterdir())
    log = ExportLog(keep=2)
    for n in range(3):
        log.add(ev.MessageReceived("Ann", f"m{n}", 1000.0 + n))
    assert [e.text for e in log.entries] == ["m1", "m2"]
    with pytest.raises(FileNotFoundError):
        export(tmp_path / "missing" / "chat.txt", "room", log.entries)


def test_the_terminals_log_keeps_batches_and_events_in_order_within_its_bound() -> None:
    from app.export import ChatExportLog

    log = ChatExportLog(keep=4)
    log.add(ev.MessageReceived("Ann", "first", 1000.0, private="Bob", mine=True))
    log.add_chats([Chat(2, "Bob", "b2", 1001.0), Chat(3, "Cy", "c3", 1002.0)])
    log.add(ev.MessageReceived("Hal", "mine", 1003.0, mine=True))
    assert log.entries == [
        Entry(1000.0, "Ann", "first", "Bob", True),
        Entry(1001.0, "Bob", "b2"),
        Entry(1002.0, "Cy", "c3"),
        Entry(1003.0, "Hal", "mine", None, True),
    ]
    log.add_chats([Chat(5, "Bob", "b5", 1004.0)])  # past the bound: the oldest goes
    assert [e.text for e in log.entries] == ["b2", "c3", "mine", "b5"]
    log.clear()
    assert log.entries == []
