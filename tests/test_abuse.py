"""Limits that hold against a determined peer, over real sockets on 127.0.0.1.

Password guesses per address, rate limits that count bytes and follow the address (not the
connection), a cap on new connections, and a text peer that hears everything said after the
greeting. Every limit is a host option, shrunk here so each test is quick.
"""

from __future__ import annotations

import functools
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from app import events as ev
from app.net import JoinOptions
from app.security import JoinerAuth, client_context, fingerprint, to_b64
from app.worker import NetWorker
from tests.conftest import Hosted
from tests.helpers import DEADLINE, Proc, RawPeer, Recorder

QUICK = {"sniff_wait": 0.05, "hello_wait": 0.2}


@pytest.fixture
def start_host(start_host: Callable[..., Hosted]) -> Callable[..., Hosted]:
    """Rooms here admit text peers (nc) too, and tell them apart from app peers quickly."""
    return functools.partial(start_host, allow_plain=True, **QUICK)


def text_peer(port: int) -> RawPeer:
    """A text peer that speaks first, so it is admitted at once."""
    peer = RawPeer(port)
    peer.read_until(r"^PARLEY/2 ")
    peer.line("hi")
    peer.read_until(r"^\* You are ")
    return peer


def join_all(workers: list[NetWorker], port: int, count: int, password: str) -> list[Recorder]:
    """`count` joiners from this address at the same moment, none waiting for another."""
    recs = []
    for i in range(count):
        rec = Recorder()
        worker = NetWorker(rec)
        workers.append(worker)
        worker.join(JoinOptions("127.0.0.1", port, name=f"p{i}", password=password))
        recs.append(rec)
    for rec in recs:
        rec.wait_for((ev.Connected, ev.Failed))  # type: ignore[arg-type]
    return recs


def wrong_password_notices(rec: Recorder) -> list[str]:
    return [e.text for e in rec.of(ev.NoticeShown) if e.text.startswith("Wrong password")]


# --- password rooms -----------------------------------------------------------------------------


def test_parallel_connections_from_one_address_test_one_password_only(
    start_host, workers: list[NetWorker]
) -> None:
    host, hrec, port = start_host(password="correct horse")
    recs = join_all(workers, port, 8, "battery staple")
    texts = [rec.wait_for(ev.Failed).text for rec in recs]
    # One attempt was in flight at a time; after it failed, the others had to wait. (The
    # joiner finds out from the host's half of the exchange and hangs up: still one guess.)
    guessed = [t for t in texts if "Wrong password" in t]
    assert len(guessed) == 1, texts
    others = [t for t in texts if t not in guessed]
    assert all(t.startswith("Too many wrong passwords from your address") for t in others)
    # The joiner may hang up before the host has judged its guess: wait for the host's word.
    hrec.wait_for(ev.NoticeShown, lambda e: e.text.startswith("Wrong password"))
    assert wrong_password_notices(hrec) == ["Wrong password from 127.0.0.1 (1 in a row)."]


def guess_with_a_proof(port: int, password: str) -> str:
    """What a careless attacker does: answer the host's half with a proof, right or not (the
    app stops at the host's half when the password is wrong). Returns the host's answer."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    with client_context().wrap_socket(raw) as tls:
        lines = tls.makefile("rwb")
        assert lines.readline().startswith(b"PARLEY/2 ")
        auth = JoinerAuth(password, fingerprint(tls.getpeercert(binary_form=True)))
        hello = {"type": "hello", "version": 1, "name": "Eve", "pake": to_b64(auth.start())}
        lines.write(json.dumps(hello).encode() + b"\n")
        lines.flush()
        assert json.loads(lines.readline())["type"] == "auth"
        lines.write(json.dumps({"type": "auth", "confirm": to_b64(bytes(32))}).encode())
        lines.write(b"\n")
        lines.flush()
        return str(json.loads(lines.readline())["code"])


def test_one_wrong_password_counts_once(start_host, join) -> None:
    host, hrec, port = start_host(password="correct horse")
    assert guess_with_a_proof(port, "battery staple") == "wrong_password"
    hrec.wait_for(ev.NoticeShown, lambda e: e.text.startswith("Wrong password"))
    again, arec = join(port, "Eve", password="battery staple")
    # One failure waits 1 s; two would have been 2 s.
    assert arec.wait_for(ev.Failed).text == (
        "Too many wrong passwords from your address; try again in 1 s."
    )
    assert wrong_password_notices(hrec) == ["Wrong password from 127.0.0.1 (1 in a row)."]


def test_people_at_one_address_with_the_right_password_all_get_in_in_turn(
    start_host, workers: list[NetWorker]
) -> None:
    host, hrec, port = start_host(password="correct horse")
    recs = join_all(workers, port, 4, "correct horse")
    assert [type(rec.wait_for(ev.Connected)) for rec in recs] == [ev.Connected] * 4
    for name in ("p0", "p1", "p2", "p3"):  # the host's own view is told once the lot is in
        hrec.wait_for(ev.MemberJoined, lambda e, name=name: e.name == name)
    assert sorted(e.name for e in hrec.of(ev.MemberJoined)) == ["p0", "p1", "p2", "p3"]
    assert wrong_password_notices(hrec) == []


# --- rates: bytes as well as messages, per address ------------------------------------------------


def test_the_rate_limit_counts_bytes_not_just_messages(start_host, join) -> None:
    host, hrec, port = start_host(byte_rate=10, byte_burst=10_000, address_share=1)
    ann, arec = join(port, "Ann")
    peer = text_peer(port)
    for i in range(5):  # five messages: few, but 20,000 bytes
        peer.line(f"{i}" + "x" * 3999)
    assert "sending too fast" in peer.read_until(r"^! ")
    peer.line("done")  # 4 bytes: there is room for that
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "done")
    big = [t for t in arec.texts() if t.endswith("x" * 3999)]
    assert [t[0] for t in big] == ["0", "1"]


def test_reconnecting_does_not_reset_the_rate_limit(start_host, join) -> None:
    host, hrec, port = start_host(rate=0.1, burst=5, address_share=1)
    ann, arec = join(port, "Ann")
    for loop in range(4):
        peer = text_peer(port)  # its first line, "hi", is a message too
        peer.send("".join(f"r{loop}-{i}\n" for i in range(10)))
        peer.read_until(r"^! You are sending too fast")
        peer.close()
    host.send("marker")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    relayed = [t for t in arec.texts() if t == "hi" or re.fullmatch(r"r\d-\d", t)]
    # One address, one allowance: 5 at once (and 0.1 a second), however often it reconnects.
    assert 5 <= len(relayed) <= 6, relayed


def app_peer(port: int, hello: dict[str, object]) -> tuple[RawPeer, dict[str, object]]:
    """An app peer that ignores the limits its welcome gives (the app would pace itself)."""
    peer = RawPeer(port)
    peer.read_until(r"^PARLEY/2 ")
    peer.line(json.dumps({"type": "hello", "version": 1, **hello}))
    return peer, json.loads(peer.read_until('"welcome"'))


def test_a_member_coming_back_with_its_token_keeps_its_rate_count(start_host, join) -> None:
    # The address may send plenty (share 100): the member's own limit is what binds here.
    host, hrec, port = start_host(rate=0.1, burst=3, address_share=100)
    ann, arec = join(port, "Ann")
    bob, welcome = app_peer(port, {"name": "Bob"})
    bob.send("".join(f'{{"type":"msg","text":"first {i}"}}\n' for i in range(5)))
    bob.read_until('"too_fast"')
    bob.close()  # dropped, held for the grace period
    arec.wait_for(ev.MemberLeft, lambda e: e.name == "Bob")
    token = welcome["token"]
    back, again = app_peer(port, {"name": "Bob", "token": token, "last_seq": 0})
    assert again["resumed"] is True
    back.send("".join(f'{{"type":"msg","text":"again {i}"}}\n' for i in range(5)))
    back.read_until('"too_fast"')
    host.send("marker")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    bobs = [e.text for e in arec.of(ev.MessageReceived) if e.sender == "Bob"]
    assert bobs == ["first 0", "first 1", "first 2"]  # nothing new for coming back


def test_new_connections_per_address_are_capped_per_interval(start_host) -> None:
    host, hrec, port = start_host(connect_rate=0.01, connect_burst=3)
    peers = [RawPeer(port) for _ in range(3)]
    for peer in peers:
        peer.read_until(r"^PARLEY/2 Welcome")
        peer.close()  # closing does not give the allowance back: it is per interval
    extra = RawPeer(port)
    assert extra.wait_closed().decode() == (
        "PARLEY/2 ! Too many new connections from your address; wait a few seconds and try again.\n"
    )


# --- a text peer hears everything said after the greeting -----------------------------------------


def test_a_text_peer_receives_everything_said_after_its_greeting(start_host) -> None:
    host, hrec, port = start_host(hello_wait=1.0)
    host.send("before the greeting")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "before the greeting")
    peer = RawPeer(port)
    peer.read_until(r"^PARLEY/2 Welcome")
    for i in range(25):  # more than the 20 a newcomer's history holds
        host.send(f"m{i}")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "m24")
    # The peer stays silent: it is admitted after `hello_wait`, and hears all 25 as said.
    peer.read_until(r"^\* You are guest1\.")
    peer.line("last")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "last")
    host.send("after")
    lines = [peer.read_until(r"^(\(earlier\) )?Hal: ") for _ in range(27)]
    assert lines == [
        "(earlier) Hal: before the greeting",
        *[f"Hal: m{i}" for i in range(25)],
        "Hal: after",
    ]


# --- the terminal joiner paces itself to the host's limits ----------------------------------------


def test_a_file_piped_into_join_arrives_whole_and_in_order(start_host, tmp_path: Path) -> None:
    # The host's limits, told in the welcome: 200 messages a second, bursts of 60. Sent at once,
    # 500 lines would be 440 refusals and a drop for "sending too fast". (The host counts lines
    # as it reads them: with bursts of 20, a 110 ms stall of the host's own thread on a loaded
    # machine made the paced lines it then read at once look like a burst, and failed the test.)
    host, hrec, port = start_host(rate=200, burst=60)
    lines = [f"line {i:03d} of the file" for i in range(500)]
    source = tmp_path / "lines.txt"
    source.write_text("".join(f"{line}\n" for line in lines))
    with source.open() as stdin:
        ann = Proc("join", f"127.0.0.1:{port}", "--name", "Ann", stdin=stdin)
    try:
        hrec.wait_for(ev.MessageReceived, lambda e: e.text == lines[-1], timeout=30)
        assert ann.wait(timeout=DEADLINE) == 0  # then it said bye and left, as at end of input
        ann.expect(r"^Chat ended\.$")
    finally:
        ann.kill()
    got = [e.text for e in hrec.of(ev.MessageReceived) if e.sender == "Ann"]
    assert got == [*lines, "bye"]
    assert not [e for e in hrec.of(ev.MemberLeft) if e.reason == "sending too fast"]
    assert not [line for line in ann.seen + ann.err if "too fast" in line]


def test_the_welcome_tells_a_joiner_its_limits(start_host) -> None:
    host, hrec, port = start_host(rate=7, burst=9, byte_rate=1000, byte_burst=70_000)
    peer = RawPeer(port)
    peer.read_until(r"^PARLEY/2 ")
    peer.line('{"type":"hello","version":1,"name":"Ann"}')
    welcome = json.loads(peer.read_until('"welcome"'))
    assert welcome["limits"] == {"rate": 7, "burst": 9, "bytes": 1000, "byte_burst": 70_000}
