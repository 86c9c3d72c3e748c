"""The host: one listening port, TLS or plain per connection, the room's members, its limits.

How this works
--------------
An accept loop per listening socket hands each new socket to `Host._open`, which

1. counts it against the per-address cap (`ConnectionCounter`);
2. peeks at the first bytes without consuming them: a TLS ClientHello (0x16) means TLS; other
   bytes, or `sniff_wait` of silence (nc waits for us to speak first), mean plain text, which is
   refused with one explanatory line unless `allow_plain`;
3. wraps the socket in a `_Peer` (an `asyncio.Protocol`) with `loop.connect_accepted_socket`,
   doing the TLS handshake there. A deadline covers everything up to admission.

The peer sends the greeting, feeds every byte it reads to its `HostSideParser`, and hands the
messages to the `Host`, which asks the `Room` what to do and writes the deliveries. A hello may
start the password exchange (`HostAuth`); only a proven peer is admitted. The host's own person is
room member 0; deliveries to it become UI events through `post`.

Writes are gathered per loop iteration: what anyone is sent goes into its peer's list, and one
host-level flush (`flush_writes`) sends each peer's output in one send, a plain peer's straight
on its socket while its transport holds nothing (the rest, if the socket takes only part, goes to
the transport, behind which everything later queues). A read's plain chat lines are stamped by
the room together (`_received_lines`), and a turn's chats for everyone but their sender wait
together (`_cast_chats`) until the flush or anything else written seals them (`_seal`): each
kind of member's bytes are made once, and each member gets them in one piece, less its own.

In a busy room the flush also gathers across turns (`gather`, 6 ms, `_schedule_flush`): when
the last flush was less than `quiet` (15 ms) ago, the next waits `gather` after the first chat
written for it, longer in a large room (0.45 ms a member, up to 45 ms: `_chat_gather`), and
anything else only until `gather` after the last flush (which cuts a chat's longer wait short
too), so lines that arrive one by one share each member's send and the pass over the
members; meanwhile the worker's loop sleeps instead of waking for each of them (app/hold.py),
and reads them together when the flush is due. A quiet room's line goes at once, and so does
everything once `read_budget` bytes were read since the last flush. What waited keeps its
promises: the room log commits before the flush's bytes go out, the host's own person is
shown those chats after them, and anything else it is shown (an arrival) sends them first.

Writes never wait: each transport buffers what it cannot send yet, and a peer whose buffer passes
`write_cap` (64 KiB) makes the room wait for it (backpressure: the host reads from no one, so
senders slow down early instead of queueing); one still over it after `stuck_wait` is dropped.
What one loop turn reads is bounded too (`read_budget`, 32 KiB from all members together, plus
the one read that passed it): past it a member that is read has that read kept as it came
and is not read again (the others are not paused: that was an epoll_ctl per member each way)
until the next turn has written what was read, so a member's output grows by about that much
per turn before the `write_cap` check sees it, instead of by every ready member's 256 KiB read.

History and resumes are replays (`_Replaying`): the room names a range of its log, and the host
writes it a page at a time while the member's connection takes it (`pause_writing` stops the
pages, `resume_writing` starts them again), so a replay holds at most `write_cap` plus one
page in flight, however long the log. What the room says to that member meanwhile waits behind
the replay, in order (references to messages every member shares, not copies). A replay that
stalls for `stuck_wait` drops the member as not reading; it does not make the room wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import math
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from app import events as ev
from app import hold
from app.address import DEFAULT_PORT
from app.address import format_address as _format_address
from app.address import local_addresses as local_addresses
from app.hold import HoldingSelector
from app.invite import make_invite
from app.limits import ConnectionCounter, FailureBackoff, KeyedBuckets, SendLimits
from app.messages import (
    AuthChallenge,
    AuthProof,
    Chat,
    Ended,
    Error,
    Hello,
    History,
    Joined,
    Left,
    Ping,
    PlainLines,
    Pong,
    ProtocolError,
    Replay,
    Say,
    Send,
    SendRates,
    ServerMessage,
    Welcome,
)
from app.net.common import (
    LocalView,
    Post,
    lean_tls_reads,
    post_many_for,
    set_nodelay,
    set_tcp_keepalive,
)
from app.net.files import Transfers
from app.net.host_files import HostFiles
from app.paths import KEEP_DAYS, KEEP_MESSAGES, data_dir, downloads_dir
from app.protocol import (
    ARRIVALS_LISTED,
    GREETING,
    MAX_LINE,
    SPOKEN,
    VERSION,
    HostSideParser,
    arrivals_line,
    departures_line,
    encode_history,
    encode_json,
    encode_text,
    encode_text_chats,
    refusal_line,
)
from app.room import HISTORY, Room
from app.roomlog import LOG_BYTES, LOG_COUNT
from app.security import (
    CONFIRM_SIZE,
    PAKE_SIZE,
    AuthError,
    HostAuth,
    Identity,
    from_b64,
    load_or_create_identity,
    looks_like_tls,
    safety_code,
    server_context,
    to_b64,
)
from app.store import RoomLog, new_epoch, open_room_log
from app.transfer import MAX_FILE_SIZE, FileFrame

if TYPE_CHECKING:  # zeroconf is imported only by a host that announces
    from app.net.discovery import Announcement, Discovery

log = logging.getLogger(__name__)

LOCAL = 0  # the host's own person in the room
# What the host's own person is shown of chats: posted after a gathered flush's writes.
_WITH_FLUSH = (ev.MessageReceived, ev.ChatsReceived)


@dataclass
class HostOptions:
    """Everything a host can be told; time limits are here so tests can shrink them."""

    port: int = DEFAULT_PORT
    bind: str | None = None  # None: every interface, IPv6 and IPv4 where possible
    name: str = "Host"
    password: str | None = None  # a password room admits app peers that prove they know it
    allow_plain: bool = False  # admit unencrypted peers (nc, telnet, plain joiners)
    data_dir: Path | None = None  # where the identity lives; None: the user's data folder
    max_line: int = MAX_LINE
    sniff_wait: float = 0.5  # silence that marks a plain peer (TLS clients speak first)
    hello_wait: float = 1.0  # silence after the greeting that makes a peer a text peer
    handshake_timeout: float = 10.0  # from accept to admission (TLS, greeting, password)
    write_cap: int = 1 << 16  # bytes queued for one member before the room waits for it ...
    stuck_wait: float = 2.0  # ... this long at most; then that member is dropped
    read_budget: int = 1 << 15  # bytes read from all members in one loop turn; then reading
    # waits until what they said has been handed to the members' connections (see ReadBudget)
    gather: float = 0.006  # a busy room's writes wait this long for more (0: every turn) ...
    quiet: float = 0.015  # ... but not after this long without a flush (Host._schedule_flush)
    gather_per_member: float = 0.00045  # a busy room's chat waits this long per member ...
    gather_most: float = 0.045  # ... up to this (never less than `gather`): see _chat_gather
    max_errors: int = 5  # bad lines a member may send before it is dropped
    max_members: int = 256  # joiners in the room at once (the host not counted)
    max_per_address: int = 16  # open connections from one address
    rate: float = 20.0  # messages per second per member, on average (0: no limit) ...
    burst: float = 40.0  # ... with bursts this large
    byte_rate: float = 32 * 1024  # bytes of text per second per member (0: no limit) ...
    byte_burst: float = 256 * 1024  # ... with bursts this large
    address_share: float = 4.0  # all members at one address: this many members' worth
    connect_rate: float = 2.0  # new connections per second from one address (0: no limit) ...
    connect_burst: float = 30.0  # ... with bursts this large
    backoff_base: float = 1.0  # wait after a wrong password, doubling up to a minute
    flood_strikes: int = 20  # messages refused for rate before the member is dropped
    keepalive: float = 45.0  # an app member silent this long (no answer to pings) is gone
    grace: float = 60.0  # how long a dropped member's name waits for it to come back
    history: int = HISTORY
    log_count: int = LOG_COUNT  # messages kept for members coming back ...
    log_bytes: int = LOG_BYTES  # ... in at most this much memory
    replay_held: int = 10_000  # messages that may wait behind one member's replay
    close_wait: float = 1.0  # how long ending the room waits for goodbyes to flush
    announce_wait: float = 0.05  # arrivals within this long are announced together
    announce_max: int = 500  # ... or sooner, once this many app members' welcomes wait (each
    # lists the room: 500 in a room of 5,000 hold about 20 MB for a moment; 100 cut a burst
    # of 200 TLS arrivals in two batches, each written to everyone: README, 5,000 over TLS)
    max_file_size: int = MAX_FILE_SIZE  # largest file a member may offer (0: no files)
    downloads: Path | None = None  # where the host's own person saves files; None: Downloads
    keep_history: bool = True  # keep the room's log on disk (False: nothing is written)
    keep_messages: int = KEEP_MESSAGES  # the log keeps at most this many messages ...
    keep_days: float = KEEP_DAYS  # ... none older than this
    room: str | None = None  # the room's name on the network; None: "NAME's room"
    announce: bool = True  # announce the room on the local network (multicast DNS)
    view_batches: bool = False  # the host's person's chats as ChatsReceived (the terminal)
    announce_ttl: int | None = None  # the announcement's lifetime; None: discovery's default


ENCRYPTED_ONLY = (
    "This Parley room is encrypted. Join with the Parley app (parley join {where}), "
    "or with a TLS client: openssl s_client -quiet -connect {where}"
)
APP_ONLY = "This room needs a password: join it with the Parley app."
TOO_OFTEN = "Too many new connections from your address; wait a few seconds and try again."
TOO_FAST = (
    "You are sending too fast (too many messages, or too much text): that message was not "
    "sent. Slow down or you will be disconnected."
)


TOO_MANY = "Too many connections from your address; close some first."
# Chats for everyone that make a flush a flood's: once this many wait, a large room's longer
# wait (`Host._chat_gather`), which is for a few lines (a paced room of 100, 200 lines a
# second, gathers about 9 in 45 ms), ends `gather` after the first of them, and the next
# flush waits only `gather` too. With the longer wait for everything a flood's p99 went from
# 26 to 49-105 ms, and over TLS from 90 to 124-164 ms.
GATHERED = 16
MAX_REFUSING = 64  # refusals said at once; past this a connection over a limit is just closed


class _Refusal(asyncio.Protocol):
    """A connection turned away: says why in one line (inside TLS for a TLS peer), then closes.
    What the peer sends is ignored."""

    def __init__(self, text: str, done: asyncio.Future[None]) -> None:
        self.text = text
        self.done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(refusal_line(self.text))
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


REPLAY_PAGE = 64  # messages read from the log at a time
REPLAY_STEP = 256 * 1024  # bytes written per loop iteration, so others are served in between


@dataclass
class _Replaying:
    """A replay under way to one peer: where it is, and what waits behind it, in order
    (messages, and further replays: a text peer's history, then what was said since)."""

    replay: Replay
    cursor: int  # the `after` of the next page
    held: deque[ServerMessage | Replay] = field(default_factory=deque)
    paused: bool = False  # the connection is over write_cap: wait for resume_writing
    timer: asyncio.TimerHandle | None = None  # drops the peer if it stays paused

    def full(self) -> bool:
        """The connection is over write_cap (a write may have said so just now)."""
        return self.paused


class ReadBudget:
    """How much the host reads in one loop turn, from all members together.

    Everything read in a turn is handed to the members' connections in the next one (the
    peers' writes are gathered and sent per turn), and only then can a connection say it is
    over `write_cap`. Without a bound, one turn reads up to 256 KiB from every member that is
    ready, and every other member's queue grows by all of it before backpressure starts. So
    once `budget` bytes were read in a turn, `held` is set (`spend`): a member read from then
    on has that read kept as it came and is not read again (`Host.stashed`: only the members
    actually read, not an epoll_ctl for every member each way); the next turn hands the lines
    on, and the turn after that `renew` handles the kept reads, oldest first, while the budget
    lasts, and reads those members again. A member's queue then grows by at most about
    `budget` plus one read per turn, and a flooding sender is read no faster than its lines
    go out. (The congestion pause, past `write_cap`, still stops reading everywhere.)

    A busy room's flush may wait a few turns (`Host._schedule_flush`): once `budget` bytes
    were read since the last flush (`flushed`), `hurry` sends it at the end of this turn, so
    what waits for a member stays as bounded across turns as within one."""

    def __init__(self, budget: int, spend: Callable[[], None], renew: Callable[[], None]) -> None:
        self.budget = budget
        self._spend = spend
        self._renew = renew
        self.held = False
        self._taken = 0  # bytes read this turn
        self._unsent = 0  # bytes read since the last flush
        self._files = 0  # ... of file chunks' payloads (not counted above)
        self.hurry: Callable[[], None] | None = None

    def took(self, size: int, files: int = 0) -> None:
        self._files += files
        if self._taken == 0:
            asyncio.get_running_loop().call_soon(self._turn_over)
        self._taken += size
        if self._taken >= self.budget > 0 and not self.held:
            self.held = True
            self._spend()
        self._unsent += size
        if self._unsent >= self.budget > 0 and self.hurry is not None:
            self.hurry()

    @property
    def spent(self) -> bool:
        """`budget` bytes were read since the last flush."""
        return self._unsent >= self.budget > 0

    @property
    def heavy(self) -> bool:
        """`budget` bytes were read since the last flush, file chunks' payloads counted: a
        flood or a file is being read, and the loop should not sleep (app/hold.py)."""
        return self._unsent + self._files >= self.budget > 0

    def flushed(self) -> None:
        """What was read has been handed to the members' connections."""
        self._unsent = 0
        self._files = 0

    def _turn_over(self) -> None:
        """The next turn began (what was read is being handed on now)."""
        self._taken = 0
        if self.held:  # read again once this turn's writes are out: one more turn
            asyncio.get_running_loop().call_soon(self._again)

    def _again(self) -> None:
        if self.held:
            self.held = False
            self._renew()


class _Cast:
    """A loop turn's chats for everyone but their sender, not yet handed to the members
    (`Host._cast_chats`, `Host._seal`): `base` is the room's member list when the first was
    added (None: nothing pending), `senders[i]` sent the chats `groups[i]`."""

    __slots__ = ("base", "groups", "senders")

    def __init__(self) -> None:
        self.base: tuple[int, ...] | None = None
        self.senders: list[int] = []
        self.groups: list[list[Chat]] = []


class _Peer(asyncio.Protocol):
    """One connection at the host. Knows bytes and its own buffer; the Host knows the room."""

    def __init__(
        self,
        host: Host,
        member_id: int,
        address: str,
        ip: str,
        tls: bool,
        sock: socket.socket | None = None,
    ) -> None:
        self.host = host
        # A plain connection's socket, written directly while its transport holds nothing
        # (see _flush): the transport's own write costs more than the send.
        self.sock = None if tls else sock
        self.id = member_id
        self.address = address
        self.ip = ip
        self.tls = tls
        self.parser = HostSideParser(host.options.max_line)
        self.parser.check_chunk = lambda frame: host.files.check_chunk(self, frame)
        self.hello_version = 1  # the protocol version its hello named (2: raw file chunks)
        self.transport: asyncio.Transport | None = None
        self.admitted = False
        self.closing = False
        self.errors = 0
        self.auth: HostAuth | None = None
        self.hello: Hello | None = None  # kept while the password exchange runs
        self.safety: str | None = None
        # Rate limits follow the member, not the connection: its token once it has one.
        self.limit_key = f"connection {member_id}"
        self.greeted_seq = host.room.last_seq  # the room said nothing to it before this
        self.strikes = 0
        self.last_strike = 0.0
        self.last_heard = time.monotonic()
        self.lost = asyncio.get_running_loop().create_future()
        self.timers: list[asyncio.TimerHandle] = []
        self._out: list[bytes | memoryview] = []  # written this turn, sent together by _flush
        self.replaying: _Replaying | None = None
        self.stash: list[bytes] = []  # read past the read budget, not yet handled (`take`)

    @property
    def kind(self) -> str:
        return self.parser.kind or "text"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        transport = cast("asyncio.Transport", transport)
        self.transport = transport
        if self.sock is not None and self.sock.fileno() < 0:  # a loop that took the socket over
            self.sock = None
        transport.set_write_buffer_limits(high=self.host.options.write_cap)
        transport.write((GREETING + "\n").encode())
        loop = asyncio.get_running_loop()
        self.timers.append(loop.call_later(self.host.options.hello_wait, self._silent))

    def _silent(self) -> None:
        if not self.admitted and not self.closing and self.auth is None:
            self.parser.decide_text()
            self.host.text_peer(self)

    def deadline(self) -> None:
        if not self.admitted and not self.closing:
            log.info("%s: not admitted within the handshake deadline; closing", self.address)
            self.abort()

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        if self.stash or (self.host.reading.held and not self.closing):
            # Read past this turn's read budget: kept as read, and this member alone is
            # not read again until it is handled (`Host._unstash`). Pausing every member
            # when the budget was spent cost an epoll_ctl per member each way, each time.
            if not self.stash:
                self.host.stashed(self)
            self.stash.append(data)
            if self.transport is not None:
                self.transport.pause_reading()
            return
        self.take(data)

    def take(self, data: bytes) -> None:
        """Handle what was read from this member."""
        # After a goodbye, what the peer still sends is not even parsed.
        messages = [] if self.closing else self.parser.feed(data, self.admitted)
        # A file chunk's payload is not the room's: it waits in its transfer's lane, bounded
        # by the window, and goes out only into an empty connection (app/net/host_files.py).
        self.host.reading.took(len(data) - self.parser.counted, self.parser.counted)
        if len(messages) > 1 or (messages and self.admitted):
            self.host.received_together(self, messages)
            return
        for msg in messages:
            if self.closing:
                return
            self.host.received(self, msg)

    def pause_writing(self) -> None:
        if self.replaying is not None:
            self.host.replay_paused(self)
        else:
            self.host.congested(self, True)

    def resume_writing(self) -> None:
        self.host.congested(self, False)
        if self.replaying is not None:
            self.host.replay_resumed(self)

    def connection_lost(self, exc: Exception | None) -> None:
        stash, self.stash = self.stash, []
        for data in stash:  # what it said before it went is the room's all the same
            self.take(data)
        self._stop_timers()
        self.host.stop_replay(self)
        self.host.congested(self, False)
        self.closing = True
        self.host.lost(self, exc)
        if not self.lost.done():
            self.lost.set_result(None)

    def write(self, data: bytes) -> None:
        """Queue `data`; everything written in this loop iteration goes out in one send, from
        the host's one flush for all peers (`Host.flush_writes`)."""
        if self.closing or self.transport is None or not data:
            return
        if self.host._cast.base is not None:  # the turn's chats first: the room's order
            self.host._seal()
        self.host.written(self, first=not self._out)
        self._out.append(data)

    def _flush(self) -> None:
        host = self.host
        if host._cast.base is not None:
            host._seal()
        out = self._out
        if not out:
            return
        room_log = host.log  # what these bytes carry is in the room log before anyone gets it
        if room_log is not None and room_log._pending:
            room_log.flush()
        self._out = []
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._send(transport, out[0] if len(out) == 1 else b"".join(out))

    def _send(self, transport: asyncio.Transport, data: bytes | memoryview) -> None:
        """Send `data` now: on the socket while the transport holds nothing, else (and
        whatever the socket does not take) through the transport."""
        sock = self.sock
        if sock is not None and not transport.get_write_buffer_size():
            # Nothing waits in the transport, so sending on the socket keeps the order; only
            # what the socket did not take goes to the transport, which then buffers it,
            # waits for the socket and applies backpressure (pause_writing) as ever.
            try:
                sent = sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:  # the transport meets the same error and closes the connection
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    def send(self, msg: ServerMessage) -> None:
        if self.host.holds_welcome(self.id):  # never before its own welcome
            self.host.announce_arrivals()
        self.write(encode_json(msg) if self.kind == "app" else encode_text(msg))

    def refuse(self, code: str, text: str) -> None:
        """Say why in the peer's own language, then close."""
        self.write(encode_json(Error(code, text)) if self.kind == "app" else f"{text}\n".encode())
        self.close()

    def close(self, linger: float = 0.0) -> None:
        """Close after what is buffered has been sent. With `linger`, leave the connection open
        that long first (reading and ignoring): closing with unread input makes the system
        send a reset, which can destroy the last thing we said before it is read."""
        self._flush()
        self._stop_timers()
        self.closing = True
        if self.transport is None:
            return
        if linger > 0:
            self.timers.append(asyncio.get_running_loop().call_later(linger, self.close))
        else:
            self.transport.close()

    def abort(self) -> None:
        self._stop_timers()
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def write_now(self, data: bytes) -> None:
        """Write at once, after what is already queued (a replay page: its size counts now)."""
        self._flush()
        if not self.closing and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _stop_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


class Host:
    """A running room. Create, `await start()`, then `say()`; `end()` closes it for everyone."""

    def __init__(
        self, options: HostOptions, post: Post, discovery: Discovery | None = None
    ) -> None:
        self.options = options
        # What the host tells its own person is posted after the iteration's writes went
        # out (`_post_pending`): the front end's thread, woken by a post, would otherwise
        # compete for the interpreter with every send of that delivery.
        self._post_now = post
        self._post_many = post_many_for(post)
        self._posts: list[ev.Event] = []
        self._post_due = False  # _post_pending is scheduled (or running)
        self.post: Post = self._post_soon
        self._discovery = discovery if options.announce else None
        self._announcement: Announcement | None = None
        self.room = Room(
            history=options.history,
            resume_log=options.log_count,
            log_bytes=options.log_bytes,
            grace=options.grace,
        )
        self.port = 0
        self.identity: Identity | None = None
        self._tls: ssl.SSLContext | None = None
        self._view = LocalView(self.post, self._joined_details)
        self._view.batches = options.view_batches
        self._peers: dict[int, _Peer] = {}
        self._congested: dict[int, asyncio.TimerHandle] = {}  # over write_cap: drop timers
        self._stashed: deque[_Peer] = deque()  # read past the read budget (`stashed`)
        self.reading = ReadBudget(
            options.read_budget, self._read_budget_spent, self._read_budget_renewed
        )
        self._batch: list[Send] | None = None  # deliveries held by received_together
        self._written: list[_Peer] = []  # peers written to this loop iteration, to flush
        self._flush_due = False  # flush_writes is scheduled
        # A gathered flush (`_schedule_flush`): set while one waits for its time; the room
        # log's commit and the chats the host's own person is shown wait for it too.
        self._flush_timer: asyncio.Handle | None = None
        self._last_flush = -math.inf  # the loop's time of the last flush_writes
        self._flooding = False  # the last flush carried a flood's (or a file's) read budget
        # The worker's loop's selector, which sleeps through a gathered flush's wait (None:
        # another loop; see app/hold.py and _schedule_flush).
        self._holder: HoldingSelector | None = None
        self.gathered_flushes = 0  # flushes that waited for `gather` (what tests look at)
        self.reading.hurry = self._hurry_flush
        self._gather_from = 0.0  # when the waiting flush's first chat was written
        self._gathered = 0  # chats for everyone stamped since the last flush
        self._flood = False  # the last flush carried `GATHERED` of them or more
        self._cast = _Cast()  # this turn's chats for everyone but their sender (_seal)
        # "X joined" (and X's welcome), held for _announce_arrivals
        self._arrivals: list[_Held] = []
        self._arrivals_to: tuple[int, ...] = ()  # who hears of the last one (of every one)
        self._held_lists = 0  # app members' welcomes in the batch (each lists the room)
        self._arrivals_timer: asyncio.Handle | None = None  # a timer, or soon when full
        # "X left" of connections lost, held for _announce_departures
        self._departures: list[Left] = []
        self._departures_to: tuple[int, ...] = ()  # who hears of the first one (of every one)
        self._departures_timer: asyncio.Handle | None = None
        self._ids = itertools.count(1)
        self._local_ids = itertools.count(1)
        self._listeners: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._per_address = ConnectionCounter(options.max_per_address)
        base = options.backoff_base
        self._backoff = FailureBackoff(base=base, maximum=max(60.0, base), forget_after=600.0)
        self._refusing = 0  # refusals being said (each may need a TLS handshake first)
        self._lingering: set[_Peer] = set()  # dropped, told why, closing after `close_wait`
        # One password attempt in flight per address; the others wait their turn.
        self._guessing: dict[str, _Peer] = {}
        self._waiting: dict[str, deque[_Peer]] = {}
        self._send_limits = SendLimits(
            options.rate,
            options.burst,
            options.byte_rate,
            options.byte_burst,
            options.address_share,
        )
        rate = options.connect_rate
        self._connects = KeyedBuckets(rate, options.connect_burst) if rate > 0 else None
        # Told in every welcome, so that joiners pace themselves (0: no limit).
        self._rates = SendRates(
            options.rate,
            options.burst if options.rate > 0 else 0.0,
            options.byte_rate,
            options.byte_burst if options.byte_rate > 0 else 0.0,
        )
        self._finished = False
        self._stopping = False
        self.closed = asyncio.Event()
        self.log: RoomLog | None = None
        self.files = HostFiles(
            self, options.max_file_size, lambda: options.downloads or downloads_dir()
        )

    @property
    def transfers(self) -> Transfers:
        """The host's own person's files."""
        return self.files.local

    # --- life ----------------------------------------------------------------------------------

    async def start(self) -> bool:
        """Listen and open the room; on failure post `Failed` and return False."""
        folder = self.options.data_dir or data_dir()
        try:
            self.identity = load_or_create_identity(folder)
            self._tls = server_context(self.identity)
            lean_tls_reads()
        except (OSError, ValueError, ssl.SSLError) as exc:
            self._finish(ev.Failed(f"Could not set up this host's identity in {folder}: {exc}"))
            return False
        if self.identity.note:
            self.post(ev.NoticeShown(self.identity.note))
        self.room.epoch = new_epoch()  # a room without a kept log numbers afresh
        self._holder = hold.for_loop(asyncio.get_running_loop())
        if self.options.keep_history:
            self._open_log(folder)
        self._view.key_prefix = f"{self.identity.fingerprint}/{self.room.epoch}/"
        try:
            self._listeners = _listen(self.options.bind, self.options.port)
        except OSError as exc:
            self._finish(ev.Failed(_bind_error(self.options.bind, self.options.port, exc)))
            return False
        _raise_fd_limit()
        for sock in self._listeners:
            sock.setblocking(False)
        self.port = self._listeners[0].getsockname()[1]
        for sock in self._listeners:
            self._spawn(self._accept(sock))
        self._spawn(self._keep_alive())
        self._deliver(self.room.join(LOCAL, self.options.name, "local"))
        addresses = tuple(local_addresses(self.options.bind, self.port))
        best = addresses[0].rsplit(":", 1)[0].strip("[]")
        self.post(
            ev.Hosting(
                self._view.name,
                self.port,
                addresses,
                safety_code=safety_code(self.identity.cert_der),
                fingerprint=self.identity.fingerprint,
                invite=make_invite(
                    best, self.port, self.identity.fingerprint, self.options.password
                ),
                password=bool(self.options.password),
                allow_plain=self.options.allow_plain,
            )
        )
        if self._discovery is not None:
            self._spawn(self._announce(addresses))
        return True

    async def _announce(self, addresses: tuple[str, ...]) -> None:
        """Put the room on the network and keep its member count current; hosting never
        waits for this, and a failure is a notice (see `app.net.discovery`)."""
        from app.net.discovery import RoomAd
        from app.room_names import default_room_name

        assert self._discovery is not None
        assert self.identity is not None
        ad = RoomAd(
            name=self.options.room or default_room_name(self.options.name),
            port=self.port,
            addresses=addresses,
            fingerprint=self.identity.fingerprint,
            members=len(self.room),
            password=bool(self.options.password),
            allow_plain=self.options.allow_plain,
        )
        announcement = await self._discovery.announce(
            ad, self.options.bind, ttl=self.options.announce_ttl
        )
        if announcement is None:
            return
        if self._stopping or self._finished:
            await announcement.withdraw()
            return
        self._announcement = announcement
        while not announcement.withdrawn:
            announcement.set_members(len(self.room))
            await asyncio.sleep(self._discovery.interval / 2)

    async def _withdraw(self) -> None:
        announcement, self._announcement = self._announcement, None
        if announcement is not None:
            await announcement.withdraw()

    def _open_log(self, folder: Path) -> None:
        """Carry on the room kept in `folder`; a log that cannot be used is said once and the
        room runs without history (a new epoch: its numbers start afresh)."""
        room_log, problem = open_room_log(
            folder, keep_messages=self.options.keep_messages, keep_days=self.options.keep_days
        )
        if room_log is None:
            self.post(ev.ErrorShown(problem or "The room's history cannot be used."))
            return
        self.log = room_log
        room_log.on_problem = lambda text: self.post(ev.ErrorShown(text))
        loop = asyncio.get_running_loop()
        room_log.on_pending = lambda: loop.call_soon(self._commit_soon)
        kept = room_log.recent(1000)
        self.room.journal = room_log
        self.room.epoch = room_log.epoch
        self.room.restore(room_log.last_seq, [(x.chat, x.token) for x in kept], room_log.members())

    def clear_history(self) -> None:
        """Chat → Clear history of this room: forget the log, on disk and in memory."""
        self.room.forget_log()
        if self.log is not None:
            self.log.clear()
        self.post(ev.NoticeShown("The history of this room was cleared."))

    def say(self, text: str, to: str | None = None) -> None:
        """The host's own person says `text` (a bye ends the room); with `to`, privately."""
        if self._finished:
            return
        msg_id = f"local-{next(self._local_ids)}"
        if to is not None:
            self._deliver(self.room.tell(LOCAL, to, text, msg_id))
        else:
            self._deliver(self.room.say(LOCAL, text, msg_id))

    async def end(self, reason: str = "The host ended the chat.") -> None:
        """End the room for everyone, give goodbyes a moment to flush, then close."""
        self._deliver(self.room.end(reason))  # the room's Ended to LOCAL starts the shutdown
        await self.closed.wait()

    async def _shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.files.close()
        for sock in self._listeners:
            sock.close()
        await self._withdraw()  # the goodbye first: browsers drop the room at once
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        peers = [*self._peers.values(), *self._lingering]
        for peer in peers:
            peer.close()
        if peers:
            await asyncio.wait([peer.lost for peer in peers], timeout=self.options.close_wait)
            for peer in peers:
                if not peer.lost.done():
                    peer.abort()
        self._finish(ev.ChatEnded("You ended the chat."))

    def _finish(self, event: ev.Event) -> None:
        if not self._finished:
            self._finished = True
            if self.log is not None:
                self.log.close()
            self._post_pending()
            self._post_now(event)
            self.closed.set()

    def abort(self) -> None:
        """Close every socket now, without goodbyes (the loop is going away)."""
        self.files.close()
        for sock in self._listeners:
            sock.close()
        for peer in [*self._peers.values(), *self._lingering]:
            peer.abort()
        self._finish(ev.ChatEnded("The chat was closed."))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- connections ---------------------------------------------------------------------------

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, addr = await loop.sock_accept(listener)
            except OSError as exc:  # EMFILE and friends: keep serving those already here
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            self._spawn(self._open(sock, addr))

    async def _open(self, sock: socket.socket, addr: tuple[Any, ...]) -> None:
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        set_nodelay(sock)
        set_tcp_keepalive(sock, self.options.keepalive)
        address = _format_address(addr)
        ip = address.rsplit(":", 1)[0]
        if self._connects is not None and not self._connects.take(ip):
            log.warning("%s: refused, connecting too often", ip)
            self._spawn(self._refuse(sock, TOO_OFTEN))
            return
        if not self._per_address.acquire(ip):
            log.warning("%s: refused, over %d connections", ip, self.options.max_per_address)
            self._spawn(self._refuse(sock, TOO_MANY))
            return
        deadline = loop.time() + self.options.handshake_timeout
        try:
            first = await _peek(sock, min(self.options.sniff_wait, self.options.handshake_timeout))
            tls = looks_like_tls(first)
            if not tls and not self.options.allow_plain:
                where = _format_address(sock.getsockname())
                _refuse_raw(sock, ENCRYPTED_ONLY.format(where=where))
                self._per_address.release(ip)
                return
            member_id = next(self._ids)
            left = max(0.1, deadline - loop.time())
            made: list[_Peer] = []

            def make() -> _Peer:
                # A member from the start: a loop may read (and admit it) before the await
                # below returns, as uvloop does when its first line is already waiting.
                made.append(_Peer(self, member_id, address, ip, tls, sock))
                self._peers[member_id] = made[0]
                return made[0]

            # The peer is the one `make` built: over TLS uvloop returns its own SSL protocol
            # here, not ours (asyncio returns ours).
            await loop.connect_accepted_socket(
                make,
                sock,
                ssl=self._tls if tls else None,
                ssl_handshake_timeout=left if tls else None,
            )
            peer = made[0]
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            log.info("%s: connection failed before the greeting: %r", address, exc)
            self._never_opened(made)
            sock.close()
            self._per_address.release(ip)
            return
        except asyncio.CancelledError:
            self._never_opened(made)
            sock.close()
            self._per_address.release(ip)
            raise
        if self._congested and peer.transport is not None:
            peer.transport.pause_reading()  # the room is waiting for a slow member
        if not peer.closing:
            peer.timers.append(loop.call_at(deadline, peer.deadline))

    def _never_opened(self, made: list[_Peer]) -> None:
        """A connection that failed before its greeting (a TLS handshake) is no member."""
        for peer in made:
            if self._peers.get(peer.id) is peer:
                del self._peers[peer.id]

    async def _refuse(self, sock: socket.socket, text: str) -> None:
        """Turn a connection away so that the peer can read why: a TLS client (it speaks first)
        gets the refusal inside TLS, anyone else as a plain line. Bounded: past `MAX_REFUSING`
        at once, or at the handshake deadline, the connection is only closed."""
        if self._refusing >= MAX_REFUSING or self._tls is None:
            _refuse_raw(sock, text)
            return
        self._refusing += 1
        loop = asyncio.get_running_loop()
        try:
            first = await _peek(sock, self.options.sniff_wait)
            if not looks_like_tls(first):
                _refuse_raw(sock, text)
                return
            done: asyncio.Future[None] = loop.create_future()
            transport, _ = await asyncio.wait_for(
                loop.connect_accepted_socket(
                    lambda: _Refusal(text, done),
                    sock,
                    ssl=self._tls,
                    ssl_handshake_timeout=self.options.handshake_timeout + 1,
                ),
                self.options.handshake_timeout,
            )
            try:
                await asyncio.wait_for(done, self.options.close_wait)
            except asyncio.TimeoutError:
                transport.abort()
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            log.info("refusal not delivered: %r", exc)
            sock.close()
        except asyncio.CancelledError:
            sock.close()
            raise
        finally:
            self._refusing -= 1

    def text_peer(self, peer: _Peer) -> None:
        """A peer that stayed silent, or whose first line was not a hello."""
        if self.options.password:
            peer.refuse("password_required", APP_ONLY)
        else:
            self.admit(peer, None)

    def admit(self, peer: _Peer, name: str | None, hello: Hello | None = None) -> None:
        if peer.admitted:
            return
        token, last_seq = (hello.token, hello.last_seq) if hello else (None, 0)
        holder = self.room.holder_of(token)
        if holder is None and len(self.room) - 1 >= self.options.max_members:
            peer.refuse("room_full", f"The room is full ({self.options.max_members} members).")
            return
        peer.admitted = True
        peer._stop_timers()
        if holder is not None and holder != peer.id:
            self._replace(holder)
        sends = self._admission(
            peer, self.room.join(peer.id, name, peer.kind, token, last_seq, peer.tls)
        )
        arrival = sends[-1] if sends and isinstance(sends[-1].message, Joined) else None
        own = sends[:-1] if arrival is not None else sends
        if arrival is not None and all(send.to == (peer.id,) for send in own):
            # Its welcome goes out with the batch, after everyone was told: once a member is
            # in, the others know it (it may write to them at once).
            self._hold_arrival(peer.id, arrival, own)
            return
        self._deliver(own)
        if arrival is not None:
            self._hold_arrival(peer.id, arrival, None)
        self.files.joined(peer.id)

    # --- arrivals, announced in batches --------------------------------------------------------
    #
    # Announcing every arrival to everyone at once costs N writes per join: N² for a room that
    # fills up (5,000 members: 12.5 million). Instead "X joined" waits up to `announce_wait`
    # and the arrivals of that window go out together (`_announce_arrivals`), one write per
    # member. Each held announcement's recipients are the members before it, so a member gets
    # the announcements of those who came after it (a suffix of the batch). Any other delivery
    # first sends what is held, so the room's order is kept: nobody hears X speak before
    # hearing that X joined. X's own welcome waits with its announcement and goes out first in
    # the batch, so when X is told it is in, everyone else is being told too.
    #
    # What a batch costs stays linear in the room (issue 13, 5,000 idle members): an app
    # member gets every "joined" frame, but a text member told of more than ARRIVALS_LISTED
    # at once gets one line for them all (`_Arrivals`); the host's own person gets one event
    # per arrival sharing one member list per batch (`LocalView.joined`); and while a batch
    # waits it keeps no list of the room per arrival: a text member's welcome is held as its
    # lines, and once `announce_max` app members' welcomes (each listing the room) wait, the
    # batch goes out.

    def _hold_arrival(self, member_id: int, send: Send, own: list[Send] | None) -> None:
        """Hold "X joined" (`send`), and X's own welcome (`own`, None: already sent)."""
        if self._departures:  # those who left before X came: X is not told of them
            self._announce_departures()
        if not self._arrivals:
            loop = asyncio.get_running_loop()
            wait = self.options.announce_wait
            self._arrivals_timer = loop.call_later(wait, self._announce_arrivals)
        held = _Held(member_id, cast("Joined", send.message), own, LOCAL in send.to)
        # Only the last arrival's recipients are used (they only grow within a batch): not
        # keeping each arrival's tuple of the whole room saves a square of a batch's size.
        self._arrivals_to = send.to
        self._arrivals.append(held)
        peer = self._peers.get(member_id)
        if own and peer is not None and isinstance(own[0].message, Welcome):
            if peer.kind == "text":
                # Its lines now (the count of a big room, not its names): the welcome's two
                # lists of the whole room are not kept while the batch waits.
                held.welcome, held.own = encode_text(own[0].message), own[1:]
            else:
                self._held_lists += 1
                if self._held_lists == self.options.announce_max:  # send the batch soon
                    if self._arrivals_timer is not None:
                        self._arrivals_timer.cancel()
                    loop = asyncio.get_running_loop()
                    self._arrivals_timer = loop.call_soon(self._announce_arrivals)
        if own is None and held.local:
            self._view.joined([held.msg])  # the host's own view: told when the newcomer is

    def holds_welcome(self, member_id: int) -> bool:
        """Whether `member_id`'s welcome is waiting in the batch of arrivals."""
        return any(h.member_id == member_id and h.own is not None for h in self._arrivals)

    def announce_arrivals(self) -> None:
        """Send the held arrivals now (something must follow a newcomer's welcome)."""
        self._announce_arrivals()

    def _announce_arrivals(self) -> None:
        held, self._arrivals = self._arrivals, []
        to, self._arrivals_to = self._arrivals_to, ()
        self._held_lists = 0
        if self._arrivals_timer is not None:
            self._arrivals_timer.cancel()
            self._arrivals_timer = None
        if not held:
            return
        # The host's own view: the batch at once, with one member list for all of it.
        told = [h.msg for h in held if h.own is not None and h.local]
        if told:
            self._view.joined(told)
        for h in held:  # then the newcomers' welcomes
            peer = self._peers.get(h.member_id)
            if h.own is not None and peer is not None:
                if h.welcome is not None:
                    peer.write(h.welcome)
                self._deliver(h.own)
                self.files.joined(h.member_id)
        start = {h.member_id: i + 1 for i, h in enumerate(held)}
        arrivals = _Arrivals([h.msg for h in held])
        joined: dict[tuple[str, int], bytes] = {}
        for member_id in to:
            first = start.get(member_id, 0)
            if first >= len(held):
                continue
            peer = self._peers.get(member_id)  # LOCAL has none: told above
            if peer is None:
                continue
            kind = peer.kind
            data = joined.get((kind, first))
            if data is None:
                data = joined[(kind, first)] = arrivals.told(kind, first)
            peer.write(data)

    # Departures, the same way (issue 13): when many connections drop at once (a network
    # that failed, a generator that stops), each "X left" to everyone who remains is a square
    # of the room's size again (5,000 leaving cost the host 6 s of CPU, more than their
    # arrivals). So "X left" for a lost connection waits up to `announce_wait` too, and those
    # of the window go out together: one write per member, encoded once per kind of member;
    # a text member told of more than ARRIVALS_LISTED at once gets one line
    # (`departures_line`), an app member every `left` frame; the host's own person one event
    # each, sharing one member list (`LocalView.left`). Held departures go out before
    # anything else is delivered and before an arrival is held, so the room's order holds. A
    # "bye" is delivered at once as before: one person, and the reply they wait for.

    def _hold_departures(self, sends: list[Send]) -> None:
        """Hold the "X left" in `sends` (what `Room.leave` returned) for the batch."""
        for send in sends:
            msg = send.message
            if not isinstance(msg, Left) or self._batch is not None:
                self._deliver([send])
                continue
            if self._arrivals:  # those who came before X left hear of them first
                self._announce_arrivals()
            if not self._departures:
                # The first one's recipients are everyone who hears of any in the batch:
                # only departures follow it, so the members after it are a subset.
                self._departures_to = send.to
                loop = asyncio.get_running_loop()
                wait = self.options.announce_wait
                self._departures_timer = loop.call_later(wait, self._announce_departures)
            self._departures.append(msg)

    def _announce_departures(self) -> None:
        held, self._departures = self._departures, []
        to, self._departures_to = self._departures_to, ()
        if self._departures_timer is not None:
            self._departures_timer.cancel()
            self._departures_timer = None
        if not held:
            return
        told: dict[str, bytes] = {}
        local = False
        for member_id in to:
            if member_id == LOCAL:
                local = True
                continue
            if member_id not in self.room:  # left within the batch itself
                continue
            peer = self._peers.get(member_id)
            if peer is None:
                continue
            if peer.replaying is not None:  # after its replay, in order
                for msg in held:
                    self._hold(peer, msg)
                continue
            kind = peer.kind
            data = told.get(kind)
            if data is None:
                data = told[kind] = _departures_told(held, kind)
            peer.write(data)
        if local:
            self._view.left(held)

    def _admission(self, peer: _Peer, sends: list[Send]) -> list[Send]:
        """What admitting `peer` sends, made to keep two promises: its rate limits are its
        member's (keyed by its token, which a reconnect brings back), and a text peer hears
        everything said since its greeting, as it was said, not as "earlier" history."""
        welcome = next(
            (s.message for s in sends if s.to == (peer.id,) and isinstance(s.message, Welcome)),
            None,
        )
        if welcome is None:
            return sends
        if welcome.token is not None:
            peer.limit_key = f"member {welcome.token}"
        if peer.kind != "text" or welcome.resumed:
            return sends
        since, now = peer.greeted_seq, self.room.last_seq
        out: list[Send] = []
        for send in sends:
            if send.to == (peer.id,) and isinstance(send.message, Replay):
                continue  # the room's history for it, replaced below
            out.append(send)
            if send.message is welcome:
                # As much history as the room gives newcomers, ending where the greeting went
                # out ... then what was said since, as it was said.
                out += self.room.history(peer.id, until=since)
                if now > since:
                    out.append(Send((peer.id,), Replay(since, now, earlier=False)))
        return out

    def _replace(self, member_id: int) -> None:
        """The member came back with its token while its old connection still looked open
        (half-open: the old one died without a word). Close the old one; the room moves the
        member to the new connection, so it is neither split in two nor seen to leave."""
        old = self._peers.pop(member_id, None)
        if old is not None:
            log.info("%s: replaced by a new connection of the same member", old.address)
            self.stop_replay(old)
            self.congested(old, False)
            old.abort()

    def received(self, peer: _Peer, msg: object) -> None:
        if not peer.admitted:
            self._received_early(peer, msg)
            if isinstance(msg, Say) and peer.id in self.room:  # a text peer's first line
                self._say(peer, msg)
        elif isinstance(msg, Hello):  # an app peer whose hello came after the silence timer
            self._deliver(self._admission(peer, self.room.upgrade(peer.id, msg.name)))
        elif isinstance(msg, Say):
            self._say(peer, msg)
        elif isinstance(msg, FileFrame):
            self.files.from_member(peer, msg)
        elif isinstance(msg, Ping):
            peer.send(Pong())
        elif isinstance(msg, ProtocolError):
            self._bad_line(peer, msg)
        elif isinstance(msg, AuthProof):
            self._bad_line(peer, ProtocolError("unexpected", "No password exchange is running."))

    def _say(self, peer: _Peer, msg: Say) -> None:
        if not self._within_rate(peer, msg.text):
            return
        if msg.to is not None:
            self._deliver(self.room.tell(peer.id, msg.to, msg.text, msg.id))
        else:
            name = self.room.name_of(peer.id) if peer.id in self.room else None
            self._deliver(self.room.say(peer.id, msg.text, msg.id))
            if name is not None and peer.id not in self.room:  # a bye: its offers go too
                self.files.gone(peer.id, held=False, name=name)

    def _received_early(self, peer: _Peer, msg: object) -> None:
        """Before admission: a hello (maybe with a password exchange), a proof, or text."""
        if isinstance(msg, Hello):
            peer.hello_version = msg.version
            if msg.version not in SPOKEN:
                peer.refuse("version", f"This host speaks version {VERSION} of the protocol.")
            elif self.options.password:
                self._challenge(peer, msg)
            else:
                self.admit(peer, msg.name, msg)
        elif isinstance(msg, AuthProof) and peer.auth is not None:
            self._check_proof(peer, msg)
        elif isinstance(msg, ProtocolError) and msg.fatal:
            peer.refuse(msg.code, msg.text)
        elif isinstance(msg, Say | ProtocolError) and peer.kind == "text":
            self.text_peer(peer)
            if peer.admitted and isinstance(msg, ProtocolError):
                self._bad_line(peer, msg)
        else:
            peer.refuse("unexpected", "Unexpected message before joining.")

    # --- password rooms ------------------------------------------------------------------------

    def _challenge(self, peer: _Peer, hello: Hello) -> None:
        if hello.pake is None:
            peer.refuse("password_required", "This room needs a password.")
            return
        if peer.auth is not None or peer.hello is not None:
            peer.refuse("unexpected", "One password attempt per connection.")
            return
        peer.hello = hello
        if peer.ip in self._guessing:  # one attempt at a time per address: wait your turn
            self._waiting.setdefault(peer.ip, deque()).append(peer)
            return
        self._guess(peer)

    def _guess(self, peer: _Peer) -> None:
        """Start the address's one password attempt in flight.

        The host's half of the exchange, with its proof, lets the joiner test its password on
        its own, so the guess counts as a failure from the moment it goes out (hanging up
        then still spent it); a right proof takes it back. Counted once, here, however the
        attempt ends."""
        assert self.options.password is not None
        assert self.identity is not None
        assert peer.hello is not None
        assert peer.hello.pake is not None
        wait = self._backoff.delay(peer.ip)
        if wait > 0:
            peer.refuse(
                "slow_down",
                f"Too many wrong passwords from your address; try again in {math.ceil(wait)} s.",
            )
            return
        peer.auth = HostAuth(self.options.password, self.identity.fingerprint)
        try:
            pake, confirm = peer.auth.respond(
                from_b64(peer.hello.pake, PAKE_SIZE, "exchange message")
            )
        except AuthError as exc:  # nothing was tested: not a guess
            peer.refuse("bad_auth", str(exc))
            return
        self._guessing[peer.ip] = peer
        self._backoff.failed(peer.ip)
        peer.send(AuthChallenge(to_b64(pake), to_b64(confirm)))

    def _check_proof(self, peer: _Peer, proof: AuthProof) -> None:
        assert peer.auth is not None
        assert self.identity is not None
        try:
            peer.auth.verify(from_b64(proof.confirm, CONFIRM_SIZE, "proof"))
        except AuthError:
            self._guess_over(peer, right=False)
            peer.refuse("wrong_password", "Wrong password.")
            return
        self._backoff.succeeded(peer.ip)
        peer.safety = safety_code(self.identity.cert_der, peer.auth.session_key)
        assert peer.hello is not None
        self._guess_over(peer, right=True)
        self.admit(peer, peer.hello.name, peer.hello)

    def _guess_over(self, peer: _Peer, right: bool) -> None:
        """The attempt in flight from `peer`'s address ended; the next one waiting may go."""
        if self._guessing.get(peer.ip) is not peer:
            return
        del self._guessing[peer.ip]
        if not right:
            failures = self._backoff.failures(peer.ip)
            log.warning("wrong password from %s (%d in a row)", peer.ip, failures)
            self.post(ev.NoticeShown(f"Wrong password from {peer.ip} ({failures} in a row)."))
        waiting = self._waiting.get(peer.ip)
        while waiting and peer.ip not in self._guessing:
            nxt = waiting.popleft()
            if not nxt.closing:
                self._guess(nxt)
        if not waiting:
            self._waiting.pop(peer.ip, None)

    # --- members' conduct ----------------------------------------------------------------------

    def _within_rate(self, peer: _Peer, text: str) -> bool:
        limits = self._send_limits
        if limits.lifted or limits.allow(peer.limit_key, peer.ip, len(text.encode())):
            return True
        self._too_fast(peer)
        return False

    def offer_within_rate(self, peer: _Peer, size: int) -> bool:
        """Whether a file offer whose name is `size` bytes, from `peer`, passes the chat rate
        limits, counted as one message if so. An offer reaches everyone, as a chat line does,
        so offering in a loop must not be the way round the limits. A refusal is a strike like
        a chat line's, but no "too fast" line: the refusal of the offer itself says it."""
        limits = self._send_limits
        if limits.lifted or limits.allow(peer.limit_key, peer.ip, size):
            return True
        self._too_fast(peer, warn=False)
        return False

    def _too_fast(self, peer: _Peer, warn: bool = True) -> None:
        """A message of `peer`'s was refused for its rate: warn once, drop past the strikes."""
        now = time.monotonic()
        if now - peer.last_strike > 10:
            peer.strikes = 0
        peer.strikes += 1
        peer.last_strike = now
        if peer.strikes >= self.options.flood_strikes:
            self.drop(peer, "sending too fast", hold=False)
        elif peer.strikes == 1 and warn:
            peer.send(Error("too_fast", TOO_FAST))

    def _bad_line(self, peer: _Peer, error: ProtocolError) -> None:
        peer.errors += 1
        peer.send(Error(error.code, error.text))
        if error.fatal or peer.errors >= self.options.max_errors:
            self.drop(peer, "too many bad lines", hold=False)

    def lost(self, peer: _Peer, exc: Exception | None) -> None:
        self._peers.pop(peer.id, None)
        self._lingering.discard(peer)
        self._per_address.release(peer.ip)
        waiting = self._waiting.get(peer.ip)
        if waiting and peer in waiting:
            waiting.remove(peer)
        if not peer.admitted:
            self._guess_over(peer, right=False)  # hung up after the host's half: a guess
        if peer.id in self.room:
            idle = peer.parser.pending == 0
            clean = exc is None and idle and peer.kind == "text"
            reason = "left" if clean else "connection lost"
            self.files.gone(peer.id, held=not clean)
            self._hold_departures(self.room.leave(peer.id, reason, hold=not clean))

    def drop_soon(self, peer: _Peer, reason: str) -> None:
        """Drop a member after the current delivery finishes (never re-enter `_deliver`)."""
        if not peer.closing:
            peer.closing = True
            asyncio.get_running_loop().call_soon(self.drop, peer, reason)

    def congested(self, peer: _Peer, on: bool) -> None:
        """Backpressure instead of an instant drop: while any member is over `write_cap`, read
        from no one; a member still over it after `stuck_wait` is not reading: drop it."""
        if on:
            if peer.id in self._congested or peer.closing:
                return
            loop = asyncio.get_running_loop()
            wait = self.options.stuck_wait
            self._congested[peer.id] = loop.call_later(wait, self.drop_soon, peer, "not reading")
            if len(self._congested) == 1:
                self._pause_reading()
        else:
            handle = self._congested.pop(peer.id, None)
            if handle is None:
                return
            handle.cancel()
            if not self._congested:
                self._resume_reading()

    def _pause_reading(self) -> None:
        for other in self._peers.values():
            if other.transport is not None and not other.closing:
                other.transport.pause_reading()

    def _resume_reading(self) -> None:
        for other in self._peers.values():
            if other.transport is not None and not other.closing and not other.stash:
                other.transport.resume_reading()
        if self._stashed:  # after this callback: it may be in the middle of a delivery
            asyncio.get_running_loop().call_soon(self._read_budget_renewed)

    def _read_budget_spent(self) -> None:
        """Nothing to pause: whoever is read from now on is stashed and paused (`stashed`)."""

    def stashed(self, peer: _Peer) -> None:
        """`peer` was read past the read budget: its reads wait, in order, for `_unstash`."""
        self._stashed.append(peer)

    def _read_budget_renewed(self) -> None:
        """Handle the reads that were stashed, oldest first, until the budget is spent again
        (the rest wait for the next renewal), and read again from those handled."""
        stashed = self._stashed
        while stashed and not self.reading.held and not self._congested:
            peer = stashed.popleft()
            stash, peer.stash = peer.stash, []
            for data in stash:
                peer.take(data)
            if peer.transport is not None and not peer.closing and not self._congested:
                peer.transport.resume_reading()

    def drop(self, peer: _Peer, reason: str, hold: bool = True) -> None:
        """Cut a member off. With `hold` (it was slow or unreachable, not misbehaving) it may
        come back as itself within the grace period; without, it is told why, which also
        keeps its app from reconnecting."""
        self.stop_replay(peer)
        self.congested(peer, False)
        if hold:
            peer.abort()
        else:
            peer.send(Ended(f"The host disconnected you: {reason}."))
            peer.close(linger=self.options.close_wait)
            self._lingering.add(peer)  # still ours to close if the room ends meanwhile
        self.files.gone(peer.id, held=hold)
        self._peers.pop(peer.id, None)
        self._deliver(self.room.leave(peer.id, reason, hold))

    async def _keep_alive(self) -> None:
        """Ping app members that have been quiet; drop those that stay silent (no FIN came)."""
        limit = self.options.keepalive
        while True:
            await asyncio.sleep(limit / 3)
            now = time.monotonic()
            for peer in list(self._peers.values()):
                if not peer.admitted or peer.closing or peer.kind != "app":
                    continue
                quiet = now - peer.last_heard
                if quiet > limit:
                    self.drop(peer, "connection lost: no answer")
                elif quiet > limit / 3:
                    peer.send(Ping())

    # --- delivery ------------------------------------------------------------------------------

    def written(self, peer: _Peer, first: bool) -> None:
        """`peer` has output waiting (`first`: none until now): one flush per loop iteration
        sends every peer's, and this (not chat) waits at most `gather` after the last."""
        self._schedule_flush()
        if first:
            self._written.append(peer)

    def _schedule_flush(self, chat: bool = False) -> None:
        """Flush at the end of this turn, or gather: in a busy room (the last flush was less
        than `quiet` ago) a flush for chat waits `gather` after the first chat written since
        the last one, so lines that arrive one by one go out several to a write (one send and
        one pass over the members for all of them) instead of one each, and none waits longer
        than `gather` (in a large room, longer: `_chat_gather`). Anything else (a file's
        frames, whose round trips pace a transfer) waits only until `gather` after the last
        flush. A quiet room's first line goes at once. Once `read_budget` bytes were read
        since the last flush it goes at once too (`_hurry_flush`), so what waits for a member
        stays bounded as with a flush per turn.

        While a gathered flush waits, the loop's selector (the worker's, app/hold.py) sleeps
        until it is due instead of waking for each line that comes meanwhile: those lines are
        read together just before the flush. Not while a flood is read (the last flush was
        hurried by the read budget): then reading goes on turn by turn as ever."""
        if self._flush_due:
            if not chat:
                self._flush_by(self._last_flush + self.options.gather)
            return
        self._flush_due = True
        loop = asyncio.get_running_loop()
        now = loop.time()
        gather = self.options.gather
        if gather <= 0 or now - self._last_flush >= self.options.quiet or self.reading.spent:
            loop.call_soon(self.flush_writes)
            return
        self._gather_from = now
        if not chat:
            at = self._last_flush + gather
        elif self._flood:  # the last flush carried a flood's lines: no longer wait
            at = now + gather
        else:
            at = now + self._chat_gather()
        if at <= now:
            loop.call_soon(self.flush_writes)
            return
        self._flush_timer = loop.call_at(at, self.flush_writes)
        if self._holder is not None and not self._flooding and at - now <= hold.LONGEST:
            self._holder.hold(at)

    def _chat_gather(self) -> float:
        """How long a busy room's chat waits for more: `gather`, or longer in a large room, up
        to `gather_most` (45 ms). A flush costs a send and a step for every member, so the
        larger the room the more each line that shares it saves: in a paced room of 100 (200
        lines a second) 6 ms put about 2 lines in a send, 45 ms about 9, which halves the
        host's CPU per delivery (README, "Sixth round: paced"). In a room of 13 or fewer it
        stays 6 ms. Anything but chat (a file's frames, an answer, a private message) still
        waits only `gather` after the last flush (`_flush_by`), and so do a flood's lines
        (`GATHERED`: while the loop sleeps through the wait nothing is read, so this costs a
        paced room nothing)."""
        options = self.options
        scaled = min(options.gather_most, options.gather_per_member * len(self.room))
        return max(options.gather, scaled)

    def _flush_by(self, at: float) -> None:
        """A flush is due; make it due no later than `at` (a chat's longer wait is cut short
        by anything else written meanwhile)."""
        timer = self._flush_timer
        if not isinstance(timer, asyncio.TimerHandle) or timer.when() <= at:
            return
        timer.cancel()
        loop = asyncio.get_running_loop()
        if at <= loop.time():
            self._flush_timer = loop.call_soon(self.flush_writes)
            if self._holder is not None:
                self._holder.release()
            return
        self._flush_timer = loop.call_at(at, self.flush_writes)
        if self._holder is not None and self._holder.until > at:
            self._holder.hold(at)

    def _hurry_flush(self) -> None:
        """A gathered flush waiting for its time goes at the end of this turn instead."""
        timer = self._flush_timer
        if timer is not None and isinstance(timer, asyncio.TimerHandle):
            timer.cancel()
            self._flush_timer = asyncio.get_running_loop().call_soon(self.flush_writes)
            if self._holder is not None:
                self._holder.release()

    def flush_wait(self) -> float:
        """Seconds until the next flush (0: at the end of this turn, or none is due)."""
        timer = self._flush_timer
        if isinstance(timer, asyncio.TimerHandle):
            return max(0.0, timer.when() - asyncio.get_running_loop().time())
        return 0.0

    def _commit_soon(self) -> None:
        """The room log has messages to commit: at the end of this turn, or with the gathered
        flush that will carry them (it commits before any of its bytes go out)."""
        if self._flush_timer is None:
            self.commit()

    def commit(self) -> None:
        """Commit the room log's pending messages (a no-op when none): done before any
        bytes go out, so a message that reached anyone survives the host being killed."""
        room_log = self.log
        if room_log is not None and room_log.pending:
            room_log.flush()

    def _post_soon(self, event: ev.Event) -> None:
        """Post `event` to the front end once this iteration's writes are sent. A chat while
        a gathered flush waits (`_schedule_flush`) is posted after that flush's writes; any
        other event hurries the flush, so the view keeps the room's order."""
        if not self._post_due:
            if self._flush_timer is not None and type(event) in _WITH_FLUSH:
                self._posts.append(event)  # flush_writes posts it
                return
            try:
                asyncio.get_running_loop().call_soon(self._post_pending)
            except RuntimeError:  # no loop running (closing): at once
                self._post_now(event)
                return
            self._post_due = True
        self._posts.append(event)

    def _post_pending(self) -> None:
        self._post_due = True  # while it runs: a gathered flush leaves the posts to it
        if self._written or self._cast.base is not None:
            self.flush_writes()
        self._post_due = False
        posts, self._posts = self._posts, []
        if len(posts) > 1 and self._post_many is not None:
            self._post_many(posts)
            return
        for event in posts:
            self._post_now(event)

    def flush_writes(self) -> None:
        """Send what was written to each peer in this loop iteration, one send per peer (a
        peer flushed earlier, by `close` or `write_now`, has nothing left to send)."""
        self._flush_due = False
        gathered, self._flush_timer = self._flush_timer, None
        if gathered is not None:
            gathered.cancel()  # called early (a no-op if this is its call)
        self._last_flush = asyncio.get_running_loop().time()
        if gathered is not None and self._holder is not None:
            self._holder.release()  # due now, or sent early: the loop need not sleep for it
        self._flooding = self.reading.heavy
        self.reading.flushed()
        if self._gathered:  # a flush of chats says whether they are a flood's
            self._flood, self._gathered = self._gathered >= GATHERED, 0
        if self._cast.base is not None:
            self._seal(now=True)
        written, self._written = self._written, []
        for peer in written:
            peer._flush()
        if gathered is not None:  # what waited for this flush: the log, the view's chats
            self.gathered_flushes += 1
            self.commit()
            if self._posts and not self._post_due:
                self._post_pending()

    def received_together(self, peer: _Peer, messages: list[Any]) -> None:
        """Several messages from one read. What they cause is collected in order and delivered
        together (`_deliver_together`): a member gets one write for the lot instead of one per
        message, so a burst costs the host per read, not per line and member."""
        batch: list[Send] = []
        self._batch = batch
        try:
            if peer.admitted:
                self._received_lines(peer, messages)
            else:
                for msg in messages:
                    if peer.closing:
                        break
                    self.received(peer, msg)
        finally:
            self._batch = None
        self._deliver_together(batch)

    def _received_lines(self, peer: _Peer, messages: list[Any]) -> None:
        """An admitted member's messages from one read, as `received` would take each. The
        plain ones (a chat line for everyone that needs no acknowledgement: most of a flood)
        are checked against the rate limits together, in runs (`_limit_lines`), and stamped
        by the room together; anything else goes its usual way, in order."""
        room = self.room
        limited = not self._send_limits.lifted
        plain: list[str] = []  # passed the limits, waiting to be stamped
        run: list[str] = []  # plain lines not checked against the limits yet
        sizes: list[int] = []  # the bytes each of `run` counts for
        for msg in messages:
            if peer.closing:
                break
            if type(msg) is PlainLines:  # a text member's read of such lines, checked at once
                if limited:
                    run += msg.texts
                    sizes += [len(text.encode()) for text in msg.texts]
                else:
                    plain += msg.texts
                continue
            if type(msg) is Say and msg.id is None and msg.to is None:
                text = room.plain_line(msg.text)
                if text is not None:
                    if limited:
                        run.append(text)
                        sizes.append(len(msg.text.encode()))
                    else:
                        plain.append(text)
                    continue
            if run:
                plain = self._limit_lines(peer, run, sizes, plain)
                run, sizes = [], []
            if plain:
                self._cast_plain(peer, plain)
                plain = []
            if not peer.closing:
                self.received(peer, msg)
        if run and not peer.closing:
            plain = self._limit_lines(peer, run, sizes, plain)
        if plain and not peer.closing:
            self._cast_plain(peer, plain)

    def _limit_lines(
        self, peer: _Peer, texts: list[str], sizes: list[int], plain: list[str]
    ) -> list[str]:
        """`plain` and then those of `texts` (`sizes` bytes each) that `peer`'s rate limits let
        through, as if each were checked on its own in turn: what waits is stamped before a
        refusal is said, and the lines after a refused one are checked again. What is left
        waiting is returned. A refusal is a strike, so a read holds few of them before the
        member is dropped."""
        limits = self._send_limits
        start, count = 0, len(texts)
        while start < count and not peer.closing:
            n = limits.allow_many(peer.limit_key, peer.ip, sizes[start:] if start else sizes)
            plain += texts[start : start + n]
            start += n
            if start == count:
                break
            self._cast_plain(peer, plain)
            plain = []
            self._too_fast(peer)
            start += 1  # the refused line
        return plain

    # --- a turn's chats for everyone, joined ----------------------------------------------
    #
    # A flood's chats are for everyone but their sender. Handing each read's lines to each
    # member costs a step per member per read; instead the turn's such chats wait in
    # `_cast` and `_seal` hands them on once: each kind of member's encoding is made once
    # and joined, and each member gets that one piece, or, if it sent some of them, the
    # pieces around its own (slices of the same bytes). Anything else written to anyone
    # seals the cast first, and so does a change of the member list, so every member gets
    # everything in the room's order and a member gets only chats stamped while it was in.

    def _cast_plain(self, peer: _Peer, texts: list[str]) -> None:
        """Stamp `texts` (lines `Room.plain_line` passed) from `peer` for everyone else.
        What this read caused before them is delivered first, in order."""
        batch = self._batch
        if batch:
            held = batch[:]
            batch.clear()
            self._batch = None
            try:
                self._deliver_together(held)
            finally:
                self._batch = batch
        chats = self.room.stamp_plain(peer.id, texts)
        if chats:
            self._cast_chats(peer.id, chats)

    def _cast_chats(self, sender: int, chats: list[Chat]) -> None:
        """`chats` (stamped just now) for everyone in the room but `sender`, this turn."""
        if self._arrivals:  # held "X joined" first: the room's order
            self._announce_arrivals()
        if self._departures:  # and held "X left"
            self._announce_departures()
        everyone = self.room.everyone()
        cast = self._cast
        if cast.base is not everyone:
            if cast.base is not None:  # the member list changed: what was said goes first
                self._seal()
            cast.base = everyone
            self._schedule_flush(chat=True)
        cast.senders.append(sender)
        cast.groups.append(chats)
        gathered = self._gathered
        self._gathered = gathered + len(chats)
        if gathered < GATHERED <= self._gathered:  # a flood's lines: no longer wait
            self._flush_by(self._gather_from + self.options.gather)
        if sender != LOCAL and LOCAL in self.room:
            self._view.chats(chats)

    def _seal(self, now: bool = False) -> None:
        """Hand the turn's cast to its members' output (see above). With `now` (the turn's
        flush), a member with nothing else waiting is sent its piece at once."""
        cast = self._cast
        base, senders, groups = cast.base, cast.senders, cast.groups
        if base is None:
            return
        cast.base, cast.senders, cast.groups = None, [], []
        if now:
            self.commit()  # what the pieces carry is in the room log before anyone gets it
        own: dict[int, list[int]] = {}
        for i, sender in enumerate(senders):
            own.setdefault(sender, []).append(i)
        peers = self._peers
        written = self._written
        encoded: dict[str, tuple[bytes, list[int]]] = {}  # kind: (all of it, where each starts)
        for member_id in base:
            peer = peers.get(member_id)
            if peer is None:
                continue  # the host's own person (told when added), or gone
            mine = own.get(member_id)
            if peer.replaying is not None:  # after the replay, in order
                for i, group in enumerate(groups):
                    if mine is None or i not in mine:
                        for chat in group:
                            self._hold(peer, chat)
                continue
            if peer.closing or peer.transport is None:
                continue
            kind = "app" if peer.parser.kind == "app" else "text"
            piece = encoded.get(kind)
            if piece is None:
                piece = encoded[kind] = _joined(groups, kind)
            data, starts = piece
            out = peer._out
            if now and not out:
                transport = peer.transport
                if not transport.is_closing():
                    peer._send(transport, data if mine is None else _less(data, starts, mine))
                continue
            if not out:
                written.append(peer)
            if mine is None:
                out.append(data)
                continue
            view = memoryview(data)
            at = 0
            for i in mine:  # the pieces around its own
                if starts[i] > at:
                    out.append(view[at : starts[i]])
                at = starts[i + 1]
            if at < len(data):
                out.append(view[at:])
            if not out:
                written.pop()
        if written:
            self._schedule_flush(chat=True)

    def _deliver_together(self, sends: list[Send]) -> None:
        """Deliver `sends` in order. Chats whose recipient sets do not overlap (the others; the
        sender's own echo) are joined per recipient set; anything else goes one by one."""
        if self._arrivals:
            self._announce_arrivals()
        if self._departures:
            self._announce_departures()
        groups: dict[tuple[int, ...], list[Chat]] = {}
        for send in sends:
            if not isinstance(send.message, Chat):
                self._deliver(sends)
                return
            groups.setdefault(send.to, []).append(send.message)
        if len(groups) > 1:
            seen: set[int] = set()
            for to in groups:
                seen.update(to)
            if len(seen) != sum(len(to) for to in groups):
                self._deliver(sends)
                return
        for to, msgs in groups.items():
            self._deliver_chats(to, msgs)

    def _deliver_chats(self, to: tuple[int, ...], chats: list[Chat]) -> None:
        """`chats` (in order) to each member in `to`, encoded once per kind of peer and queued
        for the iteration's one flush. A member taking a replay gets them after it, in order."""
        if self._cast.base is not None:
            self._seal()
        peers = self._peers
        written = self._written
        text_data: bytes | None = None
        app_data: bytes | None = None
        for member_id in to:
            peer = peers.get(member_id)
            if peer is None:
                if member_id == LOCAL:
                    for chat in chats:
                        self._view.chat(chat)
                continue
            if peer.replaying is not None:  # after the replay, in order
                for chat in chats:
                    self._hold(peer, chat)
                continue
            if peer.closing or peer.transport is None:
                continue
            if peer.parser.kind == "app":
                if app_data is None:
                    app_data = b"".join([encode_json(chat) for chat in chats])
                data = app_data
            else:
                if text_data is None:
                    text_data = encode_text_chats(chats)
                data = text_data
            out = peer._out
            if not out:
                written.append(peer)
            out.append(data)
        if written:
            self._schedule_flush(chat=True)

    def _deliver(self, sends: Iterable[Send]) -> None:
        if self._batch is not None:  # inside received_together: delivered at its end
            self._batch.extend(sends)
            return
        if self._cast.base is not None:  # the turn's chats first: the room's order
            self._seal()
        if self._arrivals:  # held "X joined" first: the room's order
            self._announce_arrivals()
        if self._departures:  # and held "X left"
            self._announce_departures()
        for send in sends:
            msg = send.message
            if isinstance(msg, Replay):
                for member_id in send.to:
                    if member_id == LOCAL:
                        self._local_replay(msg)
                    elif (peer := self._peers.get(member_id)) is not None:
                        self._start_replay(peer, msg)
                continue
            if type(msg) is Chat:
                self._deliver_chats(send.to, [msg])
                continue
            if isinstance(msg, Welcome) and msg.limits is None:
                msg = replace(msg, limits=self._rates)  # the member's limits, to pace itself
            encoded: dict[str, bytes] = {}
            for member_id in send.to:
                if member_id == LOCAL:
                    self._local(msg)
                    continue
                peer = self._peers.get(member_id)
                if peer is None:
                    continue
                if peer.replaying is not None:  # after the replay, in order
                    self._hold(peer, msg)
                    if isinstance(msg, Ended):
                        peer.close()
                    continue
                data = encoded.get(peer.kind)
                if data is None:
                    data = encoded[peer.kind] = (
                        encode_json(msg) if peer.kind == "app" else encode_text(msg)
                    )
                peer.write(data)
                if isinstance(msg, Ended):
                    peer.close()

    # --- replays: history and resumes, paced by the member's connection -----------------------

    def _start_replay(self, peer: _Peer, replay: Replay) -> None:
        if peer.closing:
            return
        if peer.replaying is not None:  # one at a time, in the order given
            self._hold(peer, replay)
            return
        peer.replaying = _Replaying(replay, replay.after)
        if peer.id in self._congested:  # over write_cap already: wait for it to drain
            self.replay_paused(peer)
        else:
            asyncio.get_running_loop().call_soon(self._pump, peer)

    def _pump(self, peer: _Peer) -> None:
        """Write the next pages of a peer's replay until its connection is full (then
        `resume_writing` calls again) or a step's worth is written (then the loop does)."""
        r = peer.replaying
        if r is None or r.paused or peer.closing:
            return
        step = 0
        while step < REPLAY_STEP and not r.paused:
            chats, following = self.room.replay_page(peer.id, r.replay, r.cursor, REPLAY_PAGE)
            for data, seq in self._frames(peer, chats, r.replay.earlier):
                peer.write_now(data)  # may call pause_writing at once
                if peer.replaying is not r:  # closed meanwhile
                    return
                r.cursor, step = seq, step + len(data)
                if r.full():  # at most write_cap and this frame in flight
                    return
            r.cursor = following
            if r.cursor >= r.replay.until:
                r = self._next_replay(peer)
                if r is None:
                    return
        asyncio.get_running_loop().call_soon(self._pump, peer)

    def _frames(self, peer: _Peer, chats: list[Chat], earlier: bool) -> list[tuple[bytes, int]]:
        """A replay page as frames, each with the number of the last message in it."""
        if peer.kind != "app":
            if earlier:
                return [(encode_text(History((c,))), c.seq) for c in chats]
            return [(encode_text(c), c.seq) for c in chats]
        if earlier:
            frames, skipped = encode_history(chats)
            if skipped:
                log.warning("%d logged messages are over the size contract; not sent", skipped)
            return frames
        return [(encode_json(c), c.seq) for c in chats]

    def _next_replay(self, peer: _Peer) -> _Replaying | None:
        """A replay is done: send what waited behind it, up to the next replay, if any."""
        r = peer.replaying
        if r is None:
            return None
        while r.held:
            item = r.held.popleft()
            if isinstance(item, Replay):
                r.replay, r.cursor = item, item.after
                return r
            peer.send(item)
            if isinstance(item, Ended):
                peer.close()
        self.stop_replay(peer)
        return None

    def _hold(self, peer: _Peer, item: ServerMessage | Replay) -> None:
        r = peer.replaying
        assert r is not None
        r.held.append(item)
        if isinstance(item, Ended):  # the chat is over for it: say so now
            r.held = deque(m for m in r.held if not isinstance(m, Replay))
            r.cursor = r.replay.until
            self._next_replay(peer)
        elif len(r.held) > self.options.replay_held:  # it takes its replay too slowly
            self.drop_soon(peer, "not reading")

    def replay_paused(self, peer: _Peer) -> None:
        r = peer.replaying
        if r is None or r.paused:
            return
        r.paused = True
        r.timer = asyncio.get_running_loop().call_later(
            self.options.stuck_wait, self._replay_stalled, peer
        )

    def replay_resumed(self, peer: _Peer) -> None:
        r = peer.replaying
        if r is None or not r.paused:
            return
        r.paused = False
        if r.timer is not None:
            r.timer.cancel()
            r.timer = None
        asyncio.get_running_loop().call_soon(self._pump, peer)

    def _replay_stalled(self, peer: _Peer) -> None:
        r = peer.replaying
        if r is not None and r.paused and not peer.closing:
            self.room.replay_stalled(peer.id, r.replay)
            self.drop_soon(peer, "not reading")

    def stop_replay(self, peer: _Peer) -> None:
        """Forget a peer's replay (it is closing, or another replay replaces it)."""
        r, peer.replaying = peer.replaying, None
        if r is not None and r.timer is not None:
            r.timer.cancel()

    def _local_replay(self, replay: Replay) -> None:
        after = replay.after
        while after < replay.until:
            chats, after = self.room.replay_page(LOCAL, replay, after, REPLAY_PAGE)
            for chat in chats:
                self._view.chat(chat, replay.earlier)

    def _local(self, msg: ServerMessage) -> None:
        if isinstance(msg, Welcome):
            self._view.welcome(msg)
        elif isinstance(msg, Ended):
            self._spawn(self._shutdown())
        else:
            self._view.handle(msg)

    def _joined_details(self, name: str) -> tuple[str | None, str | None, bool | None]:
        member_id = self.room.id_of(name)
        peer = self._peers.get(member_id) if member_id is not None else None
        return (peer.address, peer.safety, peer.tls) if peer else (None, None, None)


class _Held:
    """An arrival held for the batch (`Host._hold_arrival`): the member, its "X joined", its
    own welcome and what follows it (None: already sent; a text member's welcome already as
    its lines, in `welcome`), and whether the host's own person hears of it."""

    __slots__ = ("local", "member_id", "msg", "own", "welcome")

    def __init__(self, member_id: int, msg: Joined, own: list[Send] | None, local: bool) -> None:
        self.member_id = member_id
        self.msg = msg
        self.own = own
        self.local = local
        self.welcome: bytes | None = None


class _Arrivals:
    """A batch of arrivals as each kind of member is told of its part from `first` on (those
    after the member itself): app members get every `joined` frame (their member list needs
    them); a text member gets each `* X joined.` line, or, for more than `ARRIVALS_LISTED`
    at once, one line naming the first few and counting the rest (`arrivals_line`)."""

    __slots__ = ("_parts", "_plain_after", "msgs")

    def __init__(self, msgs: list[Joined]) -> None:
        self.msgs = msgs
        self._parts: dict[str, list[bytes]] = {}
        self._plain_after: list[int] | None = None  # unencrypted arrivals from i on

    def told(self, kind: str, first: int) -> bytes:
        msgs = self.msgs
        count = len(msgs) - first
        if kind != "app" and count > ARRIVALS_LISTED:
            plain = self._plain_after
            if plain is None:
                plain = self._plain_after = [0] * (len(msgs) + 1)
                for i in range(len(msgs) - 1, -1, -1):
                    plain[i] = plain[i + 1] + msgs[i].plain
            names = [msg.name for msg in msgs[first : first + ARRIVALS_LISTED]]
            return arrivals_line(names, count, plain[first])
        parts = self._parts.get(kind)
        if parts is None:
            encode = encode_json if kind == "app" else encode_text
            parts = self._parts[kind] = [encode(msg) for msg in msgs]
        return b"".join(parts[first:])


def _departures_told(msgs: list[Left], kind: str) -> bytes:
    """A batch of departures as `kind` of member is told of it (see `_Arrivals`)."""
    if kind != "app" and len(msgs) > ARRIVALS_LISTED:
        return departures_line([msg.name for msg in msgs[:ARRIVALS_LISTED]], len(msgs))
    encode = encode_json if kind == "app" else encode_text
    return b"".join([encode(msg) for msg in msgs])


def _joined(groups: list[list[Chat]], kind: str) -> tuple[bytes, list[int]]:
    """A cast's chats for one kind of member in one piece, and where each group starts in
    it (one more entry: the end)."""
    if kind == "app":
        parts = [b"".join([encode_json(chat) for chat in group]) for group in groups]
    else:
        parts = [encode_text_chats(group) for group in groups]
    starts = [0]
    at = 0
    for part in parts:
        at += len(part)
        starts.append(at)
    return b"".join(parts), starts


def _less(data: bytes, starts: list[int], mine: list[int]) -> bytes:
    """`data` (a cast's piece) without the groups numbered `mine` (a member's own)."""
    parts: list[bytes] = []
    at = 0
    for i in mine:
        parts.append(data[at : starts[i]])
        at = starts[i + 1]
    parts.append(data[at:])
    return b"".join(parts)


async def _peek(sock: socket.socket, timeout: float) -> bytes:
    """The first bytes waiting on `sock`, left in place for whoever reads next; b"" if none
    arrive within `timeout` (a peer such as nc that waits for us to speak first)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await asyncio.wait_for(ready, timeout)
    except asyncio.TimeoutError:
        return b""
    finally:
        loop.remove_reader(sock.fileno())
    try:
        return sock.recv(16, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return b""


def _refuse_raw(sock: socket.socket, text: str) -> None:
    """One line to a peer we will not serve, then close (best effort: never wait for it)."""
    with contextlib.suppress(OSError):
        sock.send(refusal_line(text))
    sock.close()


def _listen(bind: str | None, port: int) -> list[socket.socket]:
    if bind is None:
        if socket.has_dualstack_ipv6():
            try:
                return [
                    socket.create_server(
                        ("::", port), family=socket.AF_INET6, dualstack_ipv6=True, backlog=1024
                    )
                ]
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise
        return [socket.create_server(("0.0.0.0", port), backlog=1024)]
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    return [socket.create_server((bind, port), family=family, backlog=1024)]


def _bind_error(bind: str | None, port: int, exc: OSError) -> str:
    where = f"{bind}:{port}" if bind else f"port {port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Could not listen on {where}: the address is already in use "
            "— is another host running? Try another port."
        )
    if exc.errno == errno.EACCES:
        return f"Could not listen on {where}: permission denied — try a port above 1024."
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"Could not listen on {where}: {bind} is not an address of this machine."
    return f"Could not listen on {where}: {exc.strerror or exc}."


def _raise_fd_limit() -> None:
    """Many members need many sockets; lift the soft limit to the hard one where there is one."""
    if sys.platform == "win32":
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
