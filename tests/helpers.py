"""Shared test tools: waiting on events and output with deadlines that fail loudly."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from app import events as ev
from app.messages import Chat, Replay, Send

if TYPE_CHECKING:
    from app.room import Room

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 10.0


class Recorder:
    """A `post` for NetWorker that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: ev.Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(
        self, kind: type[T], pred: Callable[[T], bool] = lambda e: True, timeout: float = DEADLINE
    ) -> T:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if isinstance(event, kind) and pred(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [repr(e)[:200] for e in self.events[-20:]]
                    raise AssertionError(
                        f"no {kind.__name__} matching within {timeout}s; last events: {seen}"
                    )
                self._cond.wait(left)

    def of(self, kind: type[T]) -> list[T]:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def texts(self) -> list[str]:
        return [e.text for e in self.of(ev.MessageReceived)]


class RawPeer:
    """A plain TCP peer, as nc or telnet would be: lines out, lines in."""

    # Closed after each test by the autouse fixture in conftest.py.
    opened: ClassVar[list[RawPeer]] = []

    def __init__(self, port: int, host: str = "127.0.0.1", rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        RawPeer.opened.append(self)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(DEADLINE)
        self.sock.connect((host, port))
        self.buf = b""

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self, text: str) -> None:
        self.send(text + "\n")

    def read_until(self, pattern: str, timeout: float = DEADLINE) -> str:
        """Read until a line matches `pattern` (regex search); return that line."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            while b"\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace")
                if rx.search(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} within {timeout}s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError(f"connection closed before a line matching {pattern!r}")
            self.buf += chunk

    def wait_closed(self, timeout: float = DEADLINE) -> bytes:
        """Read until the other side closes; return everything read."""
        deadline = time.monotonic() + timeout
        got = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"connection still open after {timeout}s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                return got
            if not chunk:
                return got
            got += chunk

    def close(self) -> None:
        self.sock.close()


class Proc:
    """A `python -m app ...` subprocess whose output lines a test can wait for."""

    def __init__(
        self,
        *args: str,
        stdin: Any = subprocess.PIPE,
        argv: list[str] | None = None,
        env: dict[str, str] | None = None,
    ):
        """`python -m app ARGS`, or any other command given as `argv`; `env` adds variables."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", **(env or {}))
        self.p = subprocess.Popen(
            argv or [sys.executable, "-m", "app", *args],
            cwd=ROOT,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.err: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _pump_err(self) -> None:
        assert self.p.stderr is not None
        self.err.extend(line.rstrip("\n") for line in self.p.stderr)

    def expect(self, pattern: str, timeout: float = DEADLINE) -> re.Match[str]:
        """Wait for an output line matching `pattern` (regex search)."""
        rx = re.compile(pattern)
        for line in self.seen:
            if m := rx.search(line):
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r}; saw {self.seen!r}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"exited before {pattern!r}; saw {self.seen!r}; stderr {self.err!r}"
                )
            self.seen.append(line)
            if m := rx.search(line):
                return m

    def say(self, text: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def close_stdin(self) -> None:
        assert self.p.stdin is not None
        self.p.stdin.close()

    def wait(self, timeout: float = DEADLINE) -> int:
        return self.p.wait(timeout)

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        for stream in (self.p.stdin, self.p.stdout, self.p.stderr):
            if stream is not None:
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass


def text_peer(port: int) -> tuple[RawPeer, str]:
    """A plain text peer in the room at `port` (its first line, "hi", admits it at once), and
    the guest name the room gave it."""
    peer = RawPeer(port)
    peer.read_until("^PARLEY/2 ")
    peer.line("hi")
    name = peer.read_until(r"^\* You are ").split("You are ")[1].split(".")[0]
    return peer, name


def cli_host(port: int, *extra: str) -> Proc:
    """A terminal host `Hal` on 127.0.0.1:`port` (0: the system picks), its input closed, once it
    listens; its data folder is the test's (PARLEY_DATA_DIR, inherited)."""
    host = Proc(
        "host",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--name",
        "Hal",
        *extra,
        stdin=subprocess.DEVNULL,
    )
    host.expect(r"on port (\d+)")
    return host


def free_port() -> int:
    """A port that was free a moment ago (for servers that cannot be told to use port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    cond: Callable[[], bool], what: Callable[[], str], timeout: float = DEADLINE
) -> None:
    """For states no event announces (an fd closing): check often, fail loudly at the deadline."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {what()}")
        time.sleep(0.005)


class LoopServer:
    """A TCP server running on its own asyncio loop in a thread, for the test's go-betweens
    (a relay, a man in the middle). Subclasses implement `handle`; `close` ends it all."""

    def __init__(self, port: int = 0, ssl_context: Any = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        started = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(port, ssl_context, started), daemon=True
        )
        self.thread.start()
        assert started.wait(DEADLINE), "the test server did not start"

    def _run(self, port: int, ssl_context: Any, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self.handle, "127.0.0.1", port, ssl=ssl_context)
        )
        self.port = int(self.server.sockets[0].getsockname()[1])
        started.set()
        self.loop.run_forever()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def call(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the server's loop and wait until it has run."""
        done = threading.Event()

        def run() -> None:
            fn()
            done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(DEADLINE)

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for a, b in self.links:
                a.transport.abort()
                b.transport.abort()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(DEADLINE)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE)
        self.loop.run_until_complete(self.server.wait_closed())
        self.loop.close()


def replayed(room: Room, sends: list[Send], member: int) -> tuple[Chat, ...]:
    """What the room's replays in `sends` give `member` (its history, or what it missed), read
    from the room's log page by page as the host would."""
    out: list[Chat] = []
    for send in sends:
        replay = send.message
        if member in send.to and isinstance(replay, Replay):
            after = replay.after
            while after < replay.until:
                page, after = room.replay_page(member, replay, after, 2)
                out += page
    return tuple(out)
