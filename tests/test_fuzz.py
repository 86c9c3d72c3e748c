"""Property tests: whatever bytes arrive, in whatever pieces, the parsers answer with messages or
`ProtocolError`s, never an exception, and hold no more than one line's worth of bytes.

What the parsers let through must also be safe to act on: the room can relay it and the encoders
can write it back out (a string that cannot be encoded as UTF-8 would break the host's writes).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.messages import (
    Chat,
    ClientMessage,
    Ended,
    Error,
    Greeting,
    Hello,
    Joined,
    Left,
    Members,
    Notice,
    Ping,
    Pong,
    ProtocolError,
    RawLine,
    Renamed,
    Say,
    ServerMessage,
    Welcome,
)
from app.protocol import (
    GREETING,
    VERSION,
    HostSideParser,
    JoinerSideParser,
    LineSplitter,
    check_name,
    encode_client,
    encode_json,
    encode_text,
    name_key,
)
from app.room import Room

LIMIT = 1024  # small, so generated input often passes it; big enough for a 400-digit number
CODES = {"malformed", "unknown_type", "unexpected", "line_too_long", "bad_utf8"}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HELLO = encode_client(Hello("Ann", VERSION))
GREETING_LINE = (GREETING + "\n").encode()

# --- input ---------------------------------------------------------------------------------------

_surrogates = st.integers(0xD800, 0xDFFF).map(chr)
_odd_text = st.one_of(
    st.text(max_size=12),
    st.lists(st.one_of(st.characters(), _surrogates), min_size=1, max_size=6).map("".join),
    _surrogates,
    st.sampled_from(["bye", "/who", "/nick X", "//x", "\x1b[2J", "\u202e", "", " ", "\n"]),
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([10**400, -(10**400), 2**63, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    _odd_text,
)
_json_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_odd_text, inner, max_size=3),
    max_leaves=8,
)

_CLIENT_VALID: list[dict[str, Any]] = [
    json.loads(encode_client(m))
    for m in [Hello("Ann", VERSION), Say("hello", "m1"), Say("hi"), Ping(), Pong()]
] + [
    {"type": "hello", "version": VERSION, "name": "Ann", "pake": "cA=="},
    {"type": "hello", "version": VERSION, "name": "Ann", "token": "t1", "last_seq": 4},
    {"type": "auth", "confirm": "c2Vj"},
]
_SERVER_VALID: list[dict[str, Any]] = [
    json.loads(encode_json(m))
    for m in [
        Chat(1, "Ann", "hi", 1.5, "m1"),
        Chat(2, "Bob", "yo", 2.0),
        Welcome("Ann", ("Host", "Ann"), (Chat(1, "Host", "hi", 1.0),), "a note"),
        Welcome("Ann", ("Ann",), (Chat(3, "Bob", "missed", 2.0),), None, "t1", resumed=True),
        Joined("Bob"),
        Left("Bob", "connection lost"),
        Renamed("Bob", "Rob"),
        Members(("Ann",)),
        Notice("n"),
        Error("e", "t"),
        Ended("r"),
        Ping(),
    ]
] + [{"type": "auth", "pake": "cA==", "confirm": "cQ=="}]
_KEYS = sorted({key for obj in _CLIENT_VALID + _SERVER_VALID for key in obj})

_numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([10**400, -(10**400), 2**63, 0, -1, 1.5, -0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _similar(draw: st.DrawFn, value: Any) -> Any:
    """A value of the same JSON kind, so that the frame stays nearly valid."""
    if isinstance(value, bool):
        return draw(st.booleans())
    if isinstance(value, str):
        return draw(_odd_text)
    if isinstance(value, int | float):
        return draw(_numbers)
    return draw(_json_values)


def _mutate(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """Keep the shape of a valid frame; change some values, mostly for ones of the same kind."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            roll = draw(st.integers(0, 19))
            if roll == 0:
                continue  # dropped
            if roll == 1:
                out[key] = draw(_json_values)
            elif roll < 8 and key != "type":
                out[key] = _similar(draw, item)
            else:
                out[key] = _mutate(draw, item, depth + 1)
        if draw(st.integers(0, 9)) == 0:
            out[draw(st.sampled_from(_KEYS))] = draw(_json_values)
        return out
    if isinstance(value, list) and depth < 3:
        items = [_mutate(draw, item, depth + 1) for item in value]
        if value and draw(st.booleans()):
            items.append(_mutate(draw, value[0], depth + 1))
        return items
    return value


@st.composite
def _frames(draw: st.DrawFn, pool: list[dict[str, Any]]) -> bytes:
    """One line of nearly valid JSON, sometimes damaged at the byte level."""
    obj = _mutate(draw, draw(st.sampled_from(pool)))
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()), allow_nan=True)
    data = text.encode("utf-8", "surrogatepass")
    damage = draw(st.integers(0, 7))
    if damage == 0 and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == 1:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=3)) + data[at:]
    return data.replace(b"\n", b" ") + draw(st.sampled_from([b"\n", b"\r\n"]))


def _streams(pool: list[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    frames = _frames(pool)
    lines = st.one_of(
        frames,
        st.binary(max_size=40).map(lambda b: b + b"\n"),
        st.sampled_from([HELLO, GREETING_LINE, b"bye\n", b"\n"]),
        st.integers(LIMIT - 2, LIMIT * 2).map(lambda n: b"x" * n + b"\n"),
    )
    return st.one_of(
        st.binary(max_size=600),
        st.lists(lines, max_size=10).map(b"".join),
        st.lists(frames, min_size=1, max_size=8).map(b"".join),
    )


@st.composite
def _chunked(draw: st.DrawFn, pool: list[dict[str, Any]]) -> tuple[bytes, list[bytes]]:
    """A stream (maybe ending mid-line) and the pieces it arrives in."""
    data = draw(_streams(pool)) + draw(st.binary(max_size=4))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=20)))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in itertools.pairwise(bounds)]


def _pieces(data: bytes) -> tuple[bytes, list[bytes]]:
    return data, [data]


_BIG_TIME = b'{"type":"msg","seq":1,"from":"A","text":"t","time":1' + b"0" * 400 + b"}\n"

# --- checks --------------------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value):
        return [s for f in dataclasses.fields(value) for s in _strings(getattr(value, f.name))]
    if isinstance(value, tuple):
        return [s for item in value for s in _strings(item)]
    return []


def _check_text(msg: Any) -> None:
    for text in _strings(msg):
        text.encode("utf-8")  # raises on a lone surrogate


def _feed_checked(parser: Any, pieces: list[bytes]) -> list[Any]:
    out: list[Any] = []
    for piece in pieces:
        out += parser.feed(piece)
        assert parser._lines.pending <= LIMIT
    return out


# --- host side -----------------------------------------------------------------------------------


def _host(state: str) -> HostSideParser:
    parser = HostSideParser(LIMIT)
    if state == "after hello":
        assert parser.feed(HELLO) == [Hello("Ann", VERSION)]
    elif state == "after silence":
        parser.decide_text()
    return parser


@FUZZ
@given(
    case=_chunked(_CLIENT_VALID), state=st.sampled_from(["fresh", "after hello", "after silence"])
)
def test_host_parser_never_raises(case: tuple[bytes, list[bytes]], state: str) -> None:
    data, pieces = case
    got = _feed_checked(_host(state), pieces)
    assert got == _host(state).feed(data)
    for i, msg in enumerate(got):
        assert isinstance(msg, ClientMessage | ProtocolError)
        _check_text(msg)
        if isinstance(msg, ProtocolError):
            assert msg.code in CODES
        if isinstance(msg, Hello):
            assert i == 0
            assert state != "after hello"


# Seeds: bugs this property found once (a lone surrogate broke the host's writes).
@example(case=_pieces(b'{"type":"msg","text":"\\ud800"}\n'), kind="app")
@example(case=_pieces(b'{"type":"msg","text":"hi","id":"\\udfff"}\n'), kind="app")
@FUZZ
@given(case=_chunked(_CLIENT_VALID), kind=st.sampled_from(["app", "text"]))
def test_host_relays_whatever_the_parser_lets_through(
    case: tuple[bytes, list[bytes]], kind: str
) -> None:
    """Parser and room together: any input ends in deliveries the encoders can write."""
    _, pieces = case
    parser = _host("after hello" if kind == "app" else "after silence")
    room = Room(clock=lambda: 5.0)
    room.join(0, "Host", "local")
    room.join(2, "Bob", "text")
    sends = list(room.join(1, None, kind))
    for piece in pieces:
        for msg in parser.feed(piece):
            if isinstance(msg, Say):
                sends += room.say(1, msg.text, msg.id)
            elif isinstance(msg, Hello):
                sends += room.upgrade(1, msg.name)
    for send in sends:
        encode_json(send.message)
        encode_text(send.message)
        _check_text(send.message)


# --- joiner side ---------------------------------------------------------------------------------


def _joiner(state: str) -> JoinerSideParser:
    parser = JoinerSideParser(LIMIT)
    if state == "after greeting":
        assert parser.feed(GREETING_LINE) == [Greeting(GREETING, VERSION)]
    elif state == "raw":
        parser.decide_raw()
    return parser


# Seeds: bugs this property found once (OverflowError from a huge time; lone surrogates).
@example(case=_pieces(_BIG_TIME), state="after greeting")
@example(case=_pieces(b'{"type":"joined","name":"\\ud800"}\n'), state="after greeting")
@FUZZ
@given(case=_chunked(_SERVER_VALID), state=st.sampled_from(["fresh", "after greeting", "raw"]))
def test_joiner_parser_never_raises(case: tuple[bytes, list[bytes]], state: str) -> None:
    data, pieces = case
    got = _feed_checked(_joiner(state), pieces)
    assert got == _joiner(state).feed(data)
    greetings = [m for m in got if isinstance(m, Greeting)]
    assert len(greetings) <= (1 if state == "fresh" else 0)
    for msg in got:
        assert isinstance(msg, ServerMessage | Greeting | RawLine | ProtocolError)
        _check_text(msg)
        if isinstance(msg, ProtocolError):
            assert msg.code in CODES
        elif isinstance(msg, ServerMessage):
            # What the joiner accepted, it can show and could have received canonically.
            encode_text(msg)
            again = JoinerSideParser()  # the default limit: re-encoding may add a few bytes
            again.feed(GREETING_LINE)
            assert again.feed(encode_json(msg)) == [msg]


# --- the line splitter and the room --------------------------------------------------------------


@FUZZ
@given(case=_chunked(_CLIENT_VALID + _SERVER_VALID))
def test_splitter_memory_stays_bounded(case: tuple[bytes, list[bytes]]) -> None:
    data, pieces = case
    lines = LineSplitter(LIMIT)
    got: list[bytes | None] = []
    for piece in pieces:
        got += lines.feed(piece)
        assert lines.pending <= LIMIT
    assert got == LineSplitter(LIMIT).feed(data)
    assert all(line is None or (b"\n" not in line and len(line) <= LIMIT) for line in got)


_names = st.one_of(
    st.none(),
    _odd_text,
    st.sampled_from(["Ann", "ANN", "ａｎｎ", "Ann (2)", "guest1", "x" * 32, "a" * 27 + " bcd"]),
)
_room_names = st.one_of(
    st.sampled_from(["Ann", "ANN", "Bob", "Ann (2)", None]),
    st.sampled_from(["Ann", "ann", "Bob", None]),
    _names,
)
_room_text = st.one_of(st.sampled_from(["hi", "hello", "hi", "bye"]), _odd_text)
_KINDS = ["say"] * 5 + ["join"] * 2 + ["leave", "drop", "back", "wait", "nick", "upgrade"]


@st.composite
def _op(draw: st.DrawFn) -> tuple[str, int, str | None]:
    kind = draw(st.sampled_from(_KINDS))
    member = draw(st.integers(0 if kind in ("say", "leave", "nick") else 1, 2))
    if kind == "say":
        return kind, member, draw(_room_text)
    if kind in ("join", "nick", "upgrade"):
        return kind, member, draw(_room_names)
    if kind == "wait":
        return kind, 0, draw(st.sampled_from(["1", "30", "61"]))
    return kind, member, None


_ops = st.lists(_op(), min_size=4, max_size=30)


@example(  # a name held for a member away must not be given to someone else
    ops=[("join", 1, "Ann"), ("drop", 1, None), ("join", 2, "ann"), ("back", 1, None)],
    ids=[None] * 30,
)
@example(  # the same id twice: acknowledged twice, delivered once
    ops=[("say", 0, "hi"), ("say", 0, "hi again")], ids=["a", "a", *[None] * 28]
)
@FUZZ
@given(ops=_ops, ids=st.lists(st.sampled_from(["a", "b", None]), min_size=30, max_size=30))
def test_room_keeps_its_promises(
    ops: list[tuple[str, int, str | None]], ids: list[str | None]
) -> None:
    """Names stay valid and unique (members away included), messages are numbered 1, 2, 3, ...
    once each, a repeated id is acknowledged again but not delivered again, and every
    delivery can be written out."""
    now = [0.0]
    room = Room(history=5, grace=60.0, clock=lambda: now[0])
    room.join(0, "Host", "local")
    seq = 0
    tokens: dict[int, str] = {}
    echoes: dict[tuple[int, str], Chat] = {}
    for (op, member, arg), msg_id in zip(ops, ids, strict=False):
        present = {i for i in range(3) if i in room} | {member}
        if op in ("join", "back"):
            if member in room:
                continue
            token = tokens.get(member) if op == "back" else None
            sends = room.join(member, arg, "app", token, seq)
            welcome = next((s.message for s in sends if isinstance(s.message, Welcome)), None)
            if welcome is None:
                assert room.ended
                continue
            if not welcome.resumed:  # a new member: its ids are its own
                echoes = {k: v for k, v in echoes.items() if k[0] != member}
            if welcome.token is not None:
                tokens[member] = welcome.token
        elif op in ("leave", "drop"):
            sends = room.leave(member, "connection lost", hold=op == "drop")
        elif op == "wait":
            now[0] += float(arg or 0)
            continue
        elif op == "say":
            sends = room.say(member, arg or "", msg_id)
        elif op == "nick":
            sends = room.say(member, f"/nick {arg or ''}")
        else:
            sends = room.upgrade(member, arg or "")
        for send in sends:
            encode_json(send.message)
            encode_text(send.message)
            assert set(send.to) <= present
            msg = send.message
            if isinstance(msg, Chat) and msg.id is not None:
                assert send.to == (member,)
                if (member, msg.id) in echoes:  # sent again: the same acknowledgement
                    assert msg == echoes[member, msg.id]
                else:
                    assert msg.seq == seq
                    echoes[member, msg.id] = msg
            elif isinstance(msg, Chat):
                assert msg.seq == seq + 1
                seq = msg.seq
        names = room.names()
        assert len({name_key(n) for n in names}) == len(names)
        for name in names:
            assert check_name(name) == name
