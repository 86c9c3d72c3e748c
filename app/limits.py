"""Limits that keep one address from wearing the host down: rates, open connections, guesses.

All three are plain objects with an injectable clock, so the network layer asks them questions
and tests drive time by hand. Memory stays bounded: entries exist only while they matter.
Keys are addresses without the port (a client picks a new port for every connection).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """Allows `burst` actions at once and `rate` per second on average after that."""

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("A token bucket needs rate > 0 and burst >= 1.")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._last = clock()

    def take(self, cost: float = 1.0) -> bool:
        """Spend `cost` tokens if there are enough; False means "too fast, refuse this one"."""
        now = self._clock()
        elapsed = max(0.0, now - self._last)  # a clock that steps back refills nothing
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._last = now
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False


class ConnectionCounter:
    """Open connections per address, at most `cap` each, so one machine cannot hog the host."""

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("The per-address connection cap must be at least 1.")
        self.cap = cap
        self._open: dict[str, int] = {}

    def acquire(self, addr: str) -> bool:
        """Count one more connection from `addr`; False (and nothing counted) if at the cap."""
        count = self._open.get(addr, 0)
        if count >= self.cap:
            return False
        self._open[addr] = count + 1
        return True

    def release(self, addr: str) -> None:
        """Undo one successful `acquire`; releasing what was never acquired does nothing."""
        count = self._open.get(addr, 0)
        if count <= 1:
            self._open.pop(addr, None)
        else:
            self._open[addr] = count - 1

    def count(self, addr: str) -> int:
        return self._open.get(addr, 0)

    def __len__(self) -> int:
        """Addresses with at least one open connection."""
        return len(self._open)


class FailureBackoff:
    """After failed passwords, make an address wait: `base` seconds, doubling up to `maximum`.

    Together with one guess per connection this caps guessing at about one try a minute per
    address. An address that stays quiet for `forget_after` seconds after its last failure is
    forgotten, and at most `max_entries` addresses are kept (the longest quiet go first).
    """

    def __init__(
        self,
        base: float = 1.0,
        maximum: float = 60.0,
        forget_after: float = 600.0,
        max_entries: int = 10_000,
        clock: Clock = time.monotonic,
    ) -> None:
        if base <= 0 or maximum < base or forget_after < maximum or max_entries < 1:
            raise ValueError("Need 0 < base <= maximum <= forget_after and max_entries >= 1.")
        self.base = base
        self.maximum = maximum
        self.forget_after = forget_after
        self.max_entries = max_entries
        self._clock = clock
        # addr -> (failures so far, time of the last failure); oldest failure first
        self._entries: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def _wait_after(self, failures: int) -> float:
        # Cap the exponent: 2**10000 would overflow a float long before we care.
        return min(self.maximum, self.base * 2.0 ** min(failures - 1, 60))

    def _expire(self, now: float) -> None:
        while self._entries:
            addr, (_, last) = next(iter(self._entries.items()))
            if now - last < self.forget_after:
                break
            del self._entries[addr]

    def delay(self, addr: str) -> float:
        """Seconds `addr` must still wait before its next password attempt (0.0: go ahead)."""
        now = self._clock()
        self._expire(now)
        entry = self._entries.get(addr)
        if entry is None:
            return 0.0
        failures, last = entry
        return max(0.0, last + self._wait_after(failures) - now)

    def failed(self, addr: str) -> None:
        now = self._clock()
        self._expire(now)
        failures = self._entries.pop(addr, (0, now))[0] + 1
        self._entries[addr] = (failures, now)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def succeeded(self, addr: str) -> None:
        self._entries.pop(addr, None)

    def failures(self, addr: str) -> int:
        self._expire(self._clock())
        entry = self._entries.get(addr)
        return 0 if entry is None else entry[0]

    def __len__(self) -> int:
        return len(self._entries)
