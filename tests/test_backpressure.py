"""What waits per member is bounded per loop turn, so backpressure starts early (issue 13).

Eight text members flood while one member never reads. Their lines are written while the
host's loop is busy (so they all wait in its sockets at once, as under a real flood); the host
must not read them all in one turn and queue every byte for the stuck member before its
`write_cap` check can see it. The healthy members still get every line.
"""

from __future__ import annotations

import functools
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from app import events as ev
from tests.conftest import Hosted
from tests.helpers import DEADLINE, RawPeer
from tests.test_net import text_peer
from tests.test_size import on_loop

FLOODERS = 8
LINES = 120  # per flooder, 500 bytes each: 60 kB, which a socket holds unread
PAD = "x" * 480


@pytest.fixture
def start_host(start_host: Callable[..., Hosted]) -> Callable[..., Hosted]:
    return functools.partial(
        start_host,
        allow_plain=True,
        rate=0.0,
        byte_rate=0.0,
        connect_rate=0.0,
        max_per_address=64,
        stuck_wait=1.0,
    )


class Readers(threading.Thread):
    """Reads every healthy member's socket at once (as their apps would), counting the flood's
    lines each one receives, until each has its share or the deadline passes."""

    def __init__(self, peers: list[RawPeer], wanted: list[int]) -> None:
        super().__init__(daemon=True)
        self.peers, self.wanted = peers, wanted
        self.got = [0] * len(peers)

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        partial = [b""] * len(self.peers)
        for i, peer in enumerate(self.peers):
            partial[i] = peer.buf
            sel.register(peer.sock, selectors.EVENT_READ, i)
        end = time.monotonic() + 3 * DEADLINE
        while time.monotonic() < end and self.got != self.wanted:
            for key, _ in sel.select(0.2):
                i = key.data
                try:
                    chunk = self.peers[i].sock.recv(1 << 16, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
                except OSError:  # reset: counted as what it got
                    chunk = b""
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                *lines, partial[i] = (partial[i] + chunk).split(b"\n")
                self.got[i] += sum(1 for line in lines if b": F" in line)
        sel.close()


def test_a_flood_read_at_once_queues_at_most_a_turns_budget_for_a_stuck_member(
    start_host,
) -> None:
    host, hrec, port = start_host()
    stuck = RawPeer(port, rcvbuf=4096)  # a small window, set before connecting
    stuck.line("I will not read")
    stuck_name = stuck.read_until(r"^\* You are ").split()[3].rstrip(".")
    flooders = [text_peer(port)[0] for _ in range(FLOODERS)]
    reader, _ = text_peer(port)
    session = host._session
    options = session.options  # type: ignore[union-attr]

    where = f"127.0.0.1:{stuck.sock.getsockname()[1]}"

    def stuck_peer() -> Any:
        peers = session._peers.values()  # type: ignore[union-attr]
        return next((p for p in peers if p.address == where and p.transport is not None), None)

    def stuck_queue() -> int:
        """What the host holds for the stuck member itself (-1: it is gone)."""
        peer = stuck_peer()
        if peer is None:
            return -1
        return int(peer.transport.get_write_buffer_size() + sum(map(len, peer._out)))

    def small_system_buffer() -> None:
        """The system would otherwise take megabytes for it first (the send buffer grows to
        4 MB): keep that small, so the test reaches the host's own queue quickly."""
        sock = stuck_peer().transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)

    on_loop(host, small_system_buffer)

    def transport_queue() -> int:
        """What the stuck member's transport holds: the system would not take it, and
        the member never reads, so it stays (what the host's own list holds can still go
        out to the system at the end of the turn)."""
        peer = stuck_peer()
        return -1 if peer is None else int(peer.transport.get_write_buffer_size())

    healthy = [*flooders, reader]
    readers = Readers(healthy, [LINES * (FLOODERS - 1)] * FLOODERS + [LINES * FLOODERS])
    readers.start()
    # First fill what the system holds for the stuck member (its window, the host's send
    # buffer), until the host itself keeps something for it, still under write_cap.
    for i in range(2000):
        reader.line(f"P{i:04d} " + "p" * 4000)
        if on_loop(host, transport_queue) > 0:
            break
    start = on_loop(host, stuck_queue)
    assert 0 < start < options.write_cap, start

    def flood_while_the_loop_is_busy() -> None:
        for n, peer in enumerate(flooders):
            peer.sock.settimeout(5.0)  # fits unread; a bug here is an error, not a hang
            peer.send(b"".join(b"F%d-%03d %s\n" % (n, i, PAD.encode()) for i in range(LINES)))

    on_loop(host, flood_while_the_loop_is_busy)
    most, end = 0, time.monotonic() + 2 * options.stuck_wait + 1
    while time.monotonic() < end:
        size = on_loop(host, stuck_queue)
        if size < 0:  # dropped
            break
        most = max(most, size)
        time.sleep(0.005)
    # One turn reads the budget plus the one read that passed it (at most 256 KiB), not
    # every flooder's 60 kB: the stuck member's queue grows by no more than that.
    assert start < most <= start + options.read_budget + (1 << 18), (start, most)
    hrec.wait_for(ev.MemberLeft, lambda e: e.name == stuck_name and e.reason == "not reading")
    readers.join(3 * DEADLINE)
    assert readers.got == readers.wanted  # every healthy member got every line
    assert not [e for e in hrec.of(ev.MemberLeft) if e.name != stuck_name]
