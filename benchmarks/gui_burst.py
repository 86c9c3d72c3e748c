"""GUI burst benchmark: 10,000 messages flood a real window; how fast are they drawn, and does
the window keep answering?

How this works
--------------
A real `ChatWindow` hosts a room on 127.0.0.1 (under Xvfb: this script starts its own Xvfb when
there is no DISPLAY). A plain TCP peer joins and writes 10,000 lines in one go. The window's
event queue stamps every event as the worker puts it (`StampedDeque`); after each poller tick an
idle callback — which Tk runs after the transcript has redrawn — takes the time again, so
"queue → drawn" is put-to-redrawn for every message.

"Whole burst" is from the first message the worker queued to the last one drawn: the window's
own work, from the queue to the screen, as the target means it. The same run also gives the
time from the first line sent (the window's host, in the same process, reads, checks and
relays every line before queuing it, and shares the GIL with Tk's thread) and when the first and
last messages were queued. "Drawn" is taken after Tk's redraw, whatever that redraw queued in
turn (the scrollbar), and an X round trip, so the X server has done the drawing.

Responsiveness is measured from inside the event loop: a heartbeat timer asks to run every 5 ms
and records when it actually ran. Keys and clicks wait in the same loop, so the longest gap
between heartbeats is the longest time input would have waited (the longest "stall"). Each
poller tick (batch handling plus drawing the batch) is timed too.

Last, closing: a window joined to a terminal host that is frozen with SIGSTOP (the network is
"stuck": nothing is answered) must still close in about a second; the time is reported, next to
a normal close.

Run: python benchmarks/gui_burst.py [--messages N] [--batch N] [--json]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import json
import os
import queue
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tkinter as tk
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app import events as ev  # noqa: E402
from app.gui.logic import Request  # noqa: E402
from app.gui.window import ChatWindow  # noqa: E402
from app.net import HostOptions  # noqa: E402
from app.worker import NetWorker  # noqa: E402

HEARTBEAT_MS = 5
DEADLINE = 120.0


class StampedDeque(collections.deque[ev.Event]):
    """The event queue's own deque, noting when each event was put and handing the stamps out
    in get order. It goes inside a plain `queue.Queue`, so the worker posts to the window the
    way it does in the app (a host puts a loop turn's events in one go into a plain queue:
    `app.net.common.post_many_for`); a `Queue` subclass would be given the slower path."""

    def __init__(self) -> None:
        super().__init__()
        self.put_stamps: collections.deque[float] = collections.deque()
        self.got_stamps: list[float] = []
        self.first_put: float | None = None  # the first message since the last `restart`
        self.last_put = 0.0

    def restart(self) -> None:
        self.got_stamps.clear()
        self.first_put = None

    def _stamp(self, items: list[ev.Event]) -> None:
        now = time.perf_counter()
        self.put_stamps.extend(now for _ in items)
        if any(isinstance(item, ev.MessageReceived) for item in items):
            if self.first_put is None:
                self.first_put = now
            self.last_put = now

    def append(self, item: ev.Event) -> None:
        self._stamp([item])
        super().append(item)

    def extend(self, items: Iterable[ev.Event]) -> None:
        batch = list(items)
        self._stamp(batch)
        super().extend(batch)

    def popleft(self) -> ev.Event:
        self.got_stamps.append(self.put_stamps.popleft())
        return super().popleft()


def stamped_queue() -> tuple[queue.Queue[ev.Event], StampedDeque]:
    events: queue.Queue[ev.Event] = queue.Queue()
    stamps = StampedDeque()
    events.queue = stamps
    return events, stamps


@contextlib.contextmanager
def display() -> Iterator[str]:
    """The DISPLAY to use: the current one, or a private Xvfb for the duration."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise SystemExit("Xvfb did not start (is it installed?)")
        os.environ["DISPLAY"] = f":{number}"
        yield os.environ["DISPLAY"]
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def pump_until(root: tk.Misc, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        root.after(5, lambda: None)
        root.tk.dooneevent(0)


def flood_host(request: Request) -> HostOptions:
    return HostOptions(
        port=request.port,
        bind="127.0.0.1",
        name=request.name,
        allow_plain=True,
        sniff_wait=0.05,
        hello_wait=0.05,
        rate=1e9,
        burst=1e9,
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def burst(root: tk.Tk, messages: int, batch: int) -> dict[str, Any]:
    events, stamps = stamped_queue()
    worker = NetWorker(events.put)
    window = ChatWindow(tk.Toplevel(root), worker, events, host_options=flood_host, batch=batch)
    try:
        pump_until(root, lambda: bool(window.top.winfo_ismapped()), "the window")
        window.bar.port.set("0")
        window.bar.name.set("Hal")
        window.start()
        pump_until(root, lambda: window.view.state == "in_room", "hosting")

        peer = socket.create_connection(("127.0.0.1", window.view.port), timeout=10)
        try:
            peer.sendall(b"hello\n")
            pump_until(root, lambda: "  hello\n" in window.transcript.contents(), "the peer")

            latencies: list[float] = []
            ticks: list[tuple[float, int]] = []  # (duration, events)
            beats: list[float] = []

            last_drawn = [0.0]

            def drawn() -> None:
                # Tk has redrawn (its redraw was queued for idle time before this); run what
                # that redraw queued in turn (the scrollbar), then make an X round trip, so the
                # server has done all the drawing asked of it before the time is taken.
                root.update_idletasks()
                root.winfo_pointerxy()
                now = time.perf_counter()
                got, stamps.got_stamps = stamps.got_stamps, []
                latencies.extend(now - t for t in got)
                if got:
                    last_drawn[0] = now

            tick = window.poller.tick

            def timed_tick() -> None:
                start = time.perf_counter()
                before = len(stamps.got_stamps)
                tick()
                ticks.append((time.perf_counter() - start, len(stamps.got_stamps) - before))
                window.top.after_idle(drawn)

            window.poller.tick = timed_tick  # type: ignore[method-assign]

            def heartbeat() -> None:
                beats.append(time.perf_counter())
                if len(latencies) < messages:
                    root.after(HEARTBEAT_MS, heartbeat)

            stamps.restart()
            shown_before = window.transcript.shown
            lines = "".join(f"message {i} of the burst\n" for i in range(messages)).encode()
            root.after(HEARTBEAT_MS, heartbeat)
            started = time.perf_counter()
            peer.sendall(lines)
            pump_until(root, lambda: len(latencies) >= messages, "every message to be drawn")
            finished = time.perf_counter()
            first_put = stamps.first_put or started
        finally:
            peer.close()
        shown = window.transcript.shown - shown_before
        last = window.transcript.lines()[-1]
        gaps = [b - a for a, b in itertools.pairwise(beats)]
        busy = [d for d, n in ticks if n]
        return {
            "messages": messages,
            "batch": batch,
            "shown": shown,
            "last_line_ok": last.endswith(f"message {messages - 1} of the burst"),
            "entries": window.transcript.entries,
            "latency_ms": {
                "p50": 1000 * statistics.median(latencies),
                "p99": 1000 * percentile(latencies, 99),
                "max": 1000 * max(latencies),
            },
            "longest_gap_ms": 1000 * max(gaps),
            "longest_stall_ms": 1000 * max(gaps) - HEARTBEAT_MS,
            "longest_tick_ms": 1000 * max(busy),
            "ticks_with_events": len(busy),
            "max_events_per_tick": max(n for _, n in ticks),
            "total_ms": 1000 * (last_drawn[0] - first_put),
            "end_to_end_ms": 1000 * (last_drawn[0] - started),
            "first_queued_ms": 1000 * (first_put - started),
            "last_queued_ms": 1000 * (stamps.last_put - started),
            "waited_ms": 1000 * (finished - started),
        }
    finally:
        window.close()


def close_times(root: tk.Tk) -> dict[str, float]:
    """Close a joined window normally, and while its host is frozen (SIGSTOP)."""
    return {"normal": close_once(root, freeze=False), "host_stuck": close_once(root, freeze=True)}


def close_once(root: tk.Tk, *, freeze: bool) -> float:
    """Milliseconds `ChatWindow.close()` takes for a joiner of a terminal host."""
    host = subprocess.Popen(
        [sys.executable, "-m", "app", "host", "--port", "0", "--bind", "127.0.0.1"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert host.stdout is not None
        port = 0
        deadline = time.monotonic() + DEADLINE
        while not port and time.monotonic() < deadline:
            line = host.stdout.readline()
            if not line:
                raise SystemExit("the terminal host exited")
            if found := re.search(r"on port (\d+)", line):
                port = int(found.group(1))
        events: queue.Queue[ev.Event] = queue.Queue()
        window = ChatWindow(tk.Toplevel(root), NetWorker(events.put), events)
        window.bar.set_mode("join")
        window.bar.address.set("127.0.0.1")
        window.bar.port.set(str(port))
        window.bar.name.set("Ann")
        window.start()
        pump_until(root, lambda: window.view.state == "in_room", "joining")
        if freeze:
            os.kill(host.pid, signal.SIGSTOP)
        start = time.perf_counter()
        window.close()
        took = 1000 * (time.perf_counter() - start)
        if freeze:
            os.kill(host.pid, signal.SIGCONT)
        return took
    finally:
        host.kill()
        host.wait(10)
        for stream in (host.stdin, host.stdout):
            if stream is not None:
                stream.close()


MAX_TOTAL_MS = 250.0  # the whole burst drawn
MAX_STALL_MS = 25.0  # the longest time input waits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="the window's default")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, display() as where:
        os.environ["PARLEY_CONFIG_DIR"] = str(Path(tmp) / "config")
        os.environ["PARLEY_DATA_DIR"] = str(Path(tmp) / "data")
        root = tk.Tk()
        root.withdraw()
        try:
            figures = burst(root, args.messages, args.batch)
            figures["close_ms"] = close_times(root)
        finally:
            root.destroy()
    figures["display"] = where
    missed: list[str] = []
    if figures["total_ms"] > MAX_TOTAL_MS:
        total = figures["total_ms"]
        missed.append(
            f"whole burst {total:.0f} ms, first queued -> last drawn "
            f"(target <= {MAX_TOTAL_MS:.0f} ms)"
        )
    if figures["longest_stall_ms"] > MAX_STALL_MS:
        stall = figures["longest_stall_ms"]
        missed.append(f"longest stall {stall:.1f} ms (target <= {MAX_STALL_MS:.0f} ms)")
    if args.json:
        print(json.dumps({**figures, "missed": missed}, indent=2))
        return 1 if missed else 0
    lat = figures["latency_ms"]
    print(f"GUI burst: {figures['messages']:,} messages into a hosting window (batch {args.batch})")
    print(
        f"  shown: {figures['shown']:,} of {figures['messages']:,}, last line right: "
        f"{figures['last_line_ok']}, transcript entries kept: {figures['entries']:,}"
    )
    print(
        f"  queue -> drawn: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
        f"max {lat['max']:.1f} ms"
    )
    print(
        f"  longest UI stall: {figures['longest_stall_ms']:.1f} ms "
        f"(longest gap between {HEARTBEAT_MS} ms heartbeats {figures['longest_gap_ms']:.1f} ms); "
        f"longest tick {figures['longest_tick_ms']:.1f} ms over {figures['ticks_with_events']} "
        f"ticks, at most {figures['max_events_per_tick']} events per tick"
    )
    print(
        f"  whole burst, first message queued -> last drawn: {figures['total_ms']:.0f} ms "
        f"(first line sent -> last drawn {figures['end_to_end_ms']:.0f} ms; the window's own "
        f"host queued the first message at {figures['first_queued_ms']:.0f} ms and the last "
        f"at {figures['last_queued_ms']:.0f} ms)"
    )
    close = figures["close_ms"]
    print(
        f"  closing a joined window: {close['normal']:.0f} ms; "
        f"with the host frozen (SIGSTOP): {close['host_stuck']:.0f} ms"
    )
    for item in missed:
        print(f"  MISSED: {item}")
    if not missed:
        print(f"  targets met: burst <= {MAX_TOTAL_MS:.0f} ms, stall <= {MAX_STALL_MS:.0f} ms")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
