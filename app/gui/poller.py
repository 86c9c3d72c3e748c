"""Draining the worker's queue into the window, a bounded batch per timer tick.

Why poll instead of having the network thread call `event_generate`: Tk may only be touched
from the thread that created it, and a queue read on a timer keeps that rule without any
cross-thread Tk call (the same choice as Thonny's `_poll_backend_messages`). Why a bounded batch:
a flood of 10,000 messages handled in one callback would freeze the window; handling at most
`batch` events (and at most `budget` seconds' worth, handling and drawing them: what drawing
costs per event is learned from the ticks before) per tick, then coming back after `busy_ms`
while a backlog remains, lets Tk redraw and answer keys and clicks between batches. When the queue
is empty the timer relaxes to `idle_ms`. `stop()` cancels the timer, so a closed window leaves
no callback behind.

The poller only needs `after` and `after_cancel`, so tests drive it with a fake scheduler.

The network thread shares the GIL with Tk's. Every call into Tcl lets it go, and getting it back
from a busy network thread takes up to the interpreter's switch interval (5 ms by default): a
tick that makes a few Tcl calls, and each key or timer callback, can wait that long again.
`favour_the_event_loop` shortens the interval for the window's process, so a flood arriving on
the network thread stalls the window less (the benchmark's longest stall roughly halves). It also
freezes, once per process, what the garbage collector tracks when the first window is built (Tk's
wrappers, the app's modules, the window): a flood allocates fast, and the collector's full pass
walks every tracked object, holding the GIL for ~10 ms in the middle of a burst; frozen objects
are left out of every later pass.
"""

from __future__ import annotations

import gc
import queue
import sys
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from app.logs import logger

log = logger(__name__)

T = TypeVar("T")
After = Callable[[int, Callable[[], None]], str]


SWITCH_INTERVAL = 0.001  # seconds; CPython's default is 0.005


_frozen = [False]


def favour_the_event_loop(interval: float = SWITCH_INTERVAL) -> None:
    """Shorten the GIL's switch interval to `interval` (never lengthen it), and freeze what the
    garbage collector tracks the first time (see the top)."""
    if sys.getswitchinterval() > interval:
        sys.setswitchinterval(interval)
    if not _frozen[0]:
        _frozen[0] = True
        gc.freeze()


class QueuePoller(Generic[T]):
    def __init__(
        self,
        after: After,
        after_cancel: Callable[[str], None],
        source: queue.Queue[T],
        handle: Callable[[T], None],
        flush: Callable[[], None] = lambda: None,
        *,
        batch: int = 250,
        budget: float = 0.010,
        busy_ms: int = 1,
        idle_ms: int = 25,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._after = after
        self._after_cancel = after_cancel
        self.source = source
        self._handle = handle
        self._flush = flush
        self.batch = batch
        self.budget = budget
        self.busy_ms = busy_ms
        self.idle_ms = idle_ms
        self._clock = clock
        self._timer: str | None = None
        self._running = False
        self._flush_cost = 0.0  # seconds `flush` took per event handled, lately
        self.on_tick: Callable[[int, int], None] | None = None
        """Called after each tick with (events handled, delay until the next tick in ms)."""

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        if not self._running:
            self._running = True
            self._timer = self._after(0, self.tick)

    def stop(self) -> None:
        self._running = False
        if self._timer is not None:
            timer, self._timer = self._timer, None
            self._after_cancel(timer)

    def tick(self) -> None:
        """Handle one bounded batch, then re-arm: at once while a backlog remains."""
        self._timer = None
        handled = 0
        clock = self._clock
        try:
            deadline = clock() + self.budget
            flush_cost = self._flush_cost
            while handled < self.batch:
                try:
                    item = self.source.get_nowait()
                except queue.Empty:
                    break
                handled += 1
                try:
                    self._handle(item)
                except Exception:  # one bad event must not stop the window listening
                    log.exception("handling %r failed", item)
                if clock() + handled * flush_cost >= deadline:
                    break
            flushed = clock()
            try:
                self._flush()
            except Exception:
                log.exception("drawing a batch failed")
            if handled:
                cost = max(0.0, clock() - flushed) / handled
                self._flush_cost = cost if not flush_cost else (flush_cost + cost) / 2
        finally:
            delay = self.busy_ms if not self.source.empty() else self.idle_ms
            if self._running:
                self._timer = self._after(delay, self.tick)
            if self.on_tick is not None:
                self.on_tick(handled, delay)
