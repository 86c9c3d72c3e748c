"""Arrivals and departures in a big room (issue 13): what a text member hears of many
arrivals (or lost connections) at once, the host's own view of a batch, and what a batch keeps
while it waits.

A batch is made deterministic here by `announce_max`: with `announce_wait` far beyond the
test's deadline, the arrivals go out exactly when that many app members' welcomes wait.
"""

from __future__ import annotations

from collections.abc import Callable

from app import events as ev
from app.messages import Joined, Welcome
from app.net import JoinOptions
from app.protocol import departures_line, encode_text
from app.worker import NetWorker
from tests.conftest import Hosted
from tests.helpers import RawPeer, Recorder

LONG = 60.0  # announce_wait: never reached within a test's deadline


def _text_member(port: int) -> tuple[RawPeer, str]:
    """A text member (nc) that speaks first, so it is admitted at once; and its name."""
    peer = RawPeer(port)
    peer.line("hi")
    name = peer.read_until(r"^\* You are ").split()[3].rstrip(".")
    return peer, name


def _arrive_together(port: int, names: list[str], workers: list[NetWorker]) -> list[Recorder]:
    """App members joining at once (each on its own worker); returns when all are in."""
    recs = []
    for name in names:
        rec = Recorder()
        worker = NetWorker(rec)
        workers.append(worker)
        recs.append(rec)
        worker.join(JoinOptions("127.0.0.1", port, name=name))
    for rec in recs:
        rec.wait_for(ev.Connected)
    return recs


def test_a_text_member_hears_many_arrivals_at_once_as_one_line(
    start_host: Callable[..., Hosted], workers: list[NetWorker]
) -> None:
    _, hrec, port = start_host(allow_plain=True, announce_wait=LONG, announce_max=8)
    peer, _ = _text_member(port)  # its own arrival goes out at once: it spoke
    names = [f"Bee{i}" for i in range(8)]
    _arrive_together(port, names, workers)
    line = peer.read_until(r"joined")
    order = [e.name for e in hrec.of(ev.MemberJoined) if e.name in names]
    assert line.startswith("* 8 people joined: ")
    assert line.endswith(" and 5 more.")
    listed = line.removeprefix("* 8 people joined: ").removesuffix(" and 5 more.").split(", ")
    assert listed == order[:3]  # the first three, in the room's order
    peer.line("/who")  # what follows the batch: nothing more about these arrivals before it
    assert "joined" not in peer.read_until(r"^\* In the room: ")


def test_a_few_arrivals_at_once_are_still_told_one_line_each(
    start_host: Callable[..., Hosted], workers: list[NetWorker]
) -> None:
    _, _, port = start_host(allow_plain=True, announce_wait=LONG, announce_max=3)
    peer, _ = _text_member(port)
    names = ["Ann", "Bob", "Cy"]
    _arrive_together(port, names, workers)
    heard = [peer.read_until(r"joined") for _ in names]
    assert sorted(heard) == [f"* {name} joined." for name in names]


def test_app_members_get_every_joined_frame_and_the_host_one_list_per_batch(
    start_host: Callable[..., Hosted], workers: list[NetWorker]
) -> None:
    _, hrec, port = start_host(announce_wait=LONG, announce_max=6)
    names = [f"Dee{i}" for i in range(6)]
    recs = dict(zip(names, _arrive_together(port, names, workers), strict=True))
    hrec.wait_for(ev.MemberJoined, lambda e: e.name in names)
    batch = [e for e in hrec.of(ev.MemberJoined) if e.name in names]
    assert len(batch) == 6  # each told once
    assert len({id(e.members) for e in batch}) == 1  # one member list for all of the batch
    members = batch[0].members
    assert members[0] == "Hal"
    assert sorted(members[1:]) == names  # exact: the room after the batch
    assert [e.name for e in batch] == list(members[1:])  # in the room's order
    assert all(e.address is not None and e.encrypted for e in batch)
    # App members keep their exact frames: each hears of every one who came in after it.
    for i, name in enumerate(members[1:]):
        later = list(members[i + 2 :])
        if later:
            recs[name].wait_for(ev.MemberJoined, lambda e, last=later[-1]: e.name == last)
        assert [e.name for e in recs[name].of(ev.MemberJoined)] == later
        assert recs[name].of(ev.Connected)[0].members == members[: i + 2]


def test_the_line_for_many_arrivals_names_three_and_counts_the_unencrypted() -> None:
    from app.net.host import _Arrivals
    from app.protocol import arrivals_line

    msgs = [Joined("Ann"), Joined("Bob", plain=True), Joined("Cy"), Joined("Dan", plain=True)]
    msgs += [Joined(f"guest{i}", plain=True) for i in range(1, 1201)]
    batch = _Arrivals(msgs)
    assert batch.told("text", 0) == (
        b"* 1,204 people joined: Ann, Bob, Cy and 1,201 more (1,202 not encrypted).\n"
    )
    assert batch.told("text", 1) == (
        b"* 1,203 people joined: Bob, Cy, Dan and 1,200 more (1,202 not encrypted).\n"
    )
    tail = len(msgs) - 3  # the last three: one line each, as ever
    assert batch.told("text", tail) == (
        b"* guest1198 joined (not encrypted).\n"
        b"* guest1199 joined (not encrypted).\n"
        b"* guest1200 joined (not encrypted).\n"
    )
    assert batch.told("app", tail).count(b'"type":"joined"') == 3  # app members: every frame
    assert (
        arrivals_line(["Ann", "Bob", "Cy"], 4, 0)
        == b"* 4 people joined: Ann, Bob, Cy and 1 more.\n"
    )


def test_a_text_welcome_in_a_big_room_counts_the_unencrypted_instead_of_naming_them() -> None:
    plain = tuple(f"guest{i}" for i in range(1, 4001))
    welcome = Welcome("guest4000", ("Hal", *plain), plain=plain)
    text = encode_text(welcome).decode()
    assert len(text) < 400  # not 4,000 names
    assert "* Not encrypted: 4,000 members (/who lists them) are connected without encryption" in (
        text
    )
    small = encode_text(Welcome("guest2", ("Hal", "guest1", "guest2"), plain=("guest1", "guest2")))
    assert "* Not encrypted: guest1, guest2 are connected without encryption" in small.decode()


# --- departures -------------------------------------------------------------------------------


def test_many_connections_lost_at_once_are_told_as_one_batch(
    start_host: Callable[..., Hosted], join: Callable[..., tuple[NetWorker, Recorder]]
) -> None:
    """Six text members hang up together: a text member that stays hears one line, an app
    member every `left` frame, and the host's own person one event each, with one member list
    for the batch (a list per departure was a square of the room's size). `announce_wait`
    (2 s) is far longer than closing six sockets one after another takes."""
    _, hrec, port = start_host(allow_plain=True, announce_wait=2.0)
    watcher, _ = _text_member(port)
    _, arec = join(port, "Ann")
    leavers = [_text_member(port) for _ in range(6)]
    names = [name for _, name in leavers]
    arec.wait_for(ev.MemberJoined, lambda e: e.name == names[-1])
    for peer, _ in leavers:
        peer.close()
    line = watcher.read_until(r" left")
    for name in names:  # the host's own view is told just after the members
        hrec.wait_for(ev.MemberLeft, lambda e, name=name: e.name == name)
    gone = [e for e in hrec.of(ev.MemberLeft) if e.name in names]
    assert line.startswith("* 6 people left: "), line
    assert line.endswith(" and 3 more."), line
    assert line.encode() + b"\n" == departures_line([e.name for e in gone[:3]], 6)
    assert len(gone) == 6
    assert len({id(e.members) for e in gone}) == 1
    assert sorted(gone[0].members) == sorted(["Hal", "Ann", watcher_name(hrec, names)])
    arec.wait_for(ev.MemberLeft, lambda e: e.name == gone[-1].name)
    assert [(e.name, e.reason) for e in arec.of(ev.MemberLeft)] == [
        (e.name, e.reason) for e in gone
    ]


def watcher_name(hrec: Recorder, leavers: list[str]) -> str:
    """The one text member (not Ann, not a leaver) the host saw come in."""
    (name,) = {e.name for e in hrec.of(ev.MemberJoined)} - {"Ann", *leavers}
    return name


def test_a_lost_connection_is_told_before_anything_said_after_it(
    start_host: Callable[..., Hosted], join: Callable[..., tuple[NetWorker, Recorder]]
) -> None:
    """With the batch's wait beyond the test's deadline, only what follows sends it: asking
    `/who` again and again, the watcher hears "X left." before the first list without X."""
    _, hrec, port = start_host(allow_plain=True, announce_wait=LONG)
    watcher, _ = _text_member(port)
    leaver, name = _text_member(port)
    leaver.close()
    for _ in range(200):
        watcher.line("/who")
        line = watcher.read_until(r"^\* In the room: | left")
        if " left" in line:
            assert line == f"* {name} left."
            assert name not in watcher.read_until(r"^\* In the room: ")
            break
        assert name in line  # still in the room, as the host's order has it
    else:
        raise AssertionError("the departure was never told")
