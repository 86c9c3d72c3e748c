"""A joiner tells the truth about a host that froze or went away: noticed within 15 s, said so,
and the person can hurry the reconnect or cancel it. Real processes and sockets on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from app import events as ev
from tests.helpers import Proc
from tests.test_faults import Relay

NOTICED_WITHIN = 15.0  # the promise, with the joiner's default keepalive


@pytest.fixture
def relay() -> Iterator[Callable[[int], Relay]]:
    made: list[Relay] = []

    def make(port: int) -> Relay:
        made.append(Relay(port))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_a_frozen_host_is_noticed_within_15_s_and_said_so(join) -> None:
    host = Proc("host", "--port", "0", "--bind", "127.0.0.1", "--name", "Hal")
    frozen = False
    try:
        port = int(host.expect(r"on port (\d+)").group(1))
        ann, arec = join(port, "Ann", reconnect_initial=0.2, reconnect_max=1.0)
        arec.wait_for(ev.Connected)
        os.kill(host.p.pid, signal.SIGSTOP)  # frozen: its sockets stay open, nothing answers
        frozen = True
        froze_at = time.monotonic()
        # With the joiner's default keepalive: no parameter shrunk for this one.
        lost = arec.wait_for(ev.Reconnecting, timeout=NOTICED_WITHIN)
        assert time.monotonic() - froze_at < NOTICED_WITHIN
        assert lost.reason.startswith("The host is not answering: nothing heard from it for ")
        os.kill(host.p.pid, signal.SIGCONT)
        frozen = False
        back = arec.wait_for(ev.Connected, lambda e: e.resumed, timeout=30)
        assert back.name == "Ann"
    finally:
        if frozen:
            os.kill(host.p.pid, signal.SIGCONT)
        host.kill()


def test_reconnect_now_does_not_wait_out_the_back_off(start_host, join, relay) -> None:
    host, hrec, port = start_host()
    link = relay(port)
    ann, arec = join(link.port, "Ann", reconnect_initial=60.0, reconnect_max=60.0)
    arec.wait_for(ev.Connected)
    link.cut()
    assert arec.wait_for(ev.Reconnecting).delay == 60.0
    ann.reconnect_now()
    arec.wait_for(ev.Connected, lambda e: e.resumed)  # well before the minute is up
    ann.send("back at once")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "back at once")


def test_leaving_while_reconnecting_cancels_the_reconnect(start_host, join, relay) -> None:
    host, hrec, port = start_host()
    link = relay(port)
    ann, arec = join(link.port, "Ann", reconnect_initial=0.05, reconnect_max=0.1)
    arec.wait_for(ev.Connected)
    link.set(up=False, down=False)
    link.cut()
    arec.wait_for(ev.Reconnecting, lambda e: e.attempt >= 2)  # trying, and trying again
    ann.leave().result(5)
    assert arec.wait_for(ev.ChatEnded).reason == "You left the chat."
    tries = len(arec.of(ev.Reconnecting))
    connections = len(link.links)
    time.sleep(0.5)  # five back-off periods: long enough for attempts that should not come
    assert len(arec.of(ev.Reconnecting)) == tries
    assert len(link.links) == connections
    assert not arec.of(ev.Connected)[1:]
