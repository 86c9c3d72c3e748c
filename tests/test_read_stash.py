"""Past the turn's read budget only the members actually read are paused (their read is kept
as it came and handled when reading is renewed), not every member: pausing and resuming all
of them cost an epoll_ctl per member each way, each time the budget was spent (about a tenth
of the host's CPU in a bulk flood). Over real sockets: who is paused, and that every line
still arrives, once, in each sender's order, also from a sender that leaves at once (fails
before on both counts: every member was paused, and the leaver's lines were lost)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.helpers import RawPeer, text_peer
from tests.test_backpressure import start_host as start_host  # plain members, no limits
from tests.test_size import on_loop

SENDERS = 10
LINES = 20  # per sender, about 30 bytes each: 600 bytes, in one write


def _count_pauses(session: Any, paused: list[int]) -> None:
    """Note every member whose reading the host pauses (on the host's loop)."""
    for peer in session._peers.values():
        transport = peer.transport
        pause = transport.pause_reading

        def counted(pause: Callable[[], None] = pause, member: int = peer.id) -> None:
            paused.append(member)
            pause()

        transport.pause_reading = counted


def test_a_spent_read_budget_pauses_only_the_members_read_past_it(start_host) -> None:
    host, hrec, port = start_host(read_budget=2048)  # spent after about four of the ten reads
    senders: list[RawPeer] = []
    names: list[str] = []
    for _ in range(SENDERS):
        peer, name = text_peer(port)
        senders.append(peer)
        names.append(name)
    reader, reader_name = text_peer(port)
    session = host._session
    ids = {
        name: member
        for member in session._peers  # type: ignore[union-attr]
        if (name := session.room.name_of(member)) in (*names, reader_name)  # type: ignore[union-attr]
    }
    paused: list[int] = []
    on_loop(host, lambda: _count_pauses(session, paused))

    def send_while_the_loop_is_busy() -> None:  # all ten wait in the host's sockets at once
        for n, peer in enumerate(senders):
            peer.send(b"".join(b"S%d-%02d %s\n" % (n, i, b"y" * 20) for i in range(LINES)))
        # One leaves at once, its own socket still holding what it was sent: a reset. Before,
        # its lines waited unread in the host's paused socket, the host's next write to it
        # failed and they were lost; read now (if kept, handled as it goes), they arrive.
        senders[-1].sock.close()

    on_loop(host, send_while_the_loop_is_busy)
    got: dict[str, list[int]] = {name: [] for name in names}
    pattern = "^(" + "|".join(map(re.escape, names)) + r"): S\d+-(\d+) "
    for _ in range(SENDERS * LINES):
        line = reader.read_until(pattern)
        match = re.match(pattern, line)
        assert match is not None
        got[match[1]].append(int(match[2]))
    assert all(seen == list(range(LINES)) for seen in got.values()), got
    # Paused: some senders (read after the budget was spent), each once; never the reader,
    # which sent nothing, nor the senders read before the budget was spent.
    assert paused, "the budget was never spent: the test sends too little"
    assert ids[reader_name] not in paused
    assert len(paused) == len(set(paused)) < SENDERS
