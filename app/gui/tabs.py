"""Conversation tabs: the room's transcript and one tab per private conversation (ttk.Notebook).

How this works
--------------
The first tab is the room's `Transcript` (the window's `transcript`). `open(name)` adds (or
selects) a tab for the private conversation with `name`, with a transcript of its own. `route`
takes a tick's transcript lines and hands each private line to its conversation's tab, opening
the tab without switching to it when a message arrives from someone new; the room's lines come
back for the room's transcript. A tab that is not showing counts the lines it has not shown
("Ann (2)"); showing it clears the count. `private_name()` says which conversation the entry box
sends to (None: the room).

The member list opens tabs too: double-click, or its menu's "Private conversation with NAME".
"""

from __future__ import annotations

import time
import tkinter as tk
from collections.abc import Callable, Iterable
from tkinter import ttk
from typing import Any

from app.export import HTML_SUFFIXES, Entry
from app.gui import theme
from app.gui.logic import Line
from app.gui.transcript import Transcript


def name_key(name: str) -> str:
    """`app.names.name_key`, imported on first use: it loads `regex` (and the tabs are built
    before the window's first paint, their first private conversation long after it)."""
    from app.names import name_key as key

    return key(name)


ROOM_TAB = "Room"


class ConversationTabs(ttk.Notebook):
    def __init__(
        self,
        parent: tk.Misc,
        fonts: theme.Fonts,
        *,
        scrollback: int = 10_000,
        on_type: Callable[[str], None] | None = None,
        on_change: Callable[[], None] | None = None,
        room_later: bool = False,
        **options: Any,
    ) -> None:
        """`room_later`: the room's transcript is built inside only on first use (or by its
        `build_inside`): see `Transcript`."""
        super().__init__(parent)
        self._options = options  # for every transcript (the window's name colours)
        self.fonts = fonts
        self._scrollback = scrollback
        self._on_type = on_type
        self._on_change = on_change
        self.room = Transcript(
            self, fonts, scrollback=scrollback, on_type=on_type, later=room_later, **options
        )
        self.add(self.room, text=ROOM_TAB)
        self.private: dict[str, Transcript] = {}  # name key -> its transcript
        self._names: dict[str, str] = {}  # name key -> the name as shown
        self.unread: dict[str, int] = {}  # name key -> lines not yet seen
        self.bind("<<NotebookTabChanged>>", self._changed, add="+")

    # --- which conversation ---------------------------------------------------------------------

    def private_name(self) -> str | None:
        """The member the open tab talks to; None for the room."""
        selected = self.select()  # type: ignore[no-untyped-call]
        for key, transcript in self.private.items():
            if str(transcript) == selected:
                return self._names[key]
        return None

    def open(self, name: str, select: bool = True) -> Transcript:
        """The tab of the conversation with `name`, added if need be (and shown if `select`)."""
        key = name_key(name)
        transcript = self.private.get(key)
        if transcript is None:
            transcript = Transcript(
                self,
                self.fonts,
                scrollback=self._scrollback,
                on_type=self._on_type,
                **self._options,
            )
            self.private[key] = transcript
            self._names[key] = name
            self.unread[key] = 0
            self.add(transcript, text=name)
            transcript.add([Line("notice", f"Private conversation with {name}.")])
        if select:
            self.select(transcript)  # type: ignore[no-untyped-call]
        return transcript

    def close_tab(self, name: str) -> None:
        key = name_key(name)
        transcript = self.private.pop(key, None)
        if transcript is not None:
            self.forget(transcript)
            transcript.destroy()
            del self._names[key], self.unread[key]

    def renamed(self, old: str, new: str) -> None:
        """A member's new name: its tab follows it."""
        key = name_key(old)
        transcript = self.private.pop(key, None)
        if transcript is None:
            return
        new_key = name_key(new)
        self.private[new_key] = transcript
        del self._names[key]
        self._names[new_key] = new
        self.unread[new_key] = self.unread.pop(key)
        self._label(new_key)

    # --- lines ----------------------------------------------------------------------------------

    def route(self, lines: Iterable[Line]) -> list[Line]:
        """Give each private line to its tab; return the room's lines, in order."""
        room: list[Line] = []
        batches: dict[str, list[Line]] = {}
        for line in lines:
            if line.private is None:
                room.append(line)
            else:
                batches.setdefault(line.private, []).append(line)
        showing = self.private_name()
        for name, batch in batches.items():
            transcript = self.open(name, select=False)
            transcript.add(batch)
            key = name_key(name)
            if showing is None or name_key(showing) != key:
                new = sum(1 for line in batch if line.kind == "chat" and not line.earlier)
                if new:
                    self.unread[key] += new
                    self._label(key)
        return room

    def total_unread(self) -> int:
        return sum(self.unread.values())

    def _label(self, key: str) -> None:
        count = self.unread.get(key, 0)
        name = self._names[key]
        self.tab(self.private[key], text=f"{name} ({count})" if count else name)  # type: ignore[no-untyped-call]

    def _changed(self, _event: object) -> None:
        name = self.private_name()
        if name is not None:
            key = name_key(name)
            if self.unread.get(key):
                self.unread[key] = 0
                self._label(key)
        if self._on_change is not None:
            self._on_change()


def bind_member_list(
    listbox: tk.Listbox, name_at: Callable[[int], str | None], open_tab: Callable[[str], None]
) -> None:
    """Double-click a member to talk to them alone (the member menu, shared with files, offers
    "Private conversation with NAME" too). `name_at(index)` is the member at a row, or None
    (yourself, or no one)."""

    def double(event: tk.Event[tk.Listbox]) -> None:
        if listbox.size() == 0:
            return
        index = int(listbox.tk.call(str(listbox), "nearest", event.y))
        box = listbox.bbox(index)
        if box and box[1] <= event.y <= box[1] + box[3]:
            name = name_at(index)
            if name is not None:
                open_tab(name)

    listbox.bind("<Double-Button-1>", double, add="+")


def add_conversation_items(
    menu: tk.Menu,
    *,
    export: Callable[[], None],
    clear: Callable[[], None],
    keep_history: tk.BooleanVar,
    notifications: tk.BooleanVar,
    on_notifications: Callable[[], None],
) -> None:
    """The Chat menu's part for conversations people keep."""
    menu.add_separator()
    menu.add_command(label="Export transcript…", command=export)
    menu.add_command(label="Clear history of this room", command=clear)
    menu.add_checkbutton(label="Keep history on this computer", variable=keep_history)
    menu.add_checkbutton(label="Notifications", variable=notifications, command=on_notifications)


def ask_export_path(parent: tk.Misc) -> str:
    from tkinter import filedialog

    return filedialog.asksaveasfilename(
        parent=parent,
        title="Export transcript",
        defaultextension=".html",
        filetypes=[("Web page", " ".join(f"*{x}" for x in HTML_SUFFIXES)), ("Text", "*.txt")],
        initialfile="parley-transcript.html",
    )


def export_entry(line: Line) -> Entry | None:
    """The line as an exported entry, if it is a message (a confirmed pending line was kept
    when it was sent)."""
    if line.kind not in ("chat", "mine", "pending"):
        return None
    stamp = line.time if line.time is not None else time.time()
    return Entry(stamp, line.sender, line.text, line.private, line.kind != "chat", line.earlier)
