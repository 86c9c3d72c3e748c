"""The terminal commands as people run them: separate processes talking over 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from app.invite import parse_invite
from tests.helpers import ROOT, LoopServer, Proc, RawPeer, free_port


def start_host(procs: Callable[..., Proc], name: str = "Hal") -> tuple[Proc, int]:
    host = procs("host", "--port", "0", "--bind", "127.0.0.1", "--name", name, "--allow-plain")
    port = int(host.expect(r"Server is waiting for a connection\.\.\. on port (\d+)").group(1))
    host.expect(rf"Others can join with: 127\.0\.0\.1:{port}$")
    return host, port


def test_host_and_two_joiners_chat_and_a_joiners_bye(procs) -> None:
    host, port = start_host(procs)
    ann = procs("join", f"127.0.0.1:{port}", "--name", "Ann")
    ann.expect("^Connected to the server.$")
    ann.expect(r"^You are Ann\. In the room: Hal, Ann\.$")
    host.expect(r"^Got a connection from 127\.0\.0\.1:\d+ \(Ann\)$")
    bob = procs("join", "127.0.0.1", "--port", str(port), "--name", "Bob")
    bob.expect(r"^You are Bob\. In the room: Hal, Ann, Bob\.$")
    ann.expect("^Bob joined.$")

    ann.say("hi all")
    host.expect("^Ann: hi all$")
    bob.expect("^Ann: hi all$")
    host.say("hello from the host")
    ann.expect("^Hal: hello from the host$")
    bob.expect("^Hal: hello from the host$")
    bob.say("and Bob")
    ann.expect("^Bob: and Bob$")

    ann.say("Bye!")
    ann.expect("^Chat ended.$")
    assert ann.wait() == 0
    host.expect("^Ann: Bye!$")
    host.expect("^Ann left.$")
    bob.expect("^Ann left.$")
    assert "Ann: hi all" not in ann.seen  # your own lines are not printed back to you
    bob.say("still here")
    host.expect("^Bob: still here$")


def test_the_hosts_bye_ends_the_chat_everywhere(procs) -> None:
    host, port = start_host(procs)
    ann = procs("join", f"127.0.0.1:{port}", "--name", "Ann")
    bob = procs("join", f"127.0.0.1:{port}", "--name", "Bob")
    ann.expect("^You are Ann")
    bob.expect("^You are Bob")
    host.say("bye")
    for proc in (host, ann, bob):
        proc.expect("^Chat ended.$")
        assert proc.wait() == 0
    ann.expect("^Hal: bye$")
    ann.expect("^The host ended the chat.$")


def test_end_of_input_makes_a_joiner_leave_but_not_the_host(procs) -> None:
    host = procs(
        "host",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--name",
        "Hal",
        "--allow-plain",
        stdin=subprocess.DEVNULL,
    )
    port = int(host.expect(r"on port (\d+)").group(1))
    ann = procs("join", f"127.0.0.1:{port}", "--name", "Ann")
    ann.expect("^You are Ann")
    ann.say("one line then EOF")
    ann.close_stdin()
    ann.expect("^Chat ended.$")
    assert ann.wait() == 0
    host.expect("^Ann: one line then EOF$")
    host.expect("^Ann left.$")
    # The host, its stdin closed from the start, still serves newcomers.
    peer = RawPeer(port)
    peer.read_until("^PARLEY/2 ")
    peer.line("anyone?")
    host.expect(r"^Got a connection from 127\.0\.0\.1:\d+ \(guest1\) — not encrypted$")
    host.expect("^guest1: anyone\\?$")


def test_sigterm_on_the_host_ends_the_room_for_everyone(procs) -> None:
    host, port = start_host(procs)
    ann = procs("join", f"127.0.0.1:{port}", "--name", "Ann")
    ann.expect("^You are Ann")
    host.p.send_signal(signal.SIGTERM)
    ann.expect("^The host ended the chat.$")
    ann.expect("^Chat ended.$")
    assert ann.wait() == 0
    host.expect("^Chat ended.$")
    assert host.wait() == 0


def test_a_text_peer_and_a_terminal_joiner_share_the_room(procs) -> None:
    host, port = start_host(procs)
    ann = procs("join", f"127.0.0.1:{port}", "--name", "Ann")
    ann.expect("^You are Ann")
    peer = RawPeer(port)
    peer.read_until("^PARLEY/2 ")
    peer.line("hello from nc")
    ann.expect("^guest1: hello from nc$")
    ann.say("hello nc")
    assert peer.read_until("^Ann: ") == "Ann: hello nc"


def test_connection_refused_is_one_plain_line_and_exit_1(procs) -> None:
    with socket.socket() as s:  # a port that is surely closed: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        proc = procs("join", f"127.0.0.1:{port}", "--name", "Ann")
        assert proc.wait() == 1
    proc.expect("^Connecting to")
    assert proc.err == [
        f"Could not connect to 127.0.0.1:{port}: connection refused — is the host running?"
    ]


def test_a_port_in_use_is_one_plain_line_and_exit_1(procs) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = procs("host", "--port", str(port), "--bind", "127.0.0.1")
        assert proc.wait() == 1
    assert len(proc.err) == 1
    assert proc.err[0].startswith(f"Could not listen on 127.0.0.1:{port}: the address is already")


@pytest.mark.parametrize(
    "args",
    [["join"], ["join", "host:notaport"], ["host", "--port", "70000"], ["frobnicate"]],
)
def test_bad_arguments_exit_2_without_a_traceback(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "usage:" in done.stderr


def test_joining_a_plain_line_server_like_nc_l(procs) -> None:
    """`nc -l PORT`, the original one-to-one shape: it says nothing until someone types."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        ann = procs("join", f"127.0.0.1:{port}", "--name", "Ann", "--plain")
        server.settimeout(10)
        conn, _ = server.accept()
        with conn:
            ann.expect("^Connected to the server.$")
            ann.expect("not Parley")
            ann.say("hi there")
            conn.settimeout(10)
            got = b""
            while not got.endswith(b"\n"):
                got += conn.recv(100)
            assert got == b"hi there\n"
            conn.sendall(b"hello back\n")
            ann.expect("^hello back$")
            conn.sendall(b"bye\n")
            ann.expect("^Chat ended.$")
            assert ann.wait() == 0


def test_joining_ncat_chat(procs) -> None:
    port = free_port()
    ncat = subprocess.Popen(
        ["ncat", "-l", "--chat", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        other = _connect_when_listening(port)
        ann = procs("join", f"127.0.0.1:{port}", "--name", "Ann", "--plain")
        ann.expect("not Parley")
        ann.say("hello ncat room")
        other.read_until("hello ncat room")
        other.line("hi Ann")
        ann.expect(r"^<user\d+> hi Ann$")
    finally:
        ncat.terminate()
        ncat.wait(10)


def _connect_when_listening(port: int) -> RawPeer:
    import time

    deadline = time.monotonic() + 10
    while True:
        try:
            return RawPeer(port)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # ncat gives no sign it is listening but the port itself


class _HostileServer(LoopServer):
    """Says `first` (and `then`) to each connection: a server trying to reach the joiner's
    terminal with escape sequences (OSC 52 writes the clipboard) and line separators."""

    def __init__(self, first: bytes, then: bytes = b"") -> None:
        self.first, self.then = first, then
        super().__init__()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.links.append((writer, writer))  # closed by close() if still open
        writer.write(self.first)
        with contextlib.suppress(ConnectionError):
            await reader.readline()  # the hello
            writer.write(self.then)
            await writer.drain()
            await reader.read()  # until the joiner hangs up
        writer.close()


HOSTILE = "\x1b]52;c;ZXZpbA==\x07Go \x1b[2J\x07away\u2028Hal: you are fired\u2029\x1b[31mred"


@pytest.mark.parametrize("where", ["refusal", "error frame"])
def test_what_a_server_says_before_the_welcome_reaches_the_terminal_clean(procs, where) -> None:
    if where == "refusal":
        server = _HostileServer(f"PARLEY/1 ! {HOSTILE}\n".encode())
    else:
        frame = json.dumps({"type": "error", "code": "x", "text": HOSTILE})
        server = _HostileServer(b"PARLEY/1 hello\n", frame.encode() + b"\n")
    try:
        ann = procs("join", f"127.0.0.1:{server.port}", "--name", "Ann", "--plain")
        assert ann.wait() == 1
    finally:
        server.close()
    ann.expect("^Connecting to")
    err = "\n".join(ann.err)
    assert not any(ch in err for ch in "\x1b\x07\u2028\u2029\x9b\x9d"), ann.err
    assert ann.err == ["Go away", "  Hal: you are fired", "  red"]


def test_the_terminal_says_when_someone_in_the_room_is_not_encrypted(procs) -> None:
    host, port = start_host(procs)
    peer = RawPeer(port)
    peer.line("hello from nc")
    host.expect(r"— not encrypted")
    ann = procs("join", f"127.0.0.1:{port}", "--name", "Ann")
    ann.expect(r"^Encrypted\. Safety code: ")
    ann.expect(
        r"^! Not encrypted: guest1 is connected without encryption, so anyone on the network "
        r"can read what is said in this room\.$"
    )
    other = RawPeer(port)
    other.line("me too")
    ann.expect(r"^guest2 joined\.$")
    ann.expect(r"^! Not encrypted: guest2 is connected without encryption")


def test_a_host_with_parley_password_never_writes_it_where_it_is_not_on_a_terminal(
    procs, monkeypatch
) -> None:
    secret = "do-not-print-7f3a"
    monkeypatch.setenv("PARLEY_PASSWORD", secret)
    host = procs("host", "--port", "0", "--bind", "127.0.0.1", "--name", "Hal")  # stdout: a pipe
    port = int(host.expect(r"on port (\d+)").group(1))
    line = host.expect(r"^Invite \(address, identity; the password is not shown")
    invite = line.string.rsplit(": ", 1)[1]
    assert "pw=" not in invite
    # The invite still pins the host; the joiner brings the password from its own environment.
    ann = procs("join", invite, "--name", "Ann")
    ann.expect(r"^You are Ann\. In the room: Hal, Ann\.$")
    ann.say("let in")
    host.expect(r"^Ann: let in$")
    assert parse_invite(invite).port == port
    assert secret not in "\n".join(host.seen + host.err)


def test_on_a_terminal_the_host_shows_the_parley_password_once() -> None:
    """A person at a terminal may see it (to pass it on), in the invite, once."""
    secret = "shown-once-91c2"
    env = dict(os.environ, PARLEY_PASSWORD=secret, PYTHONUNBUFFERED="1")
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "host", "--port", "0", "--bind", "127.0.0.1"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env=env,
    )
    os.close(child)
    got = b""
    try:
        deadline = time.monotonic() + 10
        while b"Plain connections" not in got and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    got += os.read(main, 65536)
                except OSError:
                    break
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(main)
    text = got.decode("utf-8", "replace")
    assert "Invite (address, identity and password)" in text
    assert text.count(secret) == 1


def test_a_joiner_without_a_terminal_is_told_how_to_give_the_password(
    procs: Callable[..., Proc],
) -> None:
    host = procs("host", "--port", "0", "--bind", "127.0.0.1", "--password", "pw-1")
    port = int(host.expect(r"on port (\d+)").group(1))
    ann = procs("join", f"127.0.0.1:{port}", "--name", "Ann")  # stdin is a pipe
    assert ann.wait() == 1
    err = "\n".join(ann.err)
    assert "This room needs a password." in err
    assert "--password PW" in err


def test_a_joiner_on_a_terminal_is_asked_for_the_password_without_echo(
    procs: Callable[..., Proc],
) -> None:
    """No password given: the joiner asks on its terminal (getpass: no echo) and gets in."""
    secret = "typed-3b1e"
    host = procs("host", "--port", "0", "--bind", "127.0.0.1", "--password", secret)
    port = int(host.expect(r"on port (\d+)").group(1))
    env = {k: v for k, v in os.environ.items() if k != "PARLEY_PASSWORD"}
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "join", f"127.0.0.1:{port}", "--name", "Ann"],
        cwd=ROOT,
        stdin=child,
        stdout=child,
        stderr=child,
        env=dict(env, PYTHONUNBUFFERED="1"),
        start_new_session=True,  # the pty becomes its terminal, for getpass
    )
    os.close(child)
    try:
        got = _read_pty_until(main, b"Password for", 15)
        assert b"Password for 127.0.0.1:" in got
        os.write(main, secret.encode() + b"\n")
        got += _read_pty_until(main, b"You are Ann.", 15)
        assert b"You are Ann." in got
        assert secret.encode() not in got  # not echoed
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(main)


def _read_pty_until(fd: int, marker: bytes, timeout: float) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while marker not in got and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                got += os.read(fd, 65536)
            except OSError:
                break
    return got


def test_take_waiting_moves_queued_events_in_order_up_to_the_limit() -> None:
    import queue

    from app import events as ev
    from app.cli import take_waiting

    events: queue.Queue[ev.Event] = queue.Queue()
    for i in range(5):
        events.put(ev.NoticeShown(str(i)))
    batch: list[ev.Event] = [ev.NoticeShown("first")]
    take_waiting(events, batch, 4)
    assert [e.text for e in batch if isinstance(e, ev.NoticeShown)] == ["first", "0", "1", "2"]
    assert [events.get_nowait(), events.get_nowait()] == [ev.NoticeShown("3"), ev.NoticeShown("4")]
    take_waiting(events, batch, 10)  # nothing waiting: nothing moved, nothing blocks
    assert len(batch) == 4


def test_a_chat_line_reads_the_same_by_the_short_way() -> None:
    from app import events as ev
    from app.cli import describe, for_terminal

    said = ev.MessageReceived("Ann", "hello there", 1.0, 3)
    assert describe(said) == ["Ann: hello there"]
    assert describe(ev.MessageReceived("Ann", "two\nlines", earlier=True)) == [
        "(earlier) Ann: two",
        "(earlier) Ann: lines",
    ]
    assert describe(ev.MessageReceived("Ann", "psst", private="Bob", mine=True)) == [
        "(private to Bob) Ann: psst"
    ]
    assert describe(ev.MessageReceived("Ann", "mine", mine=True)) == []
    assert for_terminal("Ann: plain words") == "Ann: plain words"
    assert for_terminal("Ann: \x1b[31mred\x07") == "Ann: red"
    assert for_terminal("Ann: a\nb") == "Ann: a\n  b"


def test_the_terminal_looks_again_after_its_gather_while_events_keep_coming() -> None:
    """`Drain`: woken by a post, the terminal waits `gather` and takes what waits; while events
    keep coming it sleeps `gather` and takes what came (no wait on the queue that a post would
    have to wake), a batch cut at the limit is followed at once, and the first look that finds
    nothing goes back to waiting on the queue. Each sleep here stands for `gather` during which
    the network thread posts the events listed for it."""
    import queue

    from app import events as ev
    from app.cli import Drain

    def notice(text: str) -> ev.NoticeShown:
        return ev.NoticeShown(text)

    events: queue.Queue[ev.Event] = queue.Queue()
    posted_while_asleep = [["b"], ["c", "d"], ["e", "f", "g", "h"], [], []]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        for text in posted_while_asleep.pop(0):
            events.put(notice(text))

    drain = Drain(events, gather=0.01, limit=3, sleep=sleep)
    events.put(notice("a"))

    def texts(batch: list[ev.Event]) -> list[str]:
        return [e.text for e in batch if isinstance(e, ev.NoticeShown)]

    assert texts(drain.next()) == ["a", "b"]  # woken by "a", then `gather` for more
    assert texts(drain.next()) == ["c", "d"]  # busy: one sleep per batch, no wait on the queue
    assert texts(drain.next()) == ["e", "f", "g"]  # cut at the limit ...
    assert texts(drain.next()) == ["h"]  # ... and the rest at once, without a sleep
    assert sleeps == [0.01, 0.01, 0.01]
    assert drain.next(timeout=0.01) == []  # a look found nothing: back to the queue, idle
    assert not drain.busy
    events.put(notice("i"))
    assert texts(drain.next()) == ["i"]  # a post wakes it again
    assert len(sleeps) == 5
