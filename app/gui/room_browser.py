"""The live list of rooms on the network, and the list of rooms joined before.

`RoomList` shows what the worker's browser posts (`RoomFound` adds or updates a row, `RoomGone`
removes it): the room's name with a lock mark when it needs a password, its members and where it
is. Double-click, Return or the Connect button hands the chosen room to `on_join`.

`RecentRooms` is the pure part of the "Recent" list (rooms joined before, newest first, at most
`MAX_RECENT`), kept in the settings file; `RecentList` shows it, for networks where multicast is
blocked and nothing is ever announced.
"""

from __future__ import annotations

import tkinter as tk
import tkinter.font as tkfont
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from tkinter import ttk
from typing import TYPE_CHECKING, Any

from app.gui import theme

if TYPE_CHECKING:
    from app import events as ev  # only named in hints: not imported before the first paint

LOCK_PIXELS = (  # a 12x12 padlock ("#": body, "o": shackle), drawn rather than a glyph that
    "...oooooo...",  # many fonts lack
    "..oo....oo..",
    "..o......o..",
    "..o......o..",
    "..o......o..",
    ".##########.",
    ".##########.",
    ".####..####.",
    ".####..####.",
    ".#####.####.",
    ".##########.",
    ".##########.",
)


def lock_image(master: tk.Misc, colour: str = theme.TEXT) -> tk.PhotoImage:
    """The lock mark shown before the name of a room that needs a password."""
    image = tk.PhotoImage(master=master, width=12, height=12)
    for y, row in enumerate(LOCK_PIXELS):
        for x, pixel in enumerate(row):
            if pixel != ".":
                image.put(colour if pixel == "#" else theme.MUTED, (x, y))
    return image


MAX_RECENT = 8


def room_label(room: ev.RoomFound) -> str:
    """The room's name as listed; the lock image goes with it when a password is needed."""
    return f" {room.name}" if room.password else room.name


def where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Recent:
    """A room joined before: its name (or its address when it had none) and where it was."""

    name: str
    host: str
    port: int

    @classmethod
    def from_json(cls, data: Any) -> Recent | None:
        if not isinstance(data, dict):
            return None
        name, host, port = data.get("name"), data.get("host"), data.get("port")
        if not (isinstance(name, str) and 0 < len(name) <= 100):
            return None
        if not (isinstance(host, str) and 0 < len(host) <= 255):
            return None
        if not (isinstance(port, int) and not isinstance(port, bool) and 0 < port <= 65535):
            return None
        return cls(name, host, port)


def remember(recent: Iterable[Recent], joined: Recent) -> tuple[Recent, ...]:
    """`joined` first, without an older entry for the same place; at most MAX_RECENT."""
    rest = [r for r in recent if (r.host, r.port) != (joined.host, joined.port)]
    return (joined, *rest)[:MAX_RECENT]


class RoomList(ttk.Frame):
    def __init__(self, parent: tk.Misc, on_join: Callable[[ev.RoomFound], None]) -> None:
        super().__init__(parent)
        self._on_join = on_join
        self.rooms: dict[str, ev.RoomFound] = {}
        self.lock = lock_image(self)
        self.tree = ttk.Treeview(self, columns=("members", "where"), height=6, selectmode="browse")
        self.tree.heading("#0", text="Room", anchor="w")
        self.tree.heading("members", text="People", anchor="w")
        self.tree.heading("where", text="Address", anchor="w")
        self.tree.column("#0", width=130, stretch=True)
        # The heading's own width in the heading font (bold, and scaled by the text size):
        # a fixed 56 px cut "People" to "Peopl" at the default size.
        people = tkfont.nametofont("TkHeadingFont").measure("People") + 16
        self.tree.column("members", width=max(56, people), minwidth=people, stretch=False)
        self.tree.column("where", width=140, stretch=False)
        self.tree.grid(row=0, column=0, columnspan=2, sticky="nsew")
        self.rowconfigure(0, weight=1)
        self.columnconfigure(0, weight=1)
        self.connect_button = ttk.Button(self, text="Connect", command=self.join_selected)
        self.connect_button.grid(row=1, column=1, sticky="ne", pady=(6, 0))
        # The hint below the list may be several lines: it gets the list's whole width (a
        # fixed wrap beside the button cut it off at the window's default size).
        self.status = ttk.Label(self, style="Muted.TLabel", wraplength=240, justify="left")
        self.status.grid(row=2, column=0, columnspan=2, sticky="new", pady=(6, 0))
        self.bind(
            "<Configure>",
            lambda e: self.status.configure(wraplength=max(120, e.width - 4)),
            add="+",
        )
        self.tree.bind("<Double-1>", self._double_click)
        self.tree.bind("<Return>", lambda e: self.join_selected())
        self.tree.bind("<<TreeviewSelect>>", lambda e: self._show_state())
        self.looking = False
        self._show_state()

    def found(self, room: ev.RoomFound) -> None:
        values = (str(room.members), where(room.host, room.port))
        image = self.lock if room.password else ""
        if room.key in self.rooms:
            self.tree.item(room.key, text=room_label(room), values=values, image=image)
        else:
            self.tree.insert(
                "", "end", iid=room.key, text=room_label(room), values=values, image=image
            )
        self.rooms[room.key] = room
        self._show_state()

    def gone(self, key: str) -> None:
        if self.rooms.pop(key, None) is not None:
            self.tree.delete(key)
        self._show_state()

    def set_looking(self, looking: bool) -> None:
        self.looking = looking
        self._show_state()

    def selected(self) -> ev.RoomFound | None:
        chosen = self.tree.selection()
        return self.rooms.get(chosen[0]) if chosen else None

    def join_selected(self) -> None:
        room = self.selected()
        if room is None and len(self.rooms) == 1:
            room = next(iter(self.rooms.values()))  # one room: Connect needs no choosing
        if room is not None:
            self._on_join(room)

    def _double_click(self, event: tk.Event[tk.Misc]) -> str | None:
        row = self.tree.identify_row(event.y)
        if row and row in self.rooms:
            self.tree.selection_set(row)
            self._on_join(self.rooms[row])
            return "break"
        return None

    def _show_state(self) -> None:
        n = len(self.rooms)
        if n:
            text = "1 room: double-click to join." if n == 1 else f"{n} rooms: double-click one."
        elif self.looking:
            text = (
                "Looking for rooms… None yet. If you expect one: is it on the same Wi-Fi, "
                "without a VPN in between? A firewall may block announcements; join by address."
            )
        else:
            text = ""
        self.status.configure(text=text)
        can = n == 1 or self.selected() is not None
        self.connect_button.state(["!disabled" if can else "disabled"])


class RecentList(ttk.Frame):
    """Rooms joined before; double-click (or Return) joins one again."""

    def __init__(self, parent: tk.Misc, fonts: theme.Fonts, on_join: Callable[[Recent], None]):
        super().__init__(parent)
        self._on_join = on_join
        self.items: tuple[Recent, ...] = ()
        self.box = tk.Listbox(self, height=4, activestyle="none", font=fonts.body, **theme.FLAT)
        theme.get(self).paint(
            self.box, selectbackground="select", selectforeground="text", **theme.surface_roles()
        )
        self.box.pack(fill="both", expand=True)
        self.empty = ttk.Label(self, text="Rooms you join appear here.", style="Muted.TLabel")
        self.box.bind("<Double-1>", self._double_click)
        self.box.bind("<Return>", lambda e: self._join_index(self._current()))
        self.show(())

    def show(self, items: Iterable[Recent]) -> None:
        self.items = tuple(items)
        self.box.delete(0, "end")
        for item in self.items:
            shown = where(item.host, item.port)
            self.box.insert("end", item.name if item.name == shown else f"{item.name} — {shown}")
        if self.items:
            self.empty.pack_forget()
        else:
            self.empty.pack(anchor="w", before=self.box)

    def _current(self) -> int | None:
        chosen = self.box.tk.splitlist(self.box.tk.call(str(self.box), "curselection"))
        return int(chosen[0]) if chosen else None

    def _double_click(self, event: tk.Event[tk.Misc]) -> None:
        if self.items:
            self._join_index(int(self.box.tk.call(str(self.box), "nearest", event.y)))

    def _join_index(self, index: int | None) -> None:
        if index is not None and 0 <= index < len(self.items):
            self._on_join(self.items[index])
