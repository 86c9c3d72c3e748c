"""The window as people really use it (issue 12): state that matches what happened, the keyboard,
small windows, dark mode, text size, links, name colours and right-to-left text. Real windows
under Xvfb, real sockets on 127.0.0.1, real focus and key events."""

from __future__ import annotations

import dataclasses
import json
import socket
import tkinter as tk
import tkinter.font as tkfont
from pathlib import Path
from tkinter import ttk

import pytest

from app import events as ev
from app.gui import theme
from app.gui.logic import EARLIER_DIVIDER, Request, text_limit
from app.gui.window import ChatWindow
from app.net import JoinOptions
from app.settings import FILE_NAME
from tests.gui.conftest import MakeWindow, join_options
from tests.gui.test_failures import terminal_host
from tests.gui.tk_helpers import (
    close_by_wm,
    focus_entry,
    hal_and_ann,
    listed,
    pump_until,
    say,
    shows,
    start_host,
    start_join,
)


def saved(config_dir: Path) -> dict[str, object]:
    data = json.loads((config_dir / FILE_NAME).read_text())
    assert isinstance(data, dict)
    return data


def give_focus(window_widget: tk.Misc) -> None:
    top = window_widget.winfo_toplevel()
    pump_until(top, top.winfo_ismapped, "the window to be mapped")
    window_widget.focus_force()
    pump_until(top, lambda: top.focus_get() is window_widget, f"{window_widget} to have focus")


def key(widget: tk.Misc, keysym: str, state: int = 0) -> None:
    widget.event_generate("<KeyPress>", keysym=keysym, state=state)
    widget.update()


CONTROL, SHIFT = 0x4, 0x1


def connect_to_a_bare_socket(window: ChatWindow, server: socket.socket) -> ChatWindow:
    """`server` listens on loopback (and answers nothing by itself); `window` connects to it."""
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    window.bar.set_mode("join")
    window.bar.address.set("127.0.0.1")
    window.bar.port.set(str(server.getsockname()[1]))
    window.bar.start_button.invoke()
    return window


# --- state that matches what happened --------------------------------------------------------


def test_nick_updates_the_name_field_and_the_settings(
    make_window: MakeWindow, root: tk.Tk, config_dir: Path
) -> None:
    hal, ann, _ = hal_and_ann(make_window)
    say(ann, "/nick Annie")
    pump_until(root, lambda: ann.bar.name.get() == "Annie", "the name field to follow /nick")
    assert saved(config_dir)["name"] == "Annie"
    assert not ann.transcript.text.tag_ranges("pending")  # /nick is no pending chat line
    pump_until(root, lambda: "Annie" in listed(hal), "Hal to see the new name")


def test_an_automatic_rename_updates_the_name_field(
    make_window: MakeWindow, root: tk.Tk, config_dir: Path
) -> None:
    _hal, _ann, port = hal_and_ann(make_window)
    second = make_window()
    start_join(second, port, "Ann")
    assert second.view.me == "Ann (2)"
    assert second.bar.name.get() == "Ann (2)"
    assert saved(config_dir)["name"] == "Ann (2)"


def test_commands_are_not_echoed_as_pending_lines(make_window: MakeWindow, root: tk.Tk) -> None:
    _hal, ann, _ = hal_and_ann(make_window)
    for command in ("/who", "/help"):
        say(ann, command)
    pump_until(root, shows(ann, "Commands:"), "the /help answer")
    pump_until(root, shows(ann, "In the room: Hal, Ann."), "the /who answer")
    assert not any(line.endswith(("  /who", "  /help")) for line in ann.transcript.lines())
    assert not ann.transcript.text.tag_ranges("pending")


def test_a_line_over_the_size_limit_is_refused_before_sending_and_kept(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal, ann, _ = hal_and_ann(make_window)
    big = "é" * (text_limit() // 2 + 1)  # two bytes each: one byte over the limit
    focus_entry(ann)
    ann.entry.insert("1.0", big)
    ann.entry.event_generate("<Return>")
    ann.top.update()
    assert ann.entry.get("1.0", "end-1c") == big  # still there, to shorten
    assert ann.entry_error.winfo_manager() == "grid"
    assert "Too long to send" in ann.entry_error.cget("text")
    ann.entry.delete("1.0", "end")
    say(ann, "small")  # the next line goes, and the refusal is gone
    pump_until(root, shows(hal, "small"), "the small line to arrive")
    assert big not in hal.transcript.contents()
    assert not ann.entry_error.winfo_manager()


def test_one_left_line_per_departure(make_window: MakeWindow, root: tk.Tk) -> None:
    hal, ann, _ = hal_and_ann(make_window)
    say(ann, "bye")
    pump_until(root, shows(hal, "Ann left."), "Hal to see Ann leave")
    pump_until(root, lambda: ann.view.state == "idle", "Ann's chat to end")
    assert "bye" not in hal.transcript.lines()[-1]
    assert not any(line.endswith("  bye") for line in hal.transcript.lines())
    assert not any(line.endswith("  bye") for line in ann.transcript.lines())
    assert hal.transcript.contents().count("Ann left.") == 1


def test_history_sits_under_one_divider_and_rejoining_does_not_repeat_it(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    port = start_host(hal, "Hal")
    say(hal, "first from before")
    say(hal, "second from before")
    ann = make_window()
    start_join(ann, port, "Ann")
    pump_until(root, shows(ann, "second from before"), "the history")
    lines = ann.transcript.lines()
    divider = next(i for i, line in enumerate(lines) if EARLIER_DIVIDER in line)
    first = next(i for i, line in enumerate(lines) if "first from before" in line)
    second = next(i for i, line in enumerate(lines) if "second from before" in line)
    assert divider < first < second
    say(hal, "said live")
    pump_until(root, shows(ann, "said live"), "the live line")
    ann.leave()
    pump_until(root, lambda: ann.view.state == "idle", "Ann to have left")
    start_join(ann, port, "Ann")
    say(hal, "after the rejoin")
    pump_until(root, shows(ann, "after the rejoin"), "the line after the rejoin")
    text = ann.transcript.contents()
    assert text.count("first from before") == 1
    assert text.count("second from before") == 1
    assert text.count("said live") == 1


def test_reconnecting_greys_the_members_and_offers_reconnect_now_and_cancel(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    def slow_retry(request: Request) -> JoinOptions:
        return dataclasses.replace(join_options(request), reconnect_initial=60, reconnect_max=60)

    host, port = terminal_host()
    try:
        ann = make_window(join_options=slow_retry)
        start_join(ann, port, "Ann")
        assert not ann.reconnect_buttons.winfo_ismapped()
        host.p.kill()
        host.p.wait(10)
        pump_until(root, lambda: ann.view.reconnecting, "Ann to be reconnecting")
    finally:
        host.kill()
    pump_until(root, ann.reconnect_now_button.winfo_ismapped, "Reconnect now to show")
    assert ann.cancel_button.winfo_ismapped()
    status = ann.status.cget("text")
    assert "Reconnecting: next try in 60\u00a0s" in status or "next try in 59\u00a0s" in status
    greyed = ann.theme.palette.greyed
    assert [ann.members.itemcget(i, "foreground") for i in range(ann.members.size())] == [
        greyed,
        greyed,
    ]
    host, _ = terminal_host(port)  # back, but the next try would be a minute away
    try:
        ann.reconnect_now_button.invoke()
        pump_until(root, shows(ann, "Back in the room."), "Reconnect now to bring Ann back")
        assert not ann.reconnect_buttons.winfo_ismapped()
        assert ann.members.itemcget(0, "foreground") != greyed
        host.p.kill()
        host.p.wait(10)
        pump_until(root, ann.cancel_button.winfo_ismapped, "reconnecting again")
        ann.cancel_button.invoke()
        pump_until(root, lambda: ann.view.state == "idle", "Cancel to stop reconnecting")
        assert not ann.reconnect_buttons.winfo_ismapped()
    finally:
        host.kill()


def test_cancel_while_connecting(make_window: MakeWindow, root: tk.Tk) -> None:
    """A host that accepts TCP and never answers: Cancel stops the attempt at once."""
    with socket.socket() as silent:
        ann = connect_to_a_bare_socket(make_window(), silent)
        assert ann.view.state == "starting"
        assert ann.bar.start_button.cget("text") == "Cancel"
        assert ann.bar.start_button.instate(["!disabled"])
        ann.bar.start_button.invoke()
        pump_until(root, lambda: ann.view.state == "idle", "Cancel to stop connecting", 2.0)
        assert ann.bar.start_button.cget("text") == "Connect"


def test_a_host_is_asked_before_ending_the_room_for_others(
    make_window: MakeWindow, root: tk.Tk, config_dir: Path
) -> None:
    hal, ann, _ = hal_and_ann(make_window)
    pump_until(root, lambda: "Ann" in listed(hal), "Hal to see Ann")
    hal.bar.start_button.invoke()  # Leave
    dialog = hal.confirm_dialog
    assert dialog is not None
    assert dialog.winfo_exists()
    assert hal.view.state == "in_room"  # nothing ended yet
    hal.keep_room_button.invoke()
    assert not dialog.winfo_exists()
    assert hal.view.state == "in_room"
    give_focus(hal.entry)
    key(hal.entry, "q", CONTROL)  # Ctrl+Q asks too
    assert hal.confirm_dialog is not None
    assert hal.confirm_dialog.winfo_exists()
    assert not hal.closed
    hal.confirm_dialog.destroy()
    close_by_wm(hal, confirm=False)  # and closing the window
    assert hal.confirm_dialog.winfo_exists()
    hal.dont_ask.set(True)
    hal.end_room_button.invoke()
    assert hal.closed
    pump_until(root, shows(ann, "The host ended the chat."), "the room to end")
    assert saved(config_dir)["confirm_end"] is False


def test_a_host_alone_or_who_said_dont_ask_is_not_asked(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    start_host(hal, "Hal")
    hal.bar.start_button.invoke()  # alone: nobody to end it for
    assert hal.confirm_dialog is None
    pump_until(root, lambda: hal.view.state == "idle", "Hal to stop hosting")
    hal, _ann, _ = hal_and_ann(make_window)
    hal.ask_end.set(False)
    hal.bar.start_button.invoke()
    assert hal.confirm_dialog is None
    pump_until(root, lambda: hal.view.state == "idle", "Hal to stop hosting")


def test_a_wrong_or_missing_password_marks_and_focuses_the_password_field(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    hal.bar.password.set("right one")
    port = start_host(hal, "Hal")
    ann = make_window()
    ann.bar.set_mode("join")
    ann.bar.address.set("127.0.0.1")
    ann.bar.port.set(str(port))
    for typed, said in (("", "needs a password"), ("wrong", "")):
        ann.bar.password.set(typed)
        give_focus(ann.bar.name_entry)
        ann.bar.start_button.invoke()
        pump_until(root, lambda: "password" in ann.bar.errors, "the password field marked")
        assert said in ann.bar.errors["password"]
        assert ann.bar.password_entry.instate(["invalid"])
        pump_until(
            root, lambda: ann.top.focus_get() is ann.bar.password_entry, "the password focused"
        )
        pump_until(root, lambda: ann.view.state == "idle", "the refusal")


def test_messages_speak_the_windows_language(make_window: MakeWindow, root: tk.Tk) -> None:
    """A plain line server joined with encryption: the advice names the checkbox, not --plain."""
    with socket.socket() as plain:
        ann = connect_to_a_bare_socket(make_window(), plain)
        conn, _ = plain.accept()
        with conn:
            conn.sendall(b"hello, this is not TLS\r\n" * 4)
            pump_until(root, lambda: ann.view.state == "idle", "the failure")
    text = ann.transcript.contents() + ann.status.cget("text")
    assert "--plain" not in text
    assert "(window:" not in text


def test_hosting_on_port_0_shows_the_real_port_and_the_title_names_the_room(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal, ann, port = hal_and_ann(make_window)
    assert hal.bar.port.get() == str(port) != "0"
    assert hal.top.title() == "Hal's room — Parley"
    assert ann.top.title() == "Hal's room — Parley"
    hal.ask_end.set(False)
    hal.leave()
    pump_until(root, lambda: hal.view.state == "idle", "Hal to stop hosting")
    assert hal.bar.port.get() == "0"  # what was asked for, again
    assert hal.top.title() == "Parley"


def test_a_pasted_invite_never_shows_its_password(make_window: MakeWindow, root: tk.Tk) -> None:
    hal = make_window()
    hal.bar.password.set("s3cret word")
    port = start_host(hal, "Hal")
    ann = make_window()
    ann.bar.set_mode("join")
    ann.bar.address.set(hal.view.invite)
    assert "s3cret" not in ann.bar.address.get()
    assert "s3cret" not in ann.bar.note.cget("text")
    ann.bar.name.set("Ann")
    ann.bar.start_button.invoke()
    pump_until(root, lambda: ann.view.state == "in_room", "Ann to join by the invite")
    assert ann.view.where == f"127.0.0.1:{port}"


def test_the_status_bar_wraps_instead_of_cutting_words(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    window = make_window()
    window.top.geometry("640x480")
    pump_until(root, lambda: window.top.winfo_width() == 640, "the small size")
    long = " ".join(["Something rather long happened to the connection"] * 4) + " END."
    window.view.status = long
    window._drawn = ()
    window._refresh()
    root.update()
    label = window.status
    assert label.cget("text") == long  # whole, not cut
    assert 0 < int(str(label.cget("wraplength"))) < tkfont.nametofont("TkDefaultFont").measure(long)
    assert label.winfo_rootx() + label.winfo_width() <= window.top.winfo_rootx() + 640
    assert label.winfo_height() > 2 * tkfont.nametofont("TkDefaultFont").metrics("linespace")


# --- keyboard --------------------------------------------------------------------------------


def test_tab_and_shift_tab_leave_the_message_box(make_window: MakeWindow, root: tk.Tk) -> None:
    hal = make_window()
    start_host(hal, "Hal")
    focus_entry(hal)
    key(hal.entry, "Tab")
    assert hal.top.focus_get() is hal.send_button
    assert hal.entry.get("1.0", "end-1c") == ""  # no tab typed
    focus_entry(hal)
    key(hal.entry, "ISO_Left_Tab", SHIFT)
    assert hal.top.focus_get() not in (hal.entry, None)
    focus_entry(hal)
    key(hal.entry, "Return", CONTROL)  # a new line, as Shift+Enter
    assert hal.entry.get("1.0", "end-1c") == "\n"


def test_page_keys_scroll_the_transcript_from_the_entry(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    start_host(hal, "Hal")
    for i in range(80):
        hal.worker.send(f"line {i}")
    pump_until(root, shows(hal, "line 79"), "the lines")
    focus_entry(hal)
    text = hal.transcript.text
    pump_until(root, lambda: text.yview()[1] >= 0.999, "the view at the end")
    key(hal.entry, "Prior")
    assert text.yview()[1] < 0.999
    pump_until(root, lambda: not hal.transcript.follow, "following to stop")
    key(hal.entry, "Home", CONTROL)
    assert text.yview()[0] == 0.0
    key(hal.entry, "Next")
    assert text.yview()[0] > 0.0
    key(hal.entry, "End", CONTROL)
    assert text.yview()[1] >= 0.999
    pump_until(root, lambda: hal.transcript.follow, "following again at the end")
    assert hal.top.focus_get() is hal.entry


def test_ctrl_a_selects_all_in_text_fields(make_window: MakeWindow, root: tk.Tk) -> None:
    hal = make_window()
    hal.bar.name.set("Hal the host")
    give_focus(hal.bar.name_entry)
    key(hal.bar.name_entry, "a", CONTROL)
    assert hal.bar.name_entry.selection_present()
    assert hal.bar.name_entry.selection_get() == "Hal the host"
    start_host(hal, "Hal")
    focus_entry(hal)
    hal.entry.insert("1.0", "two\nlines")
    key(hal.entry, "a", CONTROL)
    assert hal.entry.get("sel.first", "sel.last") == "two\nlines"


def test_the_host_join_toggle_works_with_arrows_and_space(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    window = make_window()
    window.bar.set_mode("host")
    give_focus(window.bar.host_button)
    key(window.bar.host_button, "Right")
    assert window.bar.current_mode == "join"
    give_focus(window.bar.join_button)
    key(window.bar.join_button, "Left")
    assert window.bar.current_mode == "host"
    give_focus(window.bar.join_button)
    key(window.bar.join_button, "space")
    assert window.bar.current_mode == "join"


def test_focus_goes_to_the_useful_field_after_a_mode_change_and_leaving(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    window = make_window()
    window.bar.set_mode("host")
    give_focus(window.bar.host_button)
    key(window.bar.host_button, "Right")  # to Join
    pump_until(
        root, lambda: window.top.focus_get() is window.bar.address_entry, "focus on the address"
    )
    give_focus(window.bar.join_button)
    key(window.bar.join_button, "Left")  # to Host
    pump_until(root, lambda: window.top.focus_get() is window.bar.start_button, "focus on Start")
    start_host(window, "Hal")
    focus_entry(window)
    window.bar.start_button.invoke()  # Leave (alone: not asked)
    pump_until(root, lambda: window.view.state == "idle", "the room to close")
    pump_until(
        root, lambda: window.top.focus_get() is window.bar.start_button, "focus on Start again"
    )


@pytest.mark.parametrize("style", ["TButton", "Accent.TButton", "Toolbutton"])
def test_every_button_shows_focus(make_window: MakeWindow, style: str) -> None:
    window = make_window()
    looks = ttk.Style(window.top)
    assert looks.lookup(style, "bordercolor", ["focus"]) != looks.lookup(
        style, "bordercolor", ["!focus"]
    )


# --- layout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["host", "join"])
def test_640_by_480_cuts_no_control(make_window: MakeWindow, root: tk.Tk, mode: str) -> None:
    window = make_window()
    window.bar.set_mode(mode)
    window.top.geometry("640x480")
    pump_until(root, lambda: window.top.winfo_width() == 640, "the small size")
    root.update()
    top = window.top
    right = top.winfo_rootx() + top.winfo_width()
    bottom = top.winfo_rooty() + top.winfo_height()
    bar = window.bar
    controls: list[tk.Misc] = [bar.host_button, bar.join_button, bar.start_button, bar.port_entry]
    controls += [bar.name_entry, bar.password_entry, window.send_button, window.file_button]
    controls += [window.entry, window.transcript.text, window.status]
    controls.append(bar.address_entry if mode == "join" else bar.copy_button)
    for control in controls:
        assert control.winfo_ismapped(), f"{control} is not shown"
        assert control.winfo_rootx() + control.winfo_width() <= right, f"{control} is cut"
        assert control.winfo_rooty() + control.winfo_height() <= bottom, f"{control} is cut"
        assert control.winfo_width() > 1


def test_the_member_list_can_be_hidden_and_is_remembered(
    make_window: MakeWindow, root: tk.Tk, config_dir: Path
) -> None:
    window = make_window()
    root.update()
    wide = window.transcript.winfo_width()
    window.show_members.set(False)
    window._members_toggled()
    pump_until(root, lambda: not window.members.winfo_ismapped(), "the list to hide")
    pump_until(root, lambda: window.transcript.winfo_width() > wide, "the transcript to widen")
    assert saved(config_dir)["show_members"] is False
    close_by_wm(window)
    again = make_window()
    root.update()
    assert not again.members.winfo_ismapped()


def test_the_message_box_grows_with_its_text_up_to_a_few_lines(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    start_host(hal, "Hal")
    focus_entry(hal)
    assert int(hal.entry.cget("height")) == 1
    for _ in range(2):
        key(hal.entry, "Return", SHIFT)
    key(hal.entry, "x")
    assert int(hal.entry.cget("height")) == 3
    for _ in range(10):
        key(hal.entry, "Return", SHIFT)
    key(hal.entry, "x")
    assert int(hal.entry.cget("height")) == 5
    key(hal.entry, "Return")  # sent: back to one line
    assert int(hal.entry.cget("height")) == 1


# --- reading comfort -------------------------------------------------------------------------


def test_dark_mode_from_the_view_menu_is_applied_and_remembered(
    make_window: MakeWindow, root: tk.Tk, config_dir: Path
) -> None:
    window = make_window()
    window.theme_choice.set("dark")
    window._theme_chosen()
    assert window.transcript.text.cget("background") == theme.DARK.surface
    assert window.entry.cget("background") == theme.DARK.surface
    assert window.members.cget("background") == theme.DARK.surface
    assert window.transcript.text.tag_cget("notice", "foreground") == theme.DARK.muted
    assert saved(config_dir)["theme"] == "dark"
    window.theme_choice.set("light")
    window._theme_chosen()
    assert window.transcript.text.cget("background") == theme.LIGHT.surface
    window.theme_choice.set("dark")
    window._theme_chosen()
    close_by_wm(window)
    again = make_window()
    assert again.theme_choice.get() == "dark"
    assert again.transcript.text.cget("background") == theme.DARK.surface
    again.theme_choice.set("system")
    again._theme_chosen()  # Xvfb has no dark setting: light
    assert again.transcript.text.cget("background") == theme.LIGHT.surface


def test_text_size_keys_are_applied_and_remembered(
    make_window: MakeWindow, root: tk.Tk, config_dir: Path
) -> None:
    window = make_window()
    start_host(window, "Hal")
    focus_entry(window)
    before = int(window.fonts.body.cget("size"))
    key(window.entry, "plus", CONTROL)
    key(window.entry, "plus", CONTROL)
    assert int(window.fonts.body.cget("size")) == before + 2
    assert saved(config_dir)["text_size"] == 2
    key(window.entry, "minus", CONTROL)
    assert int(window.fonts.body.cget("size")) == before + 1
    key(window.entry, "0", CONTROL)
    assert int(window.fonts.body.cget("size")) == before
    assert saved(config_dir)["text_size"] == 0
    window.zoom(3)
    close_by_wm(window)
    again = make_window()
    assert int(again.fonts.body.cget("size")) == before + 3
    again.zoom_reset()


def test_links_open_in_the_browser_and_nothing_else_is_active(
    make_window: MakeWindow, root: tk.Tk, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, new=0: opened.append(url))
    hal, ann, _ = hal_and_ann(make_window)
    ann.worker.send("see https://example.org/a?b=1, or javascript:alert(1) or ftp://x.org/f.")
    pump_until(root, shows(hal, "ftp://x.org/f."), "the line")
    text = hal.transcript.text
    links = hal.transcript.link_tags()
    assert list(links.values()) == ["https://example.org/a?b=1"]
    (tag,) = links
    start, end = text.tag_ranges(tag)
    assert text.get(start, end) == "https://example.org/a?b=1"
    text.see(start)
    root.update()
    x, y, _w, h = text.bbox(start)  # type: ignore[misc]
    text.event_generate("<Motion>", x=x + 2, y=y + h // 2)
    text.event_generate("<Button-1>", x=x + 2, y=y + h // 2)
    text.event_generate("<ButtonRelease-1>", x=x + 2, y=y + h // 2)
    root.update()
    assert opened == ["https://example.org/a?b=1"]


def test_present_members_get_distinct_colours(make_window: MakeWindow, root: tk.Tk) -> None:
    hal = make_window()
    port = start_host(hal, "Hal")
    names = [f"p{i}" for i in range(6)]
    for name in names:
        start_join(make_window(), port, name)
    pump_until(root, lambda: len(listed(hal)) == 7, "everyone in Hal's list")
    colours = [hal.members.itemcget(i, "foreground") for i in range(hal.members.size())]
    assert len(set(colours)) == 7
    assert set(colours) <= set(hal.theme.palette.names)


def test_right_to_left_text_is_shown_in_reading_order_but_sent_as_typed(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal, ann, _ = hal_and_ann(make_window)
    seen: list[ev.Event] = []
    handle = hal._handle

    def recording(event: ev.Event) -> None:
        seen.append(event)
        handle(event)

    hal.poller._handle = recording
    hebrew, arabic = "שלום עולם", "مرحبا"
    ann.worker.send(hebrew)
    ann.worker.send(arabic)
    pump_until(root, lambda: "ﺎﺒﺣﺮﻣ" in hal.transcript.contents(), "the shaped Arabic line")
    shown = hal.transcript.contents()
    assert "םלוע םולש" in shown  # drawn right to left
    assert hebrew not in shown
    assert arabic not in shown  # shaped into its joined forms, in reading order
    # What came over the wire, and what the window keeps, is as typed.
    texts = [e.text for e in seen if isinstance(e, ev.MessageReceived)]
    assert texts == [hebrew, arabic]


def test_the_title_uses_the_rooms_own_name(make_window: MakeWindow, root: tk.Tk) -> None:
    hal = make_window()
    hal.room_name.set("Design review")
    start_host(hal, "Hal")
    assert hal.top.title() == "Design review — Parley"
