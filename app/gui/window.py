"""The chat window: connection bar, transcript, member list, entry box and status line.

How this works
--------------
`ChatWindow` builds its widgets inside a toplevel it is given (the app's `Tk` root, or a
`Toplevel` in tests, where two windows share one process) and drives the `NetWorker` it is
given. The worker posts events to `events` from its own thread; a `QueuePoller` drains that queue
on Tk's timer, a bounded batch per tick, so Tk is only ever touched from the main thread.

Each event goes through `SessionView.apply`, which updates the session state (idle, starting,
in a room), the member list and the status text, and returns the transcript lines to show. Lines
are collected and drawn once per tick, and the controls are refreshed once per tick, so a flood
costs one redraw per batch rather than one per message.

Security shows in three places: the bar (password, the "unencrypted" checkboxes, an invite
pasted as the address; while hosting, the invite with Copy invite), the status bar's badge
("Encrypted · safety code …" or a red "Not encrypted"), and a red banner when a host's identity
changed: the join was refused, and "Trust new identity" tries again accepting it. Trusting is
always a separate press; nothing else sets `trust_new`.

How it reads and answers (issue 12): colours come from `theme.py` by role, so View > System /
Light / Dark and the text size (Ctrl+plus / minus / 0) repaint everything, and are remembered
with "Member list" and "Ask before ending the room" in the settings. The status bar counts down
to the next try while reconnecting, with Reconnect now and Cancel; the Start button is a Cancel
while connecting. A host's Leave, window close and Ctrl+Q ask first when others are present
(`request_leave` / `request_close`; `leave` / `close` act at once). The message box answers Tab,
Shift+Tab, PageUp/PageDown, Ctrl+Home/End and Ctrl+A, and grows up to five lines.

Closing the window stops the poller, hides the window at once, and stops the worker with a
bound (`close_timeout`): the worker says bye (a host ends the room) and gives up waiting if the
network is stuck, so no thread or socket outlives the window.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import getpass
import os
import queue
import time
import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from types import TracebackType
from typing import TYPE_CHECKING

from app import __version__
from app.address import DEFAULT_PORT, local_addresses, parse_port
from app.assets import asset_path
from app.export import ExportLog, export
from app.gui import theme
from app.gui.connection_bar import ConnectionBar
from app.gui.logic import (
    InputHistory,
    Line,
    Mode,
    NameColours,
    Request,
    SessionView,
    Unread,
    address_to_remember,
    check_fields,
    for_display,
    in_window_words,
    invite_in,
    invite_note,
    invite_shown,
    masked_invite,
    member_label,
    message_to_send,
    split_join_target,
    text_limit,
    title_for,
    too_long,
)
from app.gui.poller import QueuePoller, favour_the_event_loop
from app.gui.room_browser import Recent, remember
from app.gui.start_screen import StartScreen
from app.gui.tabs import (
    ConversationTabs,
    add_conversation_items,
    ask_export_path,
    bind_member_list,
    export_entry,
)
from app.gui.transfers import Transfers
from app.logs import logger
from app.notify import DesktopNotifications, Notifier, NotifyPolicy, describe
from app.room_names import default_room_name, trim_room_name
from app.settings import Settings, SettingsStore
from app.worker import NetWorker

if TYPE_CHECKING:
    from app import events as ev
    from app.net import HostOptions, JoinOptions

# The network stack (asyncio, TLS, crypto) is imported after the window's first paint
# (`app.gui.launch`) or when a room starts, never before the window shows: start-up time. The
# events and the protocol (dataclasses by the score, `regex`) are not needed to draw the first
# screen either: the methods that handle events import them (tests/gui/test_startup.py).

log = logger(__name__)

TITLE = "Parley"
ENTRY_HINT = "Host or join a chat to send messages."
ICONS = ("icon-256.png", "icon-128.png", "icon-64.png", "icon-48.png", "icon-32.png", "icon-16.png")
# What the app's window gives the window manager before its first paint (title bar, taskbar,
# dock); the two large ones follow just after it (`icons_after_paint`): decoding their PNGs was
# 2.3 of the 3.2 ms the icons took before the map, for the task switcher's larger pictures.
FIRST_ICONS = ICONS[2:]
ABOUT_ICON = "icon-64.png"
STATUS_ROOM = 320  # pixels the status needs beside the badges, or they go below it
ENTRY_LINES = (1, 5)  # the message box grows with its text from one line up to five


def _choice(value: str) -> theme.ThemeChoice:
    return "light" if value == "light" else "dark" if value == "dark" else "system"


def default_name() -> str:
    try:
        return getpass.getuser() or ""
    except Exception:  # no user name in this environment (e.g. some containers)
        return ""


def bind_own(top: tk.Misc, sequence: str, action: Callable[[tk.Event], object]) -> None:
    """Bind `action` to `sequence` on `top` itself, not on the widgets inside it.

    A binding on a toplevel (`top.bind`) also gets the events of every widget in it: Tk puts
    the toplevel in each widget's bindtags. At the first map all ~70 of the window's widgets are
    mapped, so a `<Map>` binding there was ~70 Python calls, each with tkinter's substitution of
    19 event fields, in the middle of the first paint (about 2 ms per binding). A tag of its
    own, that only `top` carries, gets only `top`'s events."""
    tag = f"own{top}"  # "own.", "own.!toplevel2": a tag starting with "." is a window path
    tags = top.bindtags()
    if tag not in tags:
        top.bindtags((tag, *tags))
    top.bind_class(tag, sequence, action, add="+")


def load_icons(master: tk.Misc, names: tuple[str, ...]) -> dict[str, tk.PhotoImage]:
    """The icons among `names` that exist in assets/ and load; others are skipped quietly."""
    icons: dict[str, tk.PhotoImage] = {}
    for name in names:
        path = asset_path(name)
        if path.is_file():
            with contextlib.suppress(tk.TclError):
                icons[name] = tk.PhotoImage(master=master, file=str(path))
    return icons


class ChatWindow:
    """One chat window, built inside `top` and driving `worker`, which posts to `events`.

    The window owns the worker's life from here on: closing the window stops it. `bind`,
    `host_options` and `join_options` decide what Start asks the worker for (tests bind to
    127.0.0.1, shrink time limits and choose data folders); the window then adds the security
    choices (password, plain, fingerprint, trust) from the request itself, so a factory cannot
    lose them. `bell` rings for new messages while unfocused.
    """

    def __init__(
        self,
        top: tk.Tk | tk.Toplevel,
        worker: NetWorker,
        events: queue.Queue[ev.Event],
        *,
        store: SettingsStore | None = None,
        bind: str | None = None,
        host_options: Callable[[Request], HostOptions] | None = None,
        join_options: Callable[[Request], JoinOptions] | None = None,
        scrollback: int = 10_000,
        batch: int = 500,
        close_timeout: float = 0.45,
        on_closed: Callable[[], None] | None = None,
        bell: Callable[[], None] | None = None,
        discover: bool = True,
        notifier: Notifier | None = None,
        addresses_after_paint: bool = False,
        transcript_after_paint: bool = False,
        icons_after_paint: bool = False,
    ) -> None:
        self.top = top
        # The app's window (`app.gui.launch`) builds the room transcript's inside (its Text,
        # scrollbar, tags) after its first paint (`build_after_paint`): the start screen covers
        # it until a session starts. Any earlier use builds it then (see `Transcript`).
        self._transcript_later = transcript_after_paint
        self._icons_later = icons_after_paint  # the large icons: see FIRST_ICONS
        # Listing this machine's addresses loads ifaddr and ctypes and runs `ldconfig -p`: the
        # app's window (`app.gui.launch`) asks for that after its first paint
        # (`show_addresses_now`); a window built without that flag lists them at once.
        self._addresses_later = addresses_after_paint
        self.worker = worker
        self.events = events
        self.store = store
        self.bind = bind
        self._host_options = host_options or self._default_host_options
        self._join_options = join_options or _default_join_options
        self.close_timeout = close_timeout
        self._scrollback = scrollback
        self._on_closed = on_closed
        self._bell = bell or top.bell
        self.notifier: Notifier = notifier if notifier is not None else DesktopNotifications()
        self.notify_policy = NotifyPolicy()
        self.kept = ExportLog()  # what the transcripts showed, for Export transcript…
        self.closed = False
        self.view = SessionView()
        self.unread = Unread()
        self.history = InputHistory()
        self.about_dialog: tk.Toplevel | None = None
        self._lines: list[Line] = []
        self._ring = False
        self._drawn: tuple[object, ...] = ()
        self._draft = ""
        self._leaving = False
        self._focus_check: str | None = None
        self._icons: list[tk.PhotoImage] = []
        self._about_icon: tk.PhotoImage | None = None
        self._comfort = Settings()  # theme, text size, member list, asking before ending
        self._asked_port = ""  # hosting on port 0: what to put back when the room closes
        self._pasted_invite = ""  # the invite whose password the address field hides
        self._retry_timer: str | None = None
        self.confirm_dialog: tk.Toplevel | None = None
        self.name_colours = NameColours(len(theme.LIGHT.names), theme.NAME_FAMILIES)

        self.discover = discover  # look for rooms on the network while no session is open
        self.recent: tuple[Recent, ...] = ()
        self._joining_room: str | None = None  # the name of the room being joined from a list

        # The saved look goes straight into the theme: painting it once, not the default first
        # and then the saved one (each asks the desktop whether it is dark: a subprocess).
        saved = self.store.load() if self.store is not None else Settings()
        self.theme = theme.install(top, _choice(saved.theme), saved.text_size)
        self.fonts = self.theme.fonts
        top.title(TITLE)
        top.geometry("960x640")
        self.theme.paint(top, background="background")
        self._set_icon(FIRST_ICONS if icons_after_paint else ICONS)
        if isinstance(top, tk.Tk):
            top.report_callback_exception = self._callback_failed
        self._build()
        self.files = Transfers(
            top,
            self.transcript,
            self.members,
            worker,
            member_name=self._member_at,
            before_card=self._flush_lines,
        )
        self.files.more_items = lambda name: [
            (f"Private conversation with {name}", lambda: self.open_private(name))
        ]
        self._load_settings(saved)
        top.minsize(max(480, self.bar.min_width()), 400)

        top.protocol("WM_DELETE_WINDOW", self.request_close)
        top.bind("<FocusIn>", self._focus_changed, add="+")
        top.bind("<FocusOut>", self._focus_changed, add="+")
        bind_own(top, "<Map>", self._focus_changed)  # shown without focus: count unread
        self._focus_changed(None)
        top.bind("<Control-q>", lambda e: self.request_close())
        self._bind_keys()
        favour_the_event_loop()  # the network thread gives the GIL back sooner (poller.py)
        self.poller: QueuePoller[ev.Event] = QueuePoller(
            top.after, top.after_cancel, events, self._handle, self._flush, batch=batch
        )
        self._refresh()
        self.poller.start()

    # --- building -------------------------------------------------------------------------------

    def _build(self) -> None:
        top = self.top
        top.rowconfigure(3, weight=1)
        top.columnconfigure(0, weight=1)

        menubar = tk.Menu(top)
        chat = tk.Menu(menubar, tearoff=False)
        chat.add_command(label="Leave the chat", command=self.request_leave)
        self.ask_end = tk.BooleanVar(top, True)
        chat.add_checkbutton(
            label="Ask before ending the room for everyone",
            variable=self.ask_end,
            command=self._comfort_changed,
        )
        self.keep_history = tk.BooleanVar(top, value=True)
        self.notifications = tk.BooleanVar(top, value=True)
        add_conversation_items(
            chat,
            export=self.export_dialog,
            clear=self.clear_history,
            keep_history=self.keep_history,
            notifications=self.notifications,
            on_notifications=self._notifications_changed,
        )
        chat.add_separator()
        chat.add_command(label="Quit", accelerator="Ctrl+Q", command=self.request_close)
        view = tk.Menu(menubar, tearoff=False)
        self.theme_choice = tk.StringVar(top, "system")
        for value, label in (("system", "System theme"), ("light", "Light"), ("dark", "Dark")):
            view.add_radiobutton(
                label=label, value=value, variable=self.theme_choice, command=self._theme_chosen
            )
        view.add_separator()
        view.add_command(label="Larger text", accelerator="Ctrl++", command=lambda: self.zoom(1))
        view.add_command(label="Smaller text", accelerator="Ctrl+-", command=lambda: self.zoom(-1))
        view.add_command(label="Default text size", accelerator="Ctrl+0", command=self.zoom_reset)
        view.add_separator()
        self.show_members = tk.BooleanVar(top, True)
        view.add_checkbutton(
            label="Member list", variable=self.show_members, command=self._members_toggled
        )
        helpmenu = tk.Menu(menubar, tearoff=False)
        helpmenu.add_command(label="About Parley", command=self.show_about)
        menubar.add_cascade(label="Chat", menu=chat)
        menubar.add_cascade(label="View", menu=view)
        menubar.add_cascade(label="Help", menu=helpmenu)
        for menu in (menubar, chat, view, helpmenu):
            theme.style_menu(menu)
        top.configure(menu=menubar)
        self.menu, self.chat_menu, self.view_menu = menubar, chat, view

        self.bar = ConnectionBar(
            top, on_start=self.start, on_mode=self._mode_changed, on_copy=self.copy
        )
        self.bar.grid(row=0, column=0, sticky="ew")
        ttk.Separator(top, orient="horizontal").grid(row=1, column=0, sticky="ew")
        self.bar.port.trace_add("write", lambda *_: self._where_edited())
        self.bar.address.trace_add("write", lambda *_: self._where_edited())

        # The loud warning when a host's identity changed (gridded only then).
        self.banner = ttk.Frame(top, style="Alarm.TFrame", padding=(14, 10))
        self.banner.columnconfigure(0, weight=1)
        self.banner_text = ttk.Label(self.banner, style="Alarm.TLabel", justify="left")
        self.banner_text.grid(row=0, column=0, sticky="nw")
        buttons = ttk.Frame(self.banner, style="Alarm.TFrame")
        buttons.grid(row=0, column=1, sticky="ne", padx=(14, 0))
        self.trust_button = ttk.Button(
            buttons, text="Trust new identity", command=self.trust_new_identity
        )
        self.dismiss_button = ttk.Button(buttons, text="Dismiss", command=self.dismiss_warning)
        self.trust_button.pack(fill="x")
        self.dismiss_button.pack(fill="x", pady=(6, 0))
        self.banner.bind(
            "<Configure>",
            lambda e: self.banner_text.configure(
                wraplength=max(200, e.width - buttons.winfo_reqwidth() - 50)
            ),
        )

        panes = ttk.PanedWindow(top, orient="horizontal")
        panes.grid(row=3, column=0, sticky="nsew", padx=12, pady=(10, 6))
        self.tabs = ConversationTabs(
            panes,
            self.fonts,
            scrollback=self._scrollback,
            on_type=self._typed_elsewhere,
            name_slot=self.name_colours.slot,
            on_change=self._tab_changed,
            room_later=self._transcript_later,
        )
        self.transcript = self.tabs.room
        side = ttk.Frame(panes, padding=(10, 0, 0, 0))
        self.panes, self.side = panes, side
        self.members_label = ttk.Label(side, text="In the room", style="Heading.TLabel")
        self.members_label.pack(anchor="w", pady=(0, 4))
        self.members = tk.Listbox(
            side,
            width=18,
            height=6,
            activestyle="none",
            font=self.fonts.body,
            takefocus=0,
            **theme.FLAT,
        )
        self.theme.paint(
            self.members,
            selectbackground="select",
            selectforeground="text",
            **theme.surface_roles(),
        )
        self.theme.on_change(lambda p: self._show_members())
        self.members.pack(fill="both", expand=True)
        panes.add(self.tabs, weight=1)
        bind_member_list(self.members, self._member_at, self.open_private)
        panes.add(side, weight=0)
        self._build_discovery(panes)

        composer = ttk.Frame(top, padding=(12, 0, 12, 4))
        composer.grid(row=4, column=0, sticky="ew")
        composer.columnconfigure(0, weight=1)
        self.entry = tk.Text(
            composer,
            height=ENTRY_LINES[0],
            wrap="word",
            font=self.fonts.body,
            padx=8,
            pady=6,
            undo=True,
            **theme.FLAT,
        )
        self.theme.paint(
            self.entry,
            insertbackground="text",
            selectbackground="select",
            selectforeground="text",
            **theme.surface_roles(focus_ring="accent"),
        )
        self.entry.tag_configure("hint", font=self.fonts.italic)
        self.theme.paint_tag(self.entry, "hint", foreground="muted")
        self.entry.grid(row=0, column=0, sticky="ew")
        self.send_button = ttk.Button(
            composer, text="Send", style="Accent.TButton", command=self.send
        )
        self.send_button.grid(row=0, column=1, sticky="ns", padx=(8, 0))
        self.file_button = ttk.Button(
            composer,
            text="Send file…",
            # in a private conversation's tab, to that member alone (the title says so)
            command=lambda: self.files.choose_and_send(self.tabs.private_name()),
        )
        self.file_button.grid(row=0, column=2, sticky="ns", padx=(8, 0))
        self.entry.bind("<Return>", self._enter)
        self.entry.bind("<KP_Enter>", self._enter)
        self.entry.bind("<Shift-Return>", self._newline)
        self.entry.bind("<Shift-KP_Enter>", self._newline)
        self.entry.bind("<Up>", self._up)
        self.entry.bind("<Down>", self._down)
        help_text = (
            "Enter sends · Shift+Enter: new line · Up: last message · /nick NEW · bye leaves"
        )
        self.entry_help = ttk.Label(composer, text=help_text, style="Muted.TLabel")
        self.entry_help.grid(row=1, column=0, columnspan=3, sticky="w", pady=(3, 0))
        self.entry_error = ttk.Label(composer, style="Hint.TLabel", justify="left")
        composer.bind(
            "<Configure>", lambda e: self.entry_error.configure(wraplength=max(200, e.width - 30))
        )
        self.composer = composer

        statusbar = ttk.Frame(top, style="Statusbar.TFrame")
        statusbar.grid(row=5, column=0, sticky="ew")
        ttk.Separator(statusbar, orient="horizontal").pack(fill="x")
        # The status on the left, the badges on the right; on a narrow window the badges go
        # to a row of their own (see `_wrap_status`), so the status is never squeezed.
        inside = ttk.Frame(statusbar, style="Statusbar.TFrame")
        inside.pack(fill="x")
        inside.columnconfigure(0, weight=1)
        right = ttk.Frame(inside, style="Statusbar.TFrame")
        self.status_right = right
        self.count_label = ttk.Label(right, style="Status.TLabel")
        self.count_label.pack(side="right")
        self.security_label = ttk.Label(right, style="Status.TLabel")
        self.security_label.pack(side="right")
        # While reconnecting (packed only then): try now, or stop trying.
        self.reconnect_buttons = ttk.Frame(right, style="Statusbar.TFrame")
        self.reconnect_now_button = ttk.Button(
            self.reconnect_buttons, text="Reconnect now", command=self.reconnect_now
        )
        self.cancel_button = ttk.Button(self.reconnect_buttons, text="Cancel", command=self.leave)
        self.reconnect_now_button.pack(side="left", padx=(0, 6), pady=2)
        self.cancel_button.pack(side="left", pady=2)
        # The status wraps at word boundaries rather than being cut (its width follows the bar).
        self.status = ttk.Label(inside, style="Status.TLabel", anchor="w", justify="left")
        self.status.grid(row=0, column=0, sticky="ew")
        right.grid(row=0, column=1, sticky="e")
        self._status_rows = 1
        self.statusbar = statusbar
        right.bind("<Configure>", lambda e: self._wrap_status(), add="+")
        statusbar.bind("<Configure>", lambda e: self._wrap_status(), add="+")

    def _build_discovery(self, panes: ttk.PanedWindow) -> None:
        """The start screen over the transcript (see app/gui/start_screen.py), with the room
        name and "Visible on this network" for hosting (the bar has no room for them)."""
        bar = self.bar
        self.room_name = tk.StringVar(self.top, "")
        self.announce = tk.BooleanVar(self.top, True)
        self.start_screen = StartScreen(
            panes,
            self.transcript,
            self.fonts,
            self.worker,
            room=self.room_name,
            announce=self.announce,
            address=bar.address,
            default_room=lambda: default_room_name(bar.name.get().strip() or "Host"),
            on_host=self.host_from_start,
            on_join_room=self.join_room,
            on_join_recent=self.join_recent,
            on_join_address=self.join_from_start,
            discover=self.discover,
        )
        bar.name.trace_add("write", lambda *_: self.start_screen.show_room_hint())

    def host_from_start(self) -> None:
        """The start screen's Host this room."""
        self.bar.set_mode("host")
        self.start()

    def join_from_start(self) -> None:
        """The start screen's Join (the address field is the bar's own)."""
        self.bar.set_mode("join")
        self.start()

    def join_room(self, room: ev.RoomFound) -> None:
        """A room chosen in the list of rooms on the network: join it (first contact on trust,
        as a typed address; see docs/security.md)."""
        self._join_at(room.host, room.port, room.name)

    def join_recent(self, recent: Recent) -> None:
        self._join_at(recent.host, recent.port, recent.name)

    def _join_at(self, host: str, port: int, name: str) -> None:
        if self.view.state != "idle":
            return
        self.bar.set_mode("join")
        self.bar.address.set(f"[{host}]" if ":" in host else host)
        self.bar.port.set(str(port))
        self._joining_room = name
        self.start()
        if str(self.view.state) == "idle":  # the fields were refused: nothing is being joined
            self._joining_room = None

    def _doctor(self, event: ev.Event) -> list[Line]:
        """The connection doctor's words (see app/doctor.py): for a host, its addresses by
        interface and any firewall in the way; after a failed join, what is likely."""
        from app import doctor
        from app import events as ev

        if isinstance(event, ev.Hosting):
            notes = doctor.share_notes(event.addresses)
            hint = doctor.firewall_hint(event.port)
            text = "Others reach this room at: " + "; ".join(
                n for n in notes if not n.startswith("Warning")
            )
            warnings = [n for n in notes if n.startswith("Warning")]
            return [Line("notice", t) for t in [text, *warnings, *([hint] if hint else [])]]
        if isinstance(event, ev.Failed) and event.kind in ("unreachable", "timeout"):
            request = self.view.request
            if request is None or request.mode != "join":
                return []
            hint = doctor.explain_unreachable(request.host)
            if hint:
                self.start_screen.add_hint(hint)
                return [Line("notice", hint)]
        return []

    def _remember_room(self, event: ev.Connected) -> None:
        """A join worked: put the room first in Recent (with its name when known)."""
        if event.foreign or event.resumed:
            return
        host = event.host.strip("[]")
        shown = f"[{host}]:{event.port}" if ":" in host else f"{host}:{event.port}"
        name, self._joining_room = self._joining_room or shown, None
        self.recent = remember(self.recent, Recent(name, host, event.port))
        self.start_screen.recent.show(self.recent)
        self.save_settings()

    def _set_icon(self, names: tuple[str, ...] = ICONS) -> None:
        """Use the app's icons when they are there; a missing or broken file is no error."""
        icons = load_icons(self.top, names)
        self._icons = list(icons.values())
        self._about_icon = icons.get(ABOUT_ICON)
        if self._icons:
            with contextlib.suppress(tk.TclError):
                self.top.iconphoto(True, *self._icons)

    # --- settings and arguments -----------------------------------------------------------------

    def _load_settings(self, settings: Settings) -> None:
        self.bar.mode.set(settings.mode)
        self.bar.address.set(settings.host)
        self.bar.port.set(str(settings.port))
        self.bar.name.set(settings.name or default_name())
        self.bar.set_mode(settings.mode)  # the "unencrypted" checkboxes start unticked, always
        self._comfort = settings
        self.theme_choice.set(settings.theme)
        self.ask_end.set(settings.confirm_end)
        self.show_members.set(settings.show_members)
        if self.theme.choice != _choice(settings.theme):  # a theme another window installed
            self.theme.set_choice(_choice(settings.theme))
        if self.theme.size_step != settings.text_size:
            self.theme.set_size(settings.text_size)
        self._members_toggled()
        self.room_name.set(settings.room)
        self.announce.set(settings.announce)
        self.recent = tuple(r for r in map(Recent.from_json, settings.recent) if r is not None)
        self.start_screen.recent.show(self.recent)
        self.keep_history.set(settings.keep_history)
        self.notifications.set(settings.notifications)
        self.notify_policy.enabled = settings.notifications

    def current_settings(self) -> Settings:
        """What to remember: never the password, nor an invite (it may carry the password), nor
        the "unencrypted" checkboxes (a choice to give up encryption is made each time)."""
        bar = self.bar
        host, invite_port = address_to_remember(self.typed_address())
        try:
            port = parse_port(bar.port.get()) if invite_port is None else invite_port
        except ValueError:
            port = DEFAULT_PORT
        return Settings(
            bar.current_mode,
            host,
            port,
            bar.name.get().strip(),
            theme=self.theme_choice.get(),
            text_size=self.theme.size_step,
            show_members=bool(self.show_members.get()),
            confirm_end=bool(self.ask_end.get()),
            room=self.room_name.get().strip(),
            announce=bool(self.announce.get()),
            recent=tuple(dataclasses.asdict(r) for r in self.recent),
            keep_history=bool(self.keep_history.get()),
            notifications=bool(self.notifications.get()),
        )

    def save_settings(self) -> None:
        if self.store is not None:
            self.store.save(self.current_settings())

    def apply_arguments(
        self,
        *,
        host: bool = False,
        join: str | None = None,
        port: int | None = None,
        name: str | None = None,
    ) -> None:
        """Pre-fill from the command line; `--host` or `--join` (an address or an invite)
        starts at once."""
        if name:
            self.bar.name.set(name)
        if join is not None:
            self.bar.set_mode("join")
            address, typed_port = split_join_target(join)
            self.bar.address.set(address)
            if typed_port is not None:
                self.bar.port.set(str(typed_port))
        elif host:
            self.bar.set_mode("host")
        if port is not None:
            self.bar.port.set(str(port))
        if host or join is not None:
            self.start()

    # --- actions --------------------------------------------------------------------------------

    def start(self) -> None:
        """The Start / Connect / Leave button."""
        if self.view.state == "in_room":
            self.request_leave()
            return
        if self.view.state == "starting":
            self.leave()  # the button reads Cancel while connecting
            return
        bar = self.bar
        checked = check_fields(
            bar.current_mode,
            self.typed_address(),
            bar.port.get(),
            bar.name.get(),
            password=bar.password.get(),
            plain=bool(bar.plain.get()),
            allow_plain=bool(bar.allow_plain.get()),
        )
        if checked.request is None:
            bar.set_errors(checked.errors)
            return
        request = checked.request
        bar.set_errors({})
        if request.mode == "join":
            if request.fingerprint is None:  # "host:6000" typed: split it into the fields
                bar.address.set(request.host)
            bar.port.set(str(request.port))  # an invite's port, where the port goes
        bar.name.set(request.name)
        self._asked_port = bar.port.get()
        self._begin(request)

    def trust_new_identity(self) -> None:
        """The banner's button: join the refused host again, accepting its new identity."""
        request = self.view.request
        if not self.view.can_trust or request is None:
            return
        self._begin(dataclasses.replace(request, trust_new=True))

    def dismiss_warning(self) -> None:
        self.view.forget_warning()
        self._refresh()

    def _begin(self, request: Request) -> None:
        self.save_settings()
        self.view.starting(request)
        self._leaving = False
        self._refresh()
        if request.mode == "host":
            self.worker.host(self.host_options_for(request))
        else:
            self.worker.join(self.join_options_for(request))

    def _default_host_options(self, request: Request) -> HostOptions:
        from app.net import HostOptions

        return HostOptions(port=request.port, bind=self.bind, name=request.name)

    def host_options_for(self, request: Request) -> HostOptions:
        """The factory's options with what the person chose on top (a choice only adds)."""
        base = self._host_options(request)
        return dataclasses.replace(
            base,
            password=request.password or base.password,
            allow_plain=request.allow_plain or base.allow_plain,
            room=trim_room_name(self.room_name.get()) or base.room,
            announce=bool(self.announce.get()) and base.announce,
            keep_history=base.keep_history and bool(self.keep_history.get()),
        )

    def join_options_for(self, request: Request) -> JoinOptions:
        """The factory's options with what the person chose on top (a choice only adds)."""
        base = self._join_options(request)
        return dataclasses.replace(
            base,
            password=request.password or base.password,
            fingerprint=request.fingerprint or base.fingerprint,
            plain=request.plain or base.plain,
            trust_new=request.trust_new or base.trust_new,
            keep_history=base.keep_history and bool(self.keep_history.get()),
        )

    def request_leave(self) -> None:
        """Leave, Start-as-Leave and the menu: a host with others in the room is asked first."""
        if self._must_ask():
            self.ask_end_room(self.leave)
        else:
            self.leave()

    def request_close(self) -> None:
        """Closing the window and Ctrl+Q: a host with others in the room is asked first."""
        if self._must_ask():
            self.ask_end_room(self.close)
        else:
            self.close()

    def _must_ask(self) -> bool:
        view = self.view
        return (
            bool(self.ask_end.get())
            and view.state == "in_room"
            and view.mode == "host"
            and any(m != view.me for m in view.members)
        )

    def ask_end_room(self, then: Callable[[], None]) -> tk.Toplevel:
        """ "End the room for everyone?" with End the room / Cancel and "Don't ask again";
        not modal: `then` runs when End the room is pressed (tests press it with invoke)."""
        if self.confirm_dialog is not None and self.confirm_dialog.winfo_exists():
            self.confirm_dialog.destroy()
        dialog, frame = self._dialog("End the room?", 20)
        others = len([m for m in self.view.members if m != self.view.me])
        people = "1 other person is" if others == 1 else f"{others} other people are"
        ttk.Label(frame, text="End the room for everyone?", style="Heading.TLabel").pack(anchor="w")
        ttk.Label(
            frame,
            text=f"{people} in your room. Leaving ends the chat for them too.",
            wraplength=360,
            justify="left",
        ).pack(anchor="w", pady=(6, 10))
        self.dont_ask = tk.BooleanVar(dialog, False)
        self.dont_ask_box = ttk.Checkbutton(frame, text="Don't ask again", variable=self.dont_ask)
        self.dont_ask_box.pack(anchor="w")
        buttons = ttk.Frame(frame)
        buttons.pack(anchor="e", pady=(16, 0))

        def end() -> None:
            if self.dont_ask.get():
                self.ask_end.set(False)
                self._comfort_changed()
            dialog.destroy()
            then()

        self.end_room_button = ttk.Button(
            buttons, text="End the room", style="Accent.TButton", command=end
        )
        self.keep_room_button = ttk.Button(buttons, text="Cancel", command=dialog.destroy)
        self.keep_room_button.pack(side="right")
        self.end_room_button.pack(side="right", padx=(0, 8))
        dialog.bind("<Escape>", lambda e: dialog.destroy())
        dialog.bind("<Return>", lambda e: end())
        self.confirm_dialog = dialog
        dialog.after_idle(self._focus_keep_room)  # the safe choice has the focus
        return dialog

    def _dialog(self, title: str, padding: int) -> tuple[tk.Toplevel, ttk.Frame]:
        """A small fixed-size dialog over this window, and the frame to fill."""
        dialog = tk.Toplevel(self.top)
        dialog.title(title)
        dialog.transient(self.top)
        dialog.resizable(False, False)
        frame = ttk.Frame(dialog, padding=padding)
        frame.pack(fill="both", expand=True)
        return dialog, frame

    def _focus_keep_room(self) -> None:
        if self.keep_room_button.winfo_exists():
            self.keep_room_button.focus_set()

    def reconnect_now(self) -> None:
        """The status bar's Reconnect now: try at once instead of waiting out the back-off."""
        if self.view.reconnecting:
            self.worker.reconnect_now()

    def leave(self) -> None:
        if self.view.state == "idle" or self._leaving:
            return
        self._leaving = True
        self.bar.start_button.configure(text="Leaving…")
        self.bar.start_button.state(["disabled"])
        self.worker.leave()

    def send(self) -> None:
        """Enter and Send: send what is typed (a bye ends the chat, as in the terminal)."""
        if self.view.state != "in_room":
            return
        text = message_to_send(self.entry.get("1.0", "end-1c"))
        if text is None:
            self.entry.focus_set()
            return
        problem = too_long(text, text_limit())
        if problem is not None:  # refused here, before sending: the text stays to be cut
            self._show_entry_error(problem)
            self.entry.focus_set()
            return
        self._show_entry_error("")
        to = self.tabs.private_name()
        if to is not None and text.startswith("/") and not text.startswith("//"):
            to = None  # a command (/nick, /msg …) is the room's, whichever tab is open
        self.worker.send(text, to)
        self.history.add(text)
        self.entry.delete("1.0", "end")
        self._fit_soon()
        self.entry.edit_reset()
        self.entry.focus_set()

    def copy(self, text: str) -> None:
        self.top.clipboard_clear()
        self.top.clipboard_append(text)

    def show_about(self) -> tk.Toplevel:
        if self.about_dialog is not None and self.about_dialog.winfo_exists():
            self.about_dialog.lift()
            return self.about_dialog
        dialog, frame = self._dialog("About Parley", 24)
        if self._about_icon is not None:
            ttk.Label(frame, image=self._about_icon).pack(pady=(0, 8))
        ttk.Label(frame, text="Parley", style="Heading.TLabel").pack()
        self.about_version = ttk.Label(frame, text=f"Version {__version__}")
        self.about_version.pack(pady=(2, 8))
        ttk.Label(
            frame,
            text="Chat with people on your network.\nHost a room, or join one by its address.",
            justify="center",
            style="Muted.TLabel",
        ).pack()
        ttk.Button(frame, text="Close", command=dialog.destroy).pack(pady=(16, 0))
        dialog.bind("<Escape>", lambda e: dialog.destroy())
        self.about_dialog = dialog
        return dialog

    def close_soon(self) -> None:
        """Close from the event loop (safe to call from a signal handler on the main thread)."""
        if not self.closed:
            with contextlib.suppress(tk.TclError):
                self.top.after(0, self.close)

    def close(self) -> None:
        """Say bye and leave within about a second, whatever the network does; then go away."""
        if self.closed:
            return
        self.closed = True
        self.poller.stop()
        self._stop_retry_timer()
        self.save_settings()
        with contextlib.suppress(tk.TclError):
            self.top.withdraw()
            self.top.update_idletasks()
        try:
            self.worker.stop(self.close_timeout)
            self.notifier.close()
        finally:
            with contextlib.suppress(tk.TclError):
                self.top.destroy()
            if self._on_closed is not None:
                self._on_closed()

    # --- events from the worker (main thread, via the poller) -----------------------------------

    # --- conversations: private tabs, export, history, notifications --------------------------

    def open_private(self, name: str) -> None:
        """Member list (double-click or menu): the private conversation with `name`."""
        self.tabs.open(name)
        self.entry.focus_set()

    def _tab_changed(self) -> None:
        if self.entry.cget("state") == "normal":
            self.entry.focus_set()

    def export_dialog(self) -> None:
        """Chat → Export transcript…"""
        path = ask_export_path(self.top)
        if path:
            self.export_to(path)

    def export_to(self, path: str) -> None:
        """Write what the transcripts showed to `path` (.txt or .html) and say how it went."""
        view = self.view
        room = f"{view.me}'s room (port {view.port})" if view.mode == "host" else view.where or ""
        try:
            written = export(path, room or "Parley", list(self.kept.entries))
        except (OSError, ValueError) as exc:
            self._lines.append(Line("error", f"Could not export: {exc}"))
        else:
            n = len(self.kept.entries)
            self._lines.append(Line("notice", f"Exported {n} lines to {written}."))
        self._flush()

    def clear_history(self) -> None:
        """Chat → Clear history of this room (the host's log; a joiner's kept transcript)."""
        if self.view.state == "in_room":
            self.worker.clear_history()

    def _notifications_changed(self) -> None:
        self.notify_policy.enabled = bool(self.notifications.get())
        self.save_settings()

    def _keep_and_notify(self, line: Line, now: float) -> None:
        entry = export_entry(line)
        if entry is not None:
            self.kept.entries.append(entry)
        if line.kind != "chat" or line.earlier:
            return
        urgent = line.private is not None or line.mention
        if not self.notify_policy.wants(focused=self.unread.focused, urgent=urgent, now=now):
            return
        if self.notifier.available:
            self.notifier.notify(*describe(line.sender, line.text, line.private, line.mention))
        else:
            self._ring = True  # no notification service: the title count and the bell

    def _member_at(self, index: int) -> str | None:
        """The member shown at `index` in the list, if it is someone else."""
        members = self.view.members
        if 0 <= index < len(members) and members[index] != self.view.me:
            return members[index]
        return None

    def _flush_lines(self) -> None:
        """Lines before a file's card go in first, so the transcript keeps the order."""
        lines, self._lines = self._lines, []
        lines = self.tabs.route(lines)  # private lines to their tabs
        if lines:
            self.transcript.add(lines)

    def _handle(self, event: ev.Event) -> None:
        from app import events as ev

        if type(event) is ev.MessageReceived:  # a flood's events: only what a message needs
            lines = self.view.message(event)
            self._lines += lines
            self._arrived(lines)
            return
        if self.start_screen.handle(event):
            return  # rooms on the network: the start screen's list, nothing else
        joined_room = self._joining_room if isinstance(event, ev.Connected) else None
        if isinstance(event, ev.Connected):
            self._remember_room(event)
        self._lines += self._doctor(event)
        if isinstance(event, ev.FileOffered | ev.FileSending | ev.FileProgress | ev.FileEnded):
            self.files.handle(event)
        elif isinstance(event, ev.Hosting | ev.Connecting):
            self.files.session_started()
        if isinstance(event, ev.MemberRenamed | ev.Connected | ev.Hosting):
            before = self.view.me
        lines = self.view.apply(event)
        if isinstance(event, ev.Failed | ev.ErrorShown | ev.NoticeShown | ev.Reconnecting):
            lines = [dataclasses.replace(x, text=in_window_words(x.text)) for x in lines]
            self.view.status = in_window_words(self.view.status)
            self.view.warning = in_window_words(self.view.warning)
        self._lines += lines
        if isinstance(event, ev.Hosting):
            self.bar.set_addresses(event.addresses)
            self.bar.port.set(str(event.port))  # port 0: the one the system chose
        if isinstance(event, ev.MemberRenamed | ev.Connected | ev.Hosting):
            self._name_changed(before)
        if isinstance(event, ev.MemberRenamed):
            self.name_colours.rename(event.old, event.new)
        if isinstance(
            event, ev.MemberJoined | ev.MemberLeft | ev.MemberRenamed | ev.Connected | ev.Hosting
        ):
            self.name_colours.update(self.view.members)  # before their lines are drawn
        if isinstance(event, ev.Hosting):  # the title names the room by its own name
            self.view.room = trim_room_name(self.room_name.get())
        elif isinstance(event, ev.Connected) and joined_room:  # chosen from the list of rooms
            self.view.room = joined_room
        if isinstance(event, ev.Failed):
            self._failed(event)
        if isinstance(event, ev.ChatEnded | ev.Failed):
            self._session_over()
        if isinstance(event, ev.MemberRenamed):
            self.tabs.renamed(event.old, event.new)
        self._arrived(lines)

    def _arrived(self, lines: list[Line]) -> None:
        """Unread counts, the bell, what Export keeps, and notifications for new lines."""
        now = time.monotonic()
        for line in lines:
            if line.unread and self.unread.arrived(now):
                self._ring = True
            self._keep_and_notify(line, now)

    def _flush(self) -> None:
        self._flush_lines()
        if self._ring:
            self._ring = False
            self._bell()
        self._refresh()

    def _refresh(self) -> None:
        """Bring the controls in line with the session; cheap when nothing changed."""
        view = self.view
        drawn = (
            view.state,
            view.members,
            view.me,
            view.status,
            self.unread.count,
            view.security,
            view.invite,
            view.password_room,
            view.warning,
            view.can_trust,
            view.reconnecting,
            view.title,
            view.plain,
        )
        if drawn == self._drawn:
            return
        before = self._drawn
        self._drawn = drawn
        self.top.title(title_for(self.unread.count, TITLE, view.title))
        self._show_reconnecting()
        if not before or before[0] != view.state:
            self._state_changed()
        if (
            not before
            or before[1:3] != (view.members, view.me)
            or before[-1] != view.plain
            or before[10] != view.reconnecting
        ):
            self._show_members()
        if not before or before[5:] != drawn[5:]:
            self._show_security()
        self._wrap_status()  # the badges may have changed width

    def _show_security(self) -> None:
        view = self.view
        security = view.security
        self.security_label.configure(
            text=security.text, style="Warn.Status.TLabel" if security.warn else "Status.TLabel"
        )
        if view.invite:
            kind = "Password room" if view.password_room else "No password"
            self.bar.show_invite(view.invite, invite_shown(view.invite), kind)
        else:
            self.bar.show_invite("", "", "")
        if view.warning:
            self.banner_text.configure(text=view.warning)
            if view.can_trust:
                self.trust_button.pack(fill="x", before=self.dismiss_button)
            else:
                self.trust_button.pack_forget()
            self.banner.grid(row=2, column=0, sticky="ew")
        else:
            self.banner.grid_forget()

    def _state_changed(self) -> None:
        state = self.view.state
        self.bar.set_state(state)
        self._leaving = False
        in_room = state == "in_room"
        self.chat_menu.entryconfigure(0, state="normal" if in_room else "disabled")
        self.send_button.state(["!disabled" if in_room else "disabled"])
        self.file_button.state(["!disabled" if in_room else "disabled"])
        self.files.enabled = in_room
        if in_room:
            self._enable_entry()
        else:
            self._disable_entry()
        if state == "idle":
            self._show_own_addresses()
            if self.has_focus():
                self.top.after_idle(self.focus_useful_field)
            self._joining_room = None
        self.start_screen.set_idle(state == "idle")
        self._show_note()

    def _show_members(self) -> None:
        members = self.view.members
        box = self.members
        box.delete(0, "end")
        self.name_colours.update(members)
        palette = self.theme.palette
        greyed = self.view.reconnecting  # not current: shown as it was, in grey
        for i, name in enumerate(members):
            box.insert("end", for_display(member_label(name, self.view.me, self.view.plain)))
            colour = palette.greyed if greyed else palette.names[self.name_colours.slot(name)]
            box.itemconfigure(i, foreground=colour)
        n = len(members)
        self.members_label.configure(text=f"In the room ({n})" if n else "In the room")
        self.count_label.configure(text=f"{n} in the room" if n else "")

    # --- the entry box --------------------------------------------------------------------------

    def _enable_entry(self) -> None:
        entry = self.entry
        if entry.cget("state") == "disabled":
            entry.configure(state="normal")
            entry.delete("1.0", "end")
            entry.insert("1.0", self._draft)
            self._draft = ""
        self.entry.focus_set()

    def _disable_entry(self) -> None:
        entry = self.entry
        if entry.cget("state") == "normal":
            self._draft = entry.get("1.0", "end-1c")
            entry.delete("1.0", "end")
            entry.insert("1.0", ENTRY_HINT, "hint")
            entry.configure(state="disabled")
        self.history.reset()

    def _enter(self, _event: object) -> str:
        self.send()
        return "break"

    def _newline(self, _event: object) -> str:
        if self.entry.cget("state") == "normal":
            self.entry.insert("insert", "\n")
            self.entry.see("insert")
            self._fit_soon()
        return "break"

    def _up(self, _event: object) -> str | None:
        entry = self.entry
        if entry.cget("state") != "normal" or entry.compare("insert linestart", "!=", "1.0"):
            return None  # not on the first line: move the caret as usual
        recalled = self.history.older(entry.get("1.0", "end-1c"))
        if recalled is not None:
            self._replace_entry(recalled)
        return "break"

    def _down(self, _event: object) -> str | None:
        entry = self.entry
        if not self.history.browsing or entry.compare("insert lineend", "!=", "end-1c"):
            return None
        recalled = self.history.newer()
        if recalled is not None:
            self._replace_entry(recalled)
        return "break"

    def _replace_entry(self, text: str) -> None:
        self.entry.delete("1.0", "end")
        self.entry.insert("1.0", text)
        self.entry.mark_set("insert", "end-1c")
        self._fit_soon()

    def _typed_elsewhere(self, char: str) -> None:
        if self.entry.cget("state") == "normal":
            self.entry.focus_set()
            self.entry.insert("insert", char)

    # --- focus, unread, the title ---------------------------------------------------------------

    def _focus_changed(self, _event: object) -> None:
        # FocusOut also fires when focus moves between our own widgets: look once things settle.
        if self._focus_check is None and not self.closed:
            self._focus_check = self.top.after_idle(self._check_focus)

    def _check_focus(self) -> None:
        self._focus_check = None
        if self.closed:
            return
        self.unread.set_focused(self.has_focus())
        self._refresh()

    def has_focus(self) -> bool:
        """Whether the keyboard focus is in this window (not merely in this application)."""
        path = str(self.top.tk.call("focus", "-displayof", self.top))
        if not path:
            return False
        return str(self.top.tk.call("winfo", "toplevel", path)) == str(self.top)

    # --- misc -----------------------------------------------------------------------------------

    def _mode_changed(self, mode: Mode) -> None:
        if mode == "host":
            self._show_own_addresses()
        if self.view.warning and self.view.state == "idle":
            self.dismiss_warning()  # it was about joining
        self._show_note()
        if self.has_focus():
            self.focus_useful_field()

    def _where_edited(self) -> None:
        """Address or port edited: the addresses shown, the invite note, and a warning about
        another place (or a trust offer for it) no longer apply."""
        self._hide_invite_password()
        self._show_own_addresses()
        self._show_note()
        if self.view.warning and self.view.state == "idle":
            self.dismiss_warning()

    def _show_note(self) -> None:
        """Under the bar, what an invite in the address field will do; and its port goes into
        the port field, where people look for it."""
        joining = self.bar.current_mode == "join" and self.view.state == "idle"
        address = self.typed_address()
        self.bar.set_note(invite_note(address) if joining else "")
        invite = invite_in(address) if joining else None
        if invite is not None and self.bar.port.get() != str(invite.port):
            self.bar.port.set(str(invite.port))

    def enable_drops(self) -> bool:
        """Files dragged onto the window are offered to the room (see `app.gui.dnd`); called
        after the first paint. False: drag-and-drop is not available here."""
        from app.gui import dnd

        return dnd.enable(self.top, self._files_dropped, lambda: self.files.enabled)

    def _files_dropped(self, paths: list[str]) -> bool:
        """Offer each dropped file as Send file… would (to the room, or in a private
        conversation's tab to that member); a folder is not a file."""
        from app import events as ev

        if not self.files.enabled:
            return False
        sent = False
        for path in paths:
            if os.path.isdir(path):
                text = f"{path} is a folder: Parley sends files (drop the files in it instead)."
                self.events.put(ev.ErrorShown(text))
                continue
            self.worker.send_file(path, self.tabs.private_name())
            sent = True
        return sent

    def show_addresses_now(self) -> None:
        """The window has been drawn: the addresses held back until then can be listed."""
        self._addresses_later = False
        self._show_own_addresses()

    def _show_own_addresses(self) -> None:
        """Before hosting, show the addresses this machine would be reached at."""
        if self._addresses_later or self.view.state != "idle" or self.bar.current_mode != "host":
            return
        try:
            port = parse_port(self.bar.port.get())
        except ValueError:
            port = DEFAULT_PORT
        try:
            addresses = local_addresses(self.bind, port)
        except Exception:  # listing interfaces is a convenience; never let it break the window
            log.exception("could not list this machine's addresses")
            addresses = []
        self.bar.set_addresses(addresses)

    # --- issue 12: state that matches what happened ---------------------------------------------

    def typed_address(self) -> str:
        """What the address field means: a pasted invite is shown with its password hidden,
        and stands for the whole invite as long as it is not edited."""
        shown = self.bar.address.get()
        if self._pasted_invite and shown == masked_invite(self._pasted_invite):
            return self._pasted_invite
        return shown

    def _hide_invite_password(self) -> None:
        shown = self.bar.address.get()
        masked = masked_invite(shown)
        if masked != shown:  # an invite with its password in clear: keep it, show it masked
            self._pasted_invite = shown
            self.bar.address.set(masked)

    def _name_changed(self, before: str) -> None:
        """/nick, or the host's "hana (2)": the Your name field and the settings follow."""
        me = self.view.me
        if (me and me != before) or (me and self.bar.name.get() != me):
            self.bar.name.set(me)
            self.save_settings()

    def _failed(self, event: ev.Failed) -> None:
        """A wrong or missing password marks and focuses the Password field."""
        text = in_window_words(event.text)
        about_password = event.code in ("wrong_password", "password_required")
        about_password = about_password or "password" in text.lower()
        if about_password and self.bar.current_mode == "join" and self.view.changed is None:
            self.bar.set_errors({"password": text})

    def _session_over(self) -> None:
        if self._asked_port and self.view.mode == "host":
            self.bar.port.set(self._asked_port)  # what was asked for (0: the system chooses)
        self._asked_port = ""

    def _show_entry_error(self, text: str) -> None:
        self.entry_error.configure(text=text)
        if text:
            self.entry_error.grid(row=2, column=0, columnspan=3, sticky="w", pady=(3, 0))
        else:
            self.entry_error.grid_forget()

    def _show_reconnecting(self) -> None:
        """While reconnecting: the countdown to the next try, Reconnect now and Cancel. While
        connecting, the Start button is a Cancel."""
        view = self.view
        if view.reconnecting:
            self.status.configure(text=view.reconnect_status())
            if not self.reconnect_buttons.winfo_ismapped():
                self.reconnect_buttons.pack(side="right", padx=(0, 6), before=self.security_label)
            if self._retry_timer is None:
                self._retry_timer = self.top.after(1000, self._retry_tick)
        else:
            self.status.configure(text=view.status)
            self.reconnect_buttons.pack_forget()
            self._stop_retry_timer()
        self._wrap_status()

    def _retry_tick(self) -> None:
        self._retry_timer = None
        if not self.closed and self.view.reconnecting:
            self.status.configure(text=self.view.reconnect_status())
            self._retry_timer = self.top.after(1000, self._retry_tick)

    def _stop_retry_timer(self) -> None:
        if self._retry_timer is not None:
            with contextlib.suppress(tk.TclError):
                self.top.after_cancel(self._retry_timer)
            self._retry_timer = None

    def _wrap_status(self) -> None:
        """Wrap the status at word boundaries in the room the status bar leaves it."""
        bar = self.statusbar.winfo_width()
        if bar <= 1:
            return
        used = self.status_right.winfo_reqwidth()
        rows = 1 if bar - used >= STATUS_ROOM else 2
        if rows != self._status_rows:
            self._status_rows = rows
            if rows == 1:
                self.status_right.grid(row=0, column=1, sticky="e")
            else:
                self.status_right.grid(row=1, column=0, sticky="e")
        width = max(100, (bar if rows == 2 else bar - used) - 24)
        if int(str(self.status.cget("wraplength") or 0)) != width:
            self.status.configure(wraplength=width)

    # --- issue 12: reading comfort --------------------------------------------------------------

    def _theme_chosen(self) -> None:
        self.theme.set_choice(_choice(self.theme_choice.get()))
        self._comfort_changed()

    def zoom(self, steps: int) -> None:
        self.theme.set_size(self.theme.size_step + steps)
        self._entry_fit()
        self._comfort_changed()

    def zoom_reset(self) -> None:
        self.theme.set_size(0)
        self._entry_fit()
        self._comfort_changed()

    def _members_toggled(self) -> None:
        """View > Member list: a narrow window can give the transcript all the width."""
        panes = self.panes.tk.splitlist(self.panes.tk.call(str(self.panes), "panes"))
        shown = str(self.side) in [str(p) for p in panes]
        if self.show_members.get() and not shown:
            self.panes.add(self.side, weight=0)
        elif not self.show_members.get() and shown:
            self.panes.forget(self.side)
        self._comfort_changed()

    def _comfort_changed(self) -> None:
        if hasattr(self, "poller"):  # not while loading the settings
            self.save_settings()

    # --- issue 12: keyboard ---------------------------------------------------------------------

    def _bind_keys(self) -> None:
        top, entry = self.top, self.entry
        for sequence in ("<Control-plus>", "<Control-equal>", "<Control-KP_Add>"):
            top.bind(sequence, lambda e: self._key_zoom(1))
        for sequence in ("<Control-minus>", "<Control-KP_Subtract>"):
            top.bind(sequence, lambda e: self._key_zoom(-1))
        for sequence in ("<Control-0>", "<Control-KP_0>"):
            top.bind(sequence, lambda e: self._key_zoom(0))
        # Tab leaves the message box (a new line is Shift+Enter or Ctrl+Enter).
        entry.bind("<Tab>", lambda e: self._focus_move(entry.tk_focusNext()))
        for sequence in ("<Shift-Tab>", "<ISO_Left_Tab>"):
            entry.bind(sequence, lambda e: self._focus_move(entry.tk_focusPrev()))
        entry.bind("<Control-Return>", self._newline)
        entry.bind("<Control-KP_Enter>", self._newline)
        # Scrolling the transcript without leaving the message box (its Text looked up when
        # the key comes: the app's window builds it after its first paint).
        for sequence, how in (
            ("<Prior>", -1.0),
            ("<Next>", 1.0),
            ("<Control-Home>", -2.0),
            ("<Control-End>", 2.0),
        ):
            entry.bind(sequence, functools.partial(self._scroll_room, how))
        entry.bind("<Control-a>", lambda e: self._select_all_text(entry))
        if not self._transcript_later:
            self._bind_transcript_keys()
        # Every one-line field, the bar's and any other part's (start screen, dialogs).
        top.bind_class("TEntry", "<Control-a>", lambda e: self._select_all_entry(e.widget))
        # After the class binding has inserted the key (or the paste, or the cut).
        for sequence in ("<Key>", "<<Paste>>", "<<Cut>>", "<<Undo>>"):
            entry.bind(sequence, lambda e: self._fit_soon(), add="+")

    def _bind_transcript_keys(self) -> None:
        text = self.transcript.text
        text.bind("<Control-a>", lambda e: self._select_all_text(text))

    def build_after_paint(self) -> None:
        """The window has been drawn: build what it held back (the room transcript's inside,
        under the start screen), before anything else begins after the paint."""
        if self._transcript_later:
            self._transcript_later = False
            self.transcript.build_inside()
            self._bind_transcript_keys()
        if self._icons_later:
            self._icons_later = False
            self._set_icon(ICONS)

    def _key_zoom(self, steps: int) -> str:
        if steps:
            self.zoom(steps)
        else:
            self.zoom_reset()
        return "break"

    def _focus_move(self, widget: tk.Misc | None) -> str:
        if widget is not None:
            widget.focus_set()
        return "break"

    def _scroll_room(self, how: float, _event: object = None) -> str:
        return self._scroll_transcript(self.transcript.text, how)

    def _scroll_transcript(self, text: tk.Text, how: float, _event: object = None) -> str:
        """±1: a page up or down; ±2: the top or the end."""
        if abs(how) == 1:
            text.yview_scroll(int(how), "pages")
        else:
            text.yview_moveto(0.0 if how < 0 else 1.0)
        self.transcript.user_scrolled()
        return "break"

    @staticmethod
    def _select_all_text(widget: tk.Text) -> str:
        widget.tag_add("sel", "1.0", "end-1c")
        widget.mark_set("insert", "end-1c")
        return "break"

    @staticmethod
    def _select_all_entry(widget: tk.Misc) -> str:
        if isinstance(widget, ttk.Entry):
            widget.select_range(0, "end")
            widget.icursor("end")
        return "break"

    def _fit_soon(self) -> None:
        self.entry.after_idle(self._entry_fit)

    def _entry_fit(self) -> None:
        """The message box grows with its text, from one line up to `ENTRY_LINES[1]`."""
        entry = self.entry
        if not entry.winfo_exists():
            return
        try:
            shown = entry.count("1.0", "end-1c", "displaylines")
        except tk.TclError:
            return
        lines = (shown[0] if isinstance(shown, tuple) else shown or 0) + 1
        want = max(ENTRY_LINES[0], min(ENTRY_LINES[1], lines))
        if int(entry.cget("height")) != want:
            entry.configure(height=want)

    def focus_useful_field(self) -> None:
        """After a mode change or leaving: Join → the address, Host → Start."""
        if self.view.state != "idle" or self.closed or self.bar.errors:
            return  # a marked field has the focus already
        if self.bar.current_mode == "join":
            self.bar.address_entry.focus_set()
        else:
            self.bar.start_button.focus_set()

    def _callback_failed(
        self, kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        """A bug in a Tk callback: log it, and say so in plain words instead of a traceback."""
        if issubclass(kind, KeyboardInterrupt):
            self.close_soon()
            return
        log.error("error in a window callback", exc_info=(kind, value, tb))
        with contextlib.suppress(tk.TclError):
            self.transcript.add([Line("error", f"Something went wrong: {value}")])


def _default_join_options(request: Request) -> JoinOptions:
    from app.net import JoinOptions

    return JoinOptions(request.host, request.port, name=request.name)
