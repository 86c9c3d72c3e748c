"""Encryption, identities and abuse limits over real TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app import events as ev
from app.invite import parse_invite
from app.security import client_context, load_or_create_identity, server_context
from app.worker import NetWorker
from tests.helpers import LoopServer, Proc, RawPeer, Recorder

HostStarted = tuple[NetWorker, Recorder, int]
HostStarter = Callable[..., HostStarted]
Joiner = Callable[..., tuple[NetWorker, Recorder]]


def test_an_app_pair_chats_over_tls_and_both_show_the_same_safety_code(start_host, join) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port)
    hosting = hrec.wait_for(ev.Hosting)
    connected = arec.wait_for(ev.Connected)
    assert connected.safety_code == hosting.safety_code
    assert len(hosting.safety_code.replace(" ", "")) == 16
    ann.send("secret plans")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "secret plans")
    # What the wire carries is TLS 1.3, not the greeting in clear text.
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        client_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.3"
        assert tls.recv(8) == b"PARLEY/2"


def test_an_idle_member_over_tls_costs_the_host_little_memory(start_host) -> None:
    """asyncio makes each TLS connection a 256 KiB read buffer: a host of 5,000 app members
    held about 300 kB a member. tracemalloc sees those buffers (Python allocates them), so
    what the host's process allocates while 16 members come in over TLS, and stays, is
    what each costs it."""
    host, hrec, port = start_host()
    count, opened = 16, []
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):  # app members, as the app joins: a hello, then the welcome
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            tls = client_context().wrap_socket(raw, server_hostname="127.0.0.1")
            opened.append(tls)
            tls.sendall(json.dumps({"type": "hello", "version": 1, "name": f"m{i}"}).encode())
            tls.sendall(b"\n")
            seen, end = b"", time.monotonic() + 10
            while b'"welcome"' not in seen and time.monotonic() < end:
                seen += tls.recv(65536)
            assert b'"welcome"' in seen, seen
        hrec.wait_for(ev.MemberJoined, lambda e: len(e.members) == count + 1)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        for tls in opened:
            tls.close()
    assert held / count < 64_000, f"{held / count:,.0f} bytes a member"


def test_known_hosts_remember_the_first_identity_and_refuse_a_changed_one(start_host, join) -> None:
    first, frec, port = start_host(data="first")
    ann, arec = join(port)
    assert "First visit" in arec.wait_for(ev.NoticeShown).text
    ann.leave().result(5)
    first.stop()
    # Another machine (another identity) now answers at the same address and port.
    second, srec, _ = start_host(port=port, data="second")
    bob, brec = join(port)
    changed = brec.wait_for(ev.IdentityChanged)
    assert changed.address == f"127.0.0.1:{port}"
    assert changed.safety_code == srec.wait_for(ev.Hosting).safety_code
    assert "CHANGED" in brec.wait_for(ev.Failed).text
    assert not srec.of(ev.MemberJoined)
    # Accepting it is an explicit act; after that it is the remembered one.
    carl, crec = join(port, "Carl", trust_new=True)
    assert "accepted a new identity" in crec.wait_for(ev.NoticeShown).text
    crec.wait_for(ev.Connected)
    dave, drec = join(port, "Dave")
    drec.wait_for(ev.Connected)
    assert not drec.of(ev.NoticeShown)


class MitmProxy(LoopServer):
    """Someone in the middle: terminates TLS with its own certificate and relays to the host."""

    def __init__(self, listen_port: int, target_port: int, data: Path) -> None:
        self.target_port = target_port
        self.relayed = 0
        super().__init__(listen_port, server_context(load_or_create_identity(data)))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(
            "127.0.0.1", self.target_port, ssl=client_context(), server_hostname="127.0.0.1"
        )
        self.links.append((writer, up_w))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ssl.SSLError):
                while data := await src.read(65536):
                    self.relayed += len(data)
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_w), pump(up_r, writer))


@pytest.fixture
def mitm(tmp_path: Path) -> Iterator[Callable[[int, int], MitmProxy]]:
    proxies: list[MitmProxy] = []

    def start(listen_port: int, target_port: int) -> MitmProxy:
        proxy = MitmProxy(listen_port, target_port, tmp_path / "mitm")
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.close()


def test_a_man_in_the_middle_is_refused_as_a_changed_identity(start_host, join, mitm) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port)
    ann.leave().result(5)
    host.stop()
    # The real host moves; the man in the middle takes its place and relays to it.
    moved, mrec, new_port = start_host(data="host")
    mitm(port, new_port)
    bob, brec = join(port, "Bob")
    assert "CHANGED" in brec.wait_for(ev.Failed).text
    assert not mrec.of(ev.MemberJoined)


def test_a_man_in_the_middle_cannot_pass_a_password_room(start_host, join, mitm) -> None:
    host, hrec, port = start_host(password="hunter2")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        proxy_port = s.getsockname()[1]
    proxy = mitm(proxy_port, port)
    # Even a joiner that trusts whatever certificate it is shown, with the right password:
    ann, arec = join(proxy_port, password="hunter2", trust_new=True)
    failed = arec.wait_for(ev.Failed)
    assert "Wrong password, or someone between you" in failed.text
    assert proxy.relayed > 0  # the exchange did pass through the proxy
    assert not arec.of(ev.Connected)
    hrec.wait_for(ev.NoticeShown, lambda e: e.text.startswith("Wrong password from 127.0.0.1"))


def test_an_invite_pins_the_identity_even_on_first_contact(start_host, join, mitm) -> None:
    host, hrec, port = start_host()
    invite = parse_invite(hrec.wait_for(ev.Hosting).invite)
    assert (invite.host, invite.port) == ("127.0.0.1", port)
    ann, arec = join(port, fingerprint=invite.fingerprint)
    arec.wait_for(ev.Connected)
    assert not arec.of(ev.NoticeShown)  # verified, not merely trusted on first use
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        proxy_port = s.getsockname()[1]
    mitm(proxy_port, port)
    bob, brec = join(proxy_port, "Bob", fingerprint=invite.fingerprint)
    assert "not the one in the invite" in brec.wait_for(ev.Failed).text


def test_an_invite_pin_is_never_dropped_for_a_plain_connection(start_host, join) -> None:
    host, hrec, port = start_host(allow_plain=True)
    invite = parse_invite(hrec.wait_for(ev.Hosting).invite)
    ann, arec = join(port, plain=True, fingerprint=invite.fingerprint)
    assert "needs an encrypted connection" in arec.wait_for(ev.Failed).text
    assert not hrec.of(ev.MemberJoined)


def test_right_and_wrong_passwords(start_host, join) -> None:
    host, hrec, port = start_host(password="correct horse")
    ann, arec = join(port, password="correct horse")
    connected = arec.wait_for(ev.Connected)
    joined = hrec.wait_for(ev.MemberJoined, lambda e: e.name == "Ann")
    # The code both sides are told to compare matches: the host's identity code. The session
    # code, mixed from the exchange's key, matches too, and is called that on both sides.
    assert connected.safety_code == hrec.wait_for(ev.Hosting).safety_code
    assert connected.session_code is not None
    assert connected.session_code == joined.safety_code
    assert connected.session_code != connected.safety_code
    eve, erec = join(port, "Eve", password="battery staple")
    assert "Wrong password" in erec.wait_for(ev.Failed).text
    hrec.wait_for(ev.NoticeShown, lambda e: e.text == "Wrong password from 127.0.0.1 (1 in a row).")
    # At once again: the host makes that address wait before it may guess again.
    eve2, e2rec = join(port, "Eve", password="battery staple")
    assert "Too many wrong passwords" in e2rec.wait_for(ev.Failed).text
    nobody, nrec = join(port, "Nobody")
    assert nrec.wait_for(ev.Failed).text == "This room needs a password."
    ann.send("only members read this")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "only members read this")
    assert [e.name for e in hrec.of(ev.MemberJoined)] == ["Ann"]


def test_a_text_peer_is_told_in_one_line_that_a_password_room_is_app_only(start_host) -> None:
    host, hrec, port = start_host(password="pw", allow_plain=True)
    peer = RawPeer(port)
    peer.line("hello?")
    got = peer.wait_closed().decode().splitlines()
    assert got == [got[0], "This room needs a password: join it with the Parley app."]
    assert got[0].startswith("PARLEY/2 ")


def test_plain_peers_are_refused_unless_the_host_allows_them(start_host, join) -> None:
    host, hrec, port = start_host()
    peer = RawPeer(port)
    text = peer.wait_closed().decode()
    assert text.startswith("PARLEY/2 ! This Parley room is encrypted.")
    assert f"openssl s_client -quiet -connect 127.0.0.1:{port}" in text
    ann, arec = join(port, plain=True)
    assert arec.wait_for(ev.Failed).text.startswith("This Parley room is encrypted.")
    assert not hrec.of(ev.MemberJoined)

    open_host, orec, open_port = start_host(data="open", allow_plain=True)
    bob, brec = join(open_port, "Bob", plain=True)
    assert brec.wait_for(ev.Connected).safety_code is None
    peer = RawPeer(open_port)
    peer.line("plain hello")
    brec.wait_for(ev.MessageReceived, lambda e: e.text == "plain hello")


def test_a_server_that_accepts_but_never_answers_is_not_answering(start_host, join) -> None:
    """A frozen host (or nc -l, which waits for us to speak): the kernel accepts, nothing
    answers. That is "not answering", never "closed the connection" or "use --plain"."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        ann, arec = join(port, handshake_timeout=0.5)
        failed = arec.wait_for(ev.Failed)
    assert failed.text == (
        f"Could not set up encryption with 127.0.0.1:{port}: it is not answering (timed out)."
    )
    assert failed.kind == "timeout"


class _PlainTextServer(LoopServer):
    """A plain line server that speaks first (as SMTP or a MUD does), to every connection."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.links.append((writer, writer))  # closed by close() if still open
        writer.write(b"220 plain text here\r\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            await reader.read(65536)
        writer.close()


def _tls_failure_at(server: LoopServer, join: Joiner) -> ev.Failed:
    """How a TLS joiner's attempt on `server` fails; the server is closed afterwards."""
    try:
        ann, arec = join(server.port, handshake_timeout=2.0)
        return arec.wait_for(ev.Failed)
    finally:
        server.close()


def test_joining_a_plain_text_server_with_tls_names_the_option(join) -> None:
    failed = _tls_failure_at(_PlainTextServer(), join)
    assert failed.kind == "not_tls"
    assert "it does not speak TLS; it answers in plain text" in failed.text
    assert "--plain" in failed.text


class _HangUpServer(LoopServer):
    """Accepts and hangs up at once, saying nothing (a service that is not for us)."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()


def test_a_server_that_hangs_up_at_once_is_closed_not_plain(join) -> None:
    failed = _tls_failure_at(_HangUpServer(), join)
    assert failed.kind == "closed"
    assert failed.text.endswith("it closed the connection during the handshake.")
    assert "--plain" not in failed.text


def test_a_tls_joiner_over_the_per_address_cap_reads_the_real_reason(start_host, join) -> None:
    host, hrec, port = start_host(max_per_address=1)
    ann, arec = join(port, "Ann")
    arec.wait_for(ev.Connected)
    bob, brec = join(port, "Bob")
    failed = brec.wait_for(ev.Failed)
    assert failed.text == "Too many connections from your address; close some first."
    assert failed.kind == "refused"
    assert "--plain" not in failed.text
    ann.send("still here")  # the room is unharmed
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "still here")


@pytest.mark.parametrize(
    "argv",
    [
        ["openssl", "s_client", "-quiet", "-connect", "127.0.0.1:{port}"],
        ["ncat", "--ssl", "127.0.0.1", "{port}"],
    ],
    ids=["openssl-s_client", "ncat-ssl"],
)
def test_tls_text_peers_take_part(start_host, join, argv: list[str]) -> None:
    assert shutil.which(argv[0]), f"{argv[0]} is needed (Debian: openssl, ncat)"
    host, hrec, port = start_host()
    ann, arec = join(port)
    peer = Proc(argv=[a.format(port=port) for a in argv])
    try:
        peer.expect("^PARLEY/2 ")
        peer.say("hello over tls")
        arec.wait_for(ev.MessageReceived, lambda e: e.text == "hello over tls")
        ann.send("hi tls peer")
        peer.expect("^Ann: hi tls peer$")
    finally:
        peer.kill()


def test_a_stalled_handshake_is_closed_at_the_deadline(start_host) -> None:
    host, hrec, port = start_host(handshake_timeout=0.5)
    peer = RawPeer(port)
    peer.send(b"\x16\x03\x01\x00")  # the start of a ClientHello, and then nothing
    assert peer.wait_closed(timeout=5) == b""


def test_connections_per_address_are_capped(start_host, join) -> None:
    host, hrec, port = start_host(max_per_address=3, allow_plain=True)
    peers = [RawPeer(port) for _ in range(3)]
    for peer in peers:
        peer.line("here")
        peer.read_until(r"^\* You are")
    extra = RawPeer(port)
    assert extra.wait_closed().decode() == (
        "PARLEY/2 ! Too many connections from your address; close some first.\n"
    )
    peers[0].close()
    hrec.wait_for(ev.MemberLeft)
    again = RawPeer(port)
    again.line("my turn")
    again.read_until(r"^\* You are")


def test_a_refusal_to_a_tls_client_is_said_inside_tls(start_host, join) -> None:
    host, hrec, port = start_host(max_per_address=1)
    join(port, "Ann")[1].wait_for(ev.Connected)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        got = b""
        with contextlib.suppress(ssl.SSLEOFError, ConnectionResetError):
            while chunk := tls.recv(4096):
                got += chunk
    assert got == b"PARLEY/2 ! Too many connections from your address; close some first.\n"


def test_the_room_has_a_member_cap(start_host, join) -> None:
    host, hrec, port = start_host(max_members=2)
    join(port, "Ann")
    join(port, "Bob")
    carl, crec = join(port, "Carl")
    assert crec.wait_for(ev.Failed).text == "The room is full (2 members)."


def test_a_flooder_is_warned_then_dropped_and_the_room_flows(start_host, join) -> None:
    # The app paces itself to the limits its welcome gives (tests/test_abuse.py), so the
    # flooder here is a raw app peer that ignores them.
    host, hrec, port = start_host(rate=5, burst=5, flood_strikes=10, allow_plain=True)
    ann, arec = join(port, "Ann")
    bob = RawPeer(port)
    bob.read_until(r"^PARLEY/2 ")
    bob.line('{"type":"hello","version":1,"name":"Bob"}')
    bob.read_until('"welcome"')
    bob.send("".join(f'{{"type":"msg","text":"flood {i}"}}\n' for i in range(40)))
    assert "too fast" in json.loads(bob.read_until('"error"'))["text"]
    left = arec.wait_for(ev.MemberLeft, lambda e: e.name == "Bob")
    assert left.reason == "sending too fast"
    # Told why (an app that is told does not come back and send it all again).
    ended = json.loads(bob.read_until('"end"'))
    assert ended["reason"] == "The host disconnected you: sending too fast."
    flood = [t for t in arec.texts() if t.startswith("flood ")]
    assert flood[:5] == [f"flood {i}" for i in range(5)]
    assert len(flood) < 40
    ann.send("calm again")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "calm again")


def test_joining_with_an_invite_from_the_terminal(start_host) -> None:
    host, hrec, port = start_host(password="s3cret")
    invite = hrec.wait_for(ev.Hosting).invite
    assert "pw=s3cret" in invite
    proc = Proc("join", invite, "--name", "Ann")
    try:
        proc.expect(r"^You are Ann\. In the room: Hal, Ann\.$")
        proc.expect(r"^Encrypted\. Safety code: \d{4} \d{4} \d{4} \d{4}$")
        proc.say("via invite")
        hrec.wait_for(ev.MessageReceived, lambda e: e.text == "via invite")
    finally:
        proc.kill()
    assert proc.p.returncode is not None


def test_the_terminal_host_prints_its_invite_and_safety_code() -> None:
    proc = Proc(
        "host", "--port", "0", "--bind", "127.0.0.1", "--name", "Hal", stdin=subprocess.DEVNULL
    )
    try:
        port = int(proc.expect(r"on port (\d+)").group(1))
        invite = proc.expect(r"^Invite \(address, identity\): (parley://\S+)$").group(1)
        assert parse_invite(invite).port == port
        proc.expect(r"^Encrypted\. Safety code: \d{4} \d{4} \d{4} \d{4}$")
        proc.expect(r"^Plain connections: refused")
    finally:
        proc.kill()
