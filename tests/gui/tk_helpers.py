"""Driving a real window from a test: pump Tk until something holds, give focus, press keys."""

from __future__ import annotations

import time
import tkinter as tk
from collections.abc import Callable

from app.gui.window import ChatWindow

DEADLINE = 10.0
KEYSYMS = {
    " ": "space",
    "/": "slash",
    ".": "period",
    ",": "comma",
    "!": "exclam",
    "?": "question",
    ":": "colon",
    "-": "minus",
    "'": "apostrophe",
    "@": "at",
    "<": "less",
    ">": "greater",
}


def _noop() -> None:
    pass


def pump_until(
    root: tk.Misc, condition: Callable[[], bool], what: str, timeout: float = DEADLINE
) -> None:
    """Run Tk's event loop until `condition()` holds; fail loudly after `timeout` seconds.

    Waits inside Tk (`dooneevent` blocks until something happens; a short timer makes sure it
    wakes to look again), so the worker threads get the CPU instead of a busy loop.
    """
    deadline = time.monotonic() + timeout
    while True:
        root.update()
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {what}")
        root.after(5, _noop)
        root.tk.dooneevent(0)


def focus_entry(window: ChatWindow) -> None:
    """Give the entry box real keyboard focus (keys reach only the focused widget)."""
    top = window.top
    pump_until(top, top.winfo_ismapped, "the window to be mapped")
    window.entry.focus_force()
    pump_until(top, lambda: top.focus_get() is window.entry, "the entry to have focus")


def type_keys(widget: tk.Misc, text: str) -> None:
    """Type ASCII text as key presses on `widget` (which must have focus)."""
    for ch in text:
        widget.event_generate("<KeyPress>", keysym=KEYSYMS.get(ch, ch))


def say(window: ChatWindow, text: str) -> None:
    """Type `text` into the entry box and press Enter, as a person would."""
    focus_entry(window)
    type_keys(window.entry, text)
    window.entry.event_generate("<Return>")


def start_host(window: ChatWindow, name: str) -> int:
    """Host on an OS-chosen loopback port; returns the port from the Hosting event."""
    window.bar.set_mode("host")
    window.bar.port.set("0")
    window.bar.name.set(name)
    window.bar.start_button.invoke()
    pump_until(window.top, lambda: window.view.state == "in_room", f"{name} to be hosting")
    return window.view.port


def start_join(window: ChatWindow, port: int, name: str) -> None:
    window.bar.set_mode("join")
    window.bar.address.set("127.0.0.1")
    window.bar.port.set(str(port))
    window.bar.name.set(name)
    window.bar.start_button.invoke()
    pump_until(window.top, lambda: window.view.state == "in_room", f"{name} to be in the room")


def hal_and_ann(make_window: Callable[..., ChatWindow]) -> tuple[ChatWindow, ChatWindow, int]:
    """The usual room: Hal hosting in one window, Ann joined from another; and the port."""
    hal = make_window()
    port = start_host(hal, "Hal")
    ann = make_window()
    start_join(ann, port, "Ann")
    return hal, ann, port


def shows(window: ChatWindow, fragment: str) -> Callable[[], bool]:
    return lambda: fragment in window.transcript.contents()


def listed(window: ChatWindow) -> list[str]:
    """The member list as displayed."""
    return [str(item) for item in window.members.get(0, "end")]


def close_by_wm(window: ChatWindow, *, confirm: bool = True) -> None:
    """Close the way the window manager does: through the WM_DELETE_WINDOW handler. A host with
    others in the room is asked "End the room for everyone?": with `confirm`, press End."""
    handler = window.top.protocol("WM_DELETE_WINDOW")
    window.top.tk.call(handler)
    if confirm and not window.closed:
        assert window.confirm_dialog is not None
        assert window.confirm_dialog.winfo_exists()
        window.end_room_button.invoke()
