"""The transcript: a read-only, scrolling Text that follows new lines only while you are at the end.

"Following" changes only when the user scrolls (wheel, scrollbar, keys, dragging a selection):
then it is true exactly when the view shows the last line. New lines scroll the view only while
following; otherwise a "New messages" button appears and takes you down when pressed. Asking Tk
where the view is right after an insert would be unreliable (Text lays lines out lazily), which
is why the user's own scrolling, not the inserts, decides.

Scrollback is capped at `scrollback` entries (an entry is one message or notice, however many
lines it wraps to); the oldest are deleted so memory stays bounded under a flood.
"""

from __future__ import annotations

import tkinter as tk
from collections import deque
from collections.abc import Callable, Iterable
from tkinter import ttk

from app.gui import theme
from app.gui.logic import Line, clock_text, colour_for

Chunk = tuple[str, tuple[str, ...]]


class Transcript(ttk.Frame):
    def __init__(
        self,
        parent: tk.Misc,
        fonts: theme.Fonts,
        *,
        scrollback: int = 10_000,
        on_type: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(parent)
        if scrollback < 1:
            raise ValueError("scrollback must be at least 1")
        self.scrollback = scrollback
        self.fonts = fonts
        self.follow = True
        self.missed = 0  # lines that arrived while not following
        self.shown = 0  # entries ever added (trimmed ones included)
        self._sizes: deque[int] = deque()  # text lines per entry, oldest first
        self._colours: set[str] = set()
        self._on_type = on_type

        self.text = tk.Text(
            self,
            wrap="word",
            state="disabled",
            height=8,  # a small request: the window's size, not this, decides the height
            font=fonts.body,
            padx=12,
            pady=8,
            spacing1=3,
            spacing3=3,
            selectbackground=theme.SELECT,
            inactiveselectbackground=theme.SELECT,
            selectforeground=theme.TEXT,
            insertwidth=0,
            takefocus=0,
            undo=False,
            **theme.surface(),
            cursor="xterm",
        )
        self.scrollbar = ttk.Scrollbar(self, orient="vertical", command=self._scrollbar_moved)
        self.text.configure(yscrollcommand=self._yscrolled)
        self.text.grid(row=0, column=0, sticky="nsew")
        self.scrollbar.grid(row=0, column=1, sticky="ns")
        self.rowconfigure(0, weight=1)
        self.columnconfigure(0, weight=1)

        self.jump = ttk.Button(
            self, text="New messages ↓", style="Accent.TButton", command=self.scroll_to_end
        )
        self._configure_tags()
        self._bind()

    # --- adding ---------------------------------------------------------------------------------

    def add(self, lines: Iterable[Line]) -> None:
        """Append entries, confirm pending ones, trim, and follow if asked.

        The whole batch goes to Tk in one `insert` call: every Tk call lets the network thread
        take the GIL, so a few calls per batch keep a flood from stretching the tick.
        """
        text = self.text
        flat: list[object] = []
        confirms: list[Line] = []
        added = 0
        for line in lines:
            if line.kind == "confirm":
                confirms.append(line)
                continue
            for chars, tags in self._chunks(line):
                flat += (chars, tags)
            self._sizes.append(line.text.count("\n") + 1)
            added += 1
        text.configure(state="normal")
        try:
            if flat:
                text.tk.call(str(text), "insert", "end", *flat)
            for line in confirms:
                self._confirm(line)
            self._trim()
        finally:
            text.configure(state="disabled")
        if not added:
            return
        self.shown += added
        if self.follow:
            text.see("end")
        else:
            self.missed += added
            self.jump.configure(text=f"New messages ({self.missed}) ↓")
            self.jump.place(relx=1.0, rely=1.0, x=-28, y=-14, anchor="se")

    def add_widget(self, widget: tk.Widget) -> None:
        """An embedded widget (a file's card, app/gui/transfers.py) as an entry of its own;
        trimmed like any entry (Tk destroys it with its line)."""
        text = self.text
        text.configure(state="normal")
        try:
            text.window_create("end", window=widget, padx=12, pady=4)
            text.insert("end", "\n", ("entry",))
            self._sizes.append(1)
            self._trim()
        finally:
            text.configure(state="disabled")
        self.shown += 1
        if self.follow:
            text.see("end")

    def _chunks(self, line: Line) -> list[Chunk]:
        base: tuple[str, ...] = ("entry",)
        if line.kind in ("mine", "pending"):
            base += ("mine",)
        if line.kind == "pending" and line.id is not None:
            base += (_pending_tag(line.id),)
        chunks: list[Chunk] = [(clock_text(line.time), (*base, "time")), ("  ", base)]
        if line.kind in ("chat", "mine", "pending"):
            body = base
            if line.kind == "pending":
                body += ("pending",)
            if line.earlier:
                body += ("earlier",)
            if line.sender is not None:
                colour = self._colour_tag(line.sender)
                chunks += [(line.sender, (*base, "sender", colour)), ("  ", base)]
        else:
            body = (*base, line.kind)
        first, *rest = line.text.split("\n")
        chunks.append((first, body))
        chunks += [("\n" + part, (*body, "cont")) for part in rest]
        chunks.append(("\n", base))
        return chunks

    def _confirm(self, line: Line) -> None:
        assert line.id is not None
        tag = _pending_tag(line.id)
        ranges = self.text.tag_ranges(tag)
        if ranges:
            self.text.tag_remove("pending", ranges[0], ranges[-1])
        self.text.tag_delete(tag)

    def _trim(self) -> None:
        excess = len(self._sizes) - self.scrollback
        if excess <= 0:
            return
        lines = sum(self._sizes.popleft() for _ in range(excess))
        self.text.delete("1.0", f"{lines + 1}.0")

    def _colour_tag(self, name: str) -> str:
        colour = colour_for(name)
        tag = "c" + colour
        if tag not in self._colours:
            self._colours.add(tag)
            self.text.tag_configure(tag, foreground=colour)
            self.text.tag_raise("earlier")
        return tag

    # --- reading (tests and copying) ------------------------------------------------------------

    @property
    def entries(self) -> int:
        return len(self._sizes)

    def contents(self) -> str:
        return self.text.get("1.0", "end-1c")

    def lines(self) -> list[str]:
        return self.contents().splitlines()

    def is_pending(self, msg_id: str) -> bool:
        tag = _pending_tag(msg_id)
        ranges = self.text.tag_ranges(tag)
        return bool(ranges) and "pending" in self.text.tag_names(ranges[0])

    # --- following ------------------------------------------------------------------------------

    def scroll_to_end(self) -> None:
        self.text.see("end")
        self._set_follow(True)

    def _set_follow(self, follow: bool) -> None:
        self.follow = follow
        if follow:
            self.missed = 0
            self.jump.place_forget()

    def _yscrolled(self, first: float, last: float) -> None:  # Tk passes them as strings
        self.scrollbar.set(first, last)
        # Nothing to scroll: the theme draws a disabled scrollbar's thumb as its trough.
        everything = float(first) <= 0.0 and float(last) >= 1.0
        self.scrollbar.state(["disabled" if everything else "!disabled"])

    def _scrollbar_moved(self, *args: str) -> None:
        self.text.yview(*args)
        self._user_scrolled()

    def _user_scrolled(self, _event: object = None) -> None:
        self.after_idle(self._check_follow)

    def _check_follow(self) -> None:
        if self.text.winfo_exists():
            self._set_follow(self.text.yview()[1] >= 0.999)

    def _bind(self) -> None:
        text = self.text
        for sequence in (
            "<MouseWheel>",
            "<Button-4>",
            "<Button-5>",
            "<B1-Motion>",
            "<KeyRelease-Prior>",
            "<KeyRelease-Next>",
            "<KeyRelease-Up>",
            "<KeyRelease-Down>",
            "<KeyRelease-Home>",
            "<KeyRelease-End>",
        ):
            text.bind(sequence, self._user_scrolled, add="+")
        text.bind("<Configure>", self._resized, add="+")
        text.bind("<Button-1>", lambda e: text.focus_set(), add="+")
        text.bind("<Key>", self._key, add="+")
        menu = tk.Menu(text, tearoff=False)
        menu.add_command(label="Copy", command=lambda: text.event_generate("<<Copy>>"))
        menu.add_command(label="Select all", command=lambda: text.tag_add("sel", "1.0", "end"))
        text.bind("<Button-3>", lambda e: menu.tk_popup(e.x_root, e.y_root))

    def _resized(self, _event: object) -> None:
        if self.follow:
            self.text.see("end")

    def _key(self, event: tk.Event[tk.Text]) -> str | None:
        # Typing while the transcript has focus (after selecting text) goes to the entry box.
        control = isinstance(event.state, int) and event.state & 0x4
        if self._on_type is not None and event.char.isprintable() and event.char and not control:
            self._on_type(event.char)
            return "break"
        return None

    def _configure_tags(self) -> None:
        text, fonts = self.text, self.fonts
        indent = fonts.small.measure("00:00") + fonts.body.measure("  ")
        text.tag_configure("entry", lmargin2=indent)
        text.tag_configure("cont", lmargin1=indent)
        text.tag_configure("time", font=fonts.small, foreground=theme.MUTED)
        text.tag_configure("sender", font=fonts.bold)
        text.tag_configure("mine", background=theme.MINE_FILL)
        text.tag_configure("notice", font=fonts.italic, foreground=theme.MUTED)
        text.tag_configure("error", foreground=theme.ERROR)
        text.tag_configure(
            "alarm", font=fonts.bold, foreground=theme.ERROR, background=theme.ERROR_FILL
        )
        text.tag_configure("ended", font=fonts.bold, foreground=theme.MUTED)
        text.tag_configure("pending", foreground="#98a2b3")
        text.tag_configure("earlier", foreground=theme.MUTED)
        text.tag_raise("sel")


def _pending_tag(msg_id: str) -> str:
    return "p:" + msg_id
