"""The size contract, paged history and resumes, the echo store, half-open reconnects and the
welcome deadline: pure pieces first, then over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from app import events as ev
from app.messages import Chat, Error, History, Members, Welcome
from app.net import JoinOptions
from app.protocol import (
    FRAME_ROOM,
    MAX_ID,
    MAX_LINE,
    MAX_NAME,
    MAX_TEXT,
    encode_history,
    encode_json,
    fits_frame,
    text_size,
    text_too_long,
)
from app.room import Room
from app.roomlog import MemoryLog
from app.worker import NetWorker
from tests.conftest import Hosted, Joined
from tests.helpers import DEADLINE, LoopServer, RawPeer, Recorder, replayed

T = TypeVar("T")
QUIET = {"keep_history": False, "announce": False, "rate": 0.0}  # no disk, no multicast, no rate
FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.2}


# --- the contract, built at its worst -------------------------------------------------------------


def _worst_chat(text: str, msg_id: str | None = None) -> Chat:
    """A message whose every field but the text is as large on the wire as it can be."""
    name = "\U0001d54f" * MAX_NAME  # 4 bytes of UTF-8 each, never escaped
    return Chat(2**63 - 1, name, text, -1.2345678901234567e308, msg_id, to=name)


def test_text_size_counts_bytes_as_sent() -> None:
    assert text_size("abc") == 3
    assert text_size('"') == text_size("\\") == text_size("\n") == 2
    assert text_size("é") == 2
    assert text_size("\U0001f600") == 4
    assert MAX_TEXT == MAX_LINE - FRAME_ROOM == 61_440
    assert text_too_long('"' * (MAX_TEXT // 2)) is None
    assert text_too_long("a" * MAX_TEXT) is None
    assert "too long (80,000 bytes" in (text_too_long('"' * 40_000) or "")
    assert text_too_long("a" * 65_000) is not None  # under the 64 KiB line, over the contract


def test_every_frame_carrying_a_text_at_the_limit_fits_a_joiners_line() -> None:
    worst_id = "\x00" * MAX_ID  # 6 bytes each as \\u0000
    for text in ('"' * (MAX_TEXT // 2), "\\" * (MAX_TEXT // 2), "\n" * (MAX_TEXT // 2)):
        assert text_size(text) == MAX_TEXT
        chat = _worst_chat(text, worst_id)
        frame = encode_json(chat)
        assert fits_frame(frame), len(frame)
        assert json.loads(frame)["text"] == text
        (page,), skipped = encode_history([chat])
        assert skipped == 0
        assert fits_frame(page[0]), len(page[0])
        assert fits_frame(encode_json(History((chat,))))
    error = Error("too_long", text_too_long('"' * 40_000) or "", worst_id)
    assert fits_frame(encode_json(error))


def test_member_lists_of_a_room_of_thousands_fit_too() -> None:
    names = tuple(f"{i:05d}" + "\U0001d54f" * (MAX_NAME - 5) for i in range(3000))
    me = names[-1]
    for frame in (
        encode_json(Welcome(me, names, (), "a note", "t" * MAX_ID, plain=names)),
        encode_json(Members(names, names)),
    ):
        assert fits_frame(frame), len(frame)
        obj = json.loads(frame)
        listed = obj.get("members", obj.get("names"))
        assert 100 < len(listed) < 3000
        assert obj["more"] == 3000 - len(listed)
        assert obj["plain"] == listed
    assert me in json.loads(encode_json(Welcome(me, names)))["members"]
    small = json.loads(encode_json(Members(names[:10])))
    assert "more" not in small


def test_history_frames_hold_as_many_messages_as_fit_and_never_more() -> None:
    chats = [Chat(i, "Ann", f"{i:03d}" + "x" * 20_000, 1.0) for i in range(1, 11)]
    frames, skipped = encode_history(chats)
    assert skipped == 0
    assert len(frames) == 4  # three of ~20 KB per 64 KiB line
    assert all(fits_frame(f) for f, _ in frames)
    got = [m["seq"] for f, _ in frames for m in json.loads(f)["messages"]]
    assert got == list(range(1, 11))
    assert [last for _, last in frames] == [3, 6, 9, 10]


# --- the room: refusals, the log, the echo store ----------------------------------------------


def test_a_message_over_the_contract_is_refused_whole_and_not_numbered() -> None:
    room = Room(clock=lambda: 1.0)
    room.join(1, "Ann", "app")
    room.join(2, "Bob", "app")
    (send,) = room.say(1, '"' * 40_000, "m1")
    assert send.to == (1,)
    assert isinstance(send.message, Error)
    assert (send.message.code, send.message.id) == ("too_long", "m1")
    assert room.last_seq == 0
    (send,) = room.say(1, "/msg Bob " + "a" * 65_000, "m2")
    assert isinstance(send.message, Error)
    assert send.message.code == "too_long"
    assert room.last_seq == 0


def test_the_log_is_bounded_in_bytes_as_well_as_count() -> None:
    log = MemoryLog(max_count=1000, max_bytes=1 << 20)
    for i in range(1, 101):
        log.append(Chat(i, "Ann", f"{i}" + "x" * 60_000, 1.0))
    assert log.bytes <= 1 << 20
    assert 10 <= len(log) <= 17
    assert log.last_seq == 100
    assert [c.seq for c in log.after(log.first_seq - 1, 1000)][-1] == 100
    assert log.get(1) is None
    room = Room(log_bytes=1 << 20, clock=lambda: 1.0, new_token=lambda: "t")
    room.join(1, "Ann", "app")
    room.leave(1, "connection lost", hold=True)
    room.join(0, "Hal", "local")
    for _ in range(100):
        room.say(0, "x" * 60_000)
    sends = room.join(2, "Ann", "app", token="t", last_seq=0)
    welcome = sends[0].message
    assert getattr(welcome, "note", "").endswith(
        "earlier messages not shown: too old to send again."
    )
    assert [c.seq for c in replayed(room, sends, 2)][-1] == 100


def test_the_echo_store_keeps_ids_and_numbers_not_texts() -> None:
    """300 messages of 60 KB with ids from one member, in a room that logs 10: what stays is
    the 10 logged texts, not one copy per id (today's 18 MB)."""
    room = Room(resume_log=10, clock=lambda: 1.0)
    room.join(1, "Ann", "app")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(300):
            room.say(1, f"{i:04d}" + "x" * 60_000, f"m{i}")
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 2_000_000, held
    # A message sent again is still recognised (and not delivered twice), text or no text.
    (again,) = room.say(1, "anything", "m0")
    assert isinstance(again.message, Chat)
    assert (again.message.seq, again.message.id, again.message.text) == (1, "m0", "")
    (again,) = room.say(1, "anything", "m299")
    assert isinstance(again.message, Chat)
    assert again.message.text.startswith("0299")
    assert room.last_seq == 300


# --- over real sockets --------------------------------------------------------------------------


@pytest.fixture
def start_host(start_host: Callable[..., Hosted]) -> Callable[..., Hosted]:
    return functools.partial(start_host, allow_plain=True, **QUIET)


def on_loop(worker: NetWorker, fn: Callable[[], T]) -> T:
    """Run `fn` on the worker's loop (where the host lives) and return what it returns."""
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            done.set_result(fn())
        except BaseException as exc:  # pragma: no cover - shows in the test
            done.set_exception(exc)

    assert worker._loop is not None
    worker._loop.call_soon_threadsafe(run)
    return done.result(DEADLINE)


class AppPeer(RawPeer):
    """A hand-made app peer on a plain connection: JSON lines, read only when asked to."""

    def hello(self, name: str, token: str | None = None, last_seq: int = 0) -> None:
        self.read_until(r"^PARLEY/2 ")
        hello: dict[str, Any] = {"type": "hello", "version": 1, "name": name}
        if token is not None:
            hello.update(token=token, last_seq=last_seq)
        self.line(json.dumps(hello))

    def frame(self, kind: str, timeout: float = DEADLINE) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(self.read_until(f'^{{"type":"{kind}"', timeout))
        return frame

    def text(self, text: str) -> dict[str, Any]:
        """The next `msg` frame whose text starts like `text` (others are skipped)."""
        while True:
            frame = self.frame("msg")
            if frame["text"][:20] == text[:20]:
                return frame


def test_a_message_over_the_contract_is_refused_and_nobody_gets_any_of_it(start_host, join) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port, "Ann")
    bob, brec = join(port, "Bob")
    raw = AppPeer(port)
    raw.hello("Raw")
    raw.frame("welcome")
    # The app says so at once, and sends nothing.
    ann.send('"' * 40_000)
    refusal = arec.wait_for(ev.ErrorShown, lambda e: "too long" in e.text)
    assert "80,000 bytes" in refusal.text
    assert not arec.of(ev.MessagePending)
    # The host refuses what a client sends anyway, naming the message, and relays none of it.
    raw.line(json.dumps({"type": "msg", "text": "a" * 65_000, "id": "x1"}))
    error = raw.frame("error")
    assert (error["code"], error["id"]) == ("too_long", "x1")
    text, tname = RawPeer(port), None
    text.line("hi")
    tname = text.read_until(r"^\* You are ").split()[3].rstrip(".")
    text.line('"' * 40_000)
    assert "too long" in text.read_until(r"^! ")
    # The largest message that fits reaches everyone whole.
    biggest = '"' * (MAX_TEXT // 2)
    bob.send(biggest)
    for rec in (arec, hrec):
        rec.wait_for(ev.MessageReceived, lambda e: e.text == biggest)
    assert raw.text(biggest)["text"] == biggest
    bob.send("marker")
    for rec in (arec, brec, hrec):
        rec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    assert raw.text("marker")["text"] == "marker"
    for rec in (arec, brec, hrec):
        assert [e.text for e in rec.of(ev.MessageReceived)] in (
            [biggest, "marker"],
            ["hi", biggest, "marker"],
        )
        assert not [e for e in rec.of(ev.ErrorShown) if "line" in e.text]
    assert tname


def test_a_newcomer_gets_in_with_a_history_of_twenty_messages_at_the_limit(
    start_host, join
) -> None:
    host, hrec, port = start_host()
    texts = [f"{i:02d}" + '"' * (MAX_TEXT // 2 - 1) for i in range(20)]
    assert all(text_size(t) == MAX_TEXT for t in texts)
    for text in texts:
        host.send(text)
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == texts[-1])
    cat, crec = join(port, "Cat")
    assert crec.wait_for(ev.Connected).members == ("Hal", "Cat")
    crec.wait_for(ev.MessageReceived, lambda e: e.text == texts[-1])
    got = [e for e in crec.of(ev.MessageReceived)]
    assert [e.text for e in got] == texts
    assert all(e.earlier for e in got)
    cat.send("in for real")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "in for real" and e.sender == "Cat")
    assert not crec.of(ev.ErrorShown)


def test_a_member_away_for_700_messages_comes_back_with_all_of_them(
    start_host, join, relay
) -> None:
    host, hrec, port = start_host()
    link = relay(port)
    ann, arec = join(link.port, "Ann", reconnect_initial=3.0)
    arec.wait_for(ev.Connected)
    link.cut()
    hrec.wait_for(ev.MemberLeft, lambda e: e.name == "Ann")
    texts = [f"m{i:03d} " + "y" * 200 for i in range(700)]
    for text in texts:
        host.send(text)
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == texts[-1])
    back = arec.wait_for(ev.Connected, lambda e: e.resumed, timeout=DEADLINE + 3)
    assert back.name == "Ann"
    assert "restarted" not in (back.note or "")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == texts[-1])
    got = [e for e in arec.of(ev.MessageReceived) if e.text.startswith("m")]
    assert [e.text for e in got] == texts
    assert not any(e.earlier for e in got)
    assert not arec.of(ev.ErrorShown)


def _members_with_tokens(port: int, count: int) -> list[tuple[str, int]]:
    """`count` members that joined by hand, took their tokens and dropped (held by the host)."""
    tokens = []
    for i in range(count):
        peer = AppPeer(port)
        peer.hello(f"M{i}")
        tokens.append(peer.frame("welcome")["token"])
        peer.close()  # an app peer gone without a bye: "connection lost", held for the grace
    return [(t, i) for i, t in enumerate(tokens)]


def test_resumes_from_zero_that_are_never_read_hold_at_most_the_write_cap(start_host) -> None:
    """Eight connections present valid tokens with last_seq 0 and never read a byte, over a
    9 MB log: each costs the host at most its write cap plus one frame in flight, and, dropped
    for not reading, coming back the same way replays nothing again."""
    host, hrec, port = start_host(stuck_wait=1.5, connect_rate=0.0, max_per_address=64)
    members = _members_with_tokens(port, 8)
    for i in range(150):
        host.send(f"{i:03d}" + "z" * 60_000)
    hrec.wait_for(ev.MessageReceived, lambda e: e.text.startswith("149"))
    session = host._session
    peers: list[AppPeer] = []
    for token, i in members:
        peer = AppPeer(port, rcvbuf=4096)
        peer.hello(f"M{i}", token, 0)
        peers.append(peer)

    def buffered() -> list[int]:
        return [
            p.transport.get_write_buffer_size()
            for p in session._peers.values()  # type: ignore[union-attr]
            if p.transport is not None and p.admitted
        ]

    most, deadline = 0, time.monotonic() + 1.0
    while time.monotonic() < deadline:
        sizes = on_loop(host, buffered)
        most = max([most, *sizes])
        time.sleep(0.02)
    cap = 1 << 16
    assert most <= cap + MAX_LINE + 1, most
    # They are dropped for not reading ...
    for _, i in members:
        hrec.wait_for(ev.MemberLeft, lambda e, i=i: e.name == f"M{i}" and e.reason == "not reading")
    # ... and coming back claiming no progress gets no second replay, only a note.
    token, i = members[0]
    again = AppPeer(port)
    again.hello(f"M{i}", token, 0)
    welcome = again.frame("welcome")
    assert welcome["resumed"] is True
    assert "were not sent again" in welcome["note"]
    host.send("after")
    after = again.frame("msg")
    assert (after["text"], after["seq"]) == ("after", 151)
    for peer in peers:
        peer.close()


class HalfOpenRelay(LoopServer):
    """A relay whose joiner side can die while its host side stays open and silent: what a
    host sees when a joiner's network goes away without a word. Each link has its own flags;
    links made later pass everything."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.flags: list[dict[str, bool]] = []
        super().__init__()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.links.append((writer, up_w))
        flags = {"up": True, "down": True}
        self.flags.append(flags)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, way: str) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    if flags[way]:
                        dst.write(data)
                        await dst.drain()

        await asyncio.gather(pump(reader, up_w, "up"), pump(up_r, writer, "down"))

    def set(self, up: bool, down: bool) -> None:
        """Change what the links open now pass."""

        def change() -> None:
            for flags in self.flags:
                flags.update(up=up, down=down)

        self.call(change)

    def drop_joiner_side(self) -> None:
        """The joiner's side of every open link dies (reset); the host's side stays open and
        hears nothing more."""

        def cut() -> None:
            for flags in self.flags:
                flags.update(up=False, down=False)
            for joiner_side, _ in self.links:
                joiner_side.transport.abort()

        self.call(cut)


@pytest.fixture
def half_open() -> Iterator[Callable[[int], HalfOpenRelay]]:
    made: list[HalfOpenRelay] = []

    def make(port: int) -> HalfOpenRelay:
        made.append(HalfOpenRelay(port))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_coming_back_while_the_host_holds_the_old_connection_replaces_it(
    start_host, join, half_open
) -> None:
    host, hrec, port = start_host()
    link = half_open(port)
    ann, arec = join(link.port, "Ann", **FAST)
    bob, brec = join(port, "Bob")
    first = arec.wait_for(ev.Connected)
    # "two" reaches the host, but its acknowledgement never comes back; then Ann's link dies
    # while the host's side of it stays open (half-open).
    link.set(up=True, down=False)
    ann.send("two")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "two")
    link.drop_joiner_side()  # the old link says nothing more, either way; new ones pass
    arec.wait_for(ev.Reconnecting)
    back = arec.wait_for(ev.Connected, lambda e: e is not first)
    assert back.resumed
    assert back.name == "Ann"
    assert "restarted" not in (back.note or "")
    assert back.members == ("Hal", "Ann", "Bob")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "two" and e.mine)
    bob.send("marker")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    for rec in (arec, brec, hrec):
        assert sum(1 for e in rec.of(ev.MessageReceived) if e.text == "two") == 1
    # Nobody saw Ann leave, come back, or split in two.
    for rec in (brec, hrec):
        assert not [e for e in rec.of(ev.MemberJoined) if e.name.startswith("Ann")][1:]
        assert not rec.of(ev.MemberLeft)
    assert "Ann (2)" not in on_loop(host, lambda: host._session.room.names())  # type: ignore[union-attr]


class MuteHost(LoopServer):
    """A server that greets like Parley, then never lets anyone in: it says one chat line and
    then nothing (or, with `too_long`, sends a line no joiner can read)."""

    def __init__(self, too_long: bool = False) -> None:
        self.too_long = too_long
        super().__init__()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.links.append((writer, writer))
        writer.write(b"PARLEY/1 Welcome to Parley.\n")
        await reader.readline()  # the hello
        chat = {"type": "msg", "seq": 1, "from": "Eve", "text": "looks joined", "time": 1.0}
        writer.write(json.dumps(chat).encode() + b"\n")
        if self.too_long:
            writer.write(b'{"type":"welcome","history":["' + b"x" * MAX_LINE + b'"]}\n')
        await writer.drain()
        await reader.read()


@pytest.fixture
def mute_host() -> Iterator[Callable[..., MuteHost]]:
    made: list[MuteHost] = []

    def make(**options: Any) -> MuteHost:
        made.append(MuteHost(**options))
        return made[-1]

    yield make
    for m in made:
        m.close()


@pytest.mark.parametrize("too_long", [False, True])
def test_a_joiner_never_let_in_fails_loudly_and_shows_nothing(
    workers: list[NetWorker], mute_host, too_long: bool
) -> None:
    server = mute_host(too_long=too_long)
    rec = Recorder()
    worker = NetWorker(rec)
    workers.append(worker)
    worker.join(
        JoinOptions("127.0.0.1", server.port, name="Ann", plain=True, welcome_wait=0.5, queue_max=3)
    )
    rec.wait_for(ev.Connecting)
    for i in range(5):  # typed before being let in: a few wait, the rest are refused
        worker.send(f"line {i}")
    failed = rec.wait_for(ev.Failed)
    if too_long:
        assert "sent a line too long to read before letting us in" in failed.text
    else:
        assert "did not let us in within 0.5 s" in failed.text
    assert failed.text.endswith("Not connected.")
    assert not rec.of(ev.Connected)
    assert not rec.of(ev.MessageReceived)  # "looks joined" was never shown
    refused = [e for e in rec.of(ev.ErrorShown) if "Not in the room yet" in e.text]
    assert len(refused) == 2


def test_a_reconnect_that_is_never_let_in_tries_again(start_host, join, relay, mute_host) -> None:
    """Let in once, then a server that never welcomes: the joiner keeps trying, never shows
    itself in the room."""
    host, hrec, port = start_host()
    link = relay(port)
    ann, arec = join(link.port, "Ann", plain=True, welcome_wait=0.3, **FAST)
    arec.wait_for(ev.Connected)
    mute = mute_host()
    link.target_port = mute.port  # new links now reach a host that never lets anyone in
    link.cut()
    arec.wait_for(ev.Reconnecting, lambda e: "did not let us in" in e.reason)
    assert len(arec.of(ev.Connected)) == 1
    assert not [e for e in arec.of(ev.MessageReceived) if e.text == "looks joined"]
    assert not arec.of(ev.Failed)


def test_what_waits_while_away_is_bounded_and_goes_out_once_back(start_host, join, relay) -> None:
    host, hrec, port = start_host()
    link = relay(port)
    ann, arec = join(link.port, "Ann", reconnect_initial=2.0, queue_max=5)
    arec.wait_for(ev.Connected)
    link.cut()
    arec.wait_for(ev.Reconnecting)
    for i in range(7):
        ann.send(f"away {i}")
    refused = arec.wait_for(ev.ErrorShown, lambda e: e.text.startswith("Not connected"))
    assert refused.text == (
        "Not connected: that message was not sent (5 are waiting to go out once back)."
    )
    arec.wait_for(ev.Connected, lambda e: e.resumed, timeout=DEADLINE + 2)
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "away 4")
    got = [e.text for e in hrec.of(ev.MessageReceived) if e.text.startswith("away")]
    assert got == [f"away {i}" for i in range(5)]
    assert len([e for e in arec.of(ev.ErrorShown) if e.text.startswith("Not connected")]) == 2


@pytest.fixture
def relay() -> Iterator[Callable[[int], Any]]:
    from tests.test_faults import Relay

    made: list[Relay] = []

    def make(port: int) -> Relay:
        made.append(Relay(port))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def join(join: Callable[..., Joined]) -> Callable[..., Joined]:
    def start(port: int, name: str, **options: object) -> Joined:
        return join(port, name, **{"keep_history": False, **options})

    return start
