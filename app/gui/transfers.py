"""Files in the window: the Send file… button, "Send file to NAME…" on the member list, and a
card in the transcript for every file, offered to us or by us.

How this works
--------------
`Transfers` is handed the window's pieces (the transcript to put cards in, the member list, the
worker to ask) and the file events the window's poller drains. Each event updates one
`FileCard`: an offer shows Accept / Decline; while bytes move, a progress bar with percent, speed
and time left, and Cancel; at the end "Saved to …" with Open folder (incoming) or who received it
(outgoing). Dialogs and opening a folder are injected, so tests press the buttons without a
dialog ever blocking. Files dropped onto the window go the same way (`app.gui.dnd`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tkinter as tk
from collections.abc import Callable, Sequence
from pathlib import Path
from tkinter import ttk
from typing import TYPE_CHECKING, Protocol

from app.gui import theme

if TYPE_CHECKING:
    from app import events as ev

# Built with the window, before its first paint: the events and `app.transfer` (the file
# frames' dataclasses) are imported where a file event is handled, not here.
BAR_STYLE = "Card.Horizontal.TProgressbar"


class FileWorker(Protocol):
    def send_file(self, path: str, to: str | None = None) -> None: ...
    def accept_file(self, number: int) -> None: ...
    def decline_file(self, number: int) -> None: ...
    def cancel_file(self, number: int) -> None: ...


class CardHost(Protocol):
    """Where cards go: the transcript's `add_widget`."""

    text: tk.Text

    def add_widget(self, widget: tk.Widget) -> None: ...


def open_folder(path: str) -> None:
    """Show a folder in the system's file manager (never the file itself: nothing is run)."""
    if sys.platform == "win32":
        os.startfile(path)  # type: ignore[attr-defined]
    else:
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        subprocess.Popen(
            [opener, path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True
        )


def ask_files(parent: tk.Misc, title: str) -> Sequence[str]:
    from tkinter import filedialog

    return filedialog.askopenfilenames(parent=parent, title=title) or ()


class _Row:
    """One peer's progress on a card: a bar and a line of figures."""

    def __init__(self, parent: tk.Misc, peer: str, incoming: bool) -> None:
        self.frame = ttk.Frame(parent, style="Card.TFrame")
        who = f"from {peer}" if incoming else f"to {peer}"
        self.label = ttk.Label(self.frame, text=who, style="Card.Muted.TLabel", width=12)
        self.label.grid(row=0, column=0, sticky="w")
        self.bar = ttk.Progressbar(
            self.frame, length=150, maximum=1000, mode="determinate", style=BAR_STYLE
        )
        self.bar.grid(row=0, column=1, sticky="ew", padx=(6, 8))
        self.figures = ttk.Label(self.frame, text="waiting…", style="Card.TLabel", width=40)
        self.figures.grid(row=0, column=2, sticky="w")
        self.frame.columnconfigure(1, weight=1)

    def show(self, event: ev.FileProgress) -> None:
        from app.transfer import describe_progress

        fraction = 1.0 if event.size == 0 else event.done / event.size
        self.bar.configure(value=int(fraction * 1000))
        self.figures.configure(
            text=describe_progress(event.done, event.size, event.rate, event.eta)
        )


class FileCard:
    """One file in the transcript."""

    def __init__(
        self,
        parent: tk.Misc,
        number: int,
        title: str,
        incoming: bool,
        worker: FileWorker,
        open_folder: Callable[[str], None],
    ) -> None:
        self.number = number
        self.incoming = incoming
        self._worker = worker
        self.open_folder = open_folder
        self.frame = ttk.Frame(parent, style="Card.TFrame", padding=(12, 8))
        self.title = ttk.Label(self.frame, text=title, style="Card.Heading.TLabel", wraplength=420)
        self.title.grid(row=0, column=0, sticky="w")
        self.buttons = ttk.Frame(self.frame, style="Card.TFrame")
        self.buttons.grid(row=0, column=1, sticky="e", padx=(16, 0))
        self.accept = ttk.Button(
            self.buttons, text="Accept", style="Accent.TButton", command=self._accept
        )
        self.decline = ttk.Button(self.buttons, text="Decline", command=self._decline)
        self.cancel = ttk.Button(self.buttons, text="Cancel", command=self._cancel)
        self.open = ttk.Button(self.buttons, text="Open folder", command=self._open)
        self.rows_frame = ttk.Frame(self.frame, style="Card.TFrame")
        self.rows_frame.grid(row=1, column=0, columnspan=2, sticky="ew", pady=(4, 0))
        self.status = ttk.Label(self.frame, text="", style="Card.Muted.TLabel", wraplength=520)
        self.status.grid(row=2, column=0, columnspan=2, sticky="w")
        self.frame.columnconfigure(0, weight=1)
        self.rows: dict[str, _Row] = {}
        self.notes: list[str] = []
        self.path: str | None = None
        self.over = False
        if incoming:
            self._buttons(self.accept, self.decline)
        else:
            self._buttons(self.cancel)

    def _buttons(self, *shown: ttk.Button) -> None:
        for button in (self.accept, self.decline, self.cancel, self.open):
            button.pack_forget()
        for button in shown:
            button.pack(side="left", padx=(6, 0))

    def shown_buttons(self) -> list[str]:
        return [str(b.cget("text")) for b in self.buttons.pack_slaves()]

    def _accept(self) -> None:
        self._worker.accept_file(self.number)
        self._buttons(self.cancel)
        self.status.configure(text="Starting…")

    def _decline(self) -> None:
        self._worker.decline_file(self.number)
        self._buttons()

    def _cancel(self) -> None:
        self._worker.cancel_file(self.number)
        self._buttons()

    def _open(self) -> None:
        if self.path is not None:
            self.open_folder(str(Path(self.path).parent))

    def progress(self, event: ev.FileProgress) -> None:
        row = self.rows.get(event.peer)
        if row is None:
            row = self.rows[event.peer] = _Row(self.rows_frame, event.peer, event.incoming)
            row.frame.pack(fill="x", pady=1)
        row.show(event)
        if self.incoming:
            self.status.configure(text="")

    def ended(self, event: ev.FileEnded) -> None:
        row = self.rows.get(event.peer or "")
        if self.incoming:
            if event.status == "paused":
                self.status.configure(text=event.text)
                return
            self.over = True
            if event.status == "received" and event.path:
                self.path = event.path
                self._buttons(self.open)
            else:
                self._buttons()
                if row is not None:
                    row.frame.pack_forget()
            self.status.configure(text=event.text)
            return
        # Outgoing: one recipient's end, or (no peer) the whole offer's.
        if event.peer is None:
            self.over = True
            self._buttons()
        elif row is not None and event.status != "received":
            row.frame.pack_forget()
            del self.rows[event.peer]
        self.notes.append(event.text)
        self.status.configure(text="  ".join(self.notes[-4:]))


class Transfers:
    """The window's files: the button, the member list's menu, and the cards."""

    def __init__(
        self,
        top: tk.Misc,
        transcript: CardHost,
        members: tk.Listbox,
        worker: FileWorker,
        *,
        member_name: Callable[[int], str | None],
        before_card: Callable[[], None] = lambda: None,
        ask: Callable[[tk.Misc, str], Sequence[str]] = ask_files,
        open_folder: Callable[[str], None] = open_folder,
    ) -> None:
        self.top = top
        self.transcript = transcript
        self.worker = worker
        self.ask = ask
        self.open_folder = open_folder
        self._before_card = before_card
        self._member_name = member_name
        self.cards: dict[int, FileCard] = {}
        _styles(top)
        self.menu = tk.Menu(members, tearoff=False)
        theme.style_menu(self.menu)
        self._members = members
        members.bind("<Button-3>", self._member_menu, add="+")
        members.bind("<Button-2>", self._member_menu, add="+")  # macOS
        self.enabled = False
        # Other parts' entries for the member menu (the private conversation tabs).
        self.more_items: Callable[[str], list[tuple[str, Callable[[], None]]]] = lambda _: []

    # --- sending ---------------------------------------------------------------------------------

    def choose_and_send(self, to: str | None = None) -> list[str]:
        """Send file… (or Send file to NAME…): a dialog for one or several files."""
        if not self.enabled:
            return []
        title = f"Send files to {to}" if to else "Send files to the room"
        paths = list(self.ask(self.top, title))
        for path in paths:
            self.worker.send_file(path, to)
        return paths

    def _member_menu(self, event: tk.Event[tk.Listbox]) -> None:
        index = int(self._members.tk.call(str(self._members), "nearest", event.y))
        name = self._member_name(index)
        if name is None or not self.enabled:
            return
        self._members.selection_clear(0, "end")
        self._members.selection_set(index)
        self.menu.delete(0, "end")
        for label, command in self.more_items(name):
            self.menu.add_command(label=label, command=command)
        self.menu.add_command(
            label=f"Send file to {name}…", command=lambda: self.choose_and_send(name)
        )
        self.menu.tk_popup(event.x_root, event.y_root)

    # --- events ---------------------------------------------------------------------------------

    def handle(self, event: ev.Event) -> None:
        from app import events as ev
        from app.transfer import format_size

        if isinstance(event, ev.FileOffered):
            you = " you" if event.private else ""
            self._card(
                event.number,
                f"{event.sender} offers{you} {event.name} ({format_size(event.size)})",
                incoming=True,
            )
        elif isinstance(event, ev.FileSending):
            to = ", ".join(event.to) if event.to else "nobody yet"
            self._card(
                event.number,
                f"You offer {event.name} ({format_size(event.size)}) to {to}",
                incoming=False,
            )
        elif isinstance(event, ev.FileProgress):
            card = self.cards.get(event.number)
            if card is not None:
                card.progress(event)
        elif isinstance(event, ev.FileEnded):
            card = self.cards.get(event.number)
            if card is not None:
                card.ended(event)

    def _card(self, number: int, title: str, incoming: bool) -> None:
        self._before_card()
        card = FileCard(
            self.transcript.text,
            number,
            title,
            incoming,
            self.worker,
            lambda p: self.open_folder(p),
        )
        self.cards[number] = card
        self.transcript.add_widget(card.frame)

    def session_started(self) -> None:
        """A new chat: the numbers start again, so old cards no longer answer to them."""
        self.cards.clear()


def _styles(top: tk.Misc) -> None:
    """The cards' styles, from the theme's palette, again whenever the theme changes."""
    theme.get(top).follow(top, lambda palette: _paint_styles(top, palette))


def _paint_styles(top: tk.Misc, p: theme.Palette) -> None:
    style = ttk.Style(top)
    style.configure(
        BAR_STYLE,
        background=p.accent,
        troughcolor=p.surface,
        bordercolor=p.border,
        lightcolor=p.accent,
        darkcolor=p.accent,
    )
    style.configure("Card.TFrame", background=p.card, relief="solid", borderwidth=0)
    style.configure("Card.TLabel", background=p.card, foreground=p.text)
    style.configure("Card.Muted.TLabel", background=p.card, foreground=p.muted)
    style.configure(
        "Card.Heading.TLabel",
        background=p.card,
        foreground=p.text,
        font=("TkDefaultFont", 10, "bold"),
    )
