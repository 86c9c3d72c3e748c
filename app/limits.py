"""Limits that keep one address from wearing the host down: rates, open connections, guesses.

All are plain objects with an injectable clock, so the network layer asks them questions and
tests drive time by hand. Memory stays bounded: entries exist only while they matter.
Keys are addresses without the port (a client picks a new port for every connection), or a
member's token, which it keeps when it reconnects: a limit that lived in the connection would
start afresh with every reconnect, which is how one address relayed thousands of messages a
second by reconnecting in a loop.

`SendLimits` is what a member's messages pass: messages *and* bytes per second, for the member
(keyed by its token, so a reconnect resumes the same allowance) and for its address (a few
members' worth, shared by every connection from there).
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

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
        if self.can(cost):
            self._tokens -= min(cost, self.burst)
            return True
        return False

    def can(self, cost: float = 1.0) -> bool:
        """Whether `take(cost)` would succeed now (nothing is spent). A cost above the burst
        needs a full bucket and empties it: the largest message stays possible, now and then."""
        self._refill()
        return self._tokens >= min(cost, self.burst)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)  # a clock that steps back refills nothing
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._last = now

    def fits(self, costs: Sequence[float]) -> int:
        """How many of `costs`, taken in order one after another now, `take` would let
        through before the first it refuses (nothing is spent): one look at the clock and a
        running sum in C for the lot."""
        self._refill()
        burst = self.burst
        if costs and max(costs) > burst:
            costs = [min(cost, burst) for cost in costs]
        return bisect.bisect_right(list(itertools.accumulate(costs)), self._tokens)

    def take_first(self, costs: Sequence[float], n: int) -> None:
        """Spend the first `n` of `costs`, which `fits` has just let through."""
        burst = self.burst
        self._tokens -= sum(min(cost, burst) for cost in costs[:n]) if n else 0.0

    def spend(self, cost: float = 1.0) -> None:
        """Spend `cost` tokens whether there are enough or not (a debt is paid back by waiting):
        for a sender's own count of what it has sent."""
        self.can(cost)  # refill up to now
        self._tokens -= min(cost, self.burst)

    def wait(self, cost: float = 1.0) -> float:
        """Seconds until `take(cost)` would succeed (0.0: now)."""
        if self.can(cost):
            return 0.0
        return (min(cost, self.burst) - self._tokens) / self.rate


class KeyedBuckets:
    """A `TokenBucket` per key (an address, a member's token), made on first use.

    A bucket left alone until it is full again is the same as a new one, so entries untouched
    for `burst / rate` seconds are forgotten; at most `max_entries` are kept (the least
    recently used go first)."""

    def __init__(
        self, rate: float, burst: float, max_entries: int = 10_000, clock: Clock = time.monotonic
    ) -> None:
        TokenBucket(rate, burst, clock)  # the same checks, once
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1.")
        self.rate = rate
        self.burst = burst
        self.max_entries = max_entries
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[TokenBucket, float]] = OrderedDict()

    def get(self, key: str) -> TokenBucket:
        """The bucket for `key`, counted as used now."""
        now = self._clock()
        self._expire(now)
        entry = self._buckets.pop(key, None)
        bucket = entry[0] if entry else TokenBucket(self.rate, self.burst, self._clock)
        self._buckets[key] = (bucket, now)
        while len(self._buckets) > self.max_entries:
            self._buckets.popitem(last=False)
        return bucket

    def take(self, key: str, cost: float = 1.0) -> bool:
        return self.get(key).take(cost)

    def _expire(self, now: float) -> None:
        forget = self.burst / self.rate
        while self._buckets:
            _, (_, used) = next(iter(self._buckets.items()))
            if now - used < forget:
                break
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


class SendLimits:
    """What every message a member sends must pass: at most `rate` messages and `byte_rate`
    bytes per second on average (bursts of `burst` and `byte_burst`) for the member, and
    `address_share` times that for all members at its address together. A rate of 0 lifts
    that limit. A refused message spends nothing.

    The member is named by a key that survives its reconnects (its token); the address part
    holds however many connections it opens or reopens."""

    def __init__(
        self,
        rate: float,
        burst: float,
        byte_rate: float,
        byte_burst: float,
        address_share: float = 4.0,
        max_entries: int = 10_000,
        clock: Clock = time.monotonic,
    ) -> None:
        if address_share < 1:
            raise ValueError("An address gets at least one member's share.")
        self._tables: list[tuple[bool, KeyedBuckets, bool]] = []  # (per address, table, bytes)
        for per_address, factor in ((False, 1.0), (True, address_share)):
            if rate > 0:
                table = KeyedBuckets(rate * factor, burst * factor, max_entries, clock)
                self._tables.append((per_address, table, False))
            if byte_rate > 0:
                table = KeyedBuckets(byte_rate * factor, byte_burst * factor, max_entries, clock)
                self._tables.append((per_address, table, True))

    @property
    def lifted(self) -> bool:
        return not self._tables

    def allow(self, member: str, address: str, size: int) -> bool:
        """Count one message of `size` bytes from `member` at `address`, if every limit has
        room for it; False (and nothing counted) otherwise."""
        return self.allow_many(member, address, [size]) == 1

    def allow_many(self, member: str, address: str, sizes: Sequence[int]) -> int:
        """Count messages of `sizes` bytes from `member` at `address`, in order, as `allow`
        would one by one at this moment (they came in one read), up to the first that some
        limit has no room for: how many were counted. That one and those after it are not.
        A flood's read costs a look per limit, not one per line."""
        if not self._tables:
            return len(sizes)
        ones = [1] * len(sizes)
        buckets = [
            (table.get(address if per_address else member), sizes if is_bytes else ones)
            for per_address, table, is_bytes in self._tables
        ]
        n = min(bucket.fits(costs) for bucket, costs in buckets)
        for bucket, costs in buckets:
            bucket.take_first(costs, n)
        return n


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


class Pacer:
    """The sender's side of `SendLimits`: how long to hold a message so that the host, which
    counts the same way, never has to refuse it.

    It keeps under the host's figures (`margin` of the rate, half the burst), because the host
    counts by arrival and the network may deliver two messages closer together than they were
    sent. A rate of 0 means no limit. Kept across reconnects, as the host keeps its count."""

    def __init__(
        self,
        rate: float,
        burst: float,
        byte_rate: float = 0.0,
        byte_burst: float = 0.0,
        margin: float = 0.9,
        clock: Clock = time.monotonic,
    ) -> None:
        self.limits = (rate, burst, byte_rate, byte_burst)
        self._messages = (
            TokenBucket(rate * margin, max(1.0, burst / 2), clock) if rate > 0 else None
        )
        self._bytes = (
            TokenBucket(byte_rate * margin, max(1.0, byte_burst / 2), clock)
            if byte_rate > 0
            else None
        )

    def wait(self, size: int) -> float:
        """Seconds to hold a message of `size` bytes before it may go (0.0: now)."""
        waits = [0.0]
        if self._messages is not None:
            waits.append(self._messages.wait(1))
        if self._bytes is not None:
            waits.append(self._bytes.wait(size))
        return max(waits)

    def sent(self, size: int) -> None:
        """Count a message that went out (after `wait` said 0)."""
        if self._messages is not None:
            self._messages.spend(1)
        if self._bytes is not None:
            self._bytes.spend(size)
