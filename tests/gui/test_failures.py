"""Every failure shows in plain words in the window, which stays usable afterwards."""

from __future__ import annotations

import os
import signal
import socket
import tkinter as tk

import pytest

from app.gui.window import ENTRY_HINT
from tests.gui.conftest import MakeWindow
from tests.gui.tk_helpers import (
    close_by_wm,
    listed,
    pump_until,
    say,
    shows,
    start_host,
    start_join,
)
from tests.helpers import Proc, free_port


def no_traceback(text: str) -> bool:
    return "Traceback" not in text and 'File "' not in text


def test_connection_refused(make_window: MakeWindow, root: tk.Tk) -> None:
    ann = make_window()
    port = free_port()  # nothing listens there
    ann.bar.set_mode("join")
    ann.bar.address.set("127.0.0.1")
    ann.bar.port.set(str(port))
    ann.bar.name.set("Ann")
    ann.bar.start_button.invoke()
    pump_until(root, shows(ann, "connection refused"), "the refusal to show")
    text = ann.transcript.contents()
    assert f"Could not connect to 127.0.0.1:{port}: connection refused" in text
    assert no_traceback(text)
    assert "connection refused" in ann.status.cget("text")
    assert ann.view.state == "idle"
    assert ann.bar.start_button.cget("text") == "Connect"
    assert ann.bar.start_button.instate(["!disabled"])
    assert ann.entry.get("1.0", "end-1c") == ENTRY_HINT


def test_port_in_use(make_window: MakeWindow, root: tk.Tk) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        hal = make_window()
        hal.bar.set_mode("host")
        hal.bar.port.set(str(port))
        hal.bar.name.set("Hal")
        hal.bar.start_button.invoke()
        pump_until(root, shows(hal, "already in use"), "the port-in-use failure")
    assert no_traceback(hal.transcript.contents())
    assert "already in use" in hal.status.cget("text")
    assert hal.view.state == "idle"
    assert hal.bar.start_button.cget("text") == "Start"
    # Another port works at once, in the same window.
    start_host(hal, "Hal")


@pytest.mark.parametrize(
    ("port", "hint"),
    [
        ("70000", "Port must be a number from 0 to 65535, not 70000."),
        ("abc", "Port must be a number from 0 to 65535, not 'abc'."),
        ("", "Port must be a number from 0 to 65535, not ''."),
    ],
)
def test_a_bad_port_is_refused_at_the_field(
    make_window: MakeWindow, root: tk.Tk, port: str, hint: str
) -> None:
    hal = make_window()
    hal.bar.set_mode("host")
    hal.bar.port.set(port)
    hal.bar.start_button.invoke()
    root.update()
    assert hal.bar.hint.cget("text") == hint
    assert hal.bar.hint.winfo_ismapped()
    assert hal.bar.port_entry.instate(["invalid"])
    assert hal.top.focus_get() is hal.bar.port_entry
    assert hal.view.state == "idle"
    assert not hal.worker.running  # nothing was started
    # Fixing the field clears the mark and the hint.
    hal.bar.port.set("0")
    assert not hal.bar.port_entry.instate(["invalid"])
    assert hal.bar.hint.cget("text") == ""


def test_an_empty_host_and_name_are_refused_at_their_fields(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    ann = make_window()
    ann.bar.set_mode("join")
    ann.bar.address.set("  ")
    ann.bar.port.set("0")
    ann.bar.name.set("")
    ann.bar.start_button.invoke()
    assert ann.bar.errors == {
        "address": "Enter the host's address, e.g. 192.168.1.5 or 192.168.1.5:5151.",
        "port": "Port must be a number from 1 to 65535 when joining.",
        "name": "A name cannot be empty.",
    }
    for entry in (ann.bar.address_entry, ann.bar.port_entry, ann.bar.name_entry):
        assert entry.instate(["invalid"])
    assert not ann.worker.running


def test_a_port_typed_with_the_address_is_used_and_split_out(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    port = start_host(hal, "Hal")
    ann = make_window()
    ann.bar.set_mode("join")
    ann.bar.address.set(f"127.0.0.1:{port}")
    ann.bar.port.set("junk")  # ignored: the address says which port
    ann.bar.name.set("Ann")
    ann.bar.start_button.invoke()
    pump_until(root, lambda: ann.view.state == "in_room", "Ann to join")
    assert (ann.bar.address.get(), ann.bar.port.get()) == ("127.0.0.1", str(port))


def terminal_host(port: int = 0) -> tuple[Proc, int]:
    host = Proc("host", "--port", str(port), "--bind", "127.0.0.1", "--name", "Hal")
    return host, int(host.expect(r"on port (\d+)").group(1))


def test_connection_lost_then_back_when_the_host_returns(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    host, port = terminal_host()
    try:
        ann = make_window()
        start_join(ann, port, "Ann")
        host.p.kill()  # no goodbye: the process is simply gone
        host.p.wait(10)
        pump_until(root, shows(ann, "The connection to the host was lost."), "the loss")
    finally:
        host.kill()
    assert ann.status.cget("text").startswith("Connection lost. Reconnecting: ")
    assert no_traceback(ann.transcript.contents())
    # Still in the room for the user: the entry works, and what is typed waits.
    assert ann.view.state == "in_room"
    say(ann, "typed while away")
    pump_until(root, shows(ann, "typed while away"), "the pending line")

    host, _ = terminal_host(port)  # the host is back, on the same port and data folder:
    try:  # its room log knows Ann, so she is resumed as herself
        pump_until(root, shows(ann, "Back in the room."), "Ann to be back")
        host.expect(r"^Ann: typed while away$")
        assert ann.status.cget("text") == f"Connected as Ann to 127.0.0.1:{port}"
        pump_until(root, lambda: listed(ann) == ["Hal", "Ann (you)"], "the member list")
    finally:
        host.kill()


def test_leaving_while_reconnecting_ends_the_chat(make_window: MakeWindow, root: tk.Tk) -> None:
    host, port = terminal_host()
    try:
        ann = make_window()
        start_join(ann, port, "Ann")
        host.p.kill()
        host.p.wait(10)
    finally:
        host.kill()
    pump_until(root, lambda: ann.view.reconnecting, "Ann to be reconnecting")
    ann.bar.start_button.invoke()  # Leave
    pump_until(root, shows(ann, "Chat ended."), "the chat to end")
    assert ann.view.state == "idle"
    assert ann.status.cget("text") == "Chat ended: you left the chat."
    assert listed(ann) == []


def test_closing_returns_and_cleans_up_even_if_the_host_is_stuck(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    host, port = terminal_host()
    try:
        ann = make_window()
        start_join(ann, port, "Ann")
        os.kill(host.p.pid, signal.SIGSTOP)  # the host hears nothing and answers nothing
        try:
            close_by_wm(ann)
            assert ann.closed
            assert not ann.worker.running
            assert not ann.top.winfo_exists()
        finally:
            os.kill(host.p.pid, signal.SIGCONT)
    finally:
        host.kill()
