"""Load benchmark: Parley's host and `ncat --chat`, side by side, with text members over TCP.

How this works
--------------
One asyncio process (this one) plays every member. Each member is an `asyncio.Protocol` on a
loopback socket with TCP_NODELAY; the server under test runs as a child process (`python -m app
host` or `ncat -l --chat`) on 127.0.0.1 with an OS-chosen port. Both servers get the same
workload: plain text lines, so Parley serves its members as text peers, like `nc` users.

Every message a member sends is one line, ``@<sender>,<seq>,<monotonic ns>[,padding]``. Each
receiver keeps, per sender, which sequence numbers it has seen and the highest one, so it counts
distinct deliveries, duplicates, order violations (a lower number after a higher one), echoes of
its own lines, lines it cannot parse, and lines credited to the wrong sender; the latency of a
delivery is the receive time minus the send time in the line (one clock: same process).

The servers frame lines differently. Parley sends ``guestN: text`` per line. ncat prefixes each
*read* it relays with ``<userN> `` — one prefix for a read holding several lines, and a read may
end mid-line, so another member's chunk can arrive in the middle of a line. `NcatLines` therefore
demultiplexes the stream by prefix and keeps a partial line per sender, which is the most
favourable reading of ncat's output.

A member is "in the room" when the server says so: Parley's ``* You are guestN.`` line (a silent
peer gets its greeting after the host's 0.5 s TLS sniff and is admitted after a further 1 s; the
members stay silent), ncat's ``<announce> already connected: ...``. Sending starts only when
every member is in (a barrier), and every wait has a deadline, so a run always ends by itself.

The generator shares the machine with the server: on two cores each gets about one, and the
generator's CPU use is reported next to the host's so the reader can see when it was the limit.

The plain-text floods (flood, bulk, paced) are played instead by one C process,
`benchmarks/loadgen.c` (built with ``cc -O2`` like the floor broker; `c_flood`), which needs a
few per cent of what the server does, so their latencies are the server's, measured from the
moment a line is handed to the kernel. ``--generator python`` plays them here as before.

Run ``python -m benchmarks.load --help``; ``make bench`` runs the default suite. See
benchmarks/README.md for the scenarios and their targets.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import collections
import contextlib
import json
import random
import re
import signal
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make `benchmarks` importable as with `python -m`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.protocol import VERSION
from benchmarks._common import (
    FLOOR_SOURCE,
    LOOPBACK,
    REPO,
    FloorServer,
    NcatServer,
    ParleyServer,
    Remote,
    Server,
    ServerFailed,
    build_floor,
    build_loadgen,
    build_loadgen_tls,
    client_tls,
    cpu_s,
    machine,
    median,
    now_ns,
    own_cpu_s,
    parley_host_help,
    percentile,
    raise_fd_limit,
)

Line = tuple[bytes | None, bytes]  # (sender's name as the server gives it, or None; the line)


# --- reading what each server sends --------------------------------------------------------------


class ParleyLines:
    """Parley's text peer framing: ``guestN: text`` per message line, ``* ...`` for notices."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[Line]:
        *lines, self._partial = (self._partial + data).split(b"\n")
        out: list[Line] = []
        for line in lines:
            if line[:1] in (b"*", b"!") or line.startswith(b"PARLEY/"):
                out.append((None, line))
            else:
                name, sep, text = line.partition(b": ")
                out.append((name, text) if sep else (None, line))
        return out


class AppLines:
    """Parley's app protocol (JSON lines), told as the text framing `Member` reads: a message
    becomes (sender, text); a welcome, a member list and a departure become the text peer's
    ``* ...`` notices."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[Line]:
        *lines, self._partial = (self._partial + data).split(b"\n")
        out: list[Line] = []
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                out.append((None, b"!" + line))
                continue
            kind = obj.get("type")
            if kind == "msg":
                out.append((obj["from"].encode(), obj["text"].encode()))
            elif kind == "welcome":
                out.append((None, f"* You are {obj['name']}. In the room: ...".encode()))
            elif kind == "members":
                out.append((None, f"* In the room: {', '.join(obj['names'])}.".encode()))
            elif kind == "left":
                out.append((None, f"* {obj['name']} left ({obj.get('reason', '')}).".encode()))
            else:
                out.append((None, b"* " + line))
        return out


class FloorLines:
    """The floor broker relays raw lines: no names, no notices."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[Line]:
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [(None, line) for line in lines]


class NcatLines:
    """ncat --chat framing: ``<userN> `` (or ``<announce> ``) before each relayed read.

    A prefix marks where one relayed read starts, wherever that falls in a line, so the stream
    is split at prefixes and each sender's bytes are joined into lines separately.
    """

    PREFIX = re.compile(rb"<(user\d+|announce)> ")

    def __init__(self) -> None:
        self._held = b""  # may end in an incomplete prefix
        self._tag: bytes | None = None
        self._partial: dict[bytes | None, bytes] = {}

    def feed(self, data: bytes) -> list[Line]:
        buf = self._held + data
        cut = len(buf)
        lt = buf.rfind(b"<")  # payloads hold no '<': every '<' is ncat's
        if lt >= 0:
            gt = buf.find(b">", lt)
            if gt < 0 or gt + 1 >= len(buf):  # cannot tell yet whether "> " follows
                cut = lt
        work, self._held = buf[:cut], buf[cut:]
        out: list[Line] = []
        pos = 0
        for match in self.PREFIX.finditer(work):
            self._add(work[pos : match.start()], out)
            tag = match.group(1)
            self._tag = None if tag == b"announce" else tag
            pos = match.end()
        self._add(work[pos:], out)
        return out

    def _add(self, chunk: bytes, out: list[Line]) -> None:
        if not chunk:
            return
        tag = self._tag
        *lines, rest = (self._partial.get(tag, b"") + chunk).split(b"\n")
        self._partial[tag] = rest
        out += [(tag, line) for line in lines]


# --- members --------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What all receivers saw in one measurement."""

    senders: int
    lines: int
    expected: int = 0
    delivered: int = 0  # distinct (sender, seq) per receiver
    duplicates: int = 0
    reordered: int = 0
    echoes: int = 0
    garbled: int = 0
    misattributed: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    first_ns: int = 0
    last_ns: int = 0
    complete: asyncio.Event = field(default_factory=asyncio.Event)
    probes: int = 0  # members that saw the probe line
    probes_wanted: int = 0
    probed: asyncio.Event = field(default_factory=asyncio.Event)

    def saw_probe(self) -> None:
        self.probes += 1
        if self.probes >= self.probes_wanted > 0:
            self.probed.set()


class Member(asyncio.Protocol):
    """One text member: joins, sends its numbered lines, and checks every line it receives."""

    def __init__(
        self, idx: int, kind: str, tally: Tally, names: dict[int, bytes], skim: bool = False
    ) -> None:
        self.idx = idx
        self.skim_when_in = skim  # idle members: once in, only look for the probe (cheap)
        self.skimming = False
        self._carry = b""
        self.kind = kind
        self.tally = tally
        self.names = names  # every member's name as the server knows it, by index
        readers: dict[str, type[ParleyLines | AppLines | NcatLines | FloorLines]] = {
            "parley": ParleyLines,
            "app": AppLines,
            "ncat": NcatLines,
            "floor": FloorLines,
        }
        self.lines = readers[kind]()
        loop = asyncio.get_running_loop()
        self.greeted: asyncio.Future[None] = loop.create_future()
        self.joined: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.name: bytes | None = None
        self.lost = False
        self.writable = asyncio.Event()
        self.writable.set()
        self.seen = bytearray(tally.senders * tally.lines)
        self.highest = [-1] * tally.senders
        self.who: int | None = None  # names in Parley's answer to /who
        self.who_answered = asyncio.Event()
        self.probed = False
        self.dropped_notices: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.kind == "floor":  # no greeting, no names: in once connected (see Run.barrier)
            self.greeted.set_result(None)
            self._join()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.writable.set()
        for future in (self.greeted, self.joined):
            if not future.done():
                future.set_exception(ConnectionError("closed by the server"))
                future.exception()  # mark retrieved: a lost member is counted, not raised

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        if self.skimming:  # thousands of idle members: skip "X joined." lines unparsed
            window = self._carry + data
            if b"#probe" in window and not self.probed:
                self.probed = True
                self.tally.saw_probe()
            self._carry = window[-8:]
            return
        now = now_ns()
        if not self.greeted.done():
            self.greeted.set_result(None)
            if self.kind == "app" and self.transport is not None:
                self.transport.write(
                    b'{"type":"hello","version":%d,"name":"m%d"}\n' % (VERSION, self.idx)
                )
        for tag, line in self.lines.feed(data):
            if line[:1] == b"@":
                self._delivery(tag, line, now)
            else:
                self._control(line)

    def _delivery(self, tag: bytes | None, line: bytes, now: int) -> None:
        t = self.tally
        try:
            sender, seq, sent = (int(x) for x in line[1:].split(b",", 3)[:3])
        except ValueError:
            t.garbled += 1
            return
        if not (0 <= sender < t.senders and 0 <= seq < t.lines):
            t.garbled += 1
            return
        if sender == self.idx:
            if self.kind != "app":  # an app member's own line coming back is its confirmation
                t.echoes += 1
            return
        if tag != self.names.get(sender):
            t.misattributed += 1
        key = sender * t.lines + seq
        if self.seen[key]:
            t.duplicates += 1
            return
        self.seen[key] = 1
        if seq < self.highest[sender]:
            t.reordered += 1
        else:
            self.highest[sender] = seq
        t.delivered += 1
        t.last_ns = now
        t.latencies_ns.append(now - sent)
        if t.delivered >= t.expected > 0:
            t.complete.set()

    def _control(self, line: bytes) -> None:
        if line.startswith(b"#probe"):
            if not self.probed:
                self.probed = True
                self.tally.saw_probe()
        elif self.kind in ("parley", "app"):
            if line.startswith(b"* You are ") and self.name is None:
                self.name = line[10:].split(b". In the room:", 1)[0]
                self._join()
            elif line.startswith(b"* In the room: "):
                self.who = line.count(b", ") + 1
                self.who_answered.set()
            elif line.endswith(b" left (not reading)."):
                self.dropped_notices.append(line[2:-20])
        elif self.name is None and b" is connected as <" in line:  # ncat: the first is our own
            self.name = line.rsplit(b"<", 1)[1].split(b">", 1)[0]
        elif line.startswith(b"already connected:"):
            self._join()

    def _join(self) -> None:
        if self.name is not None:
            self.names[self.idx] = self.name
        if not self.joined.done():
            self.joined.set_result(None)
        self.skimming = self.skim_when_in

    def send(self, line: bytes) -> None:
        if self.transport is not None and not self.lost:
            self.transport.write(self._frame(line))

    def _frame(self, line: bytes) -> bytes:
        if self.kind == "app":  # the lines hold nothing JSON would escape
            return b'{"type":"msg","text":"%s"}\n' % line
        return line + b"\n"

    def send_numbered(self, seq: int, pad: bytes = b"") -> None:
        self.send(b"@%d,%d,%d%s" % (self.idx, seq, now_ns(), pad))

    def send_all(self, lines: int, pad: bytes = b"") -> None:
        """Bulk: every numbered line in one write."""
        if self.transport is not None and not self.lost:
            t, i = now_ns(), self.idx
            frame = self._frame
            self.transport.write(
                b"".join(frame(b"@%d,%d,%d%s" % (i, q, t, pad)) for q in range(lines))
            )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


# --- a run: one server, its members ---------------------------------------------------------------


def member_kind(server: Server, app: bool = False) -> str:
    """How members speak to `server`: Parley's text or app protocol, ncat's, the floor's."""
    if isinstance(server, ParleyServer):
        return "app" if app else "parley"
    return "floor" if isinstance(server, FloorServer) else "ncat"


# The paced room's latency target: a room this large gathers its chat up to 45 ms before a
# flush (`HostOptions.gather_most`, for host CPU per delivery), plus 15 ms. It was 10 ms while
# the gather was 6 ms; ncat's p99 here is about 37 ms (Nagle's algorithm), and the issue's
# bound for a flood is 100 ms.
PACED_P99 = 60.0


@dataclass
class Settings:
    """Bounds and pacing shared by the scenarios (every wait has one)."""

    connect_timeout: float = 15.0  # connect, then the server's first bytes
    join_timeout: float = 30.0  # all members in the room
    concurrency: int | None = None  # connects in flight; None: per server (see --concurrency)
    give_up_after: int = 30  # consecutive failed connects that end the join phase
    deadline: float = 60.0  # one measurement, from the first send
    gen_procs: int = 2  # generator processes playing the members of a flow scenario
    stall: float = 3.0  # no new delivery this long after the last send: stop waiting
    profile: Path | None = None  # record the Parley host with py-spy into this file
    loadgen: Path | None = None  # the C generator (plain-text floods); None: the Python one
    loadgen_tls: Path | None = None  # its TLS build (app members over TLS, ncat --ssl)


class Run:
    """One server process and the members connected to it."""

    def __init__(
        self, server: Server, settings: Settings, senders: int, lines: int, kind: str | None = None
    ) -> None:
        self.server = server
        self.kind = kind or member_kind(server)
        self.settings = settings
        self.tally = Tally(senders, lines)
        self.names: dict[int, bytes] = {}
        self.members: list[Member] = []
        self.tls = client_tls() if server.tls else None
        self.failed_connects = 0
        self.failures: collections.Counter[str] = collections.Counter()
        # ncat takes few connections at once; 1,000 TLS handshakes at once in one Python
        # generator time out (200 do not)
        busy = 8 if self.kind == "ncat" else 200 if server.tls else 1000
        self.concurrency = settings.concurrency or busy
        self._spy: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Run:
        await self.server.start()
        profile = self.settings.profile
        if profile is not None and self.kind == "parley":
            self._spy = await asyncio.create_subprocess_exec(
                *("py-spy", "record", "--format", "raw", "--threads", "--rate", "250"),
                *("--pid", str(self.server.pid), "--output", str(profile)),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for member in self.members:
            member.close()
        if self._spy is not None:  # py-spy writes its file when interrupted
            self._spy.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self._spy.wait(), 15)
            except asyncio.TimeoutError:
                self._spy.kill()
                await self._spy.wait()
        await self.server.stop()

    async def connect(self, idx: int, skim: bool = False) -> Member | None:
        """Open one member and wait for the server's first bytes (it has been accepted)."""
        loop = asyncio.get_running_loop()
        s = self.settings
        try:
            _, member = await asyncio.wait_for(
                loop.create_connection(
                    lambda: Member(idx, self.kind, self.tally, self.names, skim),
                    LOOPBACK,
                    self.server.port,
                    ssl=self.tls,
                ),
                s.connect_timeout,
            )
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            self.failures[f"connect: {type(exc).__name__}"] += 1
            return None
        try:
            await asyncio.wait_for(asyncio.shield(member.greeted), s.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            self.failures[f"greeting: {type(exc).__name__}"] += 1
            member.close()
            return None
        return member

    async def join(self, count: int, first_idx: int = 0, skim: bool = False) -> list[Member]:
        """Connect `count` members with bounded concurrency; return those in the room.
        With `skim`, all but the first only watch for the probe once they are in."""
        s = self.settings
        end = time.monotonic() + s.join_timeout
        pending: set[asyncio.Task[Member | None]] = set()
        opened: list[Member] = []
        failed_in_a_row = 0
        next_idx = first_idx
        while next_idx < first_idx + count or pending:
            if time.monotonic() > end or failed_in_a_row >= s.give_up_after:
                break
            while next_idx < first_idx + count and len(pending) < self.concurrency:
                quiet = skim and next_idx != first_idx
                pending.add(asyncio.ensure_future(self.connect(next_idx, quiet)))
                next_idx += 1
            done, pending = await asyncio.wait(
                pending, timeout=max(0.0, end - time.monotonic()), return_when="FIRST_COMPLETED"
            )
            for task in done:
                member = task.result()
                if member is None:
                    self.failed_connects += 1
                    failed_in_a_row += 1
                else:
                    opened.append(member)
                    failed_in_a_row = 0
        for task in pending:
            task.cancel()
        self.failed_connects += first_idx + count - next_idx + len(pending)
        self.members += opened
        if opened:
            await asyncio.wait([m.joined for m in opened], timeout=max(0.1, end - time.monotonic()))
        return sorted(
            (m for m in opened if m.joined.done() and not m.joined.exception()),
            key=lambda m: m.idx,
        )

    async def measure(
        self, senders: Sequence[Member], expected: int, send: Callable[[], Awaitable[None]]
    ) -> dict[str, Any]:
        """Run `send`, wait for every expected delivery (or the deadline / a stall), tally up."""
        s, t = self.settings, self.tally
        t.expected = expected
        host0, gen0 = self.server.sample(), own_cpu_s()
        t.first_ns = now_ns()
        sending = asyncio.ensure_future(send())
        end = time.monotonic() + s.deadline
        progress, last_change = -1, time.monotonic()
        stalled = False
        while not t.complete.is_set() and time.monotonic() < end:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(t.complete.wait(), 0.25)
            if t.delivered != progress:
                progress, last_change = t.delivered, time.monotonic()
            elif sending.done() and time.monotonic() - last_change > s.stall:
                stalled = True
                break
            elif not sending.done() and time.monotonic() - last_change > s.stall * 3:
                stalled = True  # the sends themselves are stuck (a frozen server)
                break
        finish_ns = t.last_ns if t.complete.is_set() else now_ns()
        host1, gen1 = self.server.sample(), own_cpu_s()
        if not sending.done():
            sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sending
        wall = max(1e-9, (finish_ns - t.first_ns) / 1e9)
        busy = max(1e-9, ((t.last_ns or finish_ns) - t.first_ns) / 1e9)
        lat = sorted(t.latencies_ns)
        return {
            "members_dropped": sum(m.lost for m in senders),
            "expected": expected,
            "delivered": t.delivered,
            "lost": expected - t.delivered,
            "duplicated": t.duplicates,
            "reordered": t.reordered,
            "echoed": t.echoes,
            "garbled": t.garbled,
            "misattributed": t.misattributed,
            "complete": t.complete.is_set(),
            "stalled": stalled,
            "seconds": round(wall, 3),
            "deliveries_per_s": t.delivered / busy,
            "p50_ms": _ms(percentile(lat, 50)),
            "p99_ms": _ms(percentile(lat, 99)),
            "max_ms": _ms(lat[-1] if lat else None),
            "host_cpu_pct": 100 * (host1.cpu_s - host0.cpu_s) / wall,
            "gen_cpu_pct": 100 * (gen1 - gen0) / wall,
            "gen_cpu_s": gen1 - gen0,
            "first_ns": t.first_ns,
            "last_ns": t.last_ns or finish_ns,
            "host_peak_rss_kb": host1.hwm_kb,
        }


def _ms(ns: float | None) -> float | None:
    return None if ns is None else ns / 1e6


# --- scenarios ------------------------------------------------------------------------------------


@dataclass
class Params:
    members: int
    lines: int
    rate: float = 0.0  # lines per second per member; 0 = as fast as possible
    pad: int = 0  # extra bytes per line
    hold: float = 0.0  # idle: how long the members stay


async def round_robin(members: Sequence[Member], lines: int, pad: int, deadline: float) -> None:
    """Flood: every member sends its next line, round after round, as fast as writes go."""
    filler = b"," + b"x" * (pad - 1) if pad > 0 else b""
    end = time.monotonic() + deadline
    for seq in range(lines):
        for member in members:
            if not member.writable.is_set():  # the server is not reading: wait, bounded
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(member.writable.wait(), max(0, end - time.monotonic()))
                if time.monotonic() >= end:
                    return
            member.send_numbered(seq, filler)
        await asyncio.sleep(0)  # let replies in between rounds


async def paced(members: Sequence[Member], lines: int, rate: float) -> None:
    """Each member sends `rate` lines a second, starting at a random phase (no drift)."""
    loop = asyncio.get_running_loop()
    interval = 1 / rate
    start = loop.time() + 0.05
    rng = random.Random(1)
    for member in members:
        phase = start + rng.random() * interval
        for seq in range(lines):
            loop.call_at(phase + seq * interval, member.send_numbered, seq)
    await asyncio.sleep(0.1 + lines * interval)


async def bulk(members: Sequence[Member], lines: int, pad: int) -> None:
    """Bulk flood: each member writes all its lines at once."""
    filler = b"," + b"x" * (pad - 1) if pad > 0 else b""
    for i, member in enumerate(members):
        member.send_all(lines, filler)
        if i % 10 == 9:
            await asyncio.sleep(0)


async def send_flow(members: Sequence[Member], spec: dict[str, Any], s: Settings) -> None:
    if spec["rate"] > 0:
        await paced(members, spec["lines"], spec["rate"])
    elif spec["bulk"]:
        await bulk(members, spec["lines"], 0)
    else:
        await round_robin(members, spec["lines"], 0, s.deadline)


# --- generator processes --------------------------------------------------------------------------
#
# A flow scenario (flood, bulk, paced, TLS) plays its members in `Settings.gen_procs` processes
# (`python -m benchmarks.load --worker`), so the generator is not the bottleneck that decides
# the figures. Each worker gets its slice of members as one JSON line on stdin, connects them and
# answers with their names; when every worker has answered (the barrier), the parent samples
# the host's CPU and says "go" with every member's name (for the attribution check); each worker
# sends, tallies what its members receive and answers with its tally and raw latencies; the
# parent samples the host again and merges. CLOCK_MONOTONIC is one clock for all processes.


class Worker:
    """One generator process, spoken to with one JSON object per line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "benchmarks.load", "--worker"),
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 28,
        )
        return cls(proc)

    def tell(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj).encode() + b"\n")

    async def answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            return {"error": f"generator worker exited ({self.proc.returncode})"}
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(OSError, RuntimeError):
                self.tell({"close": True})
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def worker_main() -> None:
    """The worker side of `Worker` (``--worker``): one slice of a flow scenario's members."""
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 28)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def tell(obj: dict[str, Any]) -> None:
        sys.stdout.buffer.write(json.dumps(obj).encode() + b"\n")
        sys.stdout.buffer.flush()

    spec = json.loads(await reader.readline())
    settings = Settings(**spec["settings"])
    server = Remote(spec["port"], tls=spec["tls"])
    run = Run(server, settings, spec["members"], spec["lines"], spec["kind"])
    try:
        members = await run.join(spec["count"], spec["first"])
        names = {m.idx: (m.name or b"").decode() for m in members}
        tell({"joined": names, "failures": dict(run.failures)})
        go = json.loads(await reader.readline())
        if "go" not in go:
            return
        run.names.update({int(k): v.encode() for k, v in go["go"].items() if v})
        expected = len(members) * spec["lines"] * (spec["members"] - 1)
        result = await run.measure(members, expected, lambda: send_flow(members, spec, settings))
        result["latencies"] = base64.b64encode(array.array("q", run.tally.latencies_ns)).decode()
        tell({"done": result})
        await reader.readline()  # "close": every worker is done, members may go now
    finally:
        for member in run.members:
            member.close()


_SUMMED = (
    *("members_dropped", "expected", "delivered", "lost", "duplicated", "reordered"),
    *("echoed", "garbled", "misattributed", "gen_cpu_s"),
)


async def flood(
    server: Server, p: Params, s: Settings, *, app: bool = False, bulk: bool = False
) -> dict[str, Any]:
    """A flow scenario: every member sends `p.lines`, every other member must get them all."""
    n, m = p.members, p.lines
    kind = member_kind(server, app)
    binary = s.loadgen_tls if server.tls else s.loadgen
    if binary is not None:
        mode = "bulk" if bulk else "paced" if p.rate else "line"
        return await c_flood(server, p, s, kind, mode, binary)
    procs = max(1, min(s.gen_procs, n))
    async with Run(server, s, n, m, kind):
        workers = [await Worker.start() for _ in range(procs)]
        try:
            settings = {
                k: getattr(s, k)
                for k in ("connect_timeout", "join_timeout", "give_up_after", "deadline", "stall")
            }
            settings["concurrency"] = s.concurrency
            for i, worker in enumerate(workers):
                first, last = n * i // procs, n * (i + 1) // procs
                worker.tell(
                    {
                        **{"port": server.port, "tls": server.tls, "kind": kind},
                        **{"members": n, "lines": m, "rate": p.rate, "bulk": bulk},
                        **{"first": first, "count": last - first, "settings": settings},
                    }
                )
            joined = await asyncio.wait_for(
                asyncio.gather(*(w.answer() for w in workers)), s.join_timeout + 30
            )
            names: dict[str, str] = {}
            for answer in joined:
                names.update(answer.get("joined", {}))
            if len(names) < n:
                failures = [a.get("failures") or a.get("error") for a in joined]
                return {"error": f"only {len(names)} of {n} members got in: {failures}"}
            if isinstance(server, FloorServer):  # no greeting: wait until it accepted all
                end = time.monotonic() + 10
                while server.sockets() < n and time.monotonic() < end:  # noqa: ASYNC110 (polls /proc)
                    await asyncio.sleep(0.05)
            host0 = server.sample()
            for worker in workers:
                worker.tell({"go": names})
            answers = await asyncio.wait_for(
                asyncio.gather(*(w.answer() for w in workers)), s.deadline + 4 * s.stall + 30
            )
            host1 = server.sample()
        finally:
            for worker in workers:
                await worker.close()
    parts = [a["done"] for a in answers if "done" in a]
    if len(parts) < procs:
        return {"error": f"a generator worker failed: {answers}"}
    result: dict[str, Any] = {k: sum(part[k] for part in parts) for k in _SUMMED}
    first_ns = min(part["first_ns"] for part in parts)
    last_ns = max(part["last_ns"] for part in parts)
    wall = max(1e-9, (last_ns - first_ns) / 1e9)
    lat: list[int] = []
    for part in parts:
        lat += array.array("q", base64.b64decode(part["latencies"]))
    lat.sort()
    host_cpu = host1.cpu_s - host0.cpu_s
    delivered = max(1, result["delivered"])
    result.update(
        members=n,
        complete=all(part["complete"] for part in parts),
        stalled=any(part["stalled"] for part in parts),
        seconds=round(wall, 3),
        deliveries_per_s=result["delivered"] / wall,
        p50_ms=_ms(percentile(lat, 50)),
        p99_ms=_ms(percentile(lat, 99)),
        max_ms=_ms(lat[-1] if lat else None),
        host_cpu_pct=100 * host_cpu / wall,
        gen_cpu_pct=100 * result["gen_cpu_s"] / wall,
        gen_procs=procs,
        generator="Python",
        host_us_per_delivery=1e6 * host_cpu / delivered,
        host_main_us_per_delivery=1e6 * (host1.main_cpu_s - host0.main_cpu_s) / delivered,
        gen_us_per_delivery=1e6 * result["gen_cpu_s"] / delivered,
        host_peak_rss_kb=host1.hwm_kb,
    )
    return result


async def _start_loadgen(
    binary: Path,
    server: Server,
    s: Settings,
    kind: str,
    mode: str,
    n: int,
    m: int,
    rate: float,
    concurrency: int,
) -> asyncio.subprocess.Process:
    """The C generator for `server`, with stdin and stdout piped (its barrier and its JSON)."""
    return await asyncio.create_subprocess_exec(
        *(str(binary), "--port", str(server.port), "--kind", kind, "--mode", mode),
        *("--tls", "1" if server.tls else "0", "--version", str(VERSION)),
        *("-n", str(n), "-m", str(m), "--rate", str(rate or 1)),
        *("--deadline", str(s.deadline), "--stall", str(s.stall)),
        *("--join-timeout", str(s.join_timeout), "--concurrency", str(concurrency)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def _cpu_until_still(server: Server, start: float, bound: float = 30.0) -> float:
    """Host CPU seconds used since `start` (its CPU time then), once it stops moving (less
    than 20 ms in half a second), or after `bound` seconds."""
    last, end = start, time.monotonic() + bound
    while time.monotonic() < end:
        await asyncio.sleep(0.5)
        now = server.sample().cpu_s
        if now - last < 0.02:
            break
        last = now
    return last - start


async def c_flood(
    server: Server, p: Params, s: Settings, kind: str, mode: str, binary: Path
) -> dict[str, Any]:
    """A flow scenario played by the C generator (`benchmarks/loadgen.c`; over TLS its TLS
    build): one process that needs a fraction of the CPU the server does, so the latencies
    are the server's (and the kernel's), not the generator's parsing. Same barrier, same
    checks and the same figures as `flood`, from one JSON line."""
    n, m = p.members, p.lines
    concurrency = s.concurrency or (8 if kind == "ncat" else 1000)
    async with Run(server, s, n, m, kind):
        proc = await _start_loadgen(binary, server, s, kind, mode, n, m, p.rate, concurrency)
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), s.join_timeout + 30)
            joined = json.loads(line or b'{"joined": 0}')["joined"]
            if joined < n:
                proc.stdin.write(b"stop\n")
                return {"error": f"only {joined} of {n} members got in (C generator)"}
            if isinstance(server, FloorServer):  # no greeting: wait until it accepted all
                end = time.monotonic() + 10
                while server.sockets() < n and time.monotonic() < end:  # noqa: ASYNC110 (polls /proc)
                    await asyncio.sleep(0.05)
            host0 = server.sample()
            proc.stdin.write(b"go\n")
            line = await asyncio.wait_for(proc.stdout.readline(), s.deadline + 4 * s.stall + 30)
            host1 = server.sample()
            proc.stdin.write(b"bye\n")
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
    if not line:
        return {"error": f"the C generator exited ({proc.returncode})"}
    result: dict[str, Any] = json.loads(line)["done"]
    wall = max(1e-9, (result["last_ns"] - result["first_ns"]) / 1e9)
    host_cpu = host1.cpu_s - host0.cpu_s
    delivered = max(1, result["delivered"])
    result.update(
        members=n,
        seconds=round(wall, 3),
        deliveries_per_s=result["delivered"] / wall,
        p50_ms=_ms(result.pop("p50_ns")),
        p90_ms=_ms(result.pop("p90_ns")),
        p99_ms=_ms(result.pop("p99_ns")),
        max_ms=_ms(result.pop("max_ns")),
        host_cpu_pct=100 * host_cpu / wall,
        gen_cpu_pct=100 * result["gen_cpu_s"] / wall,
        gen_procs=1,
        generator="C",
        host_us_per_delivery=1e6 * host_cpu / delivered,
        host_main_us_per_delivery=1e6 * (host1.main_cpu_s - host0.main_cpu_s) / delivered,
        gen_us_per_delivery=1e6 * result["gen_cpu_s"] / delivered,
        host_peak_rss_kb=host1.hwm_kb,
    )
    return result


async def bulk_flood(server: Server, p: Params, s: Settings) -> dict[str, Any]:
    return await flood(server, p, s, bulk=True)


async def app_flood(server: Server, p: Params, s: Settings) -> dict[str, Any]:
    """Parley's own members (the app protocol, JSON over TLS); ncat's are text over TLS."""
    return await flood(server, p, s, app=True)


async def idle(server: Server, p: Params, s: Settings) -> dict[str, Any]:
    """Many silent members: how many get in, stay, and what each costs the host in memory."""
    n = p.members
    if server.tls and s.loadgen_tls is not None:
        return await c_idle(server, p, s, s.loadgen_tls)
    kind = member_kind(server, app=server.tls)  # over TLS: the app's protocol, as the app joins
    async with Run(server, s, 1, 1, kind) as run:
        before, gen0 = server.sample(), own_cpu_s()
        t0 = time.monotonic()
        members = await run.join(n, skim=True)
        join_s = time.monotonic() - t0
        joined, gen1 = server.sample(), own_cpu_s()
        await asyncio.sleep(p.hold)  # the workload: members sit in the room
        after = server.sample()
        alive = [m for m in members if not m.lost]
        result: dict[str, Any] = {
            "members": n,
            "in_room": len(alive),
            "failed_connects": run.failed_connects,
            "failures": dict(run.failures),
            "not_in_room": sum(1 for m in run.members if not m.joined.done() or m.lost),
            # connected and greeted, then closed by the server before it let them in
            "closed_before_welcome": sum(
                1 for m in run.members if m.joined.done() and m.joined.exception() is not None
            ),
            "join_s": round(join_s, 2),
            "joined": len(members),
            "host_exit": server.exit_note(),
            "rss_before_kb": before.rss_kb,
            "rss_joined_kb": joined.rss_kb,
            "rss_after_kb": after.rss_kb,
            "host_peak_rss_kb": after.hwm_kb,
            "kb_per_member": (after.rss_kb - before.rss_kb) / max(1, len(alive)),
            "host_cpu_join_s": round(joined.cpu_s - before.cpu_s, 2),
            "gen_cpu_join_s": round(gen1 - gen0, 2),
        }
        if alive and run.kind == "parley":
            alive[0].send(b"/who")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(alive[0].who_answered.wait(), 10)
            result["who_count"] = None if alive[0].who is None else alive[0].who - 1  # less H
        if len(alive) > 1:
            run.tally.probes_wanted = len(alive) - 1
            alive[0].send(b"#probe")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(run.tally.probed.wait(), 10)
            result["probe_reached"] = sum(m.probed for m in alive)
        # Then everyone hangs up at once: what telling those who remain costs the host,
        # measured until its CPU time stops moving (bounded: 30 s).
        start = server.sample().cpu_s
        for member in run.members:
            member.close()
        result["host_cpu_leave_s"] = round(await _cpu_until_still(server, start), 2)
        return result


async def c_idle(server: Server, p: Params, s: Settings, binary: Path) -> dict[str, Any]:
    """`idle` over TLS, played by the C generator's TLS build as app members: Python's own
    TLS handshakes needed more CPU than the host's (9.1-9.7 s for 5,000) on the same cores,
    so the join time was the two together. The generator counts a member in once its
    `welcome` came; there is no /who or probe line (it only joins and holds), and then all of
    them hang up at once (it exits)."""
    n = p.members
    async with Run(server, s, 1, 1, "app"):
        before = server.sample()
        t0 = time.monotonic()
        proc = await _start_loadgen(
            binary, server, s, "app", "line", n, 1, 0.0, s.concurrency or 200
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), s.join_timeout + 30)
            join_s = time.monotonic() - t0
            joined, gen_join = server.sample(), cpu_s(proc.pid)
            in_room = int(json.loads(line or b'{"joined": 0}')["joined"])
            await asyncio.sleep(p.hold)  # the workload: members sit in the room
            after = server.sample()
            proc.stdin.write(b"stop\n")  # not "go": it exits, and every member hangs up
            await proc.stdin.drain()
            await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        # From before the hang-up (`after`): the host tells of it while the generator exits.
        leave_s = await _cpu_until_still(server, after.cpu_s)
        return {
            "members": n,
            "in_room": in_room,
            "generator": "C",
            "join_s": round(join_s, 2),
            "joined": in_room,
            "host_exit": server.exit_note(),
            "rss_before_kb": before.rss_kb,
            "rss_joined_kb": joined.rss_kb,
            "rss_after_kb": after.rss_kb,
            "host_peak_rss_kb": after.hwm_kb,
            "kb_per_member": (after.rss_kb - before.rss_kb) / max(1, in_room),
            "host_cpu_join_s": round(joined.cpu_s - before.cpu_s, 2),
            "gen_cpu_join_s": round(gen_join, 2),
            "host_cpu_leave_s": round(leave_s, 2),
        }


async def stuck(server: Server, p: Params, s: Settings) -> dict[str, Any]:
    """One member stops reading while the others flood: they must get everything anyway."""
    n, m = p.members, p.lines
    loop = asyncio.get_running_loop()
    async with Run(server, s, n, m) as run:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (LOOPBACK, server.port)), 5)
            # Read until in the room, like any member; after that, never read again.
            seen = b""
            marker = b"* You are " if run.kind == "parley" else b"already connected:"
            end = time.monotonic() + 10
            while marker not in seen and time.monotonic() < end:
                seen += await asyncio.wait_for(loop.sock_recv(sock, 65536), 10)
            members = await run.join(n)
            if len(members) < n or marker not in seen:
                return {"error": f"only {len(members)} of {n} members got in"}
            stuck_name = seen.split(marker, 1)[1].split(b".", 1)[0] if run.kind == "parley" else b""
            result = await run.measure(
                members, n * m * (n - 1), lambda: round_robin(members, m, p.pad, s.deadline)
            )
            result["members"] = n
            result["dropped_notice"] = any(stuck_name in mm.dropped_notices for mm in members)
            result["stuck_socket"] = await _drain_state(sock, 5.0)
            result["host_exit"] = server.exit_note()
            return result
        finally:
            sock.close()


async def _drain_state(sock: socket.socket, timeout: float) -> str:
    """Read the stuck socket now: did the host close it, or is it still being held open?"""
    loop = asyncio.get_running_loop()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), end - time.monotonic())
        except asyncio.TimeoutError:
            break
        except ConnectionResetError:
            return "reset by host (dropped)"
        if not data:
            return "closed by host (dropped)"
    return "still open"


# --- the suite ------------------------------------------------------------------------------------


@dataclass
class Scenario:
    key: str
    title: str
    run: Callable[[Server, Params, Settings], Awaitable[dict[str, Any]]]
    params: Params
    runs: int
    tls: bool = False
    floor: bool = False  # the C floor broker serves it too (plain text only)


def scenarios(args: argparse.Namespace) -> dict[str, Scenario]:
    def pick(value: int | None, default: int) -> int:
        return default if value is None else value

    n, m, r = args.members, args.lines, args.runs
    flow = Params(pick(n, 100), pick(m, 50))
    return {
        "flood": Scenario("flood", "line-by-line flood", flood, flow, pick(r, 3), floor=True),
        "bulk": Scenario("bulk", "bulk flood", bulk_flood, flow, pick(r, 3), floor=True),
        "latency": Scenario(
            "latency",
            "paced",
            flood,
            Params(pick(n, 100), pick(m, 20), rate=args.rate),
            pick(r, 3),
            floor=True,
        ),
        "idle": Scenario(
            "idle", "idle", idle, Params(pick(n, 5000), 0, hold=args.hold), pick(r, 1)
        ),
        "idle_tls": Scenario(
            "idle_tls",
            "idle app members over TLS",
            idle,
            Params(pick(n, 5000), 0, hold=args.hold),
            pick(r, 1),
            tls=True,
        ),
        "stuck": Scenario(
            "stuck",
            "stuck reader",
            stuck,
            Params(pick(n, 10), pick(m, 2000), pad=args.pad),
            pick(r, 1),
        ),
        "tls": Scenario("tls", "app members over TLS", app_flood, flow, pick(r, 3), tls=True),
    }


def make_server(name: str, scenario: Scenario, args: argparse.Namespace) -> Server:
    size = scenario.params.members + 1
    if name == "floor":
        return FloorServer(args.floor_binary, max_members=size)
    if name == "ncat":
        return NcatServer(tls=scenario.tls, max_members=size)
    return ParleyServer(
        tls=scenario.tls,
        max_members=size,
        help_text=args.parley_help,
        lift_limits=args.parley_limits == "lifted",
        checkout=args.parley_dir,
        loop=args.parley_loop,
    )


async def run_suite(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        concurrency=args.concurrency,
        join_timeout=args.join_timeout,
        deadline=args.deadline,
        profile=args.profile,
        gen_procs=args.gen_procs,
    )
    gen_note = ""
    if args.generator == "c":
        settings.loadgen, gen_note = build_loadgen(REPO / "build" / "bench")
        if gen_note:
            gen_note += "; the Python generator plays the plain-text floods"
            print(f"Notice: {gen_note}", file=sys.stderr, flush=True)
        settings.loadgen_tls, tls_note = build_loadgen_tls(REPO / "build" / "bench")
        if tls_note:
            tls_note += "; the Python generator plays the members over TLS"
            print(f"Notice: {tls_note}", file=sys.stderr, flush=True)
            gen_note = f"{gen_note}; {tls_note}" if gen_note else tls_note
    help_text = args.parley_help = parley_host_help(args.parley_dir)
    # TLS came with --allow-plain (plain text became the exception): that flag says TLS is in.
    parley_tls = "--allow-plain" in help_text
    chosen = scenarios(args)
    report: dict[str, Any] = {
        "machine": machine(),
        "commands": {},
        "runs_note": ", ".join(f"{chosen[k].runs} ({k})" for k in args.scenario),
        "fd_limit": raise_fd_limit(),
        "results": {},
        "notes": [gen_note] if gen_note else [],
        "tls_generator": "C" if settings.loadgen_tls is not None else "Python",
    }
    args.floor_binary = None
    if "floor" in args.servers:
        args.floor_binary, why = build_floor(args.floor_source, REPO / "build" / "bench")
        if why:
            report["notes"].append(why)
            print(f"Notice: {why}", file=sys.stderr, flush=True)
    for key in args.scenario:
        scenario = chosen[key]
        for name in args.servers:
            if name == "floor" and (not scenario.floor or args.floor_binary is None):
                continue
            if scenario.tls and name == "parley" and not parley_tls:
                report["notes"].append(
                    "Parley over TLS: pending (`python -m app host --help` shows no TLS option)."
                )
                continue
            runs: list[dict[str, Any]] = []
            for i in range(scenario.runs):
                server = make_server(name, scenario, args)
                report["commands"][f"{key} / {server.name}"] = server.describe()
                label = f"{scenario.key} / {server.name} / run {i + 1} of {scenario.runs}"
                print(f"... {label}", file=sys.stderr, flush=True)
                started = time.monotonic()
                try:
                    result = await scenario.run(server, scenario.params, settings)
                except ServerFailed as exc:
                    result = {"error": str(exc)}
                result["run_s"] = round(time.monotonic() - started, 1)
                print(f"    {_brief(result)}", file=sys.stderr, flush=True)
                runs.append(result)
            report["results"].setdefault(key, {})[name] = runs
    return report


_BRIEF = (
    *("error", "host_exit", "joined", "members_dropped", "delivered", "expected", "lost"),
    *("duplicated", "reordered", "echoed", "garbled", "misattributed", "deliveries_per_s"),
    *("p50_ms", "p99_ms", "in_room", "failures", "not_in_room", "closed_before_welcome"),
    *("kb_per_member", "who_count"),
    *("probe_reached", "join_s", "host_cpu_join_s", "gen_cpu_join_s", "host_cpu_leave_s"),
    "dropped_notice",
    *("stuck_socket", "stalled", "host_cpu_pct", "gen_cpu_pct", "host_peak_rss_kb", "run_s"),
)


def _brief(result: dict[str, Any]) -> str:
    keys = _BRIEF
    return ", ".join(f"{k}={_fmt(result[k])}" for k in keys if k in result)


# --- the table ------------------------------------------------------------------------------------

Runs = list[dict[str, Any]]


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ok(runs: Runs) -> Runs:
    return [r for r in runs if "error" not in r]


def _values(runs: Runs, key: str) -> list[Any]:
    return [r[key] for r in _ok(runs) if r.get(key) is not None]


def _med(runs: Runs, key: str) -> float | None:
    return median(_values(runs, key))


def _worst(runs: Runs, key: str, low: bool = False) -> Any:
    values = _values(runs, key)
    if not values:
        return None
    return min(values) if low else max(values)


def _mb(kb: float | None) -> str:
    return "–" if kb is None else f"{kb / 1024:.1f}"


# A row: its label, how to show one server's runs, and (for Parley) whether the target is met,
# given Parley's and ncat's runs. None: no target on this row.
Cell = Callable[[Runs], str]
Check = Callable[[Runs, Runs, Runs], bool | None]


@dataclass
class Row:
    metric: str
    cell: Cell
    target: str = ""
    check: Check | None = None
    ratio: str = ""  # a Parley / ratio-server row of host CPU per delivery


def _errors(runs: Runs) -> int:
    return sum(
        (_worst(runs, k) or 0)
        for k in ("lost", "duplicated", "reordered", "echoed", "garbled", "misattributed")
    )


def _delivery_rows(label: str, exp: int) -> list[Row]:
    """Every line arrived, and none was lost, doubled or out of order: each flow's first rows."""
    return [
        Row(
            label,
            lambda r: _fmt(_worst(r, "delivered", low=True)),
            f"{exp:,}",
            lambda pr, _nr, _fr: _worst(pr, "delivered", low=True) == exp,
        ),
        Row(
            "lost / duplicated / reordered (worst run)",
            lambda r: " / ".join(_fmt(_worst(r, k)) for k in ("lost", "duplicated", "reordered")),
            "0 / 0 / 0",
            lambda pr, _nr, _fr: _errors(pr) == 0,
        ),
    ]


def _ratio(a: Runs | None, b: Runs | None, key: str) -> float | None:
    """Median of `a` over median of `b` (None when either is missing)."""
    top = _med(a or [], key)
    bottom = _med(b or [], key)
    return None if top is None or not bottom else top / bottom


def _share(r: Runs) -> str:
    gen, host = _med(r, "gen_cpu_pct"), _med(r, "host_cpu_pct")
    return "–" if gen is None or host is None or gen + host == 0 else f"{gen / (gen + host):.0%}"


def _flow_rows(p: Params, floor_target: bool, p99_target: float) -> list[Row]:
    """Rows for the scenarios where every member sends and every other member receives."""
    exp = p.members * p.lines * (p.members - 1)
    rows = [
        *_delivery_rows(f"delivered of {exp:,} (worst run)", exp),
        Row(
            "echoed / garbled / misattributed (worst run)",
            lambda r: " / ".join(
                _fmt(_worst(r, k)) for k in ("echoed", "garbled", "misattributed")
            ),
        ),
        Row(
            "members dropped by the server (worst run)",
            lambda r: _fmt(_worst(r, "members_dropped")),
        ),
    ]
    us = "host_us_per_delivery"
    rows += [
        Row("host CPU per delivery, µs (median)", lambda r: _fmt(_med(r, us), 3)),
        Row(
            "… of it the main thread's, µs (Parley: the terminal's own person)",
            lambda r: _fmt(_med(r, "host_main_us_per_delivery"), 3),
        ),
        Row(
            "Parley / ncat, host CPU per delivery",
            lambda r: "",
            "≤ 1.00",
            lambda pr, nr, _fr: (_ratio(pr, nr, us) or 1e9) <= 1.0,
            ratio="ncat",
        ),
        Row(
            "Parley / floor, host CPU per delivery",
            lambda r: "",
            "≤ 3.00" if floor_target else "",
            (lambda pr, _nr, fr: (_ratio(pr, fr, us) or 1e9) <= 3.0) if floor_target else None,
            ratio="floor",
        ),
        Row("deliveries/s (median)", lambda r: _fmt(_med(r, "deliveries_per_s"))),
        Row(
            "latency p50 / p99, ms (median)",
            lambda r: f"{_fmt(_med(r, 'p50_ms'), 2)} / {_fmt(_med(r, 'p99_ms'), 2)}",
            f"p99 ≤ {p99_target:g} ms",
            lambda pr, _nr, _fr: (_med(pr, "p99_ms") or 1e9) <= p99_target,
        ),
        Row("host CPU, % of one core (median)", lambda r: _fmt(_med(r, "host_cpu_pct"), 0)),
        Row(
            "generator CPU, % of one core, in K processes (median)",
            lambda r: (
                f"{_fmt(_med(r, 'gen_cpu_pct'), 0)} in {_fmt(_worst(r, 'gen_procs'))}"
                f" ({'/'.join(sorted(set(_values(r, 'generator')))) or '–'})"
            ),
        ),
        Row(
            "generator's share of all CPU (median)",
            lambda r: _share(r),
        ),
        Row("host peak RSS, MB (median)", lambda r: _mb(_med(r, "host_peak_rss_kb"))),
    ]
    return rows


def _idle_rows(p: Params, tls: bool = False) -> list[Row]:
    n = p.members

    def in_room(r: Runs) -> str:
        note = _values(r, "host_exit")
        text = _fmt(_worst(r, "in_room", low=True))
        return f"{text} (server died after {_fmt(_worst(r, 'joined'))} joined)" if note else text

    rows = [
        Row(
            "in the room after the hold (worst run)",
            in_room,
            f"{n:,}",
            lambda pr, _nr, _fr: _worst(pr, "in_room", low=True) == n,
        ),
        Row(
            "/who count · probe line reached (worst run)",
            lambda r: (
                f"{_fmt(_worst(r, 'who_count', low=True))} · "
                f"{_fmt(_worst(r, 'probe_reached', low=True))}"
            ),
            f"{n:,} · {n - 1:,}",
            lambda pr, _nr, _fr: (
                _worst(pr, "who_count", low=True) == n
                and _worst(pr, "probe_reached", low=True) == n - 1
            ),
        ),
        # The ≤ 10 kB target is the plain-text one: over TLS OpenSSL's own state per
        # connection is several times that, so there the figure is shown, not judged.
        Row(
            "host memory per member in the room, kB (median)",
            lambda r: _fmt(_med(r, "kb_per_member")),
            "" if tls else "≤ 10",
            None if tls else lambda pr, _nr, _fr: (_med(pr, "kb_per_member") or 1e9) <= 10,
        ),
        Row(
            "host RSS before → after, MB (median)",
            lambda r: f"{_mb(_med(r, 'rss_before_kb'))} → {_mb(_med(r, 'rss_after_kb'))}",
        ),
        Row("host peak RSS, MB (median)", lambda r: _mb(_med(r, "host_peak_rss_kb"))),
        Row(
            "time to let everyone in, s (median)",
            lambda r: _fmt(_med(r, "join_s")),
            "≤ 10",
            lambda pr, _nr, _fr: (_med(pr, "join_s") or 1e9) <= 10,
        ),
        Row(
            "CPU while they joined, s: host · generator",
            lambda r: f"{_fmt(_med(r, 'host_cpu_join_s'))} · {_fmt(_med(r, 'gen_cpu_join_s'))}",
        ),
        Row(
            "host CPU when all of them hung up at once, s",
            lambda r: _fmt(_med(r, "host_cpu_leave_s")),
        ),
    ]
    # Over TLS the C generator only joins and holds: no /who, no probe line.
    return [r for r in rows if not (tls and r.metric.startswith("/who"))]


def _stuck_rows(p: Params) -> list[Row]:
    exp = p.members * p.lines * (p.members - 1)
    return [
        *_delivery_rows(f"flooders' deliveries of {exp:,} (worst run)", exp),
        Row(
            "flooders dropped by the server (worst run)",
            lambda r: _fmt(_worst(r, "members_dropped")),
            "0",
            lambda pr, _nr, _fr: _worst(pr, "members_dropped") == 0,
        ),
        Row("the room froze", lambda r: _fmt(_worst(r, "stalled"))),
        Row(
            "the stuck member",
            lambda r: ", ".join(sorted(set(_values(r, "stuck_socket")))) or "–",
            "dropped",
            lambda pr, _nr, _fr: (
                all("dropped" in v for v in _values(pr, "stuck_socket"))
                and bool(_values(pr, "stuck_socket"))
            ),
        ),
        Row("host peak RSS, MB (median)", lambda r: _mb(_med(r, "host_peak_rss_kb"))),
        Row("seconds until done or frozen (median)", lambda r: _fmt(_med(r, "seconds"))),
    ]


def table(report: dict[str, Any], args: argparse.Namespace) -> tuple[str, list[str]]:
    """The Markdown table, and the Parley targets missed."""
    chosen = scenarios(args)
    lines = [
        "| scenario | metric | Parley | ncat --chat | floor (C) | target | Parley meets it |",
        "|---|---|---:|---:|---:|---|:---:|",
    ]
    missed: list[str] = []
    servers = ("parley", "ncat", "floor")
    for key in args.scenario:
        sc, p = chosen[key], chosen[key].params
        got = report["results"].get(key, {})
        if key in ("flood", "bulk", "tls", "latency"):
            title = f"{sc.title}: {p.members} members × {p.lines} lines"
            title += f" at {p.rate:g}/s each" if p.rate else ", as fast as they go"
            floods = key in ("flood", "bulk")
            rows = _flow_rows(p, floor_target=floods, p99_target=PACED_P99 if p.rate else 100.0)
        elif key in ("idle", "idle_tls"):
            title = f"{sc.title}: {p.members:,} silent members held {p.hold:g} s"
            rows = _idle_rows(p, tls=sc.tls)
        else:
            title = f"stuck reader: 1 never reads, {p.members} flood {p.lines} lines of {p.pad} B"
            rows = _stuck_rows(p)
        parley, ncat, floor = (got.get(name) for name in servers)
        for i, row in enumerate(rows):
            if row.ratio:
                other = ncat if row.ratio == "ncat" else floor
                if other is None:
                    continue
                value = _ratio(parley, other, "host_us_per_delivery")
                cells = [_fmt(value, 2) if value is not None else "–", "", ""]
            else:
                cells = []
                for name in servers:
                    runs = got.get(name)
                    if runs is None:
                        cells.append("not run" if name != "floor" or sc.floor else "–")
                    elif not _ok(runs):
                        why = " ".join(runs[0]["error"].split())[-80:].replace("|", "/")
                        cells.append("failed" if i else f"failed: …{why}")
                    else:
                        cells.append(row.cell(runs))
            verdict = ""
            if row.check is not None and parley is not None:
                met = bool(_ok(parley)) and bool(row.check(parley, ncat or [], floor or []))
                verdict = "yes" if met else "**no**"
                if not met:
                    missed.append(f"{title} — {row.metric}: {cells[0]} (target {row.target})")
            label = title if i == 0 else ""
            lines.append(
                f"| {label} | {row.metric} | {' | '.join(cells)} | {row.target} | {verdict} |"
            )
    return "\n".join(lines), missed


# --- command line ---------------------------------------------------------------------------------

ALL = ["flood", "bulk", "latency", "tls", "idle", "stuck"]
EXTRA = ["idle_tls"]  # not in --all: a measurement of the app path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load-test Parley's host next to `ncat --chat` on 127.0.0.1.",
        epilog="Scenarios: " + ", ".join(ALL) + ". See benchmarks/README.md.",
    )
    parser.add_argument("--all", action="store_true", help="run every scenario (the default)")
    parser.add_argument(
        "--scenario", action="append", choices=ALL + EXTRA, help="run this one (repeat)"
    )
    parser.add_argument(
        "--servers",
        default="parley,ncat,floor",
        help="comma-separated: parley, ncat, floor (the C broker; default all three)",
    )
    parser.add_argument(
        "--floor-source",
        type=Path,
        default=FLOOR_SOURCE,
        metavar="FILE",
        help=f"the C floor broker's source (default {FLOOR_SOURCE})",
    )
    parser.add_argument(
        "--gen-procs",
        type=int,
        default=2,
        metavar="K",
        help="generator processes for the flow scenarios (default 2)",
    )
    parser.add_argument(
        "--generator",
        choices=["c", "python"],
        default="c",
        help="who plays the members of the plain-text floods (flood, bulk, latency): "
        "c (default; benchmarks/loadgen.c built with cc -O2, one process) or python "
        "(--gen-procs asyncio processes); app members over TLS are always Python's",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--parley-loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="the host's event loop: asyncio's (as shipped) or uvloop's swapped in (to measure)",
    )
    parser.add_argument("--runs", type=int, help="runs per scenario and server (medians)")
    parser.add_argument("-n", "--members", type=int, help="members (flooders for 'stuck')")
    parser.add_argument("-m", "--lines", type=int, help="lines each member sends")
    parser.add_argument("--rate", type=float, default=2.0, help="latency: lines/s per member")
    parser.add_argument("--hold", type=float, default=10.0, help="idle: seconds held")
    parser.add_argument("--pad", type=int, default=500, help="stuck: bytes of filler per line")
    parser.add_argument(
        "--concurrency",
        type=int,
        help="connects in flight (default: 8 for ncat, whose listen backlog is 10; "
        "1000 for Parley and the floor, whose backlogs are 1024 and 4096)",
    )
    parser.add_argument(
        "--parley-limits",
        choices=["lifted", "default"],
        default="lifted",
        help="lifted (default): Parley's per-member rate limit off, to measure the relay; "
        "default: `python -m app host` exactly as shipped",
    )
    parser.add_argument("--join-timeout", type=float, default=90.0, help="seconds to join all")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds per measurement")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument(
        "--parley-dir",
        type=Path,
        default=REPO,
        metavar="DIR",
        help="run the Parley host from this checkout (default: this one)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="record the Parley host with py-spy (collapsed stacks) into FILE (last run wins)",
    )
    args = parser.parse_args(argv)
    if args.all or not args.scenario:
        args.scenario = list(ALL)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in args.servers:
        if s not in ("parley", "ncat", "floor"):
            parser.error(f"unknown server {s!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        asyncio.run(worker_main())
        return 0
    started = time.monotonic()
    report = asyncio.run(run_suite(args))
    report["total_s"] = round(time.monotonic() - started, 1)
    mach = report["machine"]
    print(
        f"Machine: {mach['nproc']} cores ({mach['cpu']}), Python {mach['python']}, "
        f"Linux {mach['kernel']}, ncat {mach['ncat']}; load average {mach['load']} at the start. "
        "The plain-text floods' members are played by "
        + ("one C process (benchmarks/loadgen.c)" if args.generator == "c" else "")
        + ("" if args.generator == "c" else f"{args.gen_procs} Python processes")
        + ", app members over TLS by "
        + (
            "one C process (loadgen.c's TLS build)"
            if report.get("tls_generator") == "C"
            else f"{args.gen_procs} Python processes"
        )
        + "; the generators "
        "share the cores with the server under test."
    )
    print(f"Runs per scenario and server: medians of {report['runs_note']}.\n")
    text, missed = table(report, args)
    print(text)
    for note in report["notes"]:
        print(f"\nNote: {note}")
    print("\nServers as started:")
    used: dict[str, list[str]] = {}
    for label, command in report["commands"].items():
        used.setdefault(command, []).append(label)
    for command, labels in used.items():
        print(f"- {', '.join(labels)}: `{command}`")
    if missed:
        print("\nParley misses these targets:")
        for item in missed:
            print(f"- {item}")
    print(f"\nTotal time: {report['total_s']} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
