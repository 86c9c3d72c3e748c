"""The host's delivery path over real sockets: what one loop iteration writes goes out in one
send per member, a plain member's socket is written directly while its transport holds
nothing, and what the socket does not take waits in the transport in order, with backpressure.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from app import events as ev
from app.net import HostOptions
from app.net.common import post_many_for
from app.worker import NetWorker
from tests.helpers import DEADLINE, RawPeer, cli_host


def _read_all(peer: RawPeer, until: bytes, timeout: float = DEADLINE, chunk: int = 65536) -> bytes:
    """Read until what arrived ends with `until` (or the deadline passes); return the bytes."""
    deadline = time.monotonic() + timeout
    got = bytearray(peer.buf)
    peer.buf = b""
    while not got.endswith(until) and time.monotonic() < deadline:
        peer.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = peer.sock.recv(chunk)
        except TimeoutError:
            continue
        if not data:
            break
        got += data
    return bytes(got)


def _text_peer(port: int, rcvbuf: int | None = None) -> tuple[RawPeer, str]:
    peer = RawPeer(port, rcvbuf=rcvbuf)
    peer.read_until("^PARLEY/2 ")
    peer.line("hi")  # a first line: admitted as a text peer at once
    name = peer.read_until(r"^\* You are ").split("You are ")[1].split(".")[0]
    return peer, name


def test_a_partial_send_keeps_order_and_the_rest_waits_in_the_transport(start_host) -> None:
    # Messages far larger than what a tiny receive buffer takes: the first send on the socket
    # takes part of a message, the rest must wait in the transport, and everything after it
    # must queue behind it (never be sent on the socket around it).
    host, hrec, port = start_host(
        allow_plain=True, rate=0, byte_rate=0, write_cap=4 << 20, stuck_wait=30
    )
    slow, slow_name = _text_peer(port, rcvbuf=4096)
    fast, _ = _text_peer(port)
    hrec.wait_for(ev.MemberJoined, lambda e: e.name == slow_name)
    count, size = 300, 30_000  # 9 MB: more than the kernel buffers between host and member
    texts = [f"{i:03d} " + chr(ord("a") + i % 26) * size for i in range(count)]
    last = f"Hal: {texts[-1]}\n".encode()
    got: dict[str, bytes] = {}
    readers = [
        threading.Thread(
            target=lambda p=p, k=k, n=n: got.setdefault(k, _read_all(p, last, chunk=n))
        )
        for p, k, n in ((slow, "slow", 512), (fast, "fast", 65536))
    ]
    half = count // 2
    for text in texts[:half]:  # nobody reads: the sockets fill, the rest waits in transports
        host.send(text)
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == texts[half - 1])
    for reader in readers:  # then they read while more comes: the socket drains and fills
        reader.start()
    for text in texts[half:]:
        host.send(text)
    for reader in readers:
        reader.join(DEADLINE)
    expected = [f"Hal: {t}".encode() for t in texts]
    for kind in ("slow", "fast"):
        assert [x for x in got[kind].split(b"\n") if x.startswith(b"Hal: ")] == expected
    assert not hrec.of(ev.MemberLeft)  # a slow reader that reads is never dropped


def test_a_member_that_stops_reading_makes_the_room_wait_then_is_dropped(start_host) -> None:
    # Backpressure through the direct path: past write_cap the host stops reading from
    # everyone (the sender's lines stay in its socket), and the member still over the cap
    # after stuck_wait is dropped; the sender's lines then all reach the healthy reader.
    host, hrec, port = start_host(
        allow_plain=True, rate=0, byte_rate=0, write_cap=64 * 1024, stuck_wait=0.5
    )
    stuck, stuck_name = _text_peer(port, rcvbuf=4096)
    reader, _ = _text_peer(port)
    sender, sender_name = _text_peer(port)
    hrec.wait_for(ev.MemberJoined, lambda e: e.name == sender_name)
    # 9 MB: more than the kernel's buffers between the host and the stuck member hold.
    count = 3000
    lines = [f"{i:04d} " + "x" * 3000 for i in range(count)]
    last = f"{sender_name}: {lines[-1]}\n".encode()
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.append(_read_all(reader, last, 3 * DEADLINE)))
    thread.start()
    data = "".join(line + "\n" for line in lines).encode()
    writer = threading.Thread(target=sender.send, args=(data,))  # blocks while the room waits
    writer.start()
    left = hrec.wait_for(ev.MemberLeft, lambda e: e.name == stuck_name)
    assert left.reason == "not reading"
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == lines[-1])
    thread.join(3 * DEADLINE)
    writer.join(DEADLINE)
    relayed = [x for x in got[0].split(b"\n") if x.startswith(sender_name.encode() + b": ")]
    assert [x.split(b": ", 1)[1].decode() for x in relayed] == ["hi", *lines]
    assert [e.name for e in hrec.of(ev.MemberLeft)] == [stuck_name]


class _AppPeer(RawPeer):
    """A hand-made app peer on a plain connection: JSON lines, read only when asked to."""

    def hello(self, name: str, token: str | None = None, last_seq: int = 0) -> dict[str, Any]:
        self.read_until(r"^PARLEY/2 ")
        hello: dict[str, Any] = {"type": "hello", "version": 1, "name": name}
        if token is not None:
            hello.update(token=token, last_seq=last_seq)
        self.line(json.dumps(hello))
        welcome: dict[str, Any] = json.loads(self.read_until('^{"type":"welcome"'))
        return welcome


def test_lines_read_together_wait_behind_a_members_replay(start_host) -> None:
    # A member coming back is replayed what it missed while a text member sends many lines
    # in one write: what those lines say goes to it after its replay, in the room's order.
    host, hrec, port = start_host(allow_plain=True, rate=0, byte_rate=0, connect_rate=0)
    first = _AppPeer(port)
    token = first.hello("Mia")["token"]
    first.close()  # gone without a bye: held for the grace period
    hrec.wait_for(ev.MemberLeft, lambda e: e.name == "Mia")
    said = [f"{i:03d} " + "r" * 10_000 for i in range(300)]  # 3 MB to replay
    for text in said:
        host.send(text)
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == said[-1])
    flooder, flooder_name = _text_peer(port)
    back = _AppPeer(port, rcvbuf=4096)
    assert back.hello("Mia", token, 0)["resumed"] is True  # its replay starts, unread
    hrec.wait_for(ev.MemberJoined, lambda e: e.name == "Mia")
    lines = [f"flood {i:03d}" for i in range(100)]
    flooder.send("".join(line + "\n" for line in lines).encode())
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == lines[-1])
    seen: list[tuple[int, str]] = []
    while not seen or seen[-1][1] != lines[-1]:
        frame = json.loads(back.read_until('^{"type":"msg"'))
        seen.append((frame["seq"], frame["text"]))
    seqs = [seq for seq, _ in seen]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert [text for _, text in seen] == [*said, "hi", *lines]  # "hi": the flooder's first line


def _lines_until(peer: RawPeer, pattern: str) -> list[str]:
    """Every line `peer` reads up to and including the first that matches `pattern`."""
    lines: list[str] = []
    rx = re.compile(pattern)
    while not lines or not rx.search(lines[-1]):
        lines.append(peer.read_until(""))
    return lines


def test_lines_of_one_write_meet_the_rate_limits_one_by_one(start_host) -> None:
    # With the limits on, a burst of lines in one write: those within the burst go out in
    # order, the rest are refused with one warning; past `flood_strikes` refusals the sender
    # is dropped and told why.
    host, hrec, port = start_host(allow_plain=True, rate=0.01, burst=10, flood_strikes=20)
    reader, _ = _text_peer(port)
    sender, sender_name = _text_peer(port)  # its "hi" spent one of its ten
    hrec.wait_for(ev.MemberJoined, lambda e: e.name == sender_name)
    sender.send("".join(f"line {i}\n" for i in range(15)).encode())  # 9 pass, 6 refused
    assert sender.read_until("too fast").startswith("! You are sending too fast")
    host.send("marker one")
    heard = _lines_until(reader, "^Hal: marker one")
    said = [x.split(": ", 1)[1] for x in heard if x.startswith(f"{sender_name}: ")]
    assert said == ["hi", *(f"line {i}" for i in range(9))]
    sender.send("".join(f"more {i}\n" for i in range(20)).encode())  # strikes 7 .. 20: out
    left = hrec.wait_for(ev.MemberLeft, lambda e: e.name == sender_name)
    assert left.reason == "sending too fast"
    heard = _lines_until(reader, f"{sender_name} left")
    assert not [x for x in heard if x.startswith(f"{sender_name}: ")]
    assert sender.read_until("too fast").startswith("* The host disconnected you: sending too fast")


def test_post_many_for_a_queue_puts_a_batch_as_put_would() -> None:
    events: queue.Queue[ev.Event] = queue.Queue()
    many = post_many_for(events.put)
    assert many is not None
    got: list[ev.Event] = []
    consumer = threading.Thread(target=lambda: got.extend(events.get() for _ in range(3)))
    consumer.start()  # waiting in get(): the batch must wake it
    batch: list[ev.Event] = [ev.NoticeShown(str(i)) for i in range(3)]
    many(batch)
    consumer.join(DEADLINE)
    assert got == batch
    assert events.unfinished_tasks == 3
    assert post_many_for(queue.Queue(maxsize=10).put) is None  # bounded: put blocks
    assert post_many_for([].append) is None
    assert post_many_for(queue.LifoQueue().put) is None


def test_a_host_posting_to_a_queue_gets_a_burst_in_order(workers, tmp_path) -> None:
    # The front ends' case: the worker posts into a queue.Queue, a read's lines in one batch.
    events: queue.Queue[ev.Event] = queue.Queue()
    worker = NetWorker(events.put)
    workers.append(worker)
    worker.host(
        HostOptions(
            port=0, bind="127.0.0.1", data_dir=tmp_path / "h", announce=False, allow_plain=True
        )
    )
    seen: list[ev.Event] = []

    def until(test: Callable[[ev.Event], bool]) -> ev.Event:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                event = events.get(timeout=0.1)
                seen.append(event)
                if test(event):
                    return event
        raise AssertionError(f"not seen; last: {seen[-3:]}")

    hosting = until(lambda e: isinstance(e, ev.Hosting))
    assert isinstance(hosting, ev.Hosting)
    peer, _ = _text_peer(hosting.port)
    peer.send("".join(f"burst {i}\n" for i in range(30)).encode())
    until(lambda e: isinstance(e, ev.MessageReceived) and e.text == "burst 29")
    texts = [e.text for e in seen if isinstance(e, ev.MessageReceived)]
    assert texts == ["hi", *(f"burst {i}" for i in range(30))]


def test_a_read_of_many_lines_is_kept_before_anyone_gets_it() -> None:
    # A read's lines are stamped and logged together: once a member has them, a host killed
    # at once (no goodbye, no flush on the way out) still gives them to newcomers afterwards.
    host = cli_host(0, "--allow-plain", "--rate", "0")
    port = int(host.expect(r"on port (\d+)").group(1))
    try:
        reader, _ = _text_peer(port)
        sender, _ = _text_peer(port)
        sender.send("".join(f"kept {i}\n" for i in range(30)).encode())
        _lines_until(reader, "kept 29$")
        host.p.send_signal(signal.SIGKILL)
        host.wait()
        host.kill()
        host = cli_host(port, "--allow-plain", "--rate", "0")
        newcomer, _ = _text_peer(port)
        heard = _lines_until(newcomer, r"^\(earlier\) .*: kept 29$")
        earlier = [x.split(": ", 1)[1] for x in heard if x.startswith("(earlier) ")]
        assert earlier == [f"kept {i}" for i in range(10, 30)]  # the newest 20: the history
    finally:
        host.kill()
