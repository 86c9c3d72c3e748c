"""Conversations in the real window under Xvfb: private tabs from the member list, mentions
highlighted, notifications (and their fallback), the earlier transcript once, export."""

from __future__ import annotations

import tkinter as tk
from pathlib import Path

from app.gui.window import ChatWindow
from app.notify import DesktopNotifications
from tests.gui.conftest import MakeWindow
from tests.gui.tk_helpers import (
    hal_and_ann,
    listed,
    pump_until,
    say,
    shows,
    start_host,
    start_join,
)


class RecordingNotifier:
    """A notification service that keeps what it is asked to show."""

    def __init__(self) -> None:
        self.available = True
        self.shown: list[tuple[str, str]] = []

    def notify(self, title: str, body: str) -> None:
        self.shown.append((title, body))

    def close(self) -> None:
        pass


def _double_click_member(window: ChatWindow, name: str) -> None:
    box = window.members
    index = listed(window).index(name)
    x, y, w, h = box.bbox(index)
    for _ in range(2):  # two clicks in quick succession: Tk makes them a double-click
        box.event_generate("<ButtonPress-1>", x=x + 5, y=y + h // 2)
        box.event_generate("<ButtonRelease-1>", x=x + 5, y=y + h // 2)


def _unfocus(window: ChatWindow, other: ChatWindow, root: tk.Tk) -> None:
    """Give the keyboard to `other`, so `window` is in the background."""
    other.entry.focus_force()
    pump_until(root, lambda: not window.unread.focused, "the window to lose focus")


def test_a_private_tab_from_the_member_list_talks_to_that_member_only(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal, ann, port = hal_and_ann(make_window)
    bob = make_window()
    start_join(bob, port, "Bob")
    pump_until(root, lambda: "Ann" in listed(hal) and "Bob" in listed(hal), "the member list")
    _double_click_member(hal, "Ann")
    pump_until(root, lambda: hal.tabs.private_name() == "Ann", "Hal's tab with Ann")
    say(hal, "psst Ann")
    # Ann's window opens (but does not switch to) a tab for Hal, and counts it unread.
    pump_until(root, lambda: "Hal" in [n for n in ann.tabs._names.values()], "Ann's tab")
    ann_tab = ann.tabs.open("Hal", select=False)
    pump_until(root, lambda: "psst Ann" in ann_tab.contents(), "the private line at Ann")
    assert ann.tabs.tab(ann_tab, "text") == "Hal (1)"
    assert ann.tabs.private_name() is None  # still on the room's tab
    assert "psst Ann" not in ann.transcript.contents()
    assert "psst Ann" in hal.tabs.open("Ann", select=False).contents()
    assert "psst Ann" not in hal.transcript.contents()
    # Ann answers from her tab: the entry sends to the open tab.
    ann.tabs.open("Hal")
    pump_until(root, lambda: ann.tabs.tab(ann_tab, "text") == "Hal", "the count cleared")
    say(ann, "hi Hal")
    hal_tab = hal.tabs.open("Ann", select=False)
    pump_until(root, lambda: "hi Hal" in hal_tab.contents(), "the answer at Hal")
    # The member menu offers it too (shared with Send file to NAME…).
    entries = hal.files.more_items("Bob")
    assert entries[0][0] == "Private conversation with Bob"
    entries[0][1]()
    assert hal.tabs.private_name() == "Bob"
    say(hal, "to the room?")  # no: to Bob
    say(bob, "marker")
    pump_until(root, shows(ann, "marker"), "the marker at Ann")
    bob_tab = bob.tabs.open("Hal", select=False)
    pump_until(root, lambda: "to the room?" in bob_tab.contents(), "Bob's private line")
    for window in (hal, ann, bob):
        for text in ("psst Ann", "hi Hal", "to the room?"):
            assert text not in window.transcript.contents()
    assert "psst" not in "".join(t.contents() for t in bob.tabs.private.values())


def test_a_mention_is_highlighted_and_notifies_and_private_always_does(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    notes = RecordingNotifier()
    rang: list[int] = []
    hal = make_window(notifier=notes, bell=lambda: rang.append(1))
    port = start_host(hal, "Hal")
    ann = make_window()
    start_join(ann, port, "Ann")
    _unfocus(hal, ann, root)
    say(ann, "hello all")
    say(ann, "are you there @Hal?")
    say(ann, "/msg Hal secret")
    pump_until(root, lambda: len(notes.shown) >= 3, "three notifications")
    assert notes.shown == [
        ("Ann", "hello all"),
        ("Ann mentioned you", "are you there @Hal?"),
        ("Ann (private)", "secret"),
    ]
    ranges = hal.transcript.text.tag_ranges("mention")
    assert ranges
    assert hal.transcript.text.get(ranges[0], ranges[1]) == "are you there @Hal?"
    assert "mention" not in hal.transcript.text.tag_names(f"{ranges[1]} +1c")
    # Turned off in the Chat menu: nothing more is shown.
    hal.notifications.set(False)
    hal._notifications_changed()
    say(ann, "@Hal again")
    pump_until(root, shows(hal, "@Hal again"), "the line")
    assert len(notes.shown) == 3


def test_without_a_notification_service_the_title_counts_and_the_bell_rings(
    make_window: MakeWindow, root: tk.Tk, monkeypatch
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    rang: list[int] = []
    notes = DesktopNotifications(timeout=3)  # the real one: no D-Bus here, as under Xvfb
    hal = make_window(notifier=notes, bell=lambda: rang.append(1))
    port = start_host(hal, "Hal")
    ann = make_window()
    start_join(ann, port, "Ann")
    _unfocus(hal, ann, root)
    say(ann, "first")
    pump_until(root, lambda: not notes.available, "the service found missing")
    say(ann, "/msg Hal are you there")
    pump_until(root, lambda: hal.top.title().startswith("(2)"), "the title count")
    pump_until(root, lambda: len(rang) >= 2, "the bell")
    assert notes.sent == 0


def test_rejoining_shows_the_earlier_transcript_once(
    make_window: MakeWindow, root: tk.Tk, tmp_path: Path
) -> None:
    hal, ann, port = hal_and_ann(make_window)
    for n in range(3):
        say(hal, f"line {n}")
    pump_until(root, shows(ann, "line 2"), "the lines at Ann")
    ann.leave()
    pump_until(root, lambda: ann.view.state == "idle", "Ann to have left")
    start_join(ann, port, "Ann")
    say(hal, "after")
    pump_until(root, shows(ann, "after"), "the new line")
    text = ann.transcript.contents()
    for n in range(3):
        assert text.count(f"line {n}") == 1, text
    # A new window (the app started again): the kept transcript, below the divider.
    ann.leave()
    pump_until(root, lambda: ann.view.state == "idle", "Ann to have left again")
    again = make_window()
    start_join(again, port, "Ann")
    pump_until(root, shows(again, "after"), "the kept lines")
    text = again.transcript.contents()
    assert "earlier" in text.split("line 0")[0].lower()
    for fragment in ("line 0", "line 1", "line 2", "after"):
        assert text.count(fragment) == 1, text
    # Export what the window shows: .html, escaped.
    say(hal, "<b>bold?</b>")
    pump_until(root, shows(again, "<b>bold?</b>"), "the markup line")
    target = tmp_path / "out.html"
    again.export_to(str(target))
    page = target.read_text(encoding="utf-8")
    assert "&lt;b&gt;bold?&lt;/b&gt;" in page
    assert "<b>bold" not in page
    assert page.count("line 1") == 1
    pump_until(root, shows(again, "Exported"), "the export notice")
