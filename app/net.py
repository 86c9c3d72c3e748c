"""asyncio networking: the host's listener and members, and the joiner's connection.

How this works
--------------
Host: a listening socket per address family; an accept loop hands each new socket to `_admit`,
which wraps it in a `_Peer` (an `asyncio.Protocol`) with `loop.connect_accepted_socket`. The peer
sends the greeting, feeds every byte it reads to its `HostSideParser`, and hands the messages to
the `Host`, which asks the `Room` what to do and writes the resulting deliveries. The host's own
person is room member 0; deliveries to it become UI events through `post`.

Writes never wait: each peer's transport buffers what it cannot send yet, and a peer whose buffer
passes `write_cap` is dropped (it is not reading), so one stuck member never slows the room.

Joiner: one connection with a `_JoinerProtocol`. It waits `greet_wait` for the host's greeting;
a Parley greeting gets a hello, anything else (or silence) means a plain line server such as
``nc -l`` or ``ncat --chat``, spoken to in plain lines.

Both sides post `app.events` through the injected `post` callable and end every session with
exactly one `ChatEnded` or `Failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import socket
import sys
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from app import events as ev
from app.messages import (
    Chat,
    Ended,
    Error,
    Greeting,
    Hello,
    Joined,
    Left,
    Members,
    Notice,
    Ping,
    Pong,
    ProtocolError,
    RawLine,
    Renamed,
    Say,
    Send,
    ServerMessage,
    Welcome,
)
from app.protocol import (
    GREETING,
    MAX_LINE,
    VERSION,
    HostSideParser,
    JoinerSideParser,
    clean_text,
    encode_client,
    encode_json,
    encode_text,
    is_bye,
)
from app.room import HISTORY, Room

log = logging.getLogger(__name__)

DEFAULT_PORT = 5151
LOCAL = 0  # the host's own person in the room
Post = Callable[[ev.Event], None]


@dataclass
class HostOptions:
    """Everything a host can be told; time limits are here so tests can shrink them."""

    port: int = DEFAULT_PORT
    bind: str | None = None  # None: every interface, IPv6 and IPv4 where possible
    name: str = "Host"
    max_line: int = MAX_LINE
    hello_wait: float = 1.0  # silence after the greeting that makes a peer a text peer
    write_cap: int = 1 << 20  # bytes queued for one member before it is dropped
    max_errors: int = 5  # bad lines a member may send before it is dropped
    history: int = HISTORY
    close_wait: float = 1.0  # how long ending the room waits for goodbyes to flush


@dataclass
class JoinOptions:
    host: str
    port: int = DEFAULT_PORT
    name: str = "Guest"
    max_line: int = MAX_LINE
    greet_wait: float = 1.0  # silence that means the server is not Parley
    connect_timeout: float = 10.0
    bye_wait: float = 1.0  # how long a bye waits for the host before closing anyway


class _LocalView:
    """Turns what the room (or the host) says to this person into events, tracking members."""

    def __init__(self, post: Post, address_of: Callable[[str], str | None] | None = None) -> None:
        self.post = post
        self.address_of = address_of
        self.name = ""
        self.members: tuple[str, ...] = ()

    def welcome(self, msg: Welcome) -> None:
        self.name, self.members = msg.name, msg.members
        for chat in msg.history:
            self.chat(chat, earlier=True)

    def chat(self, msg: Chat, earlier: bool = False) -> None:
        mine = msg.id is not None
        self.post(
            ev.MessageReceived(msg.sender, msg.text, msg.time, msg.seq, mine, earlier, msg.id)
        )

    def handle(self, msg: ServerMessage) -> None:
        post = self.post
        if isinstance(msg, Chat):
            self.chat(msg)
        elif isinstance(msg, Joined):
            self.members += (msg.name,)
            address = self.address_of(msg.name) if self.address_of else None
            post(ev.MemberJoined(msg.name, self.members, address))
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
        elif isinstance(msg, Notice):
            post(ev.NoticeShown(msg.text))
        elif isinstance(msg, Error):
            post(ev.ErrorShown(msg.text))


# --- host ---------------------------------------------------------------------------------------


class _Peer(asyncio.Protocol):
    """One connection at the host. Knows bytes and its own buffer; the Host knows the room."""

    def __init__(self, host: Host, member_id: int, address: str) -> None:
        self.host = host
        self.id = member_id
        self.address = address
        self.parser = HostSideParser(host.options.max_line)
        self.transport: asyncio.Transport | None = None
        self.admitted = False
        self.closing = False
        self.errors = 0
        self.said_bye = False
        self.lost = asyncio.get_running_loop().create_future()
        self._hello_timer: asyncio.TimerHandle | None = None

    @property
    def kind(self) -> str:
        return self.parser.kind or "text"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write((GREETING + "\n").encode())
        loop = asyncio.get_running_loop()
        self._hello_timer = loop.call_later(self.host.options.hello_wait, self._silent)

    def _silent(self) -> None:
        if not self.admitted and not self.closing:
            self.parser.decide_text()
            self.host.admit(self, None)

    def data_received(self, data: bytes) -> None:
        for msg in self.parser.feed(data):
            if self.closing:
                return
            self.host.received(self, msg)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        self.closing = True
        self.host.lost(self, exc)
        if not self.lost.done():
            self.lost.set_result(None)

    def write(self, data: bytes) -> None:
        if self.closing or self.transport is None or not data:
            return
        self.transport.write(data)
        if self.transport.get_write_buffer_size() > self.host.options.write_cap:
            self.host.drop_soon(self, "not reading")

    def close(self) -> None:
        """Close after what is buffered has been sent."""
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


class Host:
    """A running room. Create, `await start()`, then `say()`; `end()` closes it for everyone."""

    def __init__(self, options: HostOptions, post: Post) -> None:
        self.options = options
        self.post = post
        self.room = Room(history=options.history)
        self.port = 0
        self._view = _LocalView(post, self._address_of)
        self._peers: dict[int, _Peer] = {}
        self._ids = itertools.count(1)
        self._local_ids = itertools.count(1)
        self._listeners: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished = False
        self._stopping = False
        self.closed = asyncio.Event()

    # --- life ----------------------------------------------------------------------------------

    async def start(self) -> bool:
        """Listen and open the room; on failure post `Failed` and return False."""
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
        self._deliver(self.room.join(LOCAL, self.options.name, "local"))
        addresses = tuple(local_addresses(self.options.bind, self.port))
        self.post(ev.Hosting(self._view.name, self.port, addresses))
        return True

    def say(self, text: str) -> None:
        """The host's own person says `text` (a bye ends the room)."""
        if not self._finished:
            self._deliver(self.room.say(LOCAL, text, f"local-{next(self._local_ids)}"))

    async def end(self, reason: str = "The host ended the chat.") -> None:
        """End the room for everyone, give goodbyes a moment to flush, then close."""
        self._deliver(self.room.end(reason))  # the room's Ended to LOCAL starts the shutdown
        await self.closed.wait()

    async def _shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        for sock in self._listeners:
            sock.close()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        peers = list(self._peers.values())
        for peer in peers:
            peer.close()
        if peers:
            waits = [peer.lost for peer in peers]
            await asyncio.wait(waits, timeout=self.options.close_wait)
            for peer in peers:
                if not peer.lost.done():
                    peer.abort()
        self._finish(ev.ChatEnded("You ended the chat."))

    def _finish(self, event: ev.Event) -> None:
        if not self._finished:
            self._finished = True
            self.post(event)
            self.closed.set()

    def abort(self) -> None:
        """Close every socket now, without goodbyes (the loop is going away)."""
        for sock in self._listeners:
            sock.close()
        for peer in list(self._peers.values()):
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
            self._spawn(self._open(sock, _format_address(addr)))

    async def _open(self, sock: socket.socket, address: str) -> None:
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        member_id = next(self._ids)
        try:
            _, peer = await loop.connect_accepted_socket(
                lambda: _Peer(self, member_id, address), sock
            )
        except OSError:
            sock.close()
            return
        self._peers[member_id] = peer

    def admit(self, peer: _Peer, name: str | None) -> None:
        if peer.admitted:
            return
        peer.admitted = True
        if peer._hello_timer is not None:
            peer._hello_timer.cancel()
        self._deliver(self.room.join(peer.id, name, peer.kind))

    def received(self, peer: _Peer, msg: object) -> None:
        if not peer.admitted:
            if isinstance(msg, Hello):
                if msg.version != VERSION:
                    refusal = Error("version", f"This host speaks version {VERSION}.")
                    peer.write(encode_json(refusal))
                    peer.close()
                    return
                self.admit(peer, msg.name)
                return
            self.admit(peer, None)
        if isinstance(msg, Hello):  # an app peer whose hello came after the silence timer
            self._deliver(self.room.upgrade(peer.id, msg.name))
        elif isinstance(msg, Say):
            if is_bye(clean_text(msg.text)):
                peer.said_bye = True
            self._deliver(self.room.say(peer.id, msg.text, msg.id))
        elif isinstance(msg, Ping):
            peer.write(self._encode(peer, Pong()))
        elif isinstance(msg, ProtocolError):
            peer.errors += 1
            peer.write(self._encode(peer, Error(msg.code, msg.text)))
            if msg.fatal or peer.errors >= self.options.max_errors:
                self.drop(peer, "too many bad lines")

    def lost(self, peer: _Peer, exc: Exception | None) -> None:
        self._peers.pop(peer.id, None)
        if peer.id in self.room:
            clean = exc is None and self.parser_idle(peer) and peer.kind == "text"
            self._deliver(self.room.leave(peer.id, "left" if clean else "connection lost"))

    @staticmethod
    def parser_idle(peer: _Peer) -> bool:
        return peer.parser._lines.pending == 0

    def drop_soon(self, peer: _Peer, reason: str) -> None:
        """Drop a member after the current delivery finishes (never re-enter `_deliver`)."""
        if not peer.closing:
            peer.closing = True
            asyncio.get_running_loop().call_soon(self.drop, peer, reason)

    def drop(self, peer: _Peer, reason: str) -> None:
        peer.abort()
        self._peers.pop(peer.id, None)
        self._deliver(self.room.leave(peer.id, reason))

    # --- delivery ------------------------------------------------------------------------------

    @staticmethod
    def _encode(peer: _Peer, msg: ServerMessage) -> bytes:
        return encode_json(msg) if peer.kind == "app" else encode_text(msg)

    def _deliver(self, sends: Iterable[Send]) -> None:
        for send in sends:
            msg = send.message
            encoded: dict[str, bytes] = {}
            for member_id in send.to:
                if member_id == LOCAL:
                    self._local(msg)
                    continue
                peer = self._peers.get(member_id)
                if peer is None:
                    continue
                data = encoded.get(peer.kind)
                if data is None:
                    data = encoded[peer.kind] = self._encode(peer, msg)
                peer.write(data)
                if isinstance(msg, Ended):
                    peer.close()

    def _local(self, msg: ServerMessage) -> None:
        if isinstance(msg, Welcome):
            self._view.welcome(msg)
        elif isinstance(msg, Ended):
            self._spawn(self._shutdown())
        else:
            self._view.handle(msg)

    def _address_of(self, name: str) -> str | None:
        peer = self._peers.get(self.room.id_of(name) or LOCAL)
        return peer.address if peer else None


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


def _format_address(addr: tuple[object, ...]) -> str:
    host, port = str(addr[0]), addr[1]
    if host.startswith("::ffff:"):
        host = host[7:]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def local_addresses(bind: str | None, port: int) -> list[str]:
    """The "address:port" strings others may use to reach this machine, best first."""
    if bind not in (None, "", "0.0.0.0", "::"):
        return [_format_address((bind, port))]
    import ifaddr

    v4: list[str] = []
    v6: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                if not ip.ip.startswith("127."):
                    v4.append(f"{ip.ip}:{port}")
            else:
                addr = ip.ip[0]
                if addr != "::1" and not addr.lower().startswith("fe80"):
                    v6.append(f"[{addr}]:{port}")
    return v4 + v6 or [f"127.0.0.1:{port}"]


# --- joiner -------------------------------------------------------------------------------------


class _JoinerProtocol(asyncio.Protocol):
    def __init__(self, joiner: Joiner) -> None:
        self.joiner = joiner
        self.parser = JoinerSideParser(joiner.options.max_line)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.joiner.connected(self)  # before any data_received, which may come at once

    def data_received(self, data: bytes) -> None:
        for msg in self.parser.feed(data):
            self.joiner.received(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self.joiner.lost(exc)


class Joiner:
    """One person's connection to a room (or to a plain line server)."""

    def __init__(self, options: JoinOptions, post: Post) -> None:
        self.options = options
        self.post = post
        self._view = _LocalView(post)
        self._proto: _JoinerProtocol | None = None
        self._ids = itertools.count(1)
        self._queued: list[str] = []
        self._greet_timer: asyncio.TimerHandle | None = None
        self.in_room = False
        self.foreign = False
        self._finished = False
        self._leaving = False
        self.closed = asyncio.Event()

    async def start(self) -> bool:
        host, port = self.options.host, self.options.port
        self.post(ev.Connecting(host, port))
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: _JoinerProtocol(self), host, port),
                self.options.connect_timeout,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            self._finish(ev.Failed(_connect_error(host, port, exc)))
            return False
        return True

    def connected(self, proto: _JoinerProtocol) -> None:
        self._proto = proto
        assert proto.transport is not None
        sock = proto.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = asyncio.get_running_loop()
        self._greet_timer = loop.call_later(self.options.greet_wait, self._no_greeting)

    def _no_greeting(self) -> None:
        if self._proto is not None and self._proto.parser.mode is None:
            self._proto.parser.decide_raw()
            self._enter_foreign()

    def _enter_foreign(self) -> None:
        self.foreign = True
        self.in_room = True
        self._view.name = self.options.name
        self.post(
            ev.Connected(
                self.options.name,
                self.options.host,
                self.options.port,
                (),
                "This server is not Parley: plain lines both ways.",
                True,
            )
        )
        self._flush_queue()

    def _write(self, data: bytes) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.write(data)

    def received(self, msg: object) -> None:
        if isinstance(msg, Greeting):
            if self._greet_timer is not None:
                self._greet_timer.cancel()
            if msg.version is None:
                self._enter_foreign()
            else:
                self._write(encode_client(Hello(self.options.name, VERSION)))
        elif isinstance(msg, RawLine):
            text = clean_text(msg.text)
            self.post(ev.MessageReceived(None, text))
            if is_bye(text):
                self._close(ev.ChatEnded("The other side said bye."))
        elif isinstance(msg, Welcome):
            self.in_room = True
            self.post(
                ev.Connected(msg.name, self.options.host, self.options.port, msg.members, msg.note)
            )
            self._view.welcome(msg)
            self._flush_queue()
        elif isinstance(msg, Ended):
            self._close(ev.ChatEnded(msg.reason))
        elif isinstance(msg, Ping):
            self._write(encode_client(Pong()))
        elif isinstance(msg, ProtocolError):
            # Before the welcome, plain lines may come first: the host took our hello for
            # silence and spoke to us as a text peer. The welcome that follows replaces them.
            if self.in_room or msg.code != "malformed":
                self.post(ev.ErrorShown(msg.text))
        elif isinstance(msg, Pong):
            pass
        else:
            self._view.handle(msg)  # type: ignore[arg-type]

    def say(self, text: str) -> None:
        if self._finished or self._leaving:
            return
        if not self.in_room:
            self._queued.append(text)
            return
        bye = is_bye(text)
        if self.foreign:
            self._write(text.replace("\n", " ").encode() + b"\n")
            self.post(ev.MessageReceived(self._view.name, text, mine=True))
            if bye:
                self._close(ev.ChatEnded("You left the chat."))
            return
        msg_id = f"m{next(self._ids)}"
        self.post(ev.MessagePending(msg_id, text))
        self._write(encode_client(Say(text, msg_id)))
        if bye:
            self._leaving = True
            asyncio.get_running_loop().call_later(
                self.options.bye_wait, self._close, ev.ChatEnded("You left the chat.")
            )

    def _flush_queue(self) -> None:
        queued, self._queued = self._queued, []
        for text in queued:
            self.say(text)

    async def leave(self) -> None:
        """Say bye if in a room, and wait (briefly) until the session is over."""
        if not self._finished:
            if self.in_room and not self._leaving:
                self.say("bye")
            elif not self._leaving:
                self._close(ev.ChatEnded("You left the chat."))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closed.wait(), self.options.bye_wait + 0.5)
        self._close(ev.ChatEnded("You left the chat."))

    def lost(self, exc: Exception | None) -> None:
        if self._finished:
            return
        if self._leaving:
            self._finish(ev.ChatEnded("You left the chat."))
        elif self.foreign:
            self._finish(ev.ChatEnded("The server closed the connection."))
        else:
            self.post(ev.ErrorShown("The connection to the host was lost."))
            self._finish(ev.ChatEnded("Connection lost."))

    def _close(self, event: ev.Event) -> None:
        if self._greet_timer is not None:
            self._greet_timer.cancel()
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._finish(event)

    def _finish(self, event: ev.Event) -> None:
        if not self._finished:
            self._finished = True
            self.post(event)
            self.closed.set()

    def abort(self) -> None:
        """Close the connection now, without a goodbye (the loop is going away)."""
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.abort()
        self._finish(ev.ChatEnded("The chat was closed."))


def _connect_error(host: str, port: int, exc: BaseException) -> str:
    where = f"{host}:{port}"
    if isinstance(exc, asyncio.TimeoutError):
        return f"Could not connect to {where}: timed out — check the address and the firewall."
    if isinstance(exc, ConnectionRefusedError):
        return f"Could not connect to {where}: connection refused — is the host running?"
    if isinstance(exc, socket.gaierror):
        return f"Could not connect to {where}: unknown host name — check the spelling."
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"Could not connect to {where}: network unreachable — check your connection."
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"Could not connect to {where}: {reason}."


__all__ = ["DEFAULT_PORT", "Host", "HostOptions", "JoinOptions", "Joiner"]
