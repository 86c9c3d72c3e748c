"""A selector that lets the worker's loop sleep through a gathered flush's wait (floor 2, beside
`app/net/`, whose package imports the whole network stack: this module needs only the
standard library, and the worker makes its loop before any session starts).

How this works
--------------
A busy room's flush waits `gather` (6 ms; up to 45 ms in a large room) for more lines
(`Host._schedule_flush`). While it waits, every line that arrives wakes the loop, which reads
it and goes back to waiting: in a paced room of 100 members that is a wake-up of the network
thread per line, each on a cold
processor (this VM's idle vCPUs), for lines that go out only at the flush anyway. So while a
gathered flush waits, the host asks the loop's selector to `hold` until the flush is due:
a `select` that would block, and finds nothing ready yet, sleeps until then instead (or until
an earlier timer, which it never delays) and then looks at every socket at once, without
blocking. The lines that came meanwhile are read in that one turn, together, and sent at its
end. A loop that finds sockets ready whenever it looks (a flood) never sleeps.

A `select` asked not to block (callbacks are ready) never sleeps, and the host lifts the hold
whenever its flush goes early (the read budget), holds not at all while a flood or a file is
being read, nor for a gather longer than `LONGEST`: a new connection, a socket that can take
more, a call from the front end's thread wait at most that gather for the loop (6 ms; in a
room of 100, 45 ms).

`NetWorker` makes its loop with a `HoldingSelector` and registers it here (`register`); a host
on any other loop (tests' own loops, uvloop's) finds none (`for_loop`) and gathers as before.
"""

from __future__ import annotations

import asyncio
import selectors
import time
import weakref
from typing import Any

LONGEST = 0.05  # the longest hold a host asks for: a gather longer than this is not slept
# through (arrivals and the front end's calls would wait that long)

_selectors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HoldingSelector] = (
    weakref.WeakKeyDictionary()
)


class HoldingSelector(selectors.DefaultSelector):
    """The platform's default selector, whose blocking `select` can be held (see above)."""

    def __init__(self) -> None:
        super().__init__()
        self.until = 0.0  # time.monotonic() (the loop's clock) before which select sleeps
        self.held = 0  # selects that slept (what tests look at)

    def hold(self, until: float) -> None:
        """Until `until` (the loop's time), a select that would block sleeps instead."""
        self.until = until

    def release(self) -> None:
        self.until = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        if timeout is None or timeout > 0:
            wait = self.until - time.monotonic()
            if wait > 0:
                ready: list[tuple[Any, int]] = super().select(0)
                if ready:  # the loop has fallen behind (a flood): no sleep
                    return ready
                if timeout is not None and timeout < wait:
                    wait = timeout  # a timer is due first: it runs on time
                self.held += 1
                time.sleep(wait)
                timeout = 0
        result: list[tuple[Any, int]] = super().select(timeout)
        return result


def register(loop: asyncio.AbstractEventLoop, selector: HoldingSelector) -> None:
    """`loop` runs on `selector`: its host may hold it."""
    _selectors[loop] = selector


def for_loop(loop: asyncio.AbstractEventLoop) -> HoldingSelector | None:
    """The holding selector `loop` runs on, if it was registered."""
    return _selectors.get(loop)


def new_loop() -> asyncio.AbstractEventLoop:
    """A selector event loop on a `HoldingSelector`, registered; where the loop class takes
    no selector (uvloop's swapped in, to measure), that loop as it is."""
    loop_class: Any = asyncio.SelectorEventLoop
    if not (
        isinstance(loop_class, type)
        and issubclass(loop_class, asyncio.selector_events.BaseSelectorEventLoop)
    ):
        loop: asyncio.AbstractEventLoop = loop_class()
        return loop
    selector = HoldingSelector()
    loop = loop_class(selector)
    register(loop, selector)
    return loop
