"""A busy room's writes gathered across loop turns (`HostOptions.gather`), over real sockets.

A flush goes at once when the last one was at least `quiet` ago, else `gather` after the first
line written for it: lines the host reads one by one within that time reach each member in one
send (one TCP segment, which the member's socket counts: `tcpi_data_segs_in`). A quiet room's
line is not held, and `read_budget` bytes read since the last flush send it at once too. The
tests set `gather` far longer than they run, so nothing depends on how fast this machine is:
what ends the wait is the event under test (an arrival, the budget), never the clock. While a
gathered flush waits, the worker's loop sleeps until it is due (app/hold.py) and reads what came
meanwhile together: the one test of that compares the times the host stamped the lines.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from app import events as ev
from app import hold
from app.net import host as host_module
from app.worker import NetWorker
from tests.helpers import RawPeer, text_peer, wait_until
from tests.test_size import on_loop

T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="counts TCP segments with Linux's TCP_INFO"
)

LONG = 60.0  # a gather no test waits for


def _data_segments_in(peer: RawPeer) -> int:
    """TCP segments with data this socket has received (Linux `tcp_info.tcpi_data_segs_in`)."""
    info = peer.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, 152)[0])


def _session(worker: NetWorker) -> Any:
    return worker._session


def _said(worker: NetWorker, sender: RawPeer, text: str) -> None:
    """`sender` says `text`; returns once the host has numbered it (read and stamped)."""
    before = on_loop(worker, lambda: _session(worker).room.last_seq)
    sender.line(text)
    wait_until(
        lambda: on_loop(worker, lambda: _session(worker).room.last_seq) > before,
        lambda: f"the host did not read {text!r}",
    )


def _host(start_host: Callable[..., Any], **options: object) -> tuple[NetWorker, Any, int]:
    return start_host(allow_plain=True, rate=0, byte_rate=0, **options)  # type: ignore[no-any-return]


def test_lines_read_one_by_one_in_a_busy_room_reach_a_member_in_one_send(start_host) -> None:
    worker, hrec, port = _host(start_host, gather=LONG)
    reader, _ = text_peer(port)
    sender, name = text_peer(port)  # its arrival hurried the flush (see below)
    reader.read_until(rf"^{name}: hi$")
    segments = _data_segments_in(reader)
    gathered = on_loop(worker, lambda: _session(worker).gathered_flushes)
    for text in ("two", "three", "four"):  # read by the host in three turns
        _said(worker, sender, text)
    # The three wait for one flush, `gather` after the last; an arrival (a change the host's
    # own person is shown at once) sends what waits first, in the room's order.
    _, late_name = text_peer(port)
    assert [reader.read_until(f"^{name}: ") for _ in range(3)] == [
        f"{name}: two",
        f"{name}: three",
        f"{name}: four",
    ]
    reader.read_until(rf"^\* {late_name} joined")
    assert reader.read_until(f"^{late_name}: ") == f"{late_name}: hi"  # said as it arrived
    assert _data_segments_in(reader) - segments == 1  # the lines, the arrival, its "hi"
    assert on_loop(worker, lambda: _session(worker).gathered_flushes) == gathered + 1
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "four")
    said = [e.text for e in hrec.of(ev.MessageReceived) if e.sender == name]
    assert said == ["hi", "two", "three", "four"]  # the host's own view: each once, in order


def test_a_line_in_a_quiet_room_is_not_held(start_host) -> None:
    gather = 0.2
    worker, _, port = _host(start_host, gather=gather)
    reader, _ = text_peer(port)
    sender, name = text_peer(port)
    reader.read_until(rf"^{name}: hi$")

    def quiet() -> bool:
        host = _session(worker)
        now = on_loop(worker, lambda: worker._loop.time())  # type: ignore[union-attr]
        return bool(now - host._last_flush >= gather and not host._flush_due)

    wait_until(quiet, lambda: "the room never fell quiet")
    gathered = on_loop(worker, lambda: _session(worker).gathered_flushes)
    sender.line("alone")
    assert reader.read_until(f"^{name}: ") == f"{name}: alone"
    # Sent by the flush at the end of the turn that read it, not by a gathered one.
    assert on_loop(worker, lambda: _session(worker).gathered_flushes) == gathered


def test_a_read_budget_read_since_the_last_flush_sends_at_once(start_host) -> None:
    budget = 256
    worker, _, port = _host(start_host, gather=LONG, read_budget=budget)
    reader, _ = text_peer(port)
    sender, name = text_peer(port)
    reader.read_until(rf"^{name}: hi$")
    short = "a short line"
    _said(worker, sender, short)  # held: the flush waits (far longer than this test)
    long = "x" * budget
    sender.line(long)  # past the budget: what waits goes at the end of this turn
    assert reader.read_until(f"^{name}: ") == f"{name}: {short}"
    assert reader.read_until(f"^{name}: ") == f"{name}: {long}"


def _quiet_since(worker: NetWorker, seconds: float) -> bool:
    """No flush for `seconds`, and none due."""
    host = _session(worker)
    now = on_loop(worker, lambda: worker._loop.time())  # type: ignore[union-attr]
    return bool(now - host._last_flush >= seconds and not host._flush_due)


def test_a_busy_room_gathers_from_the_first_line_written_not_from_the_last_flush(
    start_host,
) -> None:
    # `gather` after the last flush has passed, but not `quiet`: the line waits `gather` for
    # others (before, a flush once `gather` had passed since the last went at once, alone).
    gather = 0.2
    worker, _, port = _host(start_host, gather=gather, quiet=LONG)
    reader, _ = text_peer(port)
    sender, name = text_peer(port)
    reader.read_until(rf"^{name}: hi$")
    wait_until(lambda: _quiet_since(worker, gather), lambda: "the room never fell quiet")
    gathered = on_loop(worker, lambda: _session(worker).gathered_flushes)
    sender.line("not alone")
    assert reader.read_until(f"^{name}: ") == f"{name}: not alone"
    assert on_loop(worker, lambda: _session(worker).gathered_flushes) == gathered + 1


def test_the_loop_sleeps_through_a_gathered_flush_and_reads_what_came_meanwhile(
    start_host, monkeypatch
) -> None:
    gather = 1.0
    monkeypatch.setattr(hold, "LONGEST", gather)  # hold through this test's long gather
    worker, hrec, port = _host(start_host, gather=gather, quiet=LONG)
    selector = hold.for_loop(worker._loop)  # type: ignore[arg-type]
    assert selector is not None  # the worker's loop runs on a holding selector
    reader, _ = text_peer(port)
    sender, name = text_peer(port)
    reader.read_until(rf"^{name}: hi$")
    held = selector.held
    host = _session(worker)
    before = host.room.last_seq
    sender.line("one")  # read: its flush waits `gather`, and the loop sleeps until then
    # (watched from this thread: a call into the sleeping loop would wait for the flush too)
    wait_until(lambda: host.room.last_seq > before, lambda: "the host did not read 'one'")
    sent = time.time()
    sender.line("two")  # at once, but read only when the flush is due, with "three"
    sender.line("three")
    assert [reader.read_until(f"^{name}: ") for _ in range(3)] == [
        f"{name}: one",
        f"{name}: two",
        f"{name}: three",
    ]
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "three")
    stamped = {e.text: e.time for e in hrec.of(ev.MessageReceived) if e.sender == name}
    assert stamped["two"] - sent > gather / 2  # it waited for the flush in the kernel
    assert stamped["three"] == stamped["two"]  # ... and was read with "three", in one turn
    assert selector.held > held


def test_what_is_not_chat_waits_only_until_gather_after_the_last_flush(start_host) -> None:
    # A reply to one member (here /who; a file's frames go the same way, and their round
    # trips pace a transfer) is not held `gather` after itself, as chat is: it goes once
    # `gather` has passed since the last flush, at once here.
    gather = 0.2
    worker, _, port = _host(start_host, gather=gather, quiet=LONG)
    sender, name = text_peer(port)
    wait_until(lambda: _quiet_since(worker, gather), lambda: "the room never fell quiet")
    gathered = on_loop(worker, lambda: _session(worker).gathered_flushes)
    sender.line("/who")
    assert sender.read_until(r"^\* In the room: ").startswith("* In the room: ")
    assert on_loop(worker, lambda: _session(worker).gathered_flushes) == gathered


def test_a_larger_room_gathers_its_chat_longer_up_to_gather_most(start_host) -> None:
    # A flush costs a send per member: the wait for more lines grows with the room
    # (`gather_per_member`), from `gather` up to `gather_most`, never below `gather`.
    worker, _, port = _host(start_host, gather=0.2, gather_per_member=0.1, gather_most=0.5)
    host = _session(worker)
    waits = []
    peers = []
    for size in range(2, 8):  # the room: the host's own person and 1 ... 6 members
        peers.append(text_peer(port)[0])
        wait_until(lambda n=size: len(host.room) == n, lambda: "a member never came in")
        waits.append(on_loop(worker, host._chat_gather))
    assert waits == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.5, 0.5])


def _long_wait_room(start_host: Callable[..., Any]) -> tuple[NetWorker, int, RawPeer, RawPeer, str]:
    """A room whose chat would wait a minute for more (the longer wait of a large room, far
    longer than a test runs), `gather` 0.2 s, with a reader and a sender, fallen quiet."""
    gather = 0.2
    worker, _, port = _host(
        start_host, gather=gather, quiet=LONG, gather_per_member=LONG, gather_most=LONG
    )
    reader, _ = text_peer(port)
    sender, name = text_peer(port)
    reader.read_until(rf"^{name}: hi$")
    wait_until(lambda: _quiet_since(worker, gather), lambda: "the room never fell quiet")
    return worker, port, reader, sender, name


def test_anything_else_written_cuts_a_large_rooms_longer_chat_wait_short(start_host) -> None:
    # The room's chat would wait a minute for more (far longer than this test); a reply to
    # one member, which waits only `gather` after the last flush, takes it along.
    worker, port, reader, sender, name = _long_wait_room(start_host)
    _said(worker, sender, "waiting for more")
    assert on_loop(worker, _session(worker).flush_wait) > LONG / 2
    reader.line("/who")
    assert reader.read_until(f"^{name}: ") == f"{name}: waiting for more"  # first: its order
    assert reader.read_until(r"^\* In the room: ").startswith("* In the room: ")


def test_after_a_flush_of_a_floods_lines_a_large_room_waits_only_gather(start_host) -> None:
    # The longer wait is for a few lines: once a flush carried `GATHERED` chats or more, the
    # next waits `gather`, as in a small room (here: instead of a minute), however few.
    worker, port, reader, sender, name = _long_wait_room(start_host)
    many = host_module.GATHERED
    for i in range(many):
        _said(worker, sender, f"line {i}")  # a flood's: they go `gather` after the first
    for i in range(many):
        assert reader.read_until(f"^{name}: ") == f"{name}: line {i}"
    sender.line("then this")
    assert reader.read_until(f"^{name}: ") == f"{name}: then this"


def test_a_floods_lines_end_a_large_rooms_longer_wait_after_gather(start_host) -> None:
    # While the longer wait lasts, `GATHERED` chats read make it a flood's: they go `gather`
    # after the first of them (here: instead of a minute).
    worker, port, reader, sender, name = _long_wait_room(start_host)
    _said(worker, sender, "line 0")
    assert on_loop(worker, _session(worker).flush_wait) > LONG / 2
    many = host_module.GATHERED
    for i in range(1, many):
        sender.line(f"line {i}")
    for i in range(many):
        assert reader.read_until(f"^{name}: ") == f"{name}: line {i}"


def test_after_a_flush_of_a_few_lines_a_large_room_waits_longer(start_host) -> None:
    worker, port, reader, sender, name = _long_wait_room(start_host)
    _said(worker, sender, "few")
    _said(worker, sender, "lines")
    text_peer(port)  # an arrival, shown at once, sends them first: one flush of two
    assert reader.read_until(f"^{name}: ") == f"{name}: few"
    assert reader.read_until(f"^{name}: ") == f"{name}: lines"
    _said(worker, sender, "waits")
    assert on_loop(worker, _session(worker).flush_wait) > LONG / 2
    _, late = text_peer(port)  # an arrival, shown at once, sends what waits first
    assert reader.read_until(f"^{name}: ") == f"{name}: waits"
    reader.read_until(rf"^\* {late} joined")
