"""The start screen: what the transcript area shows whenever no session is open.

Three ways in, one click each: **host a room** (its name, and whether it is visible on this
network), the **rooms on your network** (a live list fed by the worker's browser, and the rooms
joined before), and **join by address or invite**. The window owns the actions; this screen only
calls them (`on_host`, `on_join_room`, `on_join_recent`, `on_join_address`).

The screen is laid over the transcript with `place` (the transcript underneath keeps what was
said in the last chat) and taken away when a session starts. While it shows, the worker browses
for rooms; while a session runs it does not (`set_idle`).
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from typing import TYPE_CHECKING

from app.gui import theme
from app.gui.room_browser import Recent, RecentList, RoomList
from app.worker import NetWorker

if TYPE_CHECKING:
    from app import events as ev

ROOM_HINT = "Leave empty for “{default}”."


class StartScreen(ttk.Frame):
    def __init__(
        self,
        parent: tk.Misc,
        over: tk.Widget,
        fonts: theme.Fonts,
        worker: NetWorker,
        *,
        room: tk.StringVar,
        announce: tk.BooleanVar,
        address: tk.StringVar,
        default_room: Callable[[], str],
        on_host: Callable[[], None],
        on_join_room: Callable[[ev.RoomFound], None],
        on_join_recent: Callable[[Recent], None],
        on_join_address: Callable[[], None],
        discover: bool = True,
    ) -> None:
        super().__init__(parent, padding=(18, 14))
        self._over = over
        self._worker = worker
        self._default_room = default_room
        self.discover = discover
        self.browsing = False
        self.shown = False
        self.columnconfigure(0, weight=1, uniform="half")
        self.columnconfigure(1, weight=1, uniform="half")
        self.rowconfigure(1, weight=1)

        top = ttk.Frame(self)
        top.grid(row=0, column=0, columnspan=2, sticky="ew", pady=(0, 10))
        ttk.Label(top, text="Welcome to Parley", font=fonts.heading).pack(anchor="w")
        # What happened last (a failed join and what is likely wrong, why a chat ended): the
        # transcript that says it in full is under this screen.
        self.last = ttk.Label(top, wraplength=700, justify="left")
        self.last.pack(anchor="w")
        left = ttk.Frame(self)
        left.grid(row=1, column=0, sticky="nsew", padx=(0, 16))
        right = ttk.Frame(self)
        right.grid(row=1, column=1, sticky="nsew")
        # Both lists give up height when the window is short, not the rooms' list alone.
        right.rowconfigure(1, weight=3)
        right.rowconfigure(3, weight=1)
        right.columnconfigure(0, weight=1)

        # Host a room
        ttk.Label(left, text="Host a room", style="Heading.TLabel").pack(anchor="w")
        ttk.Label(left, text="Room name", style="Muted.TLabel").pack(anchor="w", pady=(6, 0))
        self.room_entry = ttk.Entry(left, textvariable=room, width=30)
        self.room_entry.pack(anchor="w", fill="x")
        self.room_hint = ttk.Label(left, style="Muted.TLabel")
        self.room_hint.pack(anchor="w")
        self.visible_box = ttk.Checkbutton(left, text="Visible on this network", variable=announce)
        self.visible_box.pack(anchor="w", pady=(4, 0))
        self.host_button = ttk.Button(
            left, text="Host this room", style="Accent.TButton", command=on_host
        )
        self.host_button.pack(anchor="w", pady=(8, 0))
        self.room_entry.bind("<Return>", lambda e: on_host())

        # Join by address or invite
        ttk.Label(left, text="Join by address or invite", style="Heading.TLabel").pack(
            anchor="w", pady=(22, 0)
        )
        ttk.Label(
            left, text="e.g. 192.168.1.5, 192.168.1.5:5151 or parley://…", style="Muted.TLabel"
        ).pack(anchor="w", pady=(6, 0))
        self.address_entry = ttk.Entry(left, textvariable=address, width=30)
        self.address_entry.pack(anchor="w", fill="x")
        self.join_button = ttk.Button(left, text="Join", command=on_join_address)
        self.join_button.pack(anchor="w", pady=(8, 0))
        self.address_entry.bind("<Return>", lambda e: on_join_address())

        # Rooms near you
        ttk.Label(right, text="Rooms on your network", style="Heading.TLabel").grid(
            row=0, column=0, sticky="w"
        )
        self.rooms = RoomList(right, on_join_room)
        self.rooms.grid(row=1, column=0, sticky="nsew", pady=(6, 0))
        ttk.Label(right, text="Recent", style="Heading.TLabel").grid(
            row=2, column=0, sticky="w", pady=(14, 0)
        )
        self.recent = RecentList(right, fonts, on_join_recent)
        self.recent.grid(row=3, column=0, sticky="nsew", pady=(6, 0))

        room.trace_add("write", lambda *_: self.show_room_hint())
        self.show_room_hint()

    def show_room_hint(self) -> None:
        self.room_hint.configure(text=ROOM_HINT.format(default=self._default_room()))

    def add_hint(self, text: str) -> None:
        """The connection doctor's explanation, under what happened last."""
        shown = str(self.last.cget("text"))
        self.last.configure(text=f"{shown}\n{text}" if shown else text)

    def handle(self, event: object) -> bool:
        """Take the browser's events; True when `event` was one."""
        from app import events as ev  # here, not above: not before the window's first paint

        if isinstance(event, ev.RoomFound):
            self.rooms.found(event)
            return True
        if isinstance(event, ev.RoomGone):
            self.rooms.gone(event.key)
            return True
        if isinstance(event, ev.Failed):
            self.last.configure(text=event.text, style="Hint.TLabel")
        elif isinstance(event, ev.ChatEnded):
            self.last.configure(text=event.reason, style="Muted.TLabel")
        elif isinstance(event, ev.Hosting | ev.Connected):
            self.last.configure(text="")
        return False

    def set_idle(self, idle: bool) -> None:
        """Shown (and browsing) when no session is open; hidden while one is."""
        if idle and not self.shown:
            self.place(in_=self._over, x=0, y=0, relwidth=1, relheight=1)
            self.lift()
            self.shown = True
        elif not idle and self.shown:
            self.place_forget()
            self.shown = False
        browse = idle and self.discover
        if browse != self.browsing:
            self.browsing = browse
            if browse:
                self._worker.browse()
            else:
                self._worker.stop_browsing()
            self.rooms.set_looking(browse)
