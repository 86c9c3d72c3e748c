"""The window around the chat: remembered settings, arguments, the idle state, About, icon."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
import tkinter as tk
from pathlib import Path

from app import __version__
from app import events as ev
from app.gui.window import ENTRY_HINT, ChatWindow, load_icons
from app.settings import FILE_NAME
from tests.gui.conftest import MakeWindow
from tests.gui.tk_helpers import close_by_wm, pump_until, start_host, type_keys
from tests.helpers import Proc, free_port

COMFORT = {
    "theme": "system",
    "text_size": 0,
    "show_members": True,
    "confirm_end": True,
    "keep_history": True,
    "notifications": True,
}


def _shown(window: ChatWindow, key: str) -> bool:
    """Whether the bar shows the field `key` (its cell is in the flow)."""
    cell = window.bar.field(key).cell
    assert cell is not None
    return bool(cell.winfo_manager())


def test_before_a_chat_the_entry_is_disabled_with_a_hint(make_window: MakeWindow) -> None:
    window = make_window()
    assert window.view.state == "idle"
    assert window.entry.cget("state") == "disabled"
    assert window.entry.get("1.0", "end-1c") == ENTRY_HINT
    assert window.send_button.instate(["disabled"])
    assert window.status.cget("text").startswith("Not in a chat.")
    assert window.top.title() == "Parley"


def test_resizing_gives_the_space_to_the_transcript(make_window: MakeWindow, root: tk.Tk) -> None:
    window = make_window()
    top = window.top
    min_width, min_height = top.minsize()
    assert min_width >= window.bar.min_width()  # the Start button never falls off the bar
    top.geometry(f"{min_width}x{min_height}")
    pump_until(root, lambda: top.winfo_width() == min_width, "the small size")
    small = (window.transcript.winfo_width(), window.transcript.winfo_height())
    side = window.members.winfo_width()
    assert window.bar.start_button.winfo_ismapped()
    bar = window.bar
    button_right = bar.start_button.winfo_rootx() + bar.start_button.winfo_width()
    assert button_right <= bar.winfo_rootx() + bar.winfo_width()
    top.geometry(f"{min_width + 300}x{min_height + 200}")
    pump_until(root, lambda: top.winfo_width() == min_width + 300, "the larger size")
    assert window.transcript.winfo_width() == small[0] + 300
    # At least the added height (more, when the wider bar needs fewer rows).
    assert window.transcript.winfo_height() >= small[1] + 200
    assert window.members.winfo_width() == side


def test_typing_while_the_transcript_has_focus_goes_to_the_entry(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    start_host(hal, "Hal")
    text = hal.transcript.text
    text.focus_force()  # as after clicking it to select and copy
    pump_until(root, lambda: hal.top.focus_get() is text, "the transcript to have focus")
    type_keys(text, "hi")
    assert hal.entry.get("1.0", "end-1c") == "hi"
    assert hal.top.focus_get() is hal.entry


def test_host_mode_shows_this_machines_address_and_copies_it(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    hal.bar.set_mode("host")
    hal.bar.port.set("6000")
    assert hal.bar.addresses.get() == "127.0.0.1:6000"  # bound to loopback in tests
    assert not _shown(hal, "address")  # "host address" is for joining
    port = start_host(hal, "Hal")
    assert hal.bar.addresses.get() == f"127.0.0.1:{port}"  # the real port, not 0
    hal.bar.copy_button.invoke()
    assert root.clipboard_get() == f"127.0.0.1:{port}"
    assert f"Tell others to join: 127.0.0.1:{port}" in hal.transcript.contents()


def test_join_mode_asks_where_to_connect(make_window: MakeWindow) -> None:
    ann = make_window()
    ann.bar.set_mode("join")
    assert _shown(ann, "address")
    assert not _shown(ann, "your_address")  # "your address" is for hosting
    assert ann.bar.start_button.cget("text") == "Connect"
    ann.bar.set_mode("host")
    assert ann.bar.start_button.cget("text") == "Start"


def test_settings_are_remembered_between_windows(
    make_window: MakeWindow, root: tk.Tk, config_dir: Path
) -> None:
    first = make_window()
    first.bar.set_mode("join")
    first.bar.address.set("192.0.2.7")
    first.bar.port.set("6123")
    first.bar.name.set("Ann")
    close_by_wm(first)
    saved = json.loads((config_dir / FILE_NAME).read_text())
    assert saved == {
        "mode": "join",
        "host": "192.0.2.7",
        "port": 6123,
        "name": "Ann",
        **COMFORT,
        "room": "",
        "announce": True,
        "recent": [],
    }

    second = make_window()
    assert second.bar.current_mode == "join"
    assert (second.bar.address.get(), second.bar.port.get(), second.bar.name.get()) == (
        "192.0.2.7",
        "6123",
        "Ann",
    )


def test_a_corrupt_settings_file_means_defaults(make_window: MakeWindow, config_dir: Path) -> None:
    config_dir.mkdir(parents=True)
    (config_dir / FILE_NAME).write_bytes(b"\xff{not json")
    window = make_window()
    assert window.bar.current_mode == "host"
    assert window.bar.port.get() == "5151"
    assert window.view.state == "idle"


def test_arguments_start_hosting_or_joining_at_once(make_window: MakeWindow, root: tk.Tk) -> None:
    hal = make_window()
    hal.apply_arguments(host=True, port=0, name="Hal")
    pump_until(root, lambda: hal.view.state == "in_room", "hosting to start from the arguments")
    port = hal.view.port
    ann = make_window()
    ann.apply_arguments(join=f"127.0.0.1:{port}", name="Ann")
    pump_until(root, lambda: ann.view.state == "in_room", "joining from the arguments")
    assert ann.view.members == ("Hal", "Ann")
    assert (ann.bar.address.get(), ann.bar.port.get()) == ("127.0.0.1", str(port))


def test_a_bad_join_argument_is_shown_at_the_field(make_window: MakeWindow) -> None:
    ann = make_window()
    ann.apply_arguments(join="127.0.0.1:99999", name="Ann")
    assert ann.view.state == "idle"
    assert "not 99999" in ann.bar.errors["address"]


def test_the_app_window_hosts_from_the_command_line(config_dir: Path) -> None:
    """`python -m app --host ...` in its own process: a terminal joiner chats with it, and
    SIGTERM closes the window the polite way (the room ends for the joiner)."""
    port = free_port()
    app = Proc("--host", "--bind", "127.0.0.1", "--port", str(port), "--name", "Hal")
    joiner: Proc | None = None
    try:
        _wait_listening(port, app)
        joiner = Proc("join", f"127.0.0.1:{port}", "--name", "Ann")
        joiner.expect(r"In the room: Hal, Ann\.")
        app.p.send_signal(signal.SIGTERM)  # as when the session ends: close, saying bye
        joiner.expect(r"The host ended the chat\.")
        joiner.expect(r"^Chat ended\.$")
        assert joiner.wait() == 0
        assert app.wait() == 0
        assert "Traceback" not in "\n".join(app.err)
    finally:
        if joiner is not None:
            joiner.kill()
        app.kill()
    saved = json.loads((config_dir / FILE_NAME).read_text())
    assert saved == {
        "mode": "host",
        "host": "",
        "port": port,
        "name": "Hal",
        **COMFORT,
        "room": "",
        "announce": True,
        "recent": [],
    }


def _wait_listening(port: int, app: Proc) -> None:
    """The window takes a moment to open and listen: retry until a deadline, and stop at once
    if the app exits instead."""
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise AssertionError("the app never started listening") from None
        try:
            code = app.p.wait(0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"the app exited with {code}: {app.err!r}")


def test_about_shows_the_version(make_window: MakeWindow, root: tk.Tk) -> None:
    window = make_window()
    window.menu.nametowidget(window.menu.entrycget("Help", "menu")).invoke("About Parley")
    dialog = window.about_dialog
    assert dialog is not None
    assert dialog.winfo_exists()
    assert window.about_version.cget("text") == f"Version {__version__}"
    dialog.destroy()


def test_the_icon_is_used_when_present_and_its_absence_is_no_error(
    make_window: MakeWindow,
) -> None:
    window = make_window()
    assert load_icons(window.top, ("no-such-icon.png",)) == {}
    if load_icons(window.top, ("icon-256.png",)):  # the icon files are there: in use?
        # Tk keeps the icon on the toplevel's wrapper: the parent of its X window.
        tree = _x(["xwininfo", "-children", "-id", str(window.top.winfo_id())])
        match = re.search(r"Parent window id: (0x[0-9a-f]+)", tree)
        assert match is not None, tree
        # xprop reads the property's leading width and height (and skips the pixels).
        icon = _x(["xprop", "-len", "8", "-id", match.group(1), "_NET_WM_ICON"])
        assert "Icon (256 x 256)" in icon, icon


def _x(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=10).stdout


def test_a_closed_window_stops_reading_its_queue(make_window: MakeWindow, root: tk.Tk) -> None:
    hal = make_window()
    start_host(hal, "Hal")
    close_by_wm(hal)
    assert not hal.poller.running
    assert not hal.top.winfo_exists()
    waiting = hal.events.qsize()  # the goodbye's own events, posted after the poller stopped
    hal.events.put(ev.NoticeShown("too late"))
    root.after(50, lambda: None)
    root.tk.dooneevent(0)
    root.update()
    assert hal.events.qsize() == waiting + 1  # nobody reads: no timer touches dead widgets
