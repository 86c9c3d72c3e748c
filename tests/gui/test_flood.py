"""Floods: every message shown, drained in bounded batches, scrollback capped, and the view
following the end only while you are there. Speed is measured in benchmarks/gui_burst.py."""

from __future__ import annotations

import gc
import sys
import tkinter as tk

import pytest

from app import events as ev
from app.gui.logic import Request
from app.net import HostOptions
from tests.gui.conftest import MakeWindow
from tests.gui.tk_helpers import pump_until, shows, start_host
from tests.helpers import RawPeer

BURST = 10_000


def flood_host(request: Request) -> HostOptions:
    """A host that lets a plain peer in and does not rate-limit it: the flood must get through."""
    return HostOptions(
        port=request.port,
        bind="127.0.0.1",
        name=request.name,
        allow_plain=True,
        sniff_wait=0.05,
        hello_wait=0.05,
        rate=1e9,
        burst=1e9,
    )


def text_peer(port: int) -> RawPeer:
    """A plain TCP peer (as nc would be), admitted at once by sending a first line."""
    peer = RawPeer(port)
    peer.read_until(r"^PARLEY/")
    peer.line("hello")
    peer.read_until(r"You are ")
    return peer


def test_a_burst_of_10000_messages_is_all_shown_in_bounded_batches(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window(host_options=flood_host)
    port = start_host(hal, "Hal")
    peer = text_peer(port)
    try:
        pump_until(root, shows(hal, "  hello\n"), "the peer's first line")
        ticks: list[tuple[int, int]] = []
        hal.poller.on_tick = lambda handled, delay: ticks.append((handled, delay))
        before = hal.transcript.shown
        peer.send("".join(f"msg {i}\n" for i in range(BURST)))
        pump_until(
            root, lambda: hal.transcript.shown >= before + BURST, "all 10,000 lines", timeout=50
        )
    finally:
        peer.close()

    # All of them, in order; with the default cap of 10,000 entries exactly these remain.
    lines = hal.transcript.lines()
    assert hal.transcript.entries == len(lines) == 10_000
    assert lines[0].endswith("  msg 0")
    assert lines[-1].endswith(f"  msg {BURST - 1}")
    assert [line.rsplit(" ", 1)[1] for line in lines] == [str(i) for i in range(BURST)]
    # Drained in bounded batches: never more than `batch` events in one tick.
    busy = [handled for handled, _ in ticks if handled]
    assert sum(busy) >= BURST
    assert max(busy) <= hal.poller.batch
    assert len(busy) >= BURST // hal.poller.batch


def test_a_backlog_is_drained_a_batch_per_tick_coming_back_at_once(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    """Deterministic: nothing else feeds this queue, so the backlog after each tick is known."""
    hal = make_window(batch=100)
    ticks: list[tuple[int, int]] = []
    hal.poller.on_tick = lambda handled, delay: ticks.append((handled, delay))
    for i in range(1_000):
        hal.events.put(ev.MessageReceived("Ann", f"queued {i}", 0.0, i + 1))
    pump_until(root, lambda: hal.events.empty() and bool(ticks) and ticks[-1][0] == 0, "the drain")

    remaining = 1_000
    for handled, delay in ticks:
        assert handled <= 100
        remaining -= handled
        # While a backlog remains the timer comes back at once; then it relaxes.
        assert delay == (hal.poller.busy_ms if remaining else hal.poller.idle_ms)
    assert remaining == 0
    assert hal.transcript.lines()[-1].endswith("Ann  queued 999")


def test_scrollback_is_capped_and_the_oldest_lines_go(make_window: MakeWindow, root: tk.Tk) -> None:
    hal = make_window(scrollback=500)
    for i in range(2_000):
        text = f"line {i}" if i % 10 else f"line {i}\nwith a second line"
        hal.events.put(ev.MessageReceived("Ann", text, 0.0, i + 1))
    pump_until(root, lambda: hal.transcript.shown == 2_000, "2,000 entries")
    assert hal.transcript.entries == 500
    lines = hal.transcript.lines()
    assert lines[0].endswith("Ann  line 1500")
    assert lines[-1].endswith("Ann  line 1999")
    assert len(lines) == 500 + 50  # every tenth entry has a second line


def test_the_view_follows_new_lines_only_while_at_the_end(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    transcript = hal.transcript

    def feed(n: int, start: int) -> None:
        for i in range(start, start + n):
            hal.events.put(ev.MessageReceived("Ann", f"line {i}", 0.0, i + 1))
        pump_until(root, lambda: transcript.shown == start + n, f"{n} more lines")
        root.update_idletasks()

    def drag_scrollbar(fraction: str) -> None:
        """What the scrollbar does when the user drags its thumb."""
        root.tk.call(transcript.scrollbar.cget("command"), "moveto", fraction)

    feed(200, 0)
    assert transcript.follow
    assert transcript.text.yview()[1] == 1.0

    drag_scrollbar("0.0")  # back to the top, to read earlier lines
    pump_until(root, lambda: not transcript.follow, "reading earlier lines to stop following")
    feed(10, 200)
    assert transcript.text.yview()[0] == 0.0  # not yanked down
    assert transcript.jump.winfo_ismapped()
    assert transcript.jump.cget("text") == "New messages (10) ↓"

    transcript.jump.invoke()
    root.update_idletasks()
    assert transcript.follow
    assert not transcript.jump.winfo_ismapped()
    assert transcript.text.yview()[1] == 1.0
    feed(10, 210)
    assert transcript.text.yview()[1] == 1.0

    # Scrolling back down to the end by hand also resumes following.
    drag_scrollbar("0.0")
    pump_until(root, lambda: not transcript.follow, "not following")
    drag_scrollbar("1.0")
    pump_until(root, lambda: transcript.follow, "following again at the end")


def test_one_batch_keeps_each_messages_order_and_tags(make_window: MakeWindow, root: tk.Tk) -> None:
    """A flood goes to Tk as one insert per tick, with neighbouring pieces of the same tags
    joined: each message must still carry its own tags, and nothing may bleed into the next."""
    hal = make_window()
    transcript = hal.transcript
    batch = [
        ev.MessageReceived("Ann", "plain one", 0.0, 1),
        ev.MessageReceived("Ben", "Hal: look", 0.0, 2, mention=True),
        ev.MessageReceived("Ann", "see https://example.org/a).", 0.0, 3),
        ev.MessageReceived("Omar", "שלום עולם", 0.0, 4),
        ev.MessageReceived("Hal", "my own", 0.0, 5, mine=True),
        ev.NoticeShown("a notice"),
        ev.MessageReceived("Ann", "plain two", 0.0, 6),
        ev.MessageReceived("Zoë 😀", "😀 wide, then https://example.org/b", 0.0, 7),
        ev.MessageReceived("Ann", "two\nlines https://example.org/c", 0.0, 8),
    ]
    before = transcript.shown
    for event in batch:
        hal.events.put(event)
    pump_until(root, lambda: transcript.shown == before + len(batch), "the batch")
    text = transcript.text
    lines = transcript.lines()[-len(batch) - 1 :]
    assert lines[-1] == "lines https://example.org/c"  # the second line: no time, no name
    assert [line.split("  ", 1)[1] for line in lines[:-1]] == [
        "Ann  plain one",
        "Ben  Hal: look",
        "Ann  see https://example.org/a).",
        "Omar  םלוע םולש",  # put in reading order for Tk, which draws in logical order
        "Hal  my own",
        "a notice",
        "Ann  plain two",
        "Zoë 😀  😀 wide, then https://example.org/b",
        "Ann  two",
    ]
    first = int(text.index("end-1c").split(".")[0]) - len(batch) - 1

    def tags_of(row: int, word: str) -> set[str]:
        where = text.search(word, f"{first + row}.0", f"{first + row}.end")
        assert where, (row, word)
        return set(text.tag_names(where))

    names = {f"name{hal.name_colours.slot(n)}" for n in ("Ann", "Ben", "Omar", "Hal")}
    assert f"name{hal.name_colours.slot('Ann')}" in tags_of(0, "Ann")
    assert {text.tag_cget(name, "font") for name in names} == {str(hal.fonts.bold)}
    assert f"name{hal.name_colours.slot('Ben')}" in tags_of(1, "Ben")
    assert "mention" in tags_of(1, "look")
    assert not ({"mention", "link", "mine"} | names) & tags_of(0, "plain")
    assert not ({"mention", "link", "mine"} | names) & tags_of(6, "plain")
    link = tags_of(2, "https")
    assert "link" in link
    assert "mention" not in link
    assert "link" not in tags_of(2, ").")  # the closing bracket and stop are not the link
    assert set(transcript.link_tags().values()) >= {"https://example.org/a"}
    assert "mine" in tags_of(4, "own")
    assert "mine" not in tags_of(5, "notice")
    assert "notice" in tags_of(5, "notice")
    assert "notice" not in tags_of(6, "plain")
    assert "time" in tags_of(6, ":")
    assert "time" not in tags_of(6, "plain")
    # Characters past U+FFFF (two in Tk's count) do not shift the tags after them.
    zoe = f"name{hal.name_colours.slot('Zoë 😀')}"
    assert zoe in tags_of(7, "Zo")
    assert zoe not in tags_of(7, "wide")
    shown = {text.get(*text.tag_ranges(tag)): url for tag, url in transcript.link_tags().items()}
    assert shown["https://example.org/b"] == "https://example.org/b"
    assert shown["https://example.org/c"] == "https://example.org/c"  # on the second line
    assert "cont" in tags_of(9, "lines")
    assert "cont" not in tags_of(8, "two")


def test_the_scrollbar_is_disabled_until_there_is_something_to_scroll(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    transcript = hal.transcript
    root.update_idletasks()
    pump_until(root, lambda: transcript.scrollbar.instate(["disabled"]), "an idle scrollbar")
    for i in range(300):
        hal.events.put(ev.MessageReceived("Ann", f"line {i}", 0.0, i + 1))
    pump_until(root, lambda: transcript.shown >= 300, "300 lines")
    pump_until(root, lambda: transcript.scrollbar.instate(["!disabled"]), "a live scrollbar")
    first, last = (float(x) for x in transcript.scrollbar.get())
    assert first > 0.0
    assert last == 1.0


def test_a_window_gets_the_gil_back_sooner_from_a_busy_network_thread(
    make_window: MakeWindow,
) -> None:
    """The switch interval decides how long Tk's thread waits for the GIL after each Tcl call
    while the network thread is busy (poller.py): a window shortens it, never lengthens it."""
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)  # CPython's default
        make_window()
        assert sys.getswitchinterval() <= 0.001
        sys.setswitchinterval(0.0001)
        make_window()
        assert sys.getswitchinterval() == pytest.approx(0.0001)
    finally:
        sys.setswitchinterval(before)
    assert gc.get_freeze_count() > 0  # what existed at the first window: out of full passes
