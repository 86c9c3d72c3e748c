"""Faults over real sockets: dropped links, a killed host, half-open connections, junk bytes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from app import events as ev
from tests.conftest import Hosted, Joined
from tests.helpers import ROOT, LoopServer, RawPeer, Recorder, cli_host

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.2}


class Relay(LoopServer):
    """A TCP relay a test can break: stop passing bytes one way or both, or cut every link.

    Bytes that are not passed are lost, as they would be in a network that dies under them.
    TLS passes through untouched: the joiner still sees the host's own certificate.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = True  # joiner -> host
        self.down = True  # host -> joiner
        super().__init__()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.links.append((writer, up_w))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, way: str) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    if getattr(self, way):
                        dst.write(data)
                        await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_w, "up"), pump(up_r, writer, "down"))

    def set(self, up: bool, down: bool) -> None:
        def change() -> None:
            self.up, self.down = up, down

        self.call(change)

    def cut(self) -> None:
        """Every current link dies at once (RST), as when a Wi-Fi link drops."""

        def cut_all() -> None:
            for a, b in self.links:
                for w in (a, b):
                    w.transport.abort()
            self.links.clear()

        self.call(cut_all)


@pytest.fixture
def relay() -> Iterator[Callable[[int], Relay]]:
    made: list[Relay] = []

    def make(port: int) -> Relay:
        r = Relay(port)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def start_host(start_host: Callable[..., Hosted]) -> Callable[..., Hosted]:
    """Rooms here admit text peers (nc) too."""
    return functools.partial(start_host, allow_plain=True)


@pytest.fixture
def join(join: Callable[..., Joined]) -> Callable[..., Joined]:
    """Joiners here come back quickly after a drop."""

    def start(port: int, name: str, **options: object) -> Joined:
        worker, rec = join(port, name, **{**FAST, **options})
        rec.wait_for(ev.Connected)
        return worker, rec

    return start


def count(rec: Recorder, text: str, mine: bool | None = None) -> int:
    return sum(
        1 for e in rec.of(ev.MessageReceived) if e.text == text and (mine is None or e.mine == mine)
    )


def test_a_dropped_link_reconnects_and_every_message_arrives_exactly_once(
    start_host, join, relay
) -> None:
    host, hrec, port = start_host()
    link = relay(port)
    ann, arec = join(link.port, "Ann")
    bob, brec = join(port, "Bob")
    ann.send("one")
    brec.wait_for(ev.MessageReceived, lambda e: e.text == "one")

    # "two" leaves Ann but never reaches the host; then the link dies.
    link.set(up=False, down=True)
    ann.send("two")
    arec.wait_for(ev.MessagePending, lambda e: e.text == "two")
    link.cut()
    reconnecting = arec.wait_for(ev.Reconnecting)
    assert reconnecting.reason == "The connection to the host was lost."
    hrec.wait_for(ev.MemberLeft, lambda e: e.name == "Ann")
    # While Ann is away, her name is kept for her, and Bob talks.
    carl, crec = join(port, "Ann")
    assert crec.wait_for(ev.Connected).name == "Ann (2)"
    bob.send("while you were away")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "while you were away")
    link.set(up=True, down=True)

    back = arec.wait_for(ev.Connected, lambda e: e.resumed)
    assert back.name == "Ann"
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "two" and e.mine)
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "while you were away")
    brec.wait_for(ev.MessageReceived, lambda e: e.text == "two")
    # "three": the host takes it, but the acknowledgement back to Ann is lost with the link.
    link.set(up=True, down=False)
    ann.send("three")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "three")
    link.cut()
    link.set(up=True, down=True)
    arec.wait_for(ev.Connected, lambda e: e.resumed and e is not back)
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "three" and e.mine)
    bob.send("marker")
    for rec in (arec, crec):
        rec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    for text in ("one", "two", "three", "while you were away"):
        assert count(brec, text) == 1, text
        assert count(crec, text) <= 1, text
        assert count(arec, text) == 1, text
    assert count(arec, "three", mine=True) == 1
    # Everyone sees the room's order.
    seqs = [e.seq for e in brec.of(ev.MessageReceived)]
    assert seqs == sorted(seqs)


@pytest.mark.parametrize("history", [True, False], ids=["kept", "no-history"])
def test_the_host_killed_and_restarted_loses_and_doubles_nothing(join, history: bool) -> None:
    """With its room log (the default) a restarted host resumes Ann and Bob as themselves;
    with --no-history it does not know them any more. Either way nothing is lost or doubled."""
    extra = () if history else ("--no-history",)
    host = cli_host(0, *extra)
    port = int(host.expect(r"on port (\d+)").group(1))
    try:
        ann, arec = join(port, "Ann")
        bob, brec = join(port, "Bob")
        ann.send("before")
        brec.wait_for(ev.MessageReceived, lambda e: e.text == "before")
        # Acknowledged too: a kill before the echo reached Ann would rightly make her send it
        # again to the new host, which cannot know it had it.
        arec.wait_for(ev.MessageReceived, lambda e: e.text == "before" and e.mine)
        host.p.send_signal(signal.SIGKILL)
        host.wait()
        arec.wait_for(ev.Reconnecting)
        brec.wait_for(ev.Reconnecting)
        ann.send("while the host was down")
        arec.wait_for(ev.MessagePending, lambda e: e.text == "while the host was down")
        host.kill()
        host = cli_host(port, *extra)  # same port, same identity (same data folder)
        for rec in (arec, brec):
            if history:
                rec.wait_for(ev.Connected, lambda e: e.resumed)
            else:
                rec.wait_for(ev.Connected, lambda e: e.note is not None and "restarted" in e.note)
        arec.wait_for(ev.MessageReceived, lambda e: e.text == "while the host was down" and e.mine)
        brec.wait_for(ev.MessageReceived, lambda e: e.text == "while the host was down")
        host.expect("^Ann: while the host was down$")
        bob.send("marker")
        arec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
        assert count(brec, "while the host was down") == 1
        assert count(arec, "while the host was down") == 1
        assert count(brec, "before") == 1
    finally:
        host.kill()


def test_a_member_that_vanished_without_closing_is_found_by_keepalive(start_host, join) -> None:
    host, hrec, port = start_host(keepalive=0.6)
    ann, arec = join(port, "Ann")
    ghost = RawPeer(port)
    ghost.line('{"type":"hello","version":1,"name":"Ghost"}')
    ghost.read_until('"welcome"')
    # From now on the ghost's machine is gone: no FIN, no answer to pings.
    left = arec.wait_for(ev.MemberLeft, lambda e: e.name == "Ghost", timeout=10)
    assert left.reason == "connection lost: no answer"
    ann.send("still flowing")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "still flowing")


def test_a_host_that_went_silent_is_found_by_the_joiner(start_host, join, relay) -> None:
    host, hrec, port = start_host()
    link = relay(port)
    ann, arec = join(link.port, "Ann", keepalive=0.6)
    link.set(up=False, down=False)  # half-open: nothing passes, nothing closes
    reconnecting = arec.wait_for(ev.Reconnecting, timeout=10)
    assert reconnecting.reason.startswith("The host is not answering")
    link.set(up=True, down=True)
    arec.wait_for(ev.Connected, lambda e: e.resumed)
    ann.send("back")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "back")


def test_a_member_killed_with_sigkill_mid_line(start_host, join) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port, "Ann")
    script = (
        "import os, signal, socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}))\n"
        "s.sendall(b'hello\\nhalf a li')\n"
        "s.recv(1)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=30)
    assert done.returncode == -signal.SIGKILL
    left = arec.wait_for(ev.MemberLeft, lambda e: e.name == "guest1")
    assert left.reason == "connection lost"
    assert "hello" in arec.texts()
    assert not [t for t in arec.texts() if "half" in t]
    ann.send("after the kill")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "after the kill")


def test_random_bytes_on_many_connections_leave_the_room_working(start_host, join) -> None:
    # 60 connections at once from one address: over the cap on new connections per address
    # (tests/test_abuse.py), lifted here because this test is about junk, not connection rates.
    host, hrec, port = start_host(max_per_address=100, handshake_timeout=2, connect_rate=0)
    rng = random.Random(20261124)
    junk = []
    for i in range(60):
        peer = RawPeer(port)
        blob = rng.randbytes(rng.randrange(1, 20000))
        if i % 3 == 0:
            blob = b"\x16\x03\x01" + blob  # looks like TLS, is not
        elif i % 3 == 1:
            blob = b'{"type":"hello","version":1,"name":"x"}\n' + blob
        with contextlib.suppress(OSError):
            peer.send(blob)
        junk.append(peer)
    for peer in junk:
        peer.close()
    ann, arec = join(port, "Ann")
    bob, brec = join(port, "Bob")
    ann.send("a normal conversation")
    brec.wait_for(ev.MessageReceived, lambda e: e.text == "a normal conversation")
    bob.send("still works")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "still works")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "still works")


def test_a_command_answered_before_a_drop_is_not_sent_again_after_it(
    start_host, join, relay
) -> None:
    """A command is answered, never numbered or echoed: once it has gone out it is done. Had
    it stayed among the messages waiting for their echo, every reconnect would send "/who"
    (or "/nick") again and show an answer nobody asked for."""
    host, hrec, port = start_host()
    link = relay(port)
    ann, arec = join(link.port, "Ann")
    ann.send("/who")
    arec.wait_for(ev.NoticeShown, lambda e: e.text.startswith("In the room:"))
    first = arec.wait_for(ev.Connected)
    link.cut()
    arec.wait_for(ev.Connected, lambda e: e.resumed and e is not first)
    ann.send("marker")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "marker" and e.mine)
    answers = [e for e in arec.of(ev.NoticeShown) if e.text.startswith("In the room:")]
    assert len(answers) == 1
