"""What both sides of a connection share: options' defaults and how room messages become events."""

from __future__ import annotations

import asyncio.sslproto
import contextlib
import queue
import socket
from collections.abc import Callable

from app import events as ev
from app.mentions import mentions
from app.messages import Chat, Error, Joined, Left, Members, Notice, Renamed, ServerMessage, Welcome
from app.names import name_key
from app.protocol import not_encrypted_warning

Post = Callable[[ev.Event], None]
PostMany = Callable[[list[ev.Event]], None]


def post_many_for(post: Post) -> PostMany | None:
    """Several events at once for `post`, when `post` is a plain unbounded `queue.Queue`'s put
    (what both front ends give the worker): one lock and one wake-up for a batch instead of
    one each, which in a flood cost the host as much as the rest of its own view. None for
    anything else (tests' recorders, bounded queues): post them one by one."""
    target = getattr(post, "__self__", None)
    if type(target) is not queue.Queue or getattr(post, "__func__", None) is not queue.Queue.put:
        return None
    if target.maxsize > 0:
        return None
    events = target

    def put_many(items: list[ev.Event]) -> None:
        with events.mutex:  # what Queue.put does per item (the queue module's own fields)
            events.queue.extend(items)
            events.unfinished_tasks += len(items)
            events.not_empty.notify(len(items))

    return put_many


def same_name(a: str, b: str) -> bool:
    return name_key(a) == name_key(b)


TLS_READ_SIZE = 32 * 1024  # what one socket read of a TLS connection takes at most


def lean_tls_reads() -> None:
    """Give each TLS connection a 32 KiB read buffer instead of asyncio's 256 KiB.

    asyncio (3.11 and later) makes every TLS connection a 256 KiB buffer for its socket reads
    when the connection is made, and zeroes it: a host of 5,000 app members over TLS held
    1.5 GB (about 300 kB a member, against 4 kB a member over plain text), and the zeroing was
    a tenth of the host's CPU while they joined. A TLS record carries at most 16 KiB, so 32 KiB
    reads cost a file going through the host nothing measurable (1 GiB: 262-272 MB/s against
    262-266 MB/s, host CPU within the runs' spread). The class attribute is the one handle
    asyncio gives, so this is process-wide; Python 3.10 and other loops (uvloop) do not have
    it and are left as they are."""
    protocol = asyncio.sslproto.SSLProtocol
    if getattr(protocol, "max_size", 0) > TLS_READ_SIZE:
        protocol.max_size = TLS_READ_SIZE


def set_nodelay(sock: socket.socket | None) -> None:
    """Chat lines are small and latency matters more than packet count: no Nagle delay."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def set_tcp_keepalive(sock: socket.socket | None, seconds: float) -> None:
    """Let the system find a peer that vanished without closing. App peers are pinged by the
    protocol too; text peers (nc, telnet) cannot be, so this is their only check."""
    if sock is None:
        return
    idle = max(1, int(seconds / 3))
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


class LocalView:
    """Turns what the room (or the host) says to this person into events, tracking members."""

    def __init__(
        self,
        post: Post,
        details: Callable[[str], tuple[str | None, str | None, bool | None]] | None = None,
    ) -> None:
        self.post = post
        self.details = details  # the host's: a member's address, safety code, encryption
        self.name = ""
        self.members: tuple[str, ...] = ()
        self.key_prefix: str | None = None  # "host identity/epoch/": keys for messages
        self.batches = False  # chats for everyone as one ChatsReceived (see `chats`)

    def welcome(self, msg: Welcome) -> None:
        self.name, self.members = msg.name, msg.members
        for chat in msg.history:
            self.chat(chat, earlier=True)

    def chat(self, msg: Chat, earlier: bool = False) -> None:
        self.post(self.event(msg, earlier))

    def chats(self, chats: list[Chat]) -> None:
        """Chats from others for everyone (no id, no recipient), in order."""
        if self.batches:
            self.post(ev.ChatsReceived(tuple(chats)))
            return
        for msg in chats:
            self.post(self.event(msg))

    def event(self, msg: Chat, earlier: bool = False) -> ev.MessageReceived:
        """How a message reads to this person: theirs or not, private with whom, naming them."""
        mine = msg.id is not None or (msg.to is not None and same_name(msg.sender, self.name))
        private = None
        if msg.to is not None:
            private = msg.to if same_name(msg.sender, self.name) else msg.sender
        mention = not mine and mentions(msg.text, self.name)
        key = None if self.key_prefix is None else f"{self.key_prefix}{msg.seq}"
        return ev.MessageReceived(
            msg.sender, msg.text, msg.time, msg.seq, mine, earlier, msg.id, private, mention, key
        )

    def joined(self, msgs: list[Joined]) -> None:
        """Arrivals announced together (the host's batch): the member list grows once, and
        each arrival's `MemberJoined` carries that one list, as it is after the batch. A
        copy of the room's list per arrival would be a square of the room's size, built and
        queued while the room fills up (16 kB per member in a room of 5,000)."""
        self.members += tuple(msg.name for msg in msgs)
        members = self.members
        for msg in msgs:
            address, code, tls = self.details(msg.name) if self.details else (None, None, None)
            encrypted = False if msg.plain else tls
            self.post(ev.MemberJoined(msg.name, members, address, code, encrypted))

    def left(self, msgs: list[Left]) -> None:
        """Departures announced together: as `joined`, one list for the batch (the room as
        it is after it), shared by each departure's `MemberLeft`."""
        gone = {msg.name for msg in msgs}
        self.members = members = tuple(m for m in self.members if m not in gone)
        for msg in msgs:
            self.post(ev.MemberLeft(msg.name, msg.reason, members))

    def handle(self, msg: ServerMessage) -> None:
        post = self.post
        if isinstance(msg, Chat):
            self.chat(msg)
        elif isinstance(msg, Joined):
            self.members += (msg.name,)
            address, code, tls = self.details(msg.name) if self.details else (None, None, None)
            encrypted = False if msg.plain else tls
            post(ev.MemberJoined(msg.name, self.members, address, code, encrypted))
        elif isinstance(msg, Left):
            self.members = tuple(m for m in self.members if m != msg.name)
            post(ev.MemberLeft(msg.name, msg.reason, self.members))
        elif isinstance(msg, Renamed):
            self.members = tuple(msg.new if m == msg.old else m for m in self.members)
            you = msg.old == self.name
            if you:
                self.name = msg.new
            post(ev.MemberRenamed(msg.old, msg.new, self.members, you))
        elif isinstance(msg, Members):
            self.members = msg.names
            post(ev.NoticeShown(f"In the room: {', '.join(msg.names)}."))
            if msg.plain:
                post(ev.ErrorShown(not_encrypted_warning(msg.plain)))
        elif isinstance(msg, Notice):
            post(ev.NoticeShown(msg.text))
        elif isinstance(msg, Error):
            post(ev.ErrorShown(msg.text))
