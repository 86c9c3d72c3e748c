"""Two real windows in one room, driven through their widgets: keys, buttons, the WM close."""

from __future__ import annotations

import tkinter as tk

from app import events as ev
from app.gui.window import ENTRY_HINT
from app.net import JoinOptions
from app.worker import NetWorker
from tests.gui.conftest import MakeWindow
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
    type_keys,
)
from tests.helpers import Recorder


def test_a_message_typed_in_one_window_shows_in_the_other(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    port = start_host(hal, "Hal")
    assert hal.status.cget("text").startswith(f"Hosting on port {port} as Hal")
    ann = make_window()
    start_join(ann, port, "Ann")
    assert ann.status.cget("text") == f"Connected as Ann to 127.0.0.1:{port}"
    pump_until(
        root,
        lambda: listed(hal) == ["Hal (you)", "Ann"] and listed(ann) == ["Hal", "Ann (you)"],
        "both member lists to show Hal and Ann",
    )
    assert hal.view.members == ann.view.members == ("Hal", "Ann")
    pump_until(root, shows(hal, "Ann joined from 127.0.0.1:"), "the host to see Ann join")

    say(ann, "Hello from Ann")
    pump_until(root, shows(hal, "Ann  Hello from Ann"), "Hal to see Ann's message")
    # The entry was emptied and kept its focus, ready for the next line.
    assert ann.entry.get("1.0", "end-1c") == ""
    assert ann.top.focus_get() is ann.entry

    say(hal, "Hi Ann")
    pump_until(root, shows(ann, "Hal  Hi Ann"), "Ann to see Hal's reply")
    pump_until(root, shows(hal, "Hal  Hi Ann"), "Hal to see his own reply")
    # Each side shows its own line as its own (the "mine" band), confirmed (not pending).
    for window, text in ((ann, "Hello from Ann"), (hal, "Hi Ann")):
        where = window.transcript.text.search(text, "1.0")
        assert "mine" in window.transcript.text.tag_names(where)
        assert "pending" not in window.transcript.text.tag_names(where)
    where = hal.transcript.text.search("Hello from Ann", "1.0")
    assert "mine" not in hal.transcript.text.tag_names(where)


def test_enter_shift_enter_send_button_empty_and_up(make_window: MakeWindow, root: tk.Tk) -> None:
    hal, ann, port = hal_and_ann(make_window)

    # Shift+Enter makes a new line; Enter sends both lines as one message.
    focus_entry(ann)
    type_keys(ann.entry, "first line")
    ann.entry.event_generate("<Shift-Return>")
    type_keys(ann.entry, "second line")
    assert ann.entry.get("1.0", "end-1c") == "first line\nsecond line"
    ann.entry.event_generate("<Return>")
    pump_until(root, shows(hal, "first line\n"), "the two-line message")
    lines = hal.transcript.lines()
    assert lines[lines.index(next(x for x in lines if x.endswith("first line"))) + 1] == (
        "second line"
    )

    # An empty (or blank) entry sends nothing: Enter and Send leave it be.
    type_keys(ann.entry, "   ")
    ann.entry.event_generate("<Return>")
    ann.send_button.invoke()
    assert ann.entry.get("1.0", "end-1c") == "   "
    ann.entry.delete("1.0", "end")

    # The Send button does what Enter does.
    type_keys(ann.entry, "by button")
    ann.send_button.invoke()
    pump_until(root, shows(hal, "Ann  by button"), "the message sent with the button")
    assert ann.top.focus_get() is ann.entry

    # Up recalls the last message; Enter sends it again.
    ann.entry.event_generate("<Up>")
    assert ann.entry.get("1.0", "end-1c") == "by button"
    ann.entry.event_generate("<Up>")
    assert ann.entry.get("1.0", "end-1c") == "first line\nsecond line"
    ann.entry.event_generate("<Down>")
    ann.entry.event_generate("<Return>")
    pump_until(
        root,
        lambda: hal.transcript.contents().count("Ann  by button") == 2,
        "the recalled message to arrive again",
    )
    # Nothing blank was ever sent: every line Ann wrote is accounted for.
    from_ann = [line for line in hal.transcript.lines() if "  Ann  " in line]
    assert [line.split("  Ann  ", 1)[1] for line in from_ann] == [
        "first line",
        "by button",
        "by button",
    ]


def test_joining_shows_who_is_there_and_recent_history(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    port = start_host(hal, "Hal")
    say(hal, "said before anyone came")
    pump_until(root, shows(hal, "said before anyone came"), "Hal's own line")
    ann = make_window()
    start_join(ann, port, "Ann")
    pump_until(root, shows(ann, "said before anyone came"), "the history to reach Ann")
    assert "Connected as Ann. In the room: Hal." in ann.transcript.contents()
    where = ann.transcript.text.search("said before anyone came", "1.0")
    assert "earlier" in ann.transcript.text.tag_names(where)
    assert listed(ann) == ["Hal", "Ann (you)"]


def test_a_rename_shows_everywhere(make_window: MakeWindow, root: tk.Tk) -> None:
    hal, ann, port = hal_and_ann(make_window)
    bob = make_window()
    start_join(bob, port, "Bob")

    say(ann, "/nick Zed")
    pump_until(root, shows(ann, "You are now Zed."), "Ann to see her new name")
    for window in (hal, bob):
        pump_until(root, shows(window, "Ann is now Zed."), "the others to see the rename")
    pump_until(
        root,
        lambda: hal.view.members == ann.view.members == bob.view.members == ("Hal", "Zed", "Bob"),
        "every member list to agree",
    )
    assert listed(ann) == ["Hal", "Zed (you)", "Bob"]
    assert listed(bob) == ["Hal", "Zed", "Bob (you)"]
    assert ann.status.cget("text") == f"Connected as Zed to 127.0.0.1:{port}"


def test_a_taken_name_is_changed_and_said_so(make_window: MakeWindow, root: tk.Tk) -> None:
    hal = make_window()
    port = start_host(hal, "Hal")
    other = make_window()
    start_join(other, port, "Hal")
    assert other.view.me == "Hal (2)"
    assert "The name Hal is taken; you are Hal (2)." in other.transcript.contents()
    assert other.status.cget("text") == f"Connected as Hal (2) to 127.0.0.1:{port}"


def test_long_multiline_links_and_emoji_show_as_sent(make_window: MakeWindow, root: tk.Tk) -> None:
    hal, ann, port = hal_and_ann(make_window)
    texts = [
        "see https://example.com/a?b=c&d=e#f and café ✓ 😀👍🏽",
        "word " * 400,
        "one\ntwo\n\nfour",
    ]
    focus_entry(ann)
    for text in texts:
        ann.entry.insert("1.0", text)  # as pasted
        ann.entry.event_generate("<Return>")
    pump_until(root, shows(hal, "one\ntwo\n\nfour"), "the last of the messages")
    contents = hal.transcript.contents()
    assert texts[0] in contents
    assert texts[1].strip() in contents
    # The long one wraps onto many display lines inside the transcript's width.
    text = hal.transcript.text
    start = text.search("word word", "1.0")
    wrapped = text.count(start, f"{start} lineend", "displaylines")
    assert wrapped is not None
    assert wrapped[0] > 3


def test_closing_a_joiner_window_tells_the_host(make_window: MakeWindow, root: tk.Tk) -> None:
    hal, ann, port = hal_and_ann(make_window)
    pump_until(root, lambda: listed(hal) == ["Hal (you)", "Ann"], "Ann in Hal's list")

    close_by_wm(ann)
    assert ann.closed
    assert not ann.worker.running
    assert not ann.top.winfo_exists()
    pump_until(root, shows(hal, "Ann left."), "Hal to see that Ann left")
    pump_until(root, lambda: listed(hal) == ["Hal (you)"], "Ann gone from Hal's list")


def test_closing_the_host_window_ends_the_chat_for_joiners(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal, ann, port = hal_and_ann(make_window)

    close_by_wm(hal)
    assert not hal.worker.running
    pump_until(root, shows(ann, "Chat ended."), "Ann to see the chat end")
    assert "The host ended the chat." in ann.transcript.contents()
    assert ann.status.cget("text") == "Chat ended: the host ended the chat."
    assert ann.view.state == "idle"
    assert ann.entry.cget("state") == "disabled"
    assert ann.entry.get("1.0", "end-1c") == ENTRY_HINT
    assert ann.bar.start_button.cget("text") == "Connect"
    assert listed(ann) == []


def test_bye_from_a_joiner_leaves_and_the_window_can_join_again(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal, ann, port = hal_and_ann(make_window)

    say(ann, "bye")
    pump_until(root, shows(ann, "Chat ended."), "Ann's chat to end")
    pump_until(root, shows(hal, "Ann left."), "Hal to see Ann leave")
    assert hal.view.state == "in_room"  # the room goes on
    assert ann.top.winfo_exists()
    assert ann.view.state == "idle"

    start_join(ann, port, "Ann")  # again, without restarting anything
    say(ann, "back again")
    pump_until(root, shows(hal, "Ann  back again"), "Ann's message after rejoining")


def test_bye_from_the_host_ends_the_room_and_the_window_can_host_again(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal, ann, port = hal_and_ann(make_window)

    say(hal, "bye")
    for window in (hal, ann):
        pump_until(root, shows(window, "Chat ended."), "the chat to end on both sides")
    assert hal.status.cget("text") == "Chat ended: you ended the chat."
    assert hal.bar.start_button.cget("text") == "Start"

    port = start_host(hal, "Hal")
    start_join(ann, port, "Ann")
    say(ann, "second room")
    pump_until(root, shows(hal, "Ann  second room"), "a message in the second room")


def test_the_leave_button_leaves(make_window: MakeWindow, root: tk.Tk) -> None:
    hal, ann, port = hal_and_ann(make_window)
    assert ann.bar.start_button.cget("text") == "Leave"
    ann.bar.start_button.invoke()
    pump_until(root, shows(ann, "Chat ended."), "Ann to have left")
    pump_until(root, shows(hal, "Ann left."), "Hal to see it")
    assert ann.bar.start_button.cget("text") == "Connect"


def test_unread_count_in_the_title_and_one_bell_per_burst(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    rings: list[int] = []
    hal = make_window(bell=lambda: rings.append(1))
    port = start_host(hal, "Hal")
    other = make_window()  # only there to take the focus away from Hal's window
    # Ann is a bare worker, so her messages arrive without touching anyone's focus.
    ann_events = Recorder()
    ann = NetWorker(ann_events)
    try:
        ann.join(JoinOptions("127.0.0.1", port, name="Ann"))
        ann_events.wait_for(ev.Connected)

        focus_entry(hal)
        pump_until(root, lambda: hal.unread.focused, "Hal's window to count as focused")
        ann.send("while you look")
        pump_until(root, shows(hal, "while you look"), "the first message")
        assert hal.top.title() == "Hal's room — Parley"
        assert rings == []

        other.bar.name_entry.focus_force()
        pump_until(root, lambda: not hal.unread.focused, "Hal's window to notice it lost focus")
        for n in range(3):
            ann.send(f"burst {n}")
        pump_until(root, shows(hal, "burst 2"), "the burst")
        assert hal.top.title() == "(3) Hal's room — Parley"
        assert rings == [1]

        focus_entry(hal)
        pump_until(
            root, lambda: hal.top.title() == "Hal's room — Parley", "the count to clear on focus"
        )
    finally:
        ann.stop()


def test_a_window_that_never_had_focus_counts_unread(make_window: MakeWindow, root: tk.Tk) -> None:
    """Started by a script or a shortcut while the user works elsewhere: no focus event ever
    comes, and the window must still know it is not being looked at."""
    from Xlib import X

    from tools.xwin import XWatcher

    ann = NetWorker(ann_events := Recorder())
    with XWatcher() as x:
        try:
            x.unfocus()  # the keyboard focus belongs to no Parley window, from the start
            hal = make_window()
            port = start_host(hal, "Hal")
            pump_until(root, lambda: not hal.unread.focused, "Hal's window to see it has no focus")
            ann.join(JoinOptions("127.0.0.1", port, name="Ann"))
            ann_events.wait_for(ev.Connected)
            ann.send("are you there?")
            pump_until(root, shows(hal, "are you there?"), "the message")
            assert hal.top.title() == "(1) Hal's room — Parley"
        finally:
            ann.stop()
            # Give X its default focus back (it follows the pointer), as the other tests expect.
            x.display.set_input_focus(X.PointerRoot, X.RevertToPointerRoot, X.CurrentTime)
            x.display.sync()
