"""Rooms on the network: announced and found over real multicast DNS, on loopback only.

`PARLEY_MDNS_INTERFACES=127.0.0.1` (tests/conftest.py) keeps every instance on loopback, and
the hosts bind 127.0.0.1. Other test runs on this machine announce rooms on the same loopback at
the same time: every test names its rooms uniquely and looks only at those.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from app import events as ev
from app.__main__ import may_be_room_name
from app.net.discovery import (
    ENV_INTERFACES,
    RoomAd,
    announce_addresses,
    announce_interfaces,
    check_room_name,
    default_room_name,
    interfaces_from_env,
    room_from_info,
    trim_room_name,
    txt_for,
)
from app.worker import NetWorker
from tests.helpers import Proc, Recorder

KILLED_TTL = 2  # seconds the killed host's records live (its room must vanish after them)
GONE_DEADLINE = 20.0  # the records' lifetime, plus a browser's sweep (5 s) and its query (1 s)


def unique(what: str = "room") -> str:
    return f"{what} {uuid.uuid4().hex[:10]}"


@pytest.fixture
def browser(workers: list[NetWorker]) -> Recorder:
    """A worker browsing for rooms; its events in a Recorder."""
    rec = Recorder()
    worker = NetWorker(rec)
    workers.append(worker)
    worker.browse()
    return rec


def found(
    rec: Recorder, room: str, pred: Callable[[ev.RoomFound], bool] = lambda r: True
) -> ev.RoomFound:
    return rec.wait_for(ev.RoomFound, lambda r: r.name == room and pred(r))


def latest(rec: Recorder, key: str) -> ev.Event | None:
    """The last thing heard about the room `key`: RoomFound, RoomGone or None."""
    mine = [e for e in rec.events if isinstance(e, ev.RoomFound | ev.RoomGone) and e.key == key]
    return mine[-1] if mine else None


# --- pure logic ------------------------------------------------------------------------------


def test_the_txt_record_says_everything_but_the_password() -> None:
    ad = RoomAd("Hal's room", 5151, ("10.0.0.2:5151",), "AB:CD", 3, True, False)
    txt = txt_for(ad)
    assert txt == {
        "v": "2",
        "room": "Hal's room",
        "fp": "AB:CD",
        "n": "3",
        "pw": "1",
        "plain": "0",
        "u": "0",
    }


def test_an_announcement_is_untrusted_input() -> None:
    props: dict[bytes, bytes | None] = {
        b"room": b"\x1b[31mEvil\x07 " + b"x" * 500,
        b"n": b"-5",
        b"pw": b"1",
        b"fp": b"F" * 1000,
    }
    room = room_from_info("k", "k", 5151, ["192.0.2.1"], props)
    assert room is not None
    assert "\x1b" not in room.name
    assert "\x07" not in room.name
    assert room.name.startswith("Evil x")  # the escape sequence removed whole
    assert len(room.name) <= 63
    assert room.members == 0  # not a count: shown as none rather than trusted
    assert room.password
    assert len(room.fingerprint) == 128
    assert room_from_info("k", "k", 0, ["192.0.2.1"], props) is None  # no port: not a room
    assert room_from_info("k", "k", 5151, [], props) is None  # nowhere to connect


def test_an_address_on_my_own_network_is_offered_first() -> None:
    import ipaddress

    nets = [ipaddress.ip_network("10.0.0.0/24")]
    room = room_from_info("k", "R", 5151, ["192.168.9.9", "169.254.1.1", "10.0.0.7"], {}, nets)
    assert room is not None
    assert room.host == "10.0.0.7"
    assert room.addresses == ("10.0.0.7", "192.168.9.9", "169.254.1.1")
    assert room.name == "R"


def test_interfaces_come_from_the_environment() -> None:
    assert interfaces_from_env({}) is None
    assert interfaces_from_env({ENV_INTERFACES: "127.0.0.1, 10.0.0.2"}) == ["127.0.0.1", "10.0.0.2"]
    assert interfaces_from_env({ENV_INTERFACES: "eth0"}) == []  # a typo never means "all"
    env = {ENV_INTERFACES: "127.0.0.1"}
    assert announce_interfaces(None, env) == ["127.0.0.1"]
    assert announce_interfaces("127.0.0.1", {}) == ["127.0.0.1"]  # --bind: that one only
    assert announce_interfaces("10.0.0.2", env) == []  # outside what the variable allows
    assert announce_interfaces(None, {}) is None
    assert announce_addresses(["127.0.0.1"], ("10.0.0.2:5151",)) == ["127.0.0.1"]
    assert announce_addresses(None, ("10.0.0.2:5151", "[fe80::1]:5151", "127.0.0.1:1")) == [
        "10.0.0.2"
    ]


def test_room_names() -> None:
    assert default_room_name("Hal") == "Hal's room"
    assert trim_room_name("  a\tb\x1b  ") == "a b"
    long = "é" * 40  # 80 bytes
    assert len(trim_room_name(long).encode()) <= 63
    assert check_room_name(long) is not None
    assert check_room_name("   ") is not None
    assert check_room_name("Kitchen") is None


@pytest.mark.parametrize(
    ("text", "room"),
    [
        ("Hal's room", True),
        ("kitchen", True),  # a word: a room of that name first, else the host name
        ("192.168.1.5", False),
        ("192.168.1.5:5151", False),
        ("host.example:80", False),
        ("pc.local", False),
        ("localhost", False),
        ("[::1]:5151", False),
        ("host:notaport", False),  # a mistyped address gets the address's error
        ("Room: Ann", True),
        ("parley://127.0.0.1:5151/#fp=abc", False),
    ],
)
def test_what_join_takes_for_a_room_name(text: str, room: bool) -> None:
    assert may_be_room_name(text) is room


# --- over multicast on loopback --------------------------------------------------------------


def test_a_room_is_found_with_its_details_and_follows_joins_and_the_end(
    start_host, join, browser: Recorder
) -> None:
    name = unique()
    host, _, port = start_host(announce=True, room=name, password="pw")
    room = found(browser, name)
    assert room.port == port
    assert room.host == "127.0.0.1"
    assert room.members == 1
    assert room.password
    assert not room.allow_plain
    assert room.version == "2"
    assert len(room.fingerprint) == 95  # the full fingerprint (hex pairs and colons)

    ann, _ = join(port, password="pw")
    two = found(browser, name, lambda r: r.members == 2)
    after = next(i for i, e in enumerate(browser.events) if e is two)
    ann.leave().result(10)
    found(browser, name, lambda r: r.members == 1 and any(e is r for e in browser.events[after:]))
    assert isinstance(latest(browser, room.key), ev.RoomFound)

    host.leave().result(10)  # the goodbye: gone at once, not after the records' lifetime
    browser.wait_for(ev.RoomGone, lambda g: g.key == room.key, timeout=5)


def test_the_member_count_is_not_updated_more_than_once_a_second(
    start_host, join, browser: Recorder
) -> None:
    name = unique()
    _, _, port = start_host(announce=True, room=name)
    found(browser, name)
    joined = [join(port, name=f"P{i}") for i in range(3)]
    found(browser, name, lambda r: r.members == 4)
    counts = [e.members for e in browser.of(ev.RoomFound) if e.name == name]
    assert counts[0] == 1
    assert len(counts) <= 3  # three joins in quick succession: not one update each
    assert joined


def test_a_killed_hosts_room_vanishes_after_its_records_lifetime(
    procs, browser: Recorder, tmp_path: Path
) -> None:
    name = unique()
    script = textwrap.dedent(
        f"""
        import queue, sys
        from pathlib import Path
        from app import events as ev
        from app.net import HostOptions
        from app.worker import NetWorker
        got = queue.Queue()
        worker = NetWorker(got.put)
        worker.host(HostOptions(port=0, bind="127.0.0.1", name="K", room={name!r},
                                announce_ttl={KILLED_TTL}, data_dir=Path({str(tmp_path)!r})))
        while True:
            event = got.get()
            if isinstance(event, ev.Hosting):
                print("hosting", flush=True)
        """
    )
    proc = procs(argv=[sys.executable, "-c", script])
    proc.expect("^hosting$")
    room = found(browser, name)
    proc.p.send_signal(signal.SIGKILL)  # no goodbye: only the records' lifetime ends it
    proc.p.wait(10)
    browser.wait_for(ev.RoomGone, lambda g: g.key == room.key, timeout=GONE_DEADLINE)


def test_two_rooms_on_one_machine_are_both_listed_and_no_announce_is_not(procs) -> None:
    first, second, hidden = unique(), unique(), unique()
    hosts = [
        procs("host", "--port", "0", "--bind", "127.0.0.1", "--room", first),
        procs("host", "--port", "0", "--bind", "127.0.0.1", "--room", second, "--password", "x"),
        procs("host", "--port", "0", "--bind", "127.0.0.1", "--room", hidden, "--no-announce"),
    ]
    ports = [int(h.expect(r"on port (\d+)").group(1)) for h in hosts]
    listed = _rooms_until(procs, [first, second])
    assert f"{first}  127.0.0.1:{ports[0]}  1 member  identity " in listed
    assert f"{second}  127.0.0.1:{ports[1]}  1 member  password  identity " in listed
    assert hidden not in listed


def _rooms_until(procs: Callable[..., Proc], names: list[str], tries: int = 6) -> str:
    """`parley rooms` output once it lists all of `names` (a host still probing its name may
    miss a look: two rooms of one name take a conflict and a second probe, which in a full
    run of the suite once outlasted three looks of 2 s; a bounded number of looks)."""
    out = ""
    for _ in range(tries):
        done = subprocess.run(
            [sys.executable, "-m", "app", "rooms", "--wait", "2"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0
        out = done.stdout
        if all(out.count(f"{n}  ") >= names.count(n) for n in names):
            return out
    raise AssertionError(f"not all of {names} listed: {out!r}")


def test_rooms_says_when_it_found_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Over the network "none" cannot be had here: other test runs announce rooms on this
    # loopback at any time (even a browser bound to 127.0.0.2 sees them). The look itself is
    # tested above; here, what is printed when it finds nothing.
    from app import cli

    looked: list[float] = []
    monkeypatch.setattr(cli, "find_rooms", lambda wait: looked.append(wait) or [])
    assert cli.rooms(0.5) == 0
    assert looked == [0.5]
    out = capsys.readouterr().out
    assert out.startswith("No rooms found on the network (looked for 0.5 s).")


def test_join_by_room_name_chats(procs) -> None:
    name = unique("Hal's room")
    host = procs("host", "--port", "0", "--bind", "127.0.0.1", "--name", "Hal", "--room", name)
    port = int(host.expect(r"on port (\d+)").group(1))
    ann = procs("join", name.upper(), "--name", "Ann")  # case does not matter
    ann.expect(rf"^Found the room “{name}” at 127\.0\.0\.1:{port}\.$")
    ann.expect(r"^You are Ann\. In the room: Hal, Ann\.$")
    ann.say("found you")
    host.expect("^Ann: found you$")


def test_join_by_a_name_two_rooms_share_lists_both_and_exits_1(procs) -> None:
    name = unique()
    hosts = [procs("host", "--port", "0", "--bind", "127.0.0.1", "--room", name) for _ in "ab"]
    ports = sorted(int(h.expect(r"on port (\d+)").group(1)) for h in hosts)
    _rooms_until(procs, [name, name])
    ann = procs("join", name, "--name", "Ann")
    assert ann.wait(20) == 1
    assert ann.err[0] == f"2 rooms are called “{name}”; join one by its address:"
    listed = sorted(int(line.split("127.0.0.1:")[1].split()[0]) for line in ann.err[1:])
    assert listed == ports


def test_join_by_an_unknown_room_name_exits_1(procs) -> None:
    ann = procs("join", unique("no such room"), "--name", "Ann")
    assert ann.wait(20) == 1
    assert ann.err[-1].startswith("No room called ")


def test_sigterm_withdraws_the_room(procs, browser: Recorder) -> None:
    name = unique()
    host = procs("host", "--port", "0", "--bind", "127.0.0.1", "--room", name)
    room = found(browser, name)
    host.p.send_signal(signal.SIGTERM)
    assert host.wait() == 0
    browser.wait_for(ev.RoomGone, lambda g: g.key == room.key, timeout=5)


def test_member_count_updates_are_at_most_one_per_interval() -> None:
    """The announcement's throttle, on the loop's clock, with a recorder for the network."""
    import asyncio

    from zeroconf.asyncio import AsyncServiceInfo

    from app.net.discovery import SERVICE, Announcement, Discovery

    class Network:
        def __init__(self) -> None:
            self.sent: list[tuple[float, str]] = []

        async def async_update_service(self, info: AsyncServiceInfo) -> None:
            count = info.properties[b"n"]
            assert count is not None
            self.sent.append((asyncio.get_running_loop().time(), count.decode()))

    async def run() -> tuple[float, list[tuple[float, str]]]:
        interval = 0.2
        network = Network()
        ad = RoomAd("R", 5151, ("127.0.0.1:5151",), "AB", 1, False, False)
        info = AsyncServiceInfo(SERVICE, f"R.{SERVICE}", port=5151, properties=txt_for(ad))
        start = asyncio.get_running_loop().time()
        announcement = Announcement(Discovery(lambda e: None, interval=interval), network, info, ad)  # type: ignore[arg-type]
        for count in (2, 3, 4):  # three joins at once: one update, with the last count
            announcement.set_members(count)
        await asyncio.sleep(interval * 1.5)
        announcement.set_members(5)  # soon after: waits for the interval to pass
        await asyncio.sleep(interval * 2)
        announcement.set_members(5)  # no change: no update
        await asyncio.sleep(interval * 4)
        return start, network.sent

    start, sent = asyncio.run(run())
    assert [count for _, count in sent] == ["4", "5"]
    assert sent[0][0] - start >= 0.2 - 0.01
    assert sent[1][0] - sent[0][0] >= 0.2 - 0.01


def test_hosting_goes_on_when_multicast_dns_fails(
    start_host, join, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Port 5353 taken, no multicast: the room opens anyway and says it is not announced."""
    import errno

    import app.net.discovery as discovery

    def unavailable(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EADDRINUSE, "Address already in use")

    monkeypatch.setattr(discovery, "AsyncZeroconf", unavailable)
    _, hrec, port = start_host(announce=True, room=unique())
    notice = hrec.wait_for(ev.NoticeShown, lambda n: "not announced" in n.text)
    assert notice.text == (
        "This room is not announced on the network (address already in use). "
        "Others can still join by address."
    )
    _, arec = join(port)
    assert isinstance(arec.wait_for((ev.Connected, ev.Failed)), ev.Connected)  # type: ignore[arg-type]


def test_a_host_outside_the_allowed_interfaces_is_not_announced(
    start_host, join, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_INTERFACES, "127.0.0.2")  # the host binds 127.0.0.1
    _, hrec, port = start_host(announce=True, room=unique())
    notice = hrec.wait_for(ev.NoticeShown, lambda n: "not announced" in n.text)
    assert "PARLEY_MDNS_INTERFACES leaves out the address it listens on (127.0.0.1)" in notice.text
    _, arec = join(port)
    assert isinstance(arec.wait_for((ev.Connected, ev.Failed)), ev.Connected)  # type: ignore[arg-type]
