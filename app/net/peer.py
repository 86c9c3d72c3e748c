"""The joiner: one person's connection to a room, or to a plain line server.

How this works
--------------
`Joiner.start` opens TCP, then (unless `plain`) TLS, and checks the host's certificate before a
single line is read: against the invite's fingerprint if there is one, else against known hosts
(first contact is remembered; a changed identity is refused unless `trust_new`).

Then it waits `greet_wait` for the host's greeting. A Parley greeting gets a hello (carrying the
first half of the password exchange when there is a password); anything else, or silence, means
a server that is not Parley (``nc -l``, ``ncat --chat``), spoken to in plain lines.

After the hello the host has `welcome_wait` to let us in with a `welcome`. Nothing the room says
is shown before that welcome (a joiner that is not in the room never looks as if it were), and a
line too long to read before it means the welcome itself was lost: both end the attempt loudly
(`Failed` the first time, a reconnect after that). History comes after the welcome in `history`
frames, and what was missed while away in ordinary `msg` frames.

What the user types before the first welcome waits in a queue of at most `queue_max` lines;
messages are checked against the size contract (`MAX_TEXT`) before they are sent or kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import socket
import ssl
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from app import events as ev
from app.address import DEFAULT_PORT
from app.limits import Pacer
from app.messages import (
    AuthChallenge,
    AuthProof,
    Chat,
    Ended,
    Error,
    Greeting,
    Hello,
    History,
    Ping,
    Pong,
    ProtocolError,
    RawLine,
    Say,
    SendRates,
    Welcome,
)
from app.names import name_key
from app.net.common import LocalView, Post, set_nodelay
from app.net.files import Transfers
from app.partials import KEPT, KeptParts
from app.paths import data_dir, downloads_dir
from app.protocol import (
    MAX_LINE,
    MAX_NAME,
    VERSION,
    BufferPool,
    JoinerSideParser,
    clean_text,
    encode_client,
    is_bye,
    is_command,
    text_too_long,
)
from app.room import MSG_USAGE, split_target
from app.security import (
    CONFIRM_SIZE,
    PAKE_SIZE,
    AuthError,
    JoinerAuth,
    KnownHosts,
    address_key,
    client_context,
    fingerprint,
    from_b64,
    normalize_fingerprint,
    safety_code,
    to_b64,
)
from app.store import Line, Transcripts, open_transcripts
from app.transfer import FileData, FileFrame, FileOffer, encode_data, encode_frame

KNOWN_HOSTS = "known_hosts.json"
FILE_ROOM = 256 * 1024  # bytes waiting in our transport above which no file chunk is added


@dataclass
class JoinOptions:
    host: str
    port: int = DEFAULT_PORT
    name: str = "Guest"
    password: str | None = None
    fingerprint: str | None = None  # from an invite: the only identity to accept
    plain: bool = False  # no TLS: for nc -l, ncat --chat, or a host that allows plain
    trust_new: bool = False  # accept a host identity that differs from the remembered one
    data_dir: Path | None = None  # where known hosts live; None: the user's data folder
    max_line: int = MAX_LINE
    greet_wait: float = 1.0  # silence that means the server is not Parley
    connect_timeout: float = 10.0
    handshake_timeout: float = 5.0
    bye_wait: float = 1.0  # how long a bye waits for the host before closing anyway
    reconnect: bool = True  # after a drop (not a bye), come back by ourselves
    reconnect_initial: float = 0.5  # first wait before trying again, doubling ...
    reconnect_max: float = 30.0  # ... up to this
    # A host silent this long (no answer to pings) is gone; checked every keepalive / 6, so a
    # host that froze or vanished without closing is noticed within 14 s.
    keepalive: float = 12.0
    keep_history: bool = True  # keep a transcript of the room on disk, shown on rejoining
    downloads: Path | None = None  # where accepted files go; None: the user's Downloads
    welcome_wait: float = 15.0  # from the greeting to the welcome (password exchange included)
    queue_max: int = 200  # lines that may wait while not in the room (before it, or away)


READ_SIZE = 256 * 1024  # the most one read of lines takes (a chunk's payload is read whole)


class _JoinerProtocol(asyncio.BufferedProtocol):
    """The joiner's connection. A `BufferedProtocol`: lines are read into a buffer of its
    own and fed to the parser; the rest of a file chunk's payload is read (TLS decrypts it)
    straight into the chunk's own buffer, so a received chunk is never copied on its way to
    the disk."""

    def __init__(self, joiner: Joiner) -> None:
        self.joiner = joiner
        self.parser = JoinerSideParser(joiner.options.max_line)
        self.parser.use_pool(joiner.buffers)
        self.transport: asyncio.Transport | None = None
        self._lines = memoryview(bytearray(READ_SIZE))
        self._direct = False  # the last get_buffer was a payload's

    def get_buffer(self, sizehint: int) -> memoryview:
        view = self.parser.read_buffer()
        self._direct = view is not None
        return self._lines if view is None else view

    def buffer_updated(self, nbytes: int) -> None:
        if self._direct:
            for frame in self.parser.read_into(nbytes):
                self.joiner.received(frame)
        else:
            self.data_received(bytes(self._lines[:nbytes]))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        transport = cast("asyncio.Transport", transport)
        self.transport = transport
        self.joiner.connected(self)  # before any data_received, which may come at once

    def data_received(self, data: bytes) -> None:
        for msg in self.parser.feed(data):
            self.joiner.received(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self.joiner.lost(exc, self)


class Joiner:
    """One person's connection to a room (or to a plain line server), kept alive across drops."""

    def __init__(self, options: JoinOptions, post: Post) -> None:
        self.options = options
        self.post = post
        self._view = LocalView(post)
        self._proto: _JoinerProtocol | None = None
        self._ids = itertools.count(1)
        self._queued: list[tuple[str, str | None]] = []  # typed before we knew the server
        self._pending: dict[str, str] = {}  # sent (or waiting to be), not yet accepted
        self._private: dict[str, str] = {}  # id -> recipient, for the pending private ones
        self._outbox: deque[str] = deque()  # ids of pending messages not yet written, in order
        self._pacer: Pacer | None = None  # keeps us within the host's limits
        self._pump_timer: asyncio.TimerHandle | None = None
        self._offers_out: deque[FileOffer] = deque()  # offers held by the pacer, in order
        self._offers_timer: asyncio.TimerHandle | None = None
        self._greet_timer: asyncio.TimerHandle | None = None
        self._welcome_timer: asyncio.TimerHandle | None = None
        self._kept_shown: set[tuple[str, int]] = set()  # (epoch, seq) the transcript showed
        self._retry: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._auth: JoinerAuth | None = None
        self._cert: bytes | None = None
        self._safety: str | None = None
        self._token: str | None = None
        self._last_seq = 0
        self._epoch: str | None = None
        self._transcripts: Transcripts | None = None
        self._last_heard = 0.0
        self._lost_reason: str | None = None  # why the next loss happened, if we caused it
        self._trying = False  # a reconnect attempt is under way
        self._delay = options.reconnect_initial
        self._attempt = 0
        self.welcomed = False  # at least once: from then on a drop means reconnect
        self.in_room = False
        self.foreign = False
        self._finished = False
        self._leaving = False
        self.closed = asyncio.Event()
        self._host_version = VERSION  # what the host's greeting said
        self.buffers = BufferPool()  # received chunks' buffers, used again once on disk
        self.transfers = Transfers(
            self._send_file_frame,
            post,
            lambda: options.downloads or downloads_dir(),
            self._has_room,
            self.buffers.give,
            KeptParts((options.data_dir or data_dir()) / KEPT),
        )

    def _send_file_frame(self, frame: FileFrame) -> None:
        """A file frame on the wire; a chunk as its header line and its bytes, handed over
        together (one TLS write, the payload never copied to be framed)."""
        if self._proto is None or self._proto.transport is None:
            return
        if isinstance(frame, FileData):
            self._proto.transport.writelines(encode_data(frame))
        elif isinstance(frame, FileOffer) and self._pacer is not None:
            self._offers_out.append(frame)
            self._pump_offers()
        else:
            self._proto.transport.write(encode_frame(frame))

    def _pump_offers(self) -> None:
        """Write the offers the pacer holds, each when it may go. The host counts an offer as
        a chat message (it reaches everyone, as a line does), so forty files picked at once go
        out at the room's pace instead of being refused as too fast."""
        self._offers_timer = None
        while self._offers_out:
            proto = self._proto
            if proto is None or proto.transport is None or not self.in_room:
                return  # the connection's loss ends these offers (`Transfers.connection_lost`)
            offer = self._offers_out[0]
            size = len(offer.name.encode("utf-8", "surrogatepass"))
            if self._pacer is not None:
                wait = self._pacer.wait(size)
                if wait > 0:
                    loop = asyncio.get_running_loop()
                    self._offers_timer = loop.call_later(wait, self._pump_offers)
                    return
                self._pacer.sent(size)
            self._offers_out.popleft()
            proto.transport.write(encode_frame(offer))

    def _has_room(self) -> bool:
        """Room for a file chunk: in the room, and little waiting to be sent (chat first)."""
        proto = self._proto
        if not self.in_room or proto is None or proto.transport is None:
            return False
        return proto.transport.get_write_buffer_size() < FILE_ROOM

    @property
    def where(self) -> str:
        return address_key(self.options.host, self.options.port)

    # --- connecting ----------------------------------------------------------------------------

    async def start(self) -> bool:
        self.post(ev.Connecting(self.options.host, self.options.port))
        if self.options.plain and self.options.fingerprint is not None:
            self._finish(
                ev.Failed(
                    "An invite pins the host's identity, which needs an encrypted connection: "
                    "join without --plain."
                )
            )
            return False
        problem = await self._open()
        if problem is not None:
            self._finish(problem)
            return False
        return True

    async def _open(self) -> ev.Failed | None:
        """One connection attempt (TCP, then TLS unless plain); None or what went wrong."""
        host, port = self.options.host, self.options.port
        try:
            sock = await _connect_tcp(host, port, self.options.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            return _connect_error(host, port, exc)
        loop = asyncio.get_running_loop()
        plain = self.options.plain
        timeout = self.options.handshake_timeout
        try:
            # Our own deadline, before asyncio's (which aborts with an error that reads like
            # the host closing the connection): a silent host is "not answering".
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: _JoinerProtocol(self),
                    sock=sock,
                    ssl=None if plain else client_context(),
                    server_hostname=None if plain else host,
                    ssl_handshake_timeout=None if plain else timeout + 1,
                ),
                None if plain else timeout,
            )
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            sock.close()
            if isinstance(exc, asyncio.TimeoutError):
                return _tls_error(host, port, exc, None)
            return _tls_error(host, port, exc, await self._probe_plain())
        return None

    async def _probe_plain(self) -> str | None:
        """After a failed TLS handshake: what does the server say to a plain connection?

        Its first line (a Parley refusal, a Parley greeting, or anything else), or None if it
        says nothing within the greeting wait. This tells "the host turned us away" from "the
        server speaks plain text" (only then does `--plain` help) from "it is not answering".
        """
        host, port = self.options.host, self.options.port
        try:
            sock = await _connect_tcp(host, port, self.options.connect_timeout)
        except (OSError, asyncio.TimeoutError):
            return None
        loop = asyncio.get_running_loop()
        got = b""
        deadline = loop.time() + self.options.greet_wait + 0.5
        try:
            while b"\n" not in got and len(got) < 4096:
                left = deadline - loop.time()
                if left <= 0:
                    break
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), left)
                if not chunk:
                    break
                got += chunk
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            sock.close()
        if not got:
            return None
        return got.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")

    def connected(self, proto: _JoinerProtocol) -> None:
        if self._finished:  # left while the connection was being made
            assert proto.transport is not None
            proto.transport.abort()
            return
        self._proto = proto
        self._auth = None
        self._last_heard = asyncio.get_running_loop().time()
        assert proto.transport is not None
        set_nodelay(proto.transport.get_extra_info("socket"))
        ssl_object = proto.transport.get_extra_info("ssl_object")
        if ssl_object is not None and not self._check_identity(ssl_object):
            proto.transport.abort()
            return
        loop = asyncio.get_running_loop()
        self._greet_timer = loop.call_later(self.options.greet_wait, self._no_greeting)

    def _check_identity(self, ssl_object: ssl.SSLObject) -> bool:
        """Pin the host's certificate: the invite's, the remembered one, or (first time) this."""
        cert = ssl_object.getpeercert(binary_form=True)
        if not cert:
            self._finish(ev.Failed(f"{self.where} presented no certificate; not connected.", "tls"))
            return False
        self._cert = cert
        seen = fingerprint(cert)
        code = safety_code(cert)
        known = KnownHosts((self.options.data_dir or data_dir()) / KNOWN_HOSTS)
        if self.options.fingerprint is not None:
            if normalize_fingerprint(self.options.fingerprint) != seen:
                self._finish(
                    ev.Failed(
                        f"The host at {self.where} is not the one in the invite: its identity "
                        "does not match. Someone may be intercepting the connection. "
                        "Not connected.",
                        "identity",
                    )
                )
                return False
            known.remember(self.where, seen)
            return True
        verdict = known.check(self.where, seen)
        if verdict == "new":
            known.remember(self.where, seen)
            self.post(
                ev.NoticeShown(
                    f"First visit to {self.where}: its identity was remembered. "
                    f"Compare the safety code {code} with the host's to be sure."
                )
            )
        elif verdict == "changed" and not self.options.trust_new:
            self.post(ev.IdentityChanged(self.where, code))
            self._finish(
                ev.Failed(
                    f"WARNING: the identity of {self.where} has CHANGED since your last visit. "
                    "Someone may be intercepting the connection, or the host set Parley up "
                    f"again. Compare the safety code {code} with the host's; if they match, "
                    "join again with --trust-new (window: Trust new identity).",
                    "identity",
                )
            )
            return False
        elif verdict == "changed":
            known.remember(self.where, seen)
            self.post(ev.NoticeShown(f"You accepted a new identity for {self.where}."))
        if known.problem:
            self.post(ev.ErrorShown(known.problem))
        return True

    def _no_greeting(self) -> None:
        if self._proto is not None and self._proto.parser.mode is None:
            self._proto.parser.decide_raw()
            self._enter_foreign()

    def _enter_foreign(self) -> None:
        if self.welcomed:  # a Parley host was here before; this is something else
            self._close(ev.Failed(f"{self.where} is no longer a Parley host."))
            return
        self.foreign = True
        self.in_room = True
        self._view.name = self.options.name
        note = "This server is not Parley: plain lines both ways."
        code = safety_code(self._cert) if self._cert else None
        self.post(
            ev.Connected(
                self.options.name, self.options.host, self.options.port, (), note, True, code
            )
        )
        self._flush_queue()

    def _write(self, data: bytes) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.write(data)

    # --- what the host says --------------------------------------------------------------------

    def received(self, msg: object) -> None:
        if self._finished:
            return
        self._last_heard = asyncio.get_running_loop().time()
        if isinstance(msg, Greeting):
            if self._greet_timer is not None:
                self._greet_timer.cancel()
            if msg.refusal is not None:
                self._close(ev.Failed(clean_text(msg.refusal), "refused"))
            elif msg.version is None:
                self._enter_foreign()
            else:
                self._host_version = msg.version
                self.transfers.refuse_files = (
                    None
                    if msg.version >= VERSION
                    else f"This host runs an older Parley (protocol version {msg.version}), "
                    "which cannot pass files to this one. Chat works as before."
                )
                self._hello()
                self._wait_for_welcome()
        elif isinstance(msg, RawLine):
            text = clean_text(msg.text)
            self.post(ev.MessageReceived(None, text))
            if is_bye(text):
                self._close(ev.ChatEnded("The other side said bye."))
        elif isinstance(msg, AuthChallenge):
            self._answer(msg)
        elif isinstance(msg, Welcome):
            self._welcome(msg)
        elif isinstance(msg, ProtocolError) and not self.in_room and msg.code == "line_too_long":
            self._not_let_in(f"{self.where} sent a line too long to read before letting us in.")
        elif not self.in_room and not isinstance(msg, Ended | Error | Ping | ProtocolError):
            pass  # not in the room (yet, or any more): nothing of it is shown
        elif isinstance(msg, History):
            for chat in msg.messages:
                self._earlier(chat)
        elif isinstance(msg, Chat):
            self._chat(msg)
        elif isinstance(msg, Error) and msg.id is not None and msg.id in self._pending:
            del self._pending[msg.id]  # refused, not lost: never sent again
            self._private.pop(msg.id, None)
            self.post(ev.ErrorShown(msg.text))
        elif isinstance(msg, Ended):
            self._close(ev.ChatEnded(msg.reason))
        elif isinstance(msg, Error) and not self.in_room:
            self._close(ev.Failed(clean_text(msg.text), "refused", msg.code))
        elif isinstance(msg, Ping):
            self._write(encode_client(Pong()))
        elif isinstance(msg, ProtocolError):
            # Before the welcome, plain lines may come first: the host took our hello for
            # silence and spoke to us as a text peer. The welcome that follows replaces them.
            if self.in_room or msg.code != "malformed":
                self.post(ev.ErrorShown(msg.text))
            if msg.fatal and self._proto is not None and self._proto.transport is not None:
                # A chunk header we cannot read: the bytes after it cannot be read either.
                # Reconnect (a file resumes from its last good byte).
                self._lost_reason = msg.text
                self._proto.transport.abort()
        elif isinstance(msg, Pong):
            pass
        elif isinstance(msg, FileFrame):
            if self.transfers.refuse_files is not None:
                if isinstance(msg, FileOffer):  # an older host's offer: its bytes are base64
                    who = msg.sender or "Someone"
                    self.post(
                        ev.NoticeShown(f"{who} offered {msg.name}. {self.transfers.refuse_files}")
                    )
            elif self.in_room and not self.foreign:
                self.transfers.received(msg)
        else:
            self._view.handle(msg)  # type: ignore[arg-type]

    def _hello(self) -> None:
        pake: str | None = None
        if self.options.password:
            if self._cert is None:
                self._close(
                    ev.Failed("A password needs an encrypted connection: join without --plain.")
                )
                return
            try:
                self._auth = JoinerAuth(self.options.password, fingerprint(self._cert))
            except ValueError as exc:
                self._close(ev.Failed(str(exc)))
                return
            pake = to_b64(self._auth.start())
        version = min(VERSION, self._host_version)  # an older host is spoken to in its own
        hello = Hello(self.options.name, version, pake, self._token, self._last_seq)
        self._write(encode_client(hello))

    def _answer(self, challenge: AuthChallenge) -> None:
        if self._auth is None:
            self._close(ev.Failed("The host asked for a password, but none was given."))
            return
        try:
            proof = self._auth.finish(
                from_b64(challenge.pake, PAKE_SIZE, "exchange message"),
                from_b64(challenge.confirm, CONFIRM_SIZE, "proof"),
            )
        except AuthError as exc:
            self._close(ev.Failed(f"Not connected: {exc}"))
            return
        self._write(encode_client(AuthProof(to_b64(proof))))

    def _wait_for_welcome(self) -> None:
        if self._welcome_timer is not None:
            self._welcome_timer.cancel()
        loop = asyncio.get_running_loop()
        wait = self.options.welcome_wait
        self._welcome_timer = loop.call_later(
            wait, self._not_let_in, f"{self.where} did not let us in within {wait:g} s."
        )

    def _not_let_in(self, reason: str) -> None:
        """This connection will not take us into the room: say so, never look joined."""
        if self.in_room or self._finished or self._proto is None:
            return
        if not self.welcomed:
            self._close(ev.Failed(f"{reason} Not connected."))
            return
        transport, self._proto = self._proto.transport, None
        if self._welcome_timer is not None:
            self._welcome_timer.cancel()
        if transport is not None:
            transport.abort()  # its lost() belongs to no current connection
        self._retry_later(reason)

    def _welcome(self, msg: Welcome) -> None:
        if self._welcome_timer is not None:
            self._welcome_timer.cancel()
        first = not self.welcomed
        kept: ev.EarlierShown | None = None
        if first and self.options.keep_history and self._transcripts is None:
            self._open_transcripts()
            kept = self._kept()  # read before anything is shown: the welcome's lines follow
        self.welcomed = True
        self.in_room = True
        self._token = msg.token
        self._delay = self.options.reconnect_initial
        self._attempt = 0
        session: str | None = None
        if self._cert is not None:
            # The code both sides are told to compare is the host's identity code (what the
            # host shows); a password room's session code is shown beside it, as such.
            self._safety = safety_code(self._cert)
            key = self._auth.session_key if self._auth is not None else None
            session = safety_code(self._cert, key) if key is not None else None
        if first and self.options.password and self._auth is None:
            self.post(ev.NoticeShown("This room has no password."))
        note = msg.note
        if not first and not msg.resumed:
            note = "The host did not know you any more (it restarted, or you were away long)."
        self.post(
            ev.Connected(
                msg.name,
                self.options.host,
                self.options.port,
                msg.members,
                note,
                safety_code=self._safety,
                resumed=msg.resumed,
                epoch=msg.epoch,
                plain=msg.plain,
                session_code=session,
            )
        )
        self._view.name, self._view.members = msg.name, msg.members
        if not msg.resumed and (msg.epoch is None or msg.epoch != self._epoch):
            self._last_seq = 0  # the room numbers afresh (a new epoch): its numbers are new
        self._epoch = msg.epoch
        self._view.key_prefix = f"{self.host_key}/{msg.epoch or ''}/"
        shown: set[tuple[str, int]] = set()
        if kept is not None:
            self.post(kept)
            shown = {(m.key.split("/")[1], m.seq or 0) for m in kept.messages if m.key}
        self._kept_shown = shown
        for chat in msg.history:  # (a host of this version sends history after the welcome)
            self._earlier(chat, earlier=first or not msg.resumed)
        self._pace_to(msg.limits)
        self._outbox = deque(self._pending)  # not accepted before the drop: again, paced
        self._pump()
        self.transfers.welcomed(msg.resumed or first)
        self._start_keepalive()
        self._flush_queue()

    def _earlier(self, chat: Chat, earlier: bool = True) -> None:
        """A message of the room's history (after a welcome): shown unless the kept
        transcript showed it in its place already."""
        if (self._epoch or "", chat.seq) in self._kept_shown:
            self._last_seq = max(self._last_seq, chat.seq)
            return
        self._chat(chat, earlier)

    def _chat(self, msg: Chat, earlier: bool = False) -> None:
        if msg.id is not None and msg.id in self._pending:
            text = self._pending.pop(msg.id)  # accepted: the echo is the acknowledgement
            self._private.pop(msg.id, None)
            if not msg.text:  # an old message acknowledged again: the host no longer has it
                msg = replace(msg, text=text)
        elif msg.seq <= self._last_seq:
            return  # seen already (sent again after a reconnect)
        self._last_seq = max(self._last_seq, msg.seq)
        event = self._view.event(msg, earlier)
        self.post(event)
        if self._transcripts is not None:
            line = Line(self._epoch or "", msg.seq, msg.sender, msg.text, msg.time)
            line = replace(line, private=event.private, mine=event.mine)
            self._transcripts.add(self.host_key, [line])

    # --- the transcript kept on disk -----------------------------------------------------------

    @property
    def host_key(self) -> str:
        """The host's identity, which kept transcripts are filed under."""
        return fingerprint(self._cert) if self._cert is not None else f"plain:{self.where}"

    def _kept(self) -> ev.EarlierShown | None:
        """What this person kept from earlier visits to this room, to show below an
        "earlier" divider, in order; the welcome's history then skips those lines."""
        if self._transcripts is None:
            return None
        host = self.host_key
        kept = self._transcripts.recent(host)
        if not kept:
            return None
        return ev.EarlierShown(
            tuple(
                ev.MessageReceived(
                    x.sender,
                    x.text,
                    x.time,
                    x.seq,
                    x.mine,
                    True,
                    private=x.private,
                    key=f"{host}/{x.epoch}/{x.seq}",
                )
                for x in kept
            )
        )

    def _open_transcripts(self) -> None:
        """Open this person's transcripts (on the first welcome, before anything is shown);
        one that cannot be used is said once, and the chat goes on without."""
        store, problem = open_transcripts(self.options.data_dir or data_dir())
        if store is None:
            self.post(ev.ErrorShown(problem or "Your kept transcripts cannot be used."))
            return
        self._transcripts = store
        loop = asyncio.get_running_loop()
        store.on_pending = lambda: loop.call_soon(store.flush)
        store.on_problem = lambda text: self.post(ev.ErrorShown(text))

    def clear_history(self) -> None:
        """Chat → Clear history of this room: forget this room's kept transcript."""
        if self._transcripts is not None and self.welcomed:
            self._transcripts.clear(self.host_key)
        self.post(ev.NoticeShown("Your kept history of this room was cleared."))

    # --- what the user does --------------------------------------------------------------------

    def say(self, text: str, to: str | None = None) -> None:
        """Say `text` to the room, or with `to` (or as ``/msg NAME text``) to one member."""
        if self._finished or self._leaving:
            return
        bye = is_bye(text) and to is None
        refusal = None if self.foreign else text_too_long(text)
        if refusal is not None:  # the size contract, told before anything is sent
            self.post(ev.ErrorShown(refusal))
            return
        if self.foreign:
            self._write(text.replace("\n", " ").encode() + b"\n")
            self.post(ev.MessageReceived(self._view.name, text, mine=True))
            if bye:
                self._close(ev.ChatEnded("You left the chat."))
            return
        if not self.welcomed:
            if len(self._queued) >= self.options.queue_max:
                self.post(ev.ErrorShown("Not in the room yet: that line was not sent."))
                return
            self._queued.append((text, to))
            return
        if to is None and text[:5].lower() in ("/msg ", "/msg\t"):
            target = split_target(text[5:], self._view.members)
            if target is None:
                self.post(ev.ErrorShown(MSG_USAGE))
                return
            to, text = target
        if to is not None and not self._may_tell(to):
            return
        if bye and not self.in_room:  # away, and leaving: nobody to tell
            self._close(ev.ChatEnded("You left the chat."))
            return
        if not self.in_room and len(self._pending) >= self.options.queue_max:
            waiting = len(self._pending)
            self.post(
                ev.ErrorShown(
                    f"Not connected: that message was not sent ({waiting} are waiting to go "
                    "out once back)."
                )
            )
            return
        msg_id = f"m{next(self._ids)}"
        self._pending[msg_id] = text
        if to is not None:
            self._private[msg_id] = to
        self.post(ev.MessagePending(msg_id, text, private=to))
        if bye:
            self._leaving = True  # the goodbye waits for it to go out (after what is queued)
        if self.in_room:
            self._outbox.append(msg_id)
            self._pump()

    def _may_tell(self, name: str) -> bool:
        """A private message goes only to someone present (and not to oneself): else one
        line says why, and nothing is sent."""
        key = name_key(name)
        if key == name_key(self._view.name):
            self.post(ev.ErrorShown("That is you: nothing was sent."))
            return False
        if key not in {name_key(m) for m in self._view.members}:
            shown = clean_text(name)[:MAX_NAME]
            self.post(ev.ErrorShown(f"{shown} is not in the room: nothing was sent."))
            return False
        return True

    def _flush_queue(self) -> None:
        queued, self._queued = self._queued, []
        for text, to in queued:
            self.say(text, to)

    async def leave(self) -> None:
        """Say bye if in a room, and wait (briefly) until the session is over. Away (a
        reconnect waiting or under way), it ends at once: no attempt follows."""
        if not self._finished:
            if self.in_room and not self._leaving:
                self.say("bye")
            elif not self._leaving:
                self._close(ev.ChatEnded("You left the chat."))
        left = len(self._outbox) + 1
        # Lines still paced out (a file piped into `join`) go first: wait while they move.
        while 0 < len(self._outbox) < left and self.in_room:
            left = len(self._outbox)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.closed.wait(), self.options.bye_wait + 0.5)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closed.wait(), self.options.bye_wait + 0.5)
        self._close(ev.ChatEnded("You left the chat."))

    # --- pacing: never faster than the host allows ---------------------------------------------

    def _pace_to(self, rates: SendRates | None) -> None:
        """Keep to the limits the host's welcome told (kept across reconnects, as the host
        keeps its count; made anew only when the limits change)."""
        figures = (rates.rate, rates.burst, rates.byte_rate, rates.byte_burst) if rates else None
        if figures is None:
            self._pacer = None
        elif self._pacer is None or self._pacer.limits != figures:
            self._pacer = Pacer(*figures)

    def _pump(self) -> None:
        """Write what waits in the outbox, each message when the pacer lets it go."""
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None
        while self._outbox and self.in_room and not self._finished:
            text = self._pending.get(self._outbox[0])
            if text is None:  # accepted meanwhile (its echo came after a resend)
                self._outbox.popleft()
                continue
            size = len(text.encode("utf-8", "surrogatepass"))
            if self._pacer is not None:
                wait = self._pacer.wait(size)
                if wait > 0:
                    loop = asyncio.get_running_loop()
                    self._pump_timer = loop.call_later(wait, self._pump)
                    return
                self._pacer.sent(size)
            msg_id = self._outbox.popleft()
            self._write(encode_client(Say(text, msg_id, self._private.get(msg_id))))
            if msg_id not in self._private and is_command(text):
                # Answered, never numbered or echoed: once out it is done. Kept, every
                # reconnect would send "/who" again and show an answer nobody asked for.
                del self._pending[msg_id]
            if self._leaving and is_bye(text) and msg_id not in self._private:
                asyncio.get_running_loop().call_later(
                    self.options.bye_wait, self._close, ev.ChatEnded("You left the chat.")
                )

    # --- drops, keepalive and reconnecting -----------------------------------------------------

    def lost(self, exc: Exception | None, proto: _JoinerProtocol | None = None) -> None:
        if proto is not None and proto is not self._proto:
            return  # a connection given up on already (no welcome came on it)
        self.in_room = False
        self._offers_out.clear()
        if self._offers_timer is not None:
            self._offers_timer.cancel()
            self._offers_timer = None
        if not self._finished:
            self.transfers.connection_lost()
        if self._greet_timer is not None:
            self._greet_timer.cancel()
        if self._welcome_timer is not None:
            self._welcome_timer.cancel()
        if self._finished:
            return
        if self._leaving:
            self._finish(ev.ChatEnded("You left the chat."))
        elif self.foreign:
            self._finish(ev.ChatEnded("The server closed the connection."))
        elif not self.welcomed:
            self._finish(
                ev.Failed(f"{self.where} closed the connection before letting us in.", "closed")
            )
        elif not self.options.reconnect:
            self.post(ev.ErrorShown("The connection to the host was lost."))
            self._finish(ev.ChatEnded("Connection lost."))
        else:
            reason, self._lost_reason = self._lost_reason, None
            self._retry_later(reason or "The connection to the host was lost.")

    def reconnect_now(self) -> None:
        """Try again at once instead of waiting out the back-off (a person asked to)."""
        if self._finished or self._leaving or not self.welcomed or self._proto_open():
            return
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._delay = self.options.reconnect_initial
        self._spawn(self._reconnect())

    def _proto_open(self) -> bool:
        """A connection is up or being made (a reconnect under way): nothing to hurry."""
        if self._trying:
            return True
        transport = self._proto.transport if self._proto is not None else None
        return transport is not None and not transport.is_closing()

    def _retry_later(self, reason: str) -> None:
        self._attempt += 1
        delay = self._delay
        self._delay = min(self._delay * 2, self.options.reconnect_max)
        self.post(ev.Reconnecting(delay, reason, self._attempt))
        loop = asyncio.get_running_loop()
        self._retry = loop.call_later(delay, lambda: self._spawn(self._reconnect()))

    async def _reconnect(self) -> None:
        if self._finished or self._trying:
            return
        self._trying = True
        try:
            problem = await self._open()
        finally:
            self._trying = False
        if problem is not None and not self._finished:
            self._retry_later(problem.text)

    def _start_keepalive(self) -> None:
        if not self._tasks:
            self._spawn(self._keep_alive())

    async def _keep_alive(self) -> None:
        """Find a host that vanished without closing (no FIN): ping when quiet, drop if mute."""
        limit = self.options.keepalive
        loop = asyncio.get_running_loop()
        while not self._finished:
            await asyncio.sleep(limit / 6)
            if not self.in_room or self._proto is None or self._proto.transport is None:
                continue
            quiet = loop.time() - self._last_heard
            if quiet > limit:
                self._lost_reason = (
                    f"The host is not answering: nothing heard from it for {quiet:.0f} s."
                )
                self._proto.transport.abort()  # lost() follows, and with it a reconnect
            elif quiet > limit / 3:
                self._write(encode_client(Ping()))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _close(self, event: ev.Event) -> None:
        if self._greet_timer is not None:
            self._greet_timer.cancel()
        if self._welcome_timer is not None:
            self._welcome_timer.cancel()
        transport = self._proto.transport if self._proto is not None else None
        # Once only: a TLS transport closed twice lets go of its socket, and abort() could
        # then no longer reach it.
        if transport is not None and not transport.is_closing():
            transport.close()
        self._finish(event)

    def _finish(self, event: ev.Event) -> None:
        if not self._finished:
            self._finished = True
            if self._transcripts is not None:
                if self.welcomed:
                    self._transcripts.prune(self.host_key)
                self._transcripts.close()
            self.transfers.close()
            if self._retry is not None:
                self._retry.cancel()
            for task in list(self._tasks):
                if task is not asyncio.current_task():
                    task.cancel()
            self.post(event)
            self.closed.set()

    def abort(self) -> None:
        """Close the connection now, without a goodbye (the loop is going away)."""
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.abort()
        self._finish(ev.ChatEnded("The chat was closed."))


async def _connect_tcp(host: str, port: int, timeout: float) -> socket.socket:
    """TCP alone first, so a refused connection and a failed TLS handshake read differently."""
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    error: BaseException = OSError(f"no address for {host}")
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, addr), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            sock.close()
            error = exc
            continue
        except BaseException:  # cancelled (the loop is stopping): the socket is ours to close
            sock.close()
            raise
        return sock
    raise error


def _connect_error(host: str, port: int, exc: BaseException) -> ev.Failed:
    where = f"{host}:{port}"
    if isinstance(exc, asyncio.TimeoutError):
        return ev.Failed(
            f"Could not connect to {where}: timed out — check the address and the firewall.",
            "timeout",
        )
    if isinstance(exc, ConnectionRefusedError):
        return ev.Failed(
            f"Could not connect to {where}: connection refused — is the host running?",
            "unreachable",
        )
    if isinstance(exc, socket.gaierror):
        return ev.Failed(
            f"Could not connect to {where}: unknown host name — check the spelling.",
            "unreachable",
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return ev.Failed(
            f"Could not connect to {where}: network unreachable — check your connection.",
            "unreachable",
        )
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ev.Failed(f"Could not connect to {where}: {reason}.", "unreachable")


def _tls_error(host: str, port: int, exc: BaseException, plain_line: str | None) -> ev.Failed:
    """What a failed TLS handshake means, told truthfully. `plain_line` is what the server said
    first to a plain connection made to find out (None: nothing)."""
    where = f"{host}:{port}"
    failed = f"Could not set up encryption with {where}"
    if isinstance(exc, asyncio.TimeoutError):
        return ev.Failed(f"{failed}: it is not answering (timed out).", "timeout")
    if plain_line is not None:
        greeting = JoinerSideParser().feed(plain_line.encode() + b"\n")[0]
        if isinstance(greeting, Greeting) and greeting.refusal is not None:
            return ev.Failed(clean_text(greeting.refusal), "refused")
        if isinstance(greeting, Greeting) and greeting.version is not None:
            return ev.Failed(
                f"{failed}: it is a Parley host, but the encrypted handshake failed ({_why(exc)}).",
                "tls",
            )
        return ev.Failed(
            f"{failed}: it does not speak TLS; it answers in plain text. If it is a plain "
            "server (nc, ncat --chat, or a host that allows plain connections), join with "
            "--plain.",
            "not_tls",
        )
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError):
        # it sent something that is not TLS, then fell silent
        return ev.Failed(
            f"{failed}: it did not speak TLS. If it is a plain server (nc, ncat --chat), "
            "join with --plain.",
            "not_tls",
        )
    return ev.Failed(f"{failed}: it closed the connection during the handshake.", "closed")


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
