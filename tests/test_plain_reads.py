"""A text member's read of plain chat lines is checked in one pass (`protocol.plain_lines`,
`PlainLines`) instead of line by line, and must be taken exactly as the line-by-line path
would take each line: the same lines relayed, in order, and anything else (a command, a bye,
a control character, bad UTF-8, a blank line, a carriage return) read line by line as ever.
Over real sockets: what another member receives, the errors the sender gets, the rate limit
applied per line."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from app import events as ev
from app.messages import ChatRun, PlainLines, Say
from app.protocol import MAX_TEXT, HostSideParser, LineSplitter, plain_lines
from app.room import Room
from tests.helpers import RawPeer, text_peer

_ROOM = Room()
# Lines such as people type, and the characters that must make a line go its own way.
_CHARS = st.sampled_from(
    [*"ab yéB/\\\"'\t\r\x1b\x00\x7f\x85\xa0\u2028\u200b\u200d\u202e👋", "bye", "BYE", "/"]
)
_LINES = st.lists(st.lists(_CHARS, max_size=12).map("".join), min_size=1, max_size=6)


@given(_LINES)
def test_plain_lines_passes_only_what_the_room_relays_as_it_is(lines: list[str]) -> None:
    block = "".join(line + "\n" for line in lines)
    got = plain_lines(block)
    one_by_one = [_ROOM.plain_line(line) for line in lines]
    if got is not None:
        assert got == lines
        assert one_by_one == lines  # each one a chat line for everyone, unchanged
    elif all(text == line for text, line in zip(one_by_one, lines, strict=True)):
        # Refused although each would pass: only the cautious tests may do that (a joiner
        # such as U+200D is kept by clean_text but is not printable; "bye now" is no bye).
        assert any(
            not line.isprintable() or re.match(r"(?i) *bye", line) or len(line) * 6 > MAX_TEXT
            for line in lines
        )


def test_plain_lines_takes_a_flood_and_refuses_each_exception() -> None:
    flood = [f"line {n} of the flood, ünïcode 👋 too" for n in range(50)]
    assert plain_lines("".join(t + "\n" for t in flood)) == flood
    for bad in (
        "/who",
        "bye",
        "  Bye!",
        "",
        "   ",
        "\x1b[31mred",
        "tab\there",
        "cr\r",
        "x" * 10241,
    ):
        assert plain_lines(f"ok\n{bad}\nok\n") is None, repr(bad)
    assert plain_lines("ok\n" + "x" * 10240 + "\n") == ["ok", "x" * 10240]
    assert plain_lines("byebye is not a bye, but goes line by line\n") is None


def test_the_parser_gives_an_admitted_text_members_read_as_one_item() -> None:
    parser = HostSideParser()
    parser.decide_text()
    assert parser.feed(b"hi\nthere\n", True) == [Say("hi"), PlainLines(["there"])]
    assert parser.feed(b"one\ntwo\nthr", True) == [PlainLines(["one", "two"])]
    assert parser.feed(b"ee\nfour\n", True) == [PlainLines(["three", "four"])]
    assert parser.feed(b"five\n/who\n", True) == [Say("five"), Say("/who")]
    assert parser.feed(b"six\nseven\n") == [Say("six"), Say("seven")]  # not asked: per line
    late = HostSideParser()  # a hello after the silence, with lines in the same read
    late.decide_text()
    hello, say = late.feed(
        b'{"type":"hello","version":2,"name":"Ann"}\n{"type":"msg","text":"x"}\n', True
    )
    assert (getattr(hello, "name", None), say, late.kind) == ("Ann", Say("x"), "app")
    bad = parser.feed(b"ok\n\xff\xfe\n", True)
    assert bad[0] == Say("ok")
    assert getattr(bad[1], "code", None) == "bad_utf8"


def test_a_read_larger_than_the_line_cap_is_still_one_item() -> None:
    """A plain socket's read of a flood is up to 256 KiB, four times the cap on one line:
    it is still checked in one pass, and a line over the cap in it still is not."""
    parser = HostSideParser(max_line=64)
    parser.decide_text()
    assert parser.feed(b"hi\n", True) == [Say("hi")]
    lines = [f"line {n} of a long read" for n in range(40)]  # 1,000 bytes, 16 caps
    assert parser.feed("".join(t + "\n" for t in lines).encode() + b"unfin", True) == [
        PlainLines(lines)
    ]
    assert parser.feed(b"ished\n" + b"x" * 64 + b"\nok\n", True) == [
        PlainLines(["unfinished", "x" * 64, "ok"])
    ]
    too_long = parser.feed(b"a\n" * 40 + b"y" * 65 + b"\n" + b"b\n" * 40, True)
    assert [getattr(m, "code", m) for m in too_long] == [
        *[Say("a")] * 40,
        "line_too_long",
        *[Say("b")] * 40,
    ]


_PIECES = st.lists(st.sampled_from([b"\n", b"ab", b"cdefg", b"x" * 7, b"\xff"]), max_size=12)


@given(_PIECES, _PIECES)
def test_whole_lines_takes_a_read_exactly_when_it_holds_only_lines_within_the_cap(
    before: list[bytes], read: list[bytes]
) -> None:
    """`whole_lines` hands on a read as a block exactly when `items` would give only lines
    (each within the cap) for it, and the block holds those lines."""
    cap = 8
    quick, slow = LineSplitter(cap), LineSplitter(cap)
    for splitter in (quick, slow):
        list(splitter.items(b"".join(before)))
    data = b"".join(read)
    whole = quick.whole_lines(data)
    items = list(slow.items(data))
    if whole is None:
        assert b"\n" not in data or None in items or quick._discarding
    else:
        assert None not in items
        assert items == whole[0].split(b"\n")[:-1]


def test_a_mixed_read_is_relayed_line_by_line_in_order(start_host) -> None:
    worker, hrec, port = start_host(allow_plain=True, rate=0, byte_rate=0)
    ann, ann_name = text_peer(port)
    bob, _ = text_peer(port)
    lines = [f"plain {n}" for n in range(1, 21)]
    block = "".join(t + "\n" for t in lines).encode()
    block += b"\x1b[31mred\n/who\n\xff\xfe\n\n   \nafter the odd ones\n"
    block += "".join(f"tail {n}\n" for n in range(1, 21)).encode()
    ann.send(block[:301])  # split mid-line: the unfinished line waits for its end
    ann.send(block[301:])
    got = [bob.read_until(rf"^{re.escape(ann_name)}: ").split(": ", 1)[1] for _ in range(42)]
    assert got == [*lines, "red", "after the odd ones", *(f"tail {n}" for n in range(1, 21))]
    # The bad line named and /who answered (the error is written at once, the answer with
    # the read's deliveries: that order is the line-by-line path's own, unchanged here).
    ann.read_until(r"^! That line was not valid UTF-8")
    ann.read_until(r"^\* In the room: Hal, ")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "tail 20")  # the host's own view
    seqs = [e.seq for e in hrec.of(ev.MessageReceived) if e.sender == ann_name]
    assert len(seqs) == 43  # with its "hi"
    assert seqs == sorted(seqs)


def test_the_rate_limit_applies_to_each_line_of_a_plain_read(start_host) -> None:
    worker, hrec, port = start_host(
        allow_plain=True, rate=0.001, burst=10, byte_rate=0, flood_strikes=1000
    )
    ann, ann_name = text_peer(port)  # its "hi" took one of the ten
    bob: RawPeer = text_peer(port)[0]
    ann.send("".join(f"fast {n}\n" for n in range(1, 31)))
    ann.read_until("too fast|slow down|Slow down")
    worker.send("marker")
    seen: list[str] = []
    while True:
        line = bob.read_until(rf"^({re.escape(ann_name)}|Hal): ")
        if line.startswith("Hal: "):
            break
        seen.append(line.split(": ", 1)[1])
    assert seen == [f"fast {n}" for n in range(1, 10)]


@given(st.lists(st.text(min_size=1), min_size=1, max_size=6))
def test_a_stamped_run_is_encoded_and_costed_as_its_chats_one_by_one(texts: list[str]) -> None:
    from app.protocol import encode_text_chats
    from app.roomlog import MemoryLog, chat_cost

    room = Room(clock=lambda: 5.0)
    room.join(1, "Ann B", "text", encrypted=False)
    run = room.stamp_plain(1, texts)
    assert isinstance(run, ChatRun)
    plain = list(run)
    assert [c.text for c in plain] == texts
    assert encode_text_chats(run) == encode_text_chats(plain)  # a plain list: chat by chat
    one, many = MemoryLog(), MemoryLog()
    for chat in plain:
        one.append(chat)
    many.extend(run)
    assert many.bytes == one.bytes == sum(map(chat_cost, plain))
    assert many.after(0, 10) == plain
