"""The window and rooms on the network: the start screen, the live list, Recent.

Real multicast DNS on loopback (PARLEY_MDNS_INTERFACES=127.0.0.1, hosts bound to 127.0.0.1).
Other test runs announce rooms on the same loopback: each test names its room uniquely.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import uuid

from app.gui.logic import Request
from app.net import HostOptions
from app.settings import SettingsStore
from tests.gui.conftest import MakeWindow, host_options
from tests.gui.tk_helpers import pump_until, say, shows
from tests.helpers import Proc


def announcing(request: Request) -> HostOptions:
    return dataclasses.replace(host_options(request), announce=True)


def test_the_start_screen_shows_on_first_launch_and_while_no_session_is_open(
    make_window: MakeWindow,
) -> None:
    window = make_window()
    screen = window.start_screen
    pump_until(window.top, screen.winfo_ismapped, "the start screen to show")
    assert screen.winfo_width() == window.transcript.winfo_width()  # over the transcript
    assert screen.host_button.winfo_ismapped()
    assert screen.rooms.winfo_ismapped()
    assert screen.join_button.winfo_ismapped()
    window.bar.name.set("Zoe")
    assert screen.room_hint.cget("text") == "Leave empty for “Zoe's room”."

    window.bar.port.set("0")
    screen.host_button.invoke()  # one click hosts
    pump_until(window.top, lambda: window.view.state == "in_room", "hosting")
    pump_until(window.top, lambda: not screen.winfo_ismapped(), "the start screen to go")
    window.leave()
    pump_until(window.top, screen.winfo_ismapped, "the start screen to come back")


def test_a_room_hosted_in_one_window_is_listed_in_another_and_a_double_click_joins(
    make_window: MakeWindow, config_dir
) -> None:
    name = f"Lunch {uuid.uuid4().hex[:8]}"
    hal = make_window(host_options=announcing)
    hal.room_name.set(name)
    hal.bar.name.set("Hal")
    hal.bar.port.set("0")
    hal.start_screen.host_button.invoke()
    pump_until(hal.top, lambda: hal.view.state == "in_room", "Hal to be hosting")

    ann = make_window(discover=True, store=SettingsStore(config_dir / "ann"))
    ann.bar.name.set("Ann")
    rooms = ann.start_screen.rooms

    def row() -> str | None:
        return next((k for k, r in rooms.rooms.items() if r.name == name), None)

    pump_until(ann.top, lambda: row() is not None, "Hal's room in Ann's list", timeout=15)
    key = row()
    assert key is not None
    assert rooms.tree.item(key, "values") == ("1", f"127.0.0.1:{hal.view.port}")
    assert rooms.tree.item(key, "text") == name  # no lock: no password

    rooms.tree.see(key)
    pump_until(ann.top, lambda: bool(rooms.tree.bbox(key)), "the row to be drawn")
    x, y, _, height = rooms.tree.bbox(key)  # type: ignore[misc]
    for _ in range(2):  # two clicks in quick succession: Tk makes them a double-click
        for kind in ("<ButtonPress-1>", "<ButtonRelease-1>"):
            rooms.tree.event_generate(kind, x=x + 5, y=y + height // 2)
    pump_until(ann.top, lambda: ann.view.state == "in_room", "Ann to join by double-click")
    say(ann, "found it")
    pump_until(hal.top, shows(hal, "found it"), "Ann's message at Hal's")
    # The room is remembered by its name for networks where nothing is announced.
    assert ann.recent[0].name == name
    assert ann.store is not None
    assert ann.store.load().recent[0]["name"] == name
    # Hal's room now has two people: the list follows (seen again after Ann leaves).
    ann.leave()
    pump_until(ann.top, lambda: ann.start_screen.winfo_ismapped(), "Ann's start screen")
    pump_until(
        ann.top,
        lambda: row() is not None and rooms.rooms[row() or ""].members == 1,
        "the room listed again",
        timeout=15,
    )
    assert ann.start_screen.recent.box.get(0).startswith(name)


def test_the_room_name_and_visible_on_this_network_are_remembered(
    make_window: MakeWindow, config_dir
) -> None:
    first = make_window()
    first.room_name.set("Book club")
    first.start_screen.visible_box.invoke()  # untick: host without announcing
    assert first.announce.get() is False
    request = Request("host", "", 0, "Hal")
    options = first.host_options_for(request)
    assert (options.room, options.announce) == ("Book club", False)
    first.close()
    second = make_window()
    assert second.room_name.get() == "Book club"
    assert second.announce.get() is False


def test_the_app_window_hosting_from_the_command_line_announces_its_room(
    config_dir, tmp_path
) -> None:
    """`python -m app --host --room NAME` in its own process: it browses at start-up and stops
    at once to host (a browser cancelled during zeroconf's start-up once broke announcing)."""
    name = f"Window room {uuid.uuid4().hex[:8]}"
    app = Proc("--host", "--bind", "127.0.0.1", "--port", "0", "--name", "Hal", "--room", name)
    try:
        listed = ""
        for _ in range(3):  # a bounded number of looks
            done = subprocess.run(
                [sys.executable, "-m", "app", "rooms", "--wait", "3"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            listed = done.stdout
            if name in listed:
                break
        assert f"{name}  127.0.0.1:" in listed, (listed, app.err)
        app.p.send_signal(signal.SIGTERM)  # closes the window: the room is withdrawn
        assert app.wait() == 0
        after = subprocess.run(
            [sys.executable, "-m", "app", "rooms", "--wait", "2"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert name not in after.stdout
    finally:
        app.kill()


def test_a_failed_join_says_what_is_likely_on_the_start_screen(make_window: MakeWindow) -> None:
    """The doctor's words after "could not connect" (no connection is made: the failure is
    handed to the window as the worker would post it)."""
    from app import doctor
    from app import events as ev

    window = make_window()
    window.view.starting(Request("join", "192.0.2.7", 5151, "Ann"))
    expected = doctor.explain_unreachable("192.0.2.7")
    assert expected is not None
    window.events.put(ev.Failed("Could not connect to 192.0.2.7:5151: timed out.", "timeout"))
    pump_until(window.top, lambda: expected in window.transcript.contents(), "the doctor's hint")
    shown = str(window.start_screen.last.cget("text"))
    assert shown == f"Could not connect to 192.0.2.7:5151: timed out.\n{expected}"
    pump_until(window.top, window.start_screen.winfo_ismapped, "the start screen")


def test_a_host_sees_its_addresses_by_interface(make_window: MakeWindow) -> None:
    window = make_window()
    window.bar.port.set("0")
    window.start_screen.host_button.invoke()
    pump_until(window.top, lambda: window.view.state == "in_room", "hosting")
    pump_until(
        window.top,
        shows(window, f"Others reach this room at: 127.0.0.1:{window.view.port} (this machine"),
        "the addresses by interface",
    )
    assert "Warning: these addresses reach this machine only" in window.transcript.contents()


def test_the_rooms_list_shows_its_people_heading_whole(root) -> None:  # type: ignore[no-untyped-def]
    """The People column was 56 px wide whatever the font: its bold heading came out "Peopl".
    It is now as wide as the heading in the heading font, at any text size."""
    import tkinter.font as tkfont

    from app.gui.room_browser import RoomList

    heading = tkfont.nametofont("TkHeadingFont")
    for size in (heading.actual("size"), 18):
        heading.configure(size=size)
        rooms = RoomList(root, on_join=lambda room: None)
        width = int(rooms.tree.column("members", "width"))
        assert width > heading.measure("People") + 8, (size, width)
        rooms.destroy()
