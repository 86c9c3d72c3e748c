"""The host's file relay: `Relay` (floor 1) wired to the members' connections.

How this works
--------------
Every file frame a member sends goes to the `Relay`, which answers with frames for members. A
chunk's header is checked when it is read (`check_chunk`, before its payload is taken: a stream
the sender does not own, out of order or over the window is fatal for that connection alone).
The relay holds chunks the receiver has no room for (flow control is hop by hop: `Relay`);
those it lets go (``file_data``: a header line and raw bytes) go into the receiver's *lane*, a
queue kept within the receiver's window per stream; every other frame is written at once, like
chat. A lane is
drained only while the member's connection has room (`ROOM` bytes or less waiting in its
transport) and nothing else was written to it this loop turn, so chat is never queued behind
file data. A chunk is written as its header and its payload in one `writelines` (the payload is
the very bytes object the sender's read produced: never copied to be relayed). A member that
receives files may have one chunk more waiting than `write_cap` (`_allow_chunk`), so the room's
backpressure is set off by chat piling up, not by a file chunk. The host's own person
(member 0) has its own `Transfers`, wired straight to the relay.

Members whose hello says protocol version 1 (base64 chunks inside JSON lines) speak an older
framing: they are never sent an offer or a chunk, only one line saying a file was offered and that
they need a newer Parley, and whatever file frame they send is refused with a line saying so.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from app import events as ev
from app.messages import Notice, ProtocolError
from app.net.files import Transfers
from app.partials import KEPT, KeptParts
from app.paths import data_dir
from app.transfer import (
    MAX_CHUNK,
    FileAccept,
    FileCancel,
    FileData,
    FileDecline,
    FileDone,
    FileFrame,
    FileOffer,
    FileProblem,
    FileRefused,
    FileWindow,
    Out,
    Relay,
    encode_data,
    encode_frame,
)

if TYPE_CHECKING:
    from app.net.host import Host, _Peer

LOCAL = 0
ROOM = 0  # bytes waiting in a member's (TLS) transport above which no chunk is added
FILE_READ_SIZE = 256 * 1024  # a file sender's TLS reads (`_widen_reads`)
POLL = 0.0005  # how soon to look again at a lane whose connection had no room
FILES_VERSION = 2  # the first protocol version whose chunks are raw bytes after a header
OLD_PEER = (
    "Your Parley is too old to send or receive files in this room (this host speaks protocol "
    "version 2). Update Parley to use files; chat works as before."
)
OFFERS_TOO_FAST = (
    "You are offering files too fast for this room; wait a few seconds, then offer this one again."
)


class HostFiles:
    def __init__(self, host: Host, max_size: int, downloads: Callable[[], Path]) -> None:
        self.host = host
        self.relay = Relay(max_size)
        self._lanes: dict[int, deque[tuple[bytes, bytes]]] = {}
        self._allowed: set[int] = set()  # members whose write limit has room for a chunk
        self._timers: dict[int, asyncio.Handle] = {}
        self._wide: set[int] = set()  # members whose TLS reads were widened (`_widen_reads`)
        kept = KeptParts((host.options.data_dir or data_dir()) / KEPT)
        self.local = Transfers(self._from_local, host.post, downloads, kept=kept)

    # --- in ------------------------------------------------------------------------------------

    def from_member(self, peer: _Peer, frame: FileFrame) -> None:
        if peer.kind != "app" or peer.id not in self.host.room:
            return
        if _version(peer) < FILES_VERSION:
            if isinstance(frame, FileOffer):
                peer.write(encode_frame(FileRefused(frame.ref or "", "old_version", OLD_PEER)))
            return
        if isinstance(frame, FileOffer) and not self.host.offer_within_rate(
            peer, len(frame.name.encode())
        ):
            peer.write(encode_frame(FileRefused(frame.ref or "", "too_fast", OFFERS_TOO_FAST)))
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

    def check_chunk(self, peer: _Peer, frame: FileData) -> ProtocolError | None:
        """A chunk's header, before its payload is read: None to take the payload, or the
        fatal error that ends this connection (and nothing else)."""
        if _version(peer) < FILES_VERSION or peer.id not in self.host.room:
            return ProtocolError("bad_chunk", "File bytes before joining.", fatal=True)
        try:
            self.relay.check_data(peer.id, frame)
        except FileProblem as exc:
            return ProtocolError(exc.code, f"{exc.text} The connection was closed.", fatal=True)
        if peer.id not in self._wide:
            self._wide.add(peer.id)
            _widen_reads(peer)
        return None

    def _kind(self, member_id: int) -> str:
        """A member's kind for the relay: app peers of an older framing count as "old"."""
        kind = self.host.room.kind_of(member_id)
        peer = self.host._peers.get(member_id)
        return "old" if kind == "app" and peer is not None and _version(peer) < 2 else kind

    def _handle(self, member_id: int, frame: FileFrame) -> list[Out]:
        room = self.host.room
        relay = self.relay
        if member_id not in room:
            return []
        name, key = room.name_of(member_id), room.member_key(member_id)
        if isinstance(frame, FileData):  # a member's header was checked as it was read
            return (
                relay.data(member_id, frame)
                if member_id == LOCAL
                else relay.relay_data(member_id, frame)
            )
        if isinstance(frame, FileWindow):
            return relay.granted(member_id, frame)
        if isinstance(frame, FileOffer):
            members = {i: (room.name_of(i), room.member_key(i), self._kind(i)) for i in self._ids()}
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
            kind = self._kind(member_id)
            self._deliver(self.relay.newcomer(member_id, room.member_key(member_id), kind))

    def gone(self, member_id: int, held: bool, name: str | None = None) -> None:
        """A member left: call before the room forgets it, or give its `name`."""
        self._lanes.pop(member_id, None)
        self._allowed.discard(member_id)
        self._wide.discard(member_id)
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
        self._allowed.clear()
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
                peer.send(Notice(item))  # a line for a text peer, a notice for an app
            elif isinstance(item, FileData):
                self._lanes.setdefault(member_id, deque()).append(encode_data(item))
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
        if member_id not in self._allowed:
            self._allow_chunk(peer)
        while lane and not peer._out and transport.get_write_buffer_size() <= ROOM:
            transport.writelines(lane.popleft())
        if lane:
            loop = asyncio.get_running_loop()
            # chat first: after its flush (this turn's, or a gathered one's)
            delay = self.host.flush_wait() if peer._out else POLL
            self._timers[member_id] = loop.call_later(delay, self._again, member_id)

    def _allow_chunk(self, peer: _Peer) -> None:
        """Let the member's transport hold one largest chunk above `write_cap` before it says
        "pause": a chunk is written only into an empty buffer, so the room's backpressure
        still starts once chat (not a file) piles up past `write_cap`."""
        cap = self.host.options.write_cap
        if peer.transport is not None:
            peer.transport.set_write_buffer_limits(
                high=cap + MAX_CHUNK + MAX_CHUNK // 16, low=cap // 4
            )
            self._allowed.add(peer.id)

    def _again(self, member_id: int) -> None:
        self._timers.pop(member_id, None)
        self._drain(member_id)


def _widen_reads(peer: _Peer) -> None:
    """A member that sends file bytes gets its TLS connection read `FILE_READ_SIZE` at a time
    (asyncio's own default) instead of the host's lean 32 KiB (`lean_tls_reads`, kept for the
    many members that only chat): a 512 KiB chunk then takes 2-3 socket reads and decryption
    passes through asyncio's TLS layer instead of 16, about 0.15 CPU s per GB relayed less in
    the host. Only the sender's connection: its buffer is bounded by the members sending.
    Loops without asyncio's TLS protocol (uvloop's) are left as they are."""
    ssl_protocol = getattr(peer.transport, "_ssl_protocol", None)
    if getattr(ssl_protocol, "max_size", FILE_READ_SIZE) < FILE_READ_SIZE:
        ssl_protocol.max_size = FILE_READ_SIZE  # type: ignore[union-attr]


def _version(peer: _Peer) -> int:
    """The protocol version a member's hello named (1 before the hello)."""
    return peer.hello_version
