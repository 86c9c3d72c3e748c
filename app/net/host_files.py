"""The host's file relay: `Relay` (floor 1) wired to the members' connections.

How this works
--------------
Every file frame a member sends goes to the `Relay`, which answers with frames for members. Chunks
(``file_data``) go into that member's *lane*, a queue the relay keeps to one window per stream;
every other frame is written at once, like chat. A lane is drained only while the member's
connection has room (`ROOM` bytes or less waiting in its transport) and nothing else was written
to it this loop turn, so chat is never queued behind file data and the room's backpressure
(`write_cap`) is never set off by a file. The host's own person (member 0) has its own
`Transfers`, wired straight to the relay.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from app import events as ev
from app.messages import Notice
from app.net.files import Transfers
from app.protocol import encode_text
from app.transfer import (
    FileAccept,
    FileCancel,
    FileData,
    FileDecline,
    FileDone,
    FileFrame,
    FileOffer,
    FileProblem,
    FileWindow,
    Out,
    Relay,
    encode_frame,
)

if TYPE_CHECKING:
    from app.net.host import Host, _Peer

LOCAL = 0
ROOM = 256 * 1024  # bytes waiting in a member's transport above which no chunk is added
POLL = 0.0002  # how soon to look again at a lane whose connection had no room


class HostFiles:
    def __init__(self, host: Host, max_size: int, downloads: Callable[[], Path]) -> None:
        self.host = host
        self.relay = Relay(max_size)
        self._lanes: dict[int, deque[bytes]] = {}
        self._timers: dict[int, asyncio.Handle] = {}
        self.local = Transfers(self._from_local, host.post, downloads)

    # --- in ------------------------------------------------------------------------------------

    def from_member(self, peer: _Peer, frame: FileFrame) -> None:
        if peer.kind != "app" or peer.id not in self.host.room:
            return
        try:
            self._deliver(self._handle(peer.id, frame))
        except FileProblem as exc:
            from app.messages import ProtocolError

            self.host._bad_line(peer, ProtocolError(exc.code, exc.text))

    def _from_local(self, frame: FileFrame) -> None:
        try:
            self._deliver(self._handle(LOCAL, frame))
        except FileProblem as exc:  # our own side's mistake: say so, serve on
            self.host.post(ev.ErrorShown(exc.text))

    def _handle(self, member_id: int, frame: FileFrame) -> list[Out]:
        room = self.host.room
        relay = self.relay
        if member_id not in room:
            return []
        name, key = room.name_of(member_id), room.member_key(member_id)
        if isinstance(frame, FileData):
            return relay.data(member_id, frame)
        if isinstance(frame, FileWindow):
            return relay.granted(member_id, frame)
        if isinstance(frame, FileOffer):
            members = {
                i: (room.name_of(i), room.member_key(i), room.kind_of(i)) for i in self._ids()
            }
            return relay.offer(member_id, name, frame, members)
        if isinstance(frame, FileAccept):
            return relay.accept(member_id, name, key, frame)
        if isinstance(frame, FileDecline):
            return relay.decline(member_id, name, key, frame)
        if isinstance(frame, FileCancel):
            return relay.cancel(member_id, name, frame)
        if isinstance(frame, FileDone):
            return relay.done(member_id, name, key, frame)
        raise FileProblem("unexpected", "That file frame is the host's to send.")

    def _ids(self) -> list[int]:
        room = self.host.room
        ids = [LOCAL] if LOCAL in room else []
        return ids + [i for i in self.host._peers if i in room]

    # --- members coming and going --------------------------------------------------------------

    def joined(self, member_id: int) -> None:
        room = self.host.room
        if member_id in room:
            kind = room.kind_of(member_id)
            self._deliver(self.relay.newcomer(member_id, room.member_key(member_id), kind))

    def gone(self, member_id: int, held: bool, name: str | None = None) -> None:
        """A member left: call before the room forgets it, or give its `name`."""
        self._lanes.pop(member_id, None)
        timer = self._timers.pop(member_id, None)
        if timer is not None:
            timer.cancel()
        if name is None and member_id in self.host.room:
            name = self.host.room.name_of(member_id)
        if name is not None:
            self._deliver(self.relay.member_left(member_id, name, held))

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._lanes.clear()
        self.local.close()

    # --- out -----------------------------------------------------------------------------------

    def _deliver(self, outs: list[Out]) -> None:
        for member_id, item in outs:
            if member_id == LOCAL:
                if isinstance(item, str):
                    self.host.post(ev.NoticeShown(item))
                else:
                    self.local.received(item)
                continue
            peer = self.host._peers.get(member_id)
            if peer is None:
                continue
            if isinstance(item, str):
                peer.write(encode_text(Notice(item)))
            elif isinstance(item, FileData):
                self._lanes.setdefault(member_id, deque()).append(encode_frame(item))
                self._drain(member_id)
            else:
                peer.write(encode_frame(item))

    def _drain(self, member_id: int) -> None:
        if member_id in self._timers:
            return
        lane = self._lanes.get(member_id)
        peer = self.host._peers.get(member_id)
        if not lane or peer is None or peer.transport is None or peer.closing:
            return
        transport = peer.transport
        while lane and not peer._out and transport.get_write_buffer_size() < ROOM:
            transport.write(lane.popleft())
        if lane:
            loop = asyncio.get_running_loop()
            delay = 0.0 if peer._out else POLL  # chat first: after its flush, this turn
            self._timers[member_id] = loop.call_later(delay, self._again, member_id)

    def _again(self, member_id: int) -> None:
        self._timers.pop(member_id, None)
        self._drain(member_id)
