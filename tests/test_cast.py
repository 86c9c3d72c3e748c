"""A loop turn's chats for everyone, joined (`Host._cast_chats` / `_seal`), over real sockets.

To put several members' reads into one loop turn, a test blocks the host's loop (a callback
that waits on a gate), has the members write, then opens the gate: the next turn reads every
ready connection. What each member then reads must be exactly what the room said to it, in
the room's order (the host's own person sees every public message, in that order), never its
own lines, and a member that joined within the turn only what was said after its greeting.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from app import events as ev
from app.messages import Chat
from app.net.host import _joined
from app.worker import NetWorker
from tests.helpers import DEADLINE, RawPeer, cli_host, text_peer


@contextmanager
def _one_turn(worker: NetWorker) -> Iterator[None]:
    """Block the host's loop while the body writes; what was written is read in one turn."""
    loop = worker._loop
    assert loop is not None
    blocked, gate = threading.Event(), threading.Event()

    def wait() -> None:
        blocked.set()
        gate.wait(DEADLINE)

    loop.call_soon_threadsafe(wait)
    assert blocked.wait(DEADLINE)
    try:
        yield
    finally:
        gate.set()


def _until(peer: RawPeer, last: str) -> list[str]:
    """The lines `peer` reads up to and including `last`."""
    lines: list[str] = []
    while not lines or lines[-1] != last:
        lines.append(peer.read_until(""))
    return lines


def _public(rec_events: list[ev.Event]) -> list[str]:
    """What the host's own person saw of others, as a text member reads it."""
    out: list[str] = []
    for event in rec_events:
        if isinstance(event, ev.MessageReceived) and event.private is None:
            out.append(f"{event.sender}: {event.text}")  # the host's own lines too
        elif isinstance(event, ev.MemberRenamed):
            out.append(f"* {event.old} is now {event.new}.")
    return out


def test_lines_of_many_senders_in_one_turn_reach_everyone_in_order_but_their_own(
    start_host,
) -> None:
    worker, hrec, port = start_host(allow_plain=True, rate=0, byte_rate=0)
    peers = [text_peer(port) for _ in range(4)]
    names = [name for _, name in peers]
    hrec.wait_for(ev.MemberJoined, lambda e: e.name == names[-1])
    worker.send("ready")
    for peer, _ in peers:
        peer.read_until("^Hal: ready$")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "ready")
    start = len(hrec.events)
    (a, an), (b, bn), (c, cn), (d, dn) = peers
    with _one_turn(worker):
        a.send(b"a1\na2\n")
        b.send(f"b1\n/msg {an} secret\nb2\n".encode())
        c.send(b"c1\n/nick Cee\nc2\n")
        d.send(b"d1\n")
        a.send(b"a3\n")  # a second write (it may come in a later turn: Nagle)
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "c2")
    worker.send("marker")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    said = [line for line in _public(hrec.events[start:]) if line != "Hal: ready"]
    assert {"c2", "d1", "a3", "b2"} <= {line.split(": ", 1)[-1] for line in said}
    for peer, own in ((a, {an}), (b, {bn}), (c, {cn, "Cee"}), (d, {dn})):
        heard = _until(peer, "Hal: marker")
        public = [line for line in heard if "secret" not in line and "Cee" not in line]
        expected = [
            line for line in said if line.split(": ", 1)[0] not in own and "Cee" not in line
        ]
        assert public == expected[: expected.index("Hal: marker") + 1], own
        renamed = [line for line in heard if "Cee" in line and ": " not in line]
        assert len(renamed) == 1, own  # told once, between c1 and c2
        if peer is not c:
            assert heard.index(f"{cn}: c1") < heard.index(renamed[0]) < heard.index("Cee: c2")
        private = [line for line in heard if "secret" in line]
        if peer is a:
            assert len(private) == 1  # between b1 and b2, as B said them
            assert heard.index(f"{bn}: b1") < heard.index(private[0]) < heard.index(f"{bn}: b2")
        elif peer is b:
            assert len(private) == 1  # its own private line, shown as sent
        else:
            assert private == []


def test_a_member_joining_within_a_turn_gets_each_line_once_from_its_greeting_on(
    start_host,
) -> None:
    worker, hrec, port = start_host(allow_plain=True, rate=0, byte_rate=0)
    (a, an), (b, bn) = text_peer(port), text_peer(port)
    hrec.wait_for(ev.MemberJoined, lambda e: e.name == bn)
    new = RawPeer(port)
    new.read_until("^PARLEY/2 ")  # greeted: what is said from now on is its to hear
    worker.send("since the greeting")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "since the greeting")
    start = len(hrec.events)
    with _one_turn(worker):
        a.send(b"".join(b"a%d\n" % i for i in range(20)))
        new.send(b"hello from new\n")  # its first line: admitted within this turn
        b.send(b"".join(b"b%d\n" % i for i in range(20)))
    joined = hrec.wait_for(ev.MemberJoined, lambda e: e.name not in (an, bn))
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "b19")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "a19")
    worker.send("marker")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    said = [line for line in _public(hrec.events[start:]) if not line.startswith(joined.name)]
    said = said[: said.index("Hal: marker") + 1]
    heard = _until(new, "Hal: marker")
    chats = [line for line in heard if ": " in line and not line.startswith(("* ", "("))]
    assert chats[0] == "Hal: since the greeting"
    assert chats[1:] == said  # every line of a and b once, in the room's order
    assert len(set(chats)) == len(chats)


def test_joined_pieces_and_a_senders_slices_leave_out_exactly_its_own() -> None:
    groups = [
        [Chat(1, "Ann", "one", 0.0), Chat(2, "Ann", "two", 0.0)],
        [Chat(3, "Bob", "three", 0.0)],
        [Chat(4, "Ann", "four", 0.0)],
    ]
    data, starts = _joined(groups, "text")
    assert data == b"Ann: one\nAnn: two\nBob: three\nAnn: four\n"
    assert [data[starts[i] : starts[i + 1]] for i in range(3)] == [
        b"Ann: one\nAnn: two\n",
        b"Bob: three\n",
        b"Ann: four\n",
    ]
    app, app_starts = _joined(groups, "app")
    assert app.count(b"\n") == 4
    assert app_starts[-1] == len(app)


def test_a_host_asked_for_batches_tells_its_person_a_turns_chats_in_one_event(
    start_host,
) -> None:
    worker, hrec, port = start_host(allow_plain=True, rate=0, byte_rate=0, view_batches=True)
    (a, an), (b, bn) = text_peer(port), text_peer(port)
    hrec.wait_for(ev.MemberJoined, lambda e: e.name == bn)
    before = len(hrec.of(ev.ChatsReceived))
    with _one_turn(worker):
        a.send(b"".join(b"a%d\n" % i for i in range(30)))
        b.send(b"".join(b"b%d\n" % i for i in range(30)))
    for last in ("a29", "b29"):
        hrec.wait_for(ev.ChatsReceived, lambda e, last=last: e.chats[-1].text == last)
    worker.send("marker")  # the host's own line: a MessageReceived, after the batches
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    batches = hrec.of(ev.ChatsReceived)[before:]
    said = [(c.sender, c.text) for batch in batches for c in batch.chats]
    assert sorted(said) == sorted(
        [(an, f"a{i}") for i in range(30)] + [(bn, f"b{i}") for i in range(30)]
    )
    seqs = [c.seq for batch in batches for c in batch.chats]
    assert seqs == sorted(seqs)
    assert len(batches) <= 2  # one per read at most, not one per line
    assert not [e for e in hrec.of(ev.MessageReceived) if e.text.startswith(("a1", "b1"))]
    kinds = [type(e) for e in hrec.events if isinstance(e, ev.ChatsReceived | ev.MessageReceived)]
    assert kinds[-1] is ev.MessageReceived  # the marker came after them, in order


def test_the_terminal_host_shows_a_burst_in_order() -> None:
    host = cli_host(0, "--allow-plain", "--rate", "0")
    port = int(host.expect(r"on port (\d+)").group(1))
    try:
        sender, name = text_peer(port)
        sender.send("".join(f"burst {i}\n" for i in range(300)).encode())
        host.expect(rf"^{name}: burst 299$")
        sender.line("two words")
        host.expect(rf"^{name}: two words$")
        shown = [line for line in host.seen if line.startswith(f"{name}: ")]
        assert shown == [f"{name}: {x}" for x in ["hi", *(f"burst {i}" for i in range(300))]] + [
            f"{name}: two words"
        ]
    finally:
        host.kill()
