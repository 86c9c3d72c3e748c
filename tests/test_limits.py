"""Rate, connection and back-off limits, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.limits import (
    ConnectionCounter,
    FailureBackoff,
    KeyedBuckets,
    Pacer,
    SendLimits,
    TokenBucket,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- TokenBucket ----------------------------------------------------------------------------------


def test_bucket_allows_a_burst_then_refuses() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=5, clock=clock)
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2


def test_bucket_refills_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        assert bucket.take()
    assert not bucket.take()
    clock.advance(0.49)
    assert not bucket.take()  # 0.98 tokens: not yet
    clock.advance(0.01)
    assert bucket.take()  # one token after half a second at 2/s
    assert not bucket.take()
    clock.advance(1.0)
    assert bucket.take()
    assert bucket.take()
    assert not bucket.take()


def test_bucket_never_holds_more_than_its_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=4, clock=clock)
    clock.advance(3600)
    assert [bucket.take() for _ in range(6)] == [True] * 4 + [False] * 2


def test_bucket_sustained_rate_over_a_simulated_minute() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5.0, burst=10, clock=clock)
    allowed = 0
    for _ in range(6000):  # one attempt every 10 ms for 60 s
        allowed += bucket.take()
        clock.advance(0.01)
    assert 10 + 5 * 60 - 1 <= allowed <= 10 + 5 * 60 + 1


def test_bucket_cost_and_a_clock_stepping_back() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=10, clock=clock)
    assert bucket.take(8)
    assert not bucket.take(3)  # refused takes cost nothing
    assert bucket.take(2)
    clock.advance(-100)  # a clock that steps back must not refill (or drain)
    assert not bucket.take()
    clock.advance(101)
    assert bucket.take()


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0.5)])
def test_bucket_rejects_nonsense(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate, burst)


# --- ConnectionCounter ----------------------------------------------------------------------------


def test_counter_caps_each_address_separately() -> None:
    counter = ConnectionCounter(cap=2)
    assert counter.acquire("10.0.0.1")
    assert counter.acquire("10.0.0.1")
    assert not counter.acquire("10.0.0.1")
    assert counter.count("10.0.0.1") == 2  # a refused acquire counts nothing
    assert counter.acquire("10.0.0.2")
    counter.release("10.0.0.1")
    assert counter.acquire("10.0.0.1")
    assert not counter.acquire("10.0.0.1")


def test_counter_forgets_addresses_with_nothing_open() -> None:
    counter = ConnectionCounter(cap=3)
    for i in range(100):
        assert counter.acquire(f"10.0.0.{i}")
    assert len(counter) == 100
    for i in range(100):
        counter.release(f"10.0.0.{i}")
    assert len(counter) == 0
    counter.release("never-seen")  # harmless
    assert counter.count("never-seen") == 0
    assert len(counter) == 0


def test_counter_rejects_a_cap_below_one() -> None:
    with pytest.raises(ValueError, match="cap"):
        ConnectionCounter(0)


# --- FailureBackoff -------------------------------------------------------------------------------


def test_backoff_doubles_from_base_to_maximum() -> None:
    clock = FakeClock()
    backoff = FailureBackoff(base=1.0, maximum=60.0, clock=clock)
    assert backoff.delay("a") == 0.0
    waits = []
    for _ in range(9):
        backoff.failed("a")
        waits.append(backoff.delay("a"))
        clock.advance(backoff.delay("a"))  # the attacker waits exactly as long as told
        assert backoff.delay("a") == 0.0
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff.failures("a") == 9


def test_backoff_counts_down_and_is_per_address() -> None:
    clock = FakeClock()
    backoff = FailureBackoff(base=1.0, maximum=60.0, clock=clock)
    backoff.failed("a")
    backoff.failed("a")
    assert backoff.delay("a") == 2.0
    clock.advance(0.5)
    assert backoff.delay("a") == pytest.approx(1.5)
    assert backoff.delay("b") == 0.0
    clock.advance(1.5)
    assert backoff.delay("a") == 0.0


def test_success_resets_the_backoff() -> None:
    clock = FakeClock()
    backoff = FailureBackoff(clock=clock)
    for _ in range(5):
        backoff.failed("a")
    assert backoff.delay("a") == 16.0
    backoff.succeeded("a")
    assert backoff.delay("a") == 0.0
    backoff.failed("a")
    assert backoff.delay("a") == 1.0


def test_quiet_addresses_are_forgotten() -> None:
    clock = FakeClock()
    backoff = FailureBackoff(base=1.0, maximum=60.0, forget_after=600.0, clock=clock)
    for _ in range(10):
        backoff.failed("a")
    clock.advance(300)
    backoff.failed("b")
    clock.advance(300)  # a's last failure is now 600 s old, b's 300 s
    assert backoff.delay("b") == 0.0
    assert backoff.failures("a") == 0
    assert len(backoff) == 1
    backoff.failed("a")
    assert backoff.delay("a") == 1.0  # starts over


def test_memory_stays_bounded_under_many_addresses() -> None:
    clock = FakeClock()
    backoff = FailureBackoff(max_entries=100, clock=clock)
    for i in range(10_000):
        backoff.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        clock.advance(0.001)
    assert len(backoff) == 100
    assert backoff.failures("10.0.39.15") == 1  # the newest are the ones kept
    assert backoff.failures("10.0.0.0") == 0


def test_a_repeat_offender_moves_to_the_back_of_the_eviction_line() -> None:
    clock = FakeClock()
    backoff = FailureBackoff(max_entries=2, clock=clock)
    backoff.failed("a")
    backoff.failed("b")
    backoff.failed("a")  # a failed again: b is now the longest quiet
    backoff.failed("c")
    assert backoff.failures("a") == 2
    assert backoff.failures("b") == 0
    assert backoff.failures("c") == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base": 0},
        {"base": 10, "maximum": 5},
        {"maximum": 60, "forget_after": 30},
        {"max_entries": 0},
    ],
)
def test_backoff_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="base"):
        FailureBackoff(**kwargs)  # type: ignore[arg-type]


# --- KeyedBuckets and SendLimits ------------------------------------------------------------------


def test_a_cost_above_the_burst_needs_a_full_bucket_and_empties_it() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=100, clock=clock)
    assert bucket.take(500)  # the largest message stays possible ...
    assert not bucket.can(1)  # ... and costs everything
    clock.advance(5)
    assert not bucket.take(500)  # half full is not enough
    clock.advance(5)
    assert bucket.take(500)


def test_keyed_buckets_are_separate_per_key_and_forgotten_once_refilled() -> None:
    clock = FakeClock()
    table = KeyedBuckets(rate=1.0, burst=2, clock=clock)
    assert table.take("a")
    assert table.take("a")
    assert not table.take("a")
    assert table.take("b")
    clock.advance(2)  # both full again: the same as new, so nothing needs keeping
    table.get("c")
    assert len(table) == 1


def test_keyed_buckets_keep_at_most_max_entries() -> None:
    table = KeyedBuckets(rate=1.0, burst=5, max_entries=100, clock=FakeClock())
    for i in range(10_000):
        table.take(f"10.0.{i // 256}.{i % 256}")
    assert len(table) == 100


def test_send_limits_count_bytes_as_well_as_messages() -> None:
    clock = FakeClock()
    limits = SendLimits(rate=100, burst=100, byte_rate=1000, byte_burst=10_000, clock=clock)
    assert limits.allow("m", "10.0.0.1", 6000)
    assert not limits.allow("m", "10.0.0.1", 6000)  # few messages, too many bytes
    assert limits.allow("m", "10.0.0.1", 4000)
    clock.advance(6)
    assert limits.allow("m", "10.0.0.1", 6000)


def test_send_limits_share_an_address_and_follow_the_member() -> None:
    clock = FakeClock()
    limits = SendLimits(rate=1, burst=3, byte_rate=0, byte_burst=0, address_share=2, clock=clock)
    # Members at one address share twice one member's allowance, however many connect.
    allowed = sum(limits.allow(f"connection {i}", "10.0.0.1", 10) for i in range(10))
    assert allowed == 6
    assert limits.allow("connection 99", "10.0.0.2", 10)  # another address is not affected
    # A member (by its token) that comes back gets no new allowance either.
    assert sum(limits.allow("member T", "10.0.0.3", 10) for _ in range(5)) == 3
    assert not limits.allow("member T", "10.0.0.4", 10)


def test_send_limits_refuse_without_spending_and_can_be_lifted() -> None:
    limits = SendLimits(rate=1, burst=2, byte_rate=1, byte_burst=10, clock=FakeClock())
    assert limits.allow("m", "a", 8)
    assert not limits.allow("m", "a", 5)  # too many bytes: the message is not counted either
    assert limits.allow("m", "a", 2)  # so the second message still fits
    assert not limits.allow("m", "a", 0)  # and now the messages are used up
    assert SendLimits(rate=0, burst=0, byte_rate=0, byte_burst=0).lifted
    assert not limits.lifted


def test_a_pacer_keeps_under_the_hosts_limits_over_a_simulated_minute() -> None:
    clock = FakeClock()
    host = SendLimits(rate=20, burst=40, byte_rate=1000, byte_burst=4000, clock=clock)
    pacer = Pacer(rate=20, burst=40, byte_rate=1000, byte_burst=4000, clock=clock)
    sent = refused = 0
    for i in range(3000):  # a backlog of messages of 1 to 300 bytes, sent as soon as allowed
        size = 1 + (i * 37) % 300
        clock.advance(pacer.wait(size))
        pacer.sent(size)
        if host.allow("m", "a", size):
            sent += 1
        else:
            refused += 1
        if clock.now > 1060:
            break
    assert refused == 0
    assert sent > 0.8 * 60 * min(20, 1000 / 150)  # and not much slower than allowed


def test_a_pacer_without_limits_never_waits() -> None:
    pacer = Pacer(rate=0, burst=0, clock=FakeClock())
    for _ in range(1000):
        assert pacer.wait(65_536) == 0.0
        pacer.sent(65_536)


_SIZES = st.lists(st.integers(min_value=0, max_value=40), max_size=30)


@given(st.integers(1, 4), st.integers(0, 3), _SIZES, _SIZES)
def test_a_reads_messages_counted_together_are_counted_as_one_by_one(
    burst: int, spent: int, sizes: list[int], after: list[int]
) -> None:
    """`allow_many` counts exactly the messages a run of `allow` calls would count before its
    first refusal, and leaves every limit as that run leaves it (what comes next is the same)."""

    def limits() -> SendLimits:
        made = SendLimits(
            rate=1,
            burst=burst * 2,
            byte_rate=10,
            byte_burst=burst * 25,
            address_share=1.5,
            clock=FakeClock(),
        )
        for _ in range(spent):
            made.allow("m", "a", 7)
        return made

    together, one_by_one = limits(), limits()
    n = together.allow_many("m", "a", sizes)
    expected = 0
    for size in sizes:
        if not one_by_one.allow("m", "a", size):
            break
        expected += 1
    assert n == expected
    # What the rest of the run would have counted is not counted: both go on alike.
    assert [together.allow("m", "a", s) for s in after] == [
        one_by_one.allow("m", "a", s) for s in after
    ]
    assert [together.allow("m2", "a", s) for s in after] == [
        one_by_one.allow("m2", "a", s) for s in after
    ]


def test_a_read_counted_together_stops_at_the_first_message_with_no_room() -> None:
    limits = SendLimits(rate=1, burst=5, byte_rate=1, byte_burst=100, clock=FakeClock())
    assert limits.allow_many("m", "a", [10, 10, 90, 10]) == 2  # 90 bytes more do not fit
    assert limits.allow_many("m", "a", [70, 1, 1, 1]) == 3  # then three messages are left
    assert limits.allow_many("m", "a", [0]) == 0
    assert SendLimits(rate=0, burst=0, byte_rate=0, byte_burst=0).allow_many("m", "a", [9] * 5) == 5
