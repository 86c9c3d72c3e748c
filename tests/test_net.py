"""The engine over real sockets on 127.0.0.1: app peers (workers), raw text peers, bad input."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import struct
from collections.abc import Callable

import pytest

from app import events as ev
from app.net import Joiner, JoinOptions
from app.worker import NetWorker
from tests.conftest import Hosted
from tests.helpers import RawPeer, Recorder, wait_until


@pytest.fixture
def start_host(start_host: Callable[..., Hosted]) -> Callable[..., Hosted]:
    """Rooms here admit text peers (nc) too."""
    return functools.partial(start_host, allow_plain=True)


def text_peer(port: int, name_line: str = "hi") -> tuple[RawPeer, str]:
    """A text peer that speaks first (so it is admitted at once); returns its guest name."""
    peer = RawPeer(port)
    peer.line(name_line)
    peer.read_until(r"^PARLEY/2 ")
    name = peer.read_until(r"^\* You are ").split()[3].rstrip(".")
    return peer, name


def test_two_joiners_and_the_host_chat_both_ways(start_host, join) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port, "Ann")
    bob, brec = join(port, "Bob")
    assert brec.wait_for(ev.Connected).members == ("Hal", "Ann", "Bob")
    arec.wait_for(ev.MemberJoined, lambda e: e.name == "Bob")
    hrec.wait_for(ev.MemberJoined, lambda e: e.name == "Bob" and e.address is not None)

    ann.send("hello from Ann")
    host.send("hello from Hal")
    for rec in (hrec, brec):
        rec.wait_for(ev.MessageReceived, lambda e: e.text == "hello from Ann" and e.sender == "Ann")
    for rec in (arec, brec):
        rec.wait_for(ev.MessageReceived, lambda e: e.text == "hello from Hal" and e.sender == "Hal")
    # The sender sees its own message as pending, then accepted with the host's seq and time.
    pending = arec.wait_for(ev.MessagePending)
    mine = arec.wait_for(ev.MessageReceived, lambda e: e.mine)
    assert (mine.id, mine.text) == (pending.id, "hello from Ann")
    assert mine.seq is not None
    assert mine.time is not None
    # Everyone sees the room's order: the same sequence numbers for the same texts.
    assert not [e for e in brec.of(ev.MessageReceived) if e.mine]
    seqs = {e.text: e.seq for e in hrec.of(ev.MessageReceived)}
    assert {e.text: e.seq for e in brec.of(ev.MessageReceived)} == seqs


def test_a_joiners_bye_ends_only_its_chat(start_host, join) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port, "Ann")
    bob, brec = join(port, "Bob")
    ann.send("Bye!")
    assert arec.wait_for(ev.ChatEnded).reason == "You left the chat."
    left = brec.wait_for(ev.MemberLeft)
    assert (left.name, left.reason, left.members) == ("Ann", "left", ("Hal", "Bob"))
    brec.wait_for(ev.MessageReceived, lambda e: e.text == "Bye!")
    hrec.wait_for(ev.MemberLeft, lambda e: e.name == "Ann")
    bob.send("still here")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "still here")
    assert not brec.of(ev.ChatEnded)


def test_the_hosts_bye_ends_the_room_for_everyone(start_host, join) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port, "Ann")
    peer, _ = text_peer(port)
    host.send("bye")
    assert arec.wait_for(ev.ChatEnded).reason == "The host ended the chat."
    hrec.wait_for(ev.ChatEnded)
    rest = peer.wait_closed().decode()
    assert "Hal: bye" in rest
    assert rest.rstrip().endswith("Chat ended.")
    # The room is gone: nothing listens any more.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_a_text_peer_takes_part_like_nc(start_host, join) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port, "Ann")
    peer = RawPeer(port)
    assert peer.read_until("^PARLEY/2 ").startswith("PARLEY/2 Welcome to Parley.")
    # Silent after the greeting: admitted as a guest, with the members and history.
    line = peer.read_until(r"^\* You are ")
    assert line == "* You are guest1. In the room: Hal, Ann, guest1."
    arec.wait_for(ev.MemberJoined, lambda e: e.name == "guest1")
    ann.send("hi guest")
    assert peer.read_until("^Ann: ") == "Ann: hi guest"
    peer.line("hello app people")
    arec.wait_for(
        ev.MessageReceived, lambda e: e.sender == "guest1" and e.text == "hello app people"
    )
    peer.line("bye")
    assert "Chat ended." in peer.wait_closed().decode()
    assert arec.wait_for(ev.MemberLeft).reason == "left"


def test_many_lines_in_one_read_reach_everyone_in_order(start_host, join) -> None:
    """The host delivers what one read holds together (one write per member): nothing of it
    is lost or reordered, for app and text members, around a command in the middle."""
    host, hrec, port = start_host()
    ann, arec = join(port, "Ann")
    sender, name = text_peer(port)
    reader, _ = text_peer(port, "here")
    arec.wait_for(ev.MemberJoined, lambda e: e.name == name)
    texts = [f"line {i}" for i in range(30)]
    sender.send(
        "".join(f"{t}\n" for t in texts[:15]) + "/who\n" + "".join(f"{t}\n" for t in texts[15:])
    )
    got = [reader.read_until(f"^{name}: ").split(": ", 1)[1] for _ in texts]
    assert got == texts
    assert sender.read_until(r"^\* In the room: ").startswith("* In the room: Hal, Ann")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == texts[-1])
    assert [
        e.text for e in arec.of(ev.MessageReceived) if e.sender == name and e.text != "hi"
    ] == texts
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == texts[-1])
    assert [
        e.text for e in hrec.of(ev.MessageReceived) if e.sender == name and e.text != "hi"
    ] == texts


def test_arrivals_announced_together_reach_each_member_once_in_order(start_host, join) -> None:
    """Arrivals within `announce_wait` go out together: each member hears of those who came
    after it, once, in order, and before anything they say."""
    host, hrec, port = start_host(announce_wait=0.5)
    first, a = text_peer(port)
    second, b = text_peer(port)
    third, c = text_peer(port)
    third.line("hello from the third")
    seen = r"joined|^guest\d+: hi$|hello from the third"
    assert first.read_until(seen).startswith(f"* {b} joined")
    assert first.read_until(seen) == f"{b}: hi"
    assert first.read_until(seen).startswith(f"* {c} joined")
    assert first.read_until(seen) == f"{c}: hi"
    assert first.read_until(seen) == f"{c}: hello from the third"
    assert second.read_until(seen).startswith(f"* {c} joined")
    assert second.read_until(seen) == f"{c}: hi"
    joined = [e.name for e in hrec.of(ev.MemberJoined)]
    assert joined == [a, b, c]
    for peer in (first, second):
        peer.line("/who")
        assert "joined" not in peer.read_until(r"^\* In the room: ")


def test_newcomers_get_the_last_messages_marked_earlier(start_host, join) -> None:
    host, hrec, port = start_host(history=3)
    for i in range(5):
        host.send(f"m{i}")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "m4")
    ann, arec = join(port, "Ann")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "m4")  # history follows the welcome
    earlier = [e for e in arec.of(ev.MessageReceived) if e.earlier]
    assert [e.text for e in earlier] == ["m2", "m3", "m4"]
    assert [e.seq for e in earlier] == [3, 4, 5]


def test_names_are_unique_and_renames_show_everywhere(start_host, join) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port, "Ann")
    ann2, a2rec = join(port, "ANN")
    connected = a2rec.wait_for(ev.Connected)
    assert connected.name == "ANN (2)"
    assert connected.note == "The name ANN is taken; you are ANN (2)."
    ann2.send("/nick Annie")
    for rec in (hrec, arec, a2rec):
        renamed = rec.wait_for(ev.MemberRenamed)
        assert (renamed.old, renamed.new) == ("ANN (2)", "Annie")
        assert renamed.members == ("Hal", "Ann", "Annie")
    assert a2rec.wait_for(ev.MemberRenamed).you
    ann2.send("/nick ann")
    assert "taken" in a2rec.wait_for(ev.ErrorShown).text
    ann2.send("/who")
    assert a2rec.wait_for(ev.NoticeShown).text == "In the room: Hal, Ann, Annie."
    ann2.send("/dance")
    a2rec.wait_for(ev.NoticeShown, lambda e: e.text.startswith("Unknown command /dance."))


def test_a_name_with_escape_sequences_is_refused(start_host, join) -> None:
    host, hrec, port = start_host()
    worker, rec = join(port, "\x1b[31mEvil")
    connected = rec.wait_for(ev.Connected)
    assert connected.name == "guest1"
    assert connected.note is not None
    assert "control" in connected.note


@pytest.mark.parametrize("fake", ["H\u0430l", "HaI", "Hal\u034f", "Hal\ufe0f", "\u2800Hal"])
def test_a_look_alike_of_the_hosts_name_never_passes_for_the_host(start_host, join, fake) -> None:
    host, hrec, port = start_host()
    worker, rec = join(port, fake)
    connected = rec.wait_for(ev.Connected)
    assert connected.name not in ("Hal", fake)
    assert connected.name.endswith(" (2)") or connected.name.startswith("guest")
    assert connected.note is not None
    assert hrec.wait_for(ev.MemberJoined).name == connected.name


def test_escape_sequences_in_text_never_reach_others(start_host, join) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port, "Ann")
    peer, name = text_peer(port)
    peer.line("red \x1b[31malert\x1b[0m, \x1b]0;pwned\x07\x9b2Jdone")
    got = arec.wait_for(ev.MessageReceived, lambda e: e.sender == name and "alert" in e.text)
    assert got.text == "red alert, done"


def test_line_separators_become_lines_that_each_carry_the_senders_name(start_host, join) -> None:
    host, hrec, port = start_host()
    peer, name = text_peer(port)
    ann, arec = join(port, "Ann")
    ann.send("hi\u2028Hal: you are fired\u2029ok")
    assert peer.read_until("^Ann: hi") == "Ann: hi"
    assert peer.read_until("^Ann: ") == "Ann: Hal: you are fired"
    assert peer.read_until("^Ann: ") == "Ann: ok"
    got = hrec.wait_for(ev.MessageReceived, lambda e: e.sender == "Ann")
    assert got.text == "hi\nHal: you are fired\nok"


def test_bad_lines_cost_the_sender_an_error_and_nobody_else_anything(start_host, join) -> None:
    host, hrec, port = start_host(max_line=1024)
    ann, arec = join(port, "Ann")
    peer, name = text_peer(port)
    peer.send(b"x" * 5000 + b"\n")
    assert "longer than 1024 bytes" in peer.read_until("^! ")
    peer.send(b"caf\xc3 \xff\n")
    assert "not valid UTF-8" in peer.read_until("^! ")
    peer.line("still fine")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "still fine")
    host.send("room still flows")
    assert peer.read_until("^Hal: ") == "Hal: room still flows"
    assert [e.text for e in arec.of(ev.MessageReceived) if e.sender == name] == ["hi", "still fine"]


def test_an_app_peer_sending_junk_gets_errors_then_is_dropped(start_host, join) -> None:
    host, hrec, port = start_host(max_errors=3)
    ann, arec = join(port, "Ann")
    raw = RawPeer(port)
    raw.read_until("^PARLEY/2 ")
    raw.line(json.dumps({"type": "hello", "version": 1, "name": "Mallory"}))
    raw.read_until('"welcome"')
    raw.line("{not json")
    assert json.loads(raw.read_until('"error"'))["code"] == "malformed"
    raw.line(json.dumps({"type": "launch", "target": "moon"}))
    assert json.loads(raw.read_until('"error"'))["code"] == "unknown_type"
    raw.send(os.urandom(64).replace(b"\n", b"") + b"\n")
    raw.wait_closed()
    left = arec.wait_for(ev.MemberLeft, lambda e: e.name == "Mallory")
    assert left.reason == "too many bad lines"
    ann.send("after the junk")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "after the junk")


def test_a_member_killed_mid_line_loses_only_its_half_line(start_host, join) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port, "Ann")
    peer, name = text_peer(port)
    peer.send(b"half a mess")
    # RST instead of FIN, as a crashed machine's stack might: SO_LINGER with a zero timeout.
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    left = arec.wait_for(ev.MemberLeft, lambda e: e.name == name)
    assert left.reason == "connection lost"
    assert "half a mess" not in arec.texts()
    host.send("carry on")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "carry on")


def test_a_member_that_never_reads_is_dropped_and_the_rest_keep_flowing(start_host, join) -> None:
    host, hrec, port = start_host(write_cap=256 * 1024, stuck_wait=0.3)
    ann, arec = join(port, "Ann")
    stuck = RawPeer(port, rcvbuf=4096)
    stuck.read_until("^PARLEY/2 ")
    stuck.line("I will stop reading now")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "I will stop reading now")
    payload = "z" * 4000
    # 8 MB in batches of 200 kB that Ann confirms, so Ann never has more than its cap queued
    # while the stuck peer's queue grows past the cap once the kernel's buffers (4 MB at most
    # here) are full.
    for batch in range(40):
        for i in range(batch * 50, batch * 50 + 50):
            host.send(f"{i} {payload}")
        last = f"{batch * 50 + 49} "
        arec.wait_for(ev.MessageReceived, lambda e, last=last: e.text.startswith(last))
        if hrec.of(ev.MemberLeft):
            break
    left = arec.wait_for(ev.MemberLeft)
    assert (left.name, left.reason) == ("guest1", "not reading")
    host.send("after the drop")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "after the drop")
    got = [int(t.split()[0]) for t in arec.texts() if t.endswith(payload)]
    assert got == list(range(len(got)))
    assert len(got) >= 50
    assert [e.name for e in arec.of(ev.MemberLeft)] == ["guest1"]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _task_count(worker: NetWorker) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())

    assert worker._loop is not None
    return asyncio.run_coroutine_threadsafe(count(), worker._loop).result(5)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds through /proc")
def test_many_connects_and_disconnects_leak_nothing(start_host, join) -> None:
    # 1,000 connections in a few seconds from one address, 500 of them speaking, with Ann at
    # the same address: far over the per-address caps on new connections and messages
    # (tests/test_abuse.py), lifted here because this test is about leaks.
    host, hrec, port = start_host(connect_rate=0, rate=0)
    ann, arec = join(port, "Ann")
    fds, tasks = _open_fds(), _task_count(host)
    for i in range(1000):
        peer = RawPeer(port)
        if i % 2:  # admitted, then gone
            peer.line("x")
            peer.read_until(r"^\* You are ")
        peer.close()  # or gone before even the greeting
    # A last peer closed after all the others: once its departure is announced, theirs are done.
    last, name = text_peer(port)
    last.close()
    arec.wait_for(ev.MemberLeft, lambda e: e.name == name)
    # Sockets close a loop iteration or two after the departures they cause are announced.
    wait_until(lambda: _open_fds() == fds, what=lambda: f"{_open_fds()} fds open, not {fds}")
    assert _task_count(host) == tasks
    ann.send("still serving")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "still serving")


def test_leaving_while_still_connecting_ends_the_session_once() -> None:
    """Leave pressed while TCP is still connecting: the connection that completes later must
    not bring the session back (no Connected after ChatEnded)."""

    async def scenario() -> list[ev.Event]:
        accepted: list[asyncio.StreamWriter] = []
        server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        events: list[ev.Event] = []
        options = JoinOptions("127.0.0.1", port, name="Ann", plain=True, greet_wait=0.05)
        joiner = Joiner(options, events.append)
        starting = asyncio.ensure_future(joiner.start())
        await asyncio.sleep(0)  # start() is now connecting
        await joiner.leave()
        await starting
        # A session that came back would say so once greet_wait has passed; give it 4 times that.
        await asyncio.sleep(0.2)
        for writer in accepted:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return events

    events = asyncio.run(scenario())
    assert [type(e) for e in events] == [ev.Connecting, ev.ChatEnded]


def test_stopping_while_a_connect_hangs_leaves_no_socket_open() -> None:
    import gc

    with socket.socket() as server:  # listening, never accepting: its queue fills up
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        for _ in range(4):  # connects past the queue's room hang (the SYN is not answered)
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        fds = len(os.listdir("/proc/self/fd"))
        hanging = _syn_sent(port)
        rec = Recorder()
        worker = NetWorker(rec)
        worker.join(JoinOptions("127.0.0.1", port, name="Ann", connect_timeout=30))
        # Stop only once the joiner's own connect is the one hanging (not its name lookup).
        wait_until(lambda: _syn_sent(port) > hanging, what=lambda: "no connect hanging")
        worker.stop(timeout=1)
        gc.collect()  # an unclosed socket would warn here (and fail the test)
        assert len(os.listdir("/proc/self/fd")) == fds
        for s in fillers:
            s.close()


def _syn_sent(port: int) -> int:
    """Connections to 127.0.0.1:`port` the kernel is still trying to open (state SYN_SENT)."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[2] == f"0100007F:{port:04X}" and row[3] == "02")


def test_encrypted_members_are_told_who_is_not_encrypted(start_host, join) -> None:
    host, hrec, port = start_host()
    ann, arec = join(port, "Ann")
    peer, guest = text_peer(port)  # nc: plain TCP
    joined = arec.wait_for(ev.MemberJoined, lambda e: e.name == guest)
    assert joined.encrypted is False
    assert hrec.wait_for(ev.MemberJoined, lambda e: e.name == guest).encrypted is False
    bob, brec = join(port, "Bob")
    connected = brec.wait_for(ev.Connected)
    assert connected.safety_code is not None  # Bob's own link is encrypted ...
    assert connected.plain == (guest,)  # ... but he is told the room is not private
    assert peer.read_until(r"^\* Bob joined") == "* Bob joined."
    ann.send("/who")
    assert "without encryption" in arec.wait_for(ev.ErrorShown).text
    peer.close()
    arec.wait_for(ev.MemberLeft, lambda e: e.name == guest)
    carl, crec = join(port, "Carl")
    assert crec.wait_for(ev.Connected).plain == ()


def test_a_text_peer_is_told_it_is_not_encrypted_and_others_hear_it(start_host, join) -> None:
    host, hrec, port = start_host()
    peer, guest = text_peer(port)
    assert peer.read_until(r"^\* Not encrypted") == (
        f"* Not encrypted: {guest} is connected without encryption, so anyone on the network "
        "can read what is said in this room."
    )
    other, second = text_peer(port)
    assert peer.read_until(rf"^\* {second} joined") == f"* {second} joined (not encrypted)."


def test_a_held_worker_starts_nothing_until_released(workers, tmp_path) -> None:
    """The window holds its worker until its first paint: no loop, no session before that."""
    import sys

    from app.net import HostOptions

    rec = Recorder()
    worker = NetWorker(rec)
    workers.append(worker)
    worker.hold()
    opts = HostOptions(port=0, bind="127.0.0.1", name="Hal", data_dir=tmp_path, announce=False)
    worker.host(opts)
    assert not worker.running
    assert not rec.events
    worker.release()
    assert rec.wait_for(ev.Hosting).port > 0
    assert worker.running
    assert "app.net" in sys.modules


def test_the_window_path_does_not_import_the_network_stack() -> None:
    """Start-up: the window's modules leave asyncio, ssl and the engine to after the paint."""
    import subprocess
    import sys

    code = (
        "import sys, app.gui.launch; "
        "heavy = ('asyncio', 'ssl', 'app.net', 'app.security', 'zeroconf', 'sqlite3'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
