"""The transcript: a read-only, scrolling Text that follows new lines only while you are at the end.

"Following" changes only when the user scrolls (wheel, scrollbar, keys, dragging a selection):
then it is true exactly when the view shows the last line. New lines scroll the view only while
following; otherwise a "New messages" button appears and takes you down when pressed. Asking Tk
where the view is right after an insert would be unreliable (Text lays lines out lazily), which
is why the user's own scrolling, not the inserts, decides.

Scrollback is capped at `scrollback` entries (an entry is one message or notice, however many
lines it wraps to); the oldest are deleted so memory stays bounded under a flood.

History that arrives on joining (lines marked `earlier`) goes under the "Earlier in the room"
divider, at the mark "earlier" that follows the last earlier line, so a late page of history
never lands among newer lines. `_sizes` keeps entries in display order for trimming.

Only what is shown changes for reading: http(s) links become clickable (`on_link`, the browser
by default), and right-to-left text is put in reading order (`for_display`). The `Line` objects,
and so what is sent, stored or copied from the engine, keep the text as it was typed.
"""

from __future__ import annotations

import tkinter as tk
from collections import deque
from collections.abc import Callable, Iterable
from tkinter import ttk
from typing import TYPE_CHECKING

from app.gui import theme
from app.gui.logic import Line, clock_text, for_display, link_spans

Chunk = tuple[str, tuple[str, ...]]
_INSIDE = frozenset(("text", "scrollbar", "jump"))  # built by `Transcript.build_inside`


def _open_in_browser(url: str) -> None:
    import webbrowser  # on the first click of a link, not before the window's first paint

    webbrowser.open(url, new=2)


class Transcript(ttk.Frame):
    def __init__(
        self,
        parent: tk.Misc,
        fonts: theme.Fonts,
        *,
        scrollback: int = 10_000,
        on_type: Callable[[str], None] | None = None,
        name_slot: Callable[[str], int] | None = None,
        on_link: Callable[[str], object] | None = None,
        later: bool = False,
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
        self._on_type = on_type
        self._name_slot = name_slot
        self._on_link = on_link or _open_in_browser
        self._links: dict[str, str] = {}  # tag -> url
        self._earlier_index = -1  # entries before the "earlier" mark; -1: no divider yet
        self._theme = theme.get(self)
        self._inside_built = False
        if not later:
            self.build_inside()

    if not TYPE_CHECKING:  # (typed: the attributes below are declared where they are made)

        def __getattr__(self, name: str) -> object:
            # Only for the widgets inside, and only while they are not built: the first use
            # builds them (a line added, a card, a key bound), wherever it comes from.
            if name in _INSIDE and not self.__dict__.get("_inside_built", True):
                self.build_inside()
                return getattr(self, name)
            raise AttributeError(name)

    def build_inside(self) -> None:
        """The Text, its scrollbar, tags and bindings (once). Built with the frame unless it was
        made with `later=True`; then on first use, or when the window calls this after its
        first paint: the room's transcript starts under the start screen, where nobody sees
        it, and building it cost 4-6 ms before the window appeared."""
        if self._inside_built:
            return
        self._inside_built = True
        self.text = tk.Text(
            self,
            wrap="word",
            state="disabled",
            height=8,  # a small request: the window's size, not this, decides the height
            font=self.fonts.body,
            padx=12,
            pady=8,
            spacing1=3,
            spacing3=3,
            insertwidth=0,
            takefocus=0,
            undo=False,
            **theme.FLAT,
            cursor="xterm",
        )
        self._theme.paint(
            self.text,
            selectbackground="select",
            inactiveselectbackground="select",
            selectforeground="text",
            **theme.surface_roles(),
        )
        self.scrollbar = ttk.Scrollbar(self, orient="vertical", command=self._scrollbar_moved)
        self.tk.eval(_TCL)
        _WIDE_COUNTS_TWO[0] = self.tk.call("string", "length", "\U0001f600") == 2
        # Tk reports the view on every redraw: the scrollbar follows in Tcl, with no Python
        # callback (and no wait for the GIL) while a flood is drawn.
        self.text.configure(yscrollcommand=f"::parley::yscroll {self.scrollbar}")
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

        The whole batch goes to Tk in one call (`_append`): every Tk call lets the network thread
        take the GIL, so a few calls per batch keep a flood from stretching the tick. Neighbouring
        pieces with the same tags are joined (a chat line's body and its end of line): Tk's
        insert costs per piece, in tag bookkeeping.
        """
        lines = list(lines)
        if not any(line.earlier or line.kind in ("confirm", "divider") for line in lines):
            self._add_at_end(lines)  # a flood, and most batches: new lines at the end
            return
        flat: list[object] = []
        earlier: list[object] = []
        confirms: list[Line] = []
        added = 0
        for line in lines:
            if line.kind == "confirm":
                confirms.append(line)
                continue
            if line.earlier and line.kind != "divider" and self._earlier_index >= 0:
                for chars, tags in self._chunks(line):
                    earlier += (chars, tags)
                self._sizes.insert(self._earlier_index, line.text.count("\n") + 1)
                self._earlier_index += 1
                added += 1
                continue
            if line.kind == "divider":
                if flat:  # what came before the divider, so the mark goes after the divider
                    self._insert_end(flat)
                    flat = []
                self._insert_end(list(self._divider(line)))
                self.text.mark_set("earlier", "end-1c")
                self.text.mark_gravity("earlier", "left")
                self._sizes.append(1)
                self._earlier_index = len(self._sizes)
                added += 1
                continue
            for chars, tags in self._chunks(line):
                if flat and flat[-1] == tags:  # same tags as the piece before: one piece
                    flat[-2] = f"{flat[-2]}{chars}"
                else:
                    flat += (chars, tags)
            self._sizes.append(line.text.count("\n") + 1)
            added += 1
        if not earlier and not confirms:  # a flood: one Tcl call for the whole batch
            self._append(flat, self._trim_lines(), follow=self.follow and added > 0)
        else:
            self._add_slow(flat, earlier, confirms, follow=self.follow and added > 0)
        if not added:
            return
        self.shown += added
        if not self.follow:
            self.missed += added
            self.jump.configure(text=f"New messages ({self.missed}) ↓")
            self.jump.place(relx=1.0, rely=1.0, x=-28, y=-14, anchor="se")

    def _add_at_end(self, lines: list[Line]) -> None:
        """New lines at the end, as one text and one range list per tag, in one Tcl call.

        Tk's insert costs a few microseconds per (text, tags) piece, and a line has four or more
        pieces; inserting the batch's text once (tagged "entry", as every piece is) and then
        adding each tag to all its ranges at once costs a fifth of that. Ranges are (line, char)
        counted from the batch's first line, in Tk's characters (UTF-16 units in Tk 8.6: a
        character past U+FFFF counts two); `parley::append` adds the line the batch starts on.
        """
        if not lines:
            return
        texts: list[str] = []
        ranges: dict[str, list[int]] = {}
        ends: dict[str, tuple[int, int]] = {}  # where each tag's last range ends, to extend it
        row = col = 0
        sizes = self._sizes

        def tag_range(tag: str, start_row: int, start_col: int, end: tuple[int, int]) -> None:
            spans = ranges.get(tag)
            if spans is None:
                ranges[tag] = [start_row, start_col, *end]
            elif ends[tag] == (start_row, start_col):
                spans[-2:] = end  # straight on from its last range: extend it
            else:
                spans += (start_row, start_col, *end)
            ends[tag] = end

        for line in lines:
            kind, sender, body = line.kind, line.sender, line.text
            if (
                (kind == "chat" or kind == "mine")
                and sender is not None
                and not line.mention
                and "\n" not in body
                and "://" not in body
            ):  # most of a flood: one line, no link; what `_chunks` gives, without the pieces
                clock, name = clock_text(line.time), for_display(sender)
                texts.append(f"{clock}  {name}  {for_display(body)}\n")
                at = len(clock) + 2
                tag_range("time", row, 0, (row, len(clock)))
                tag_range(self._colour_tag(sender), row, at, (row, at + _tk_len(name)))
                if kind == "mine":
                    tag_range("mine", row, 0, (row + 1, 0))
                row += 1  # col is 0: every line ends with its newline
                sizes.append(1)
                continue
            for chars, tags in self._chunks(line):
                texts.append(chars)
                start_row, start_col = row, col
                if chars == "\n":
                    row, col = row + 1, 0
                elif "\n" in chars:
                    row += chars.count("\n")
                    col = _tk_len(chars.rpartition("\n")[2])
                else:
                    col += len(chars) if chars.isascii() else _tk_len(chars)
                if len(tags) == 1:  # "entry" only: the insert itself tags it
                    continue
                end = (row, col)
                for tag in tags[1:]:  # every piece's first tag is "entry"
                    tag_range(tag, start_row, start_col, end)
            sizes.append(line.text.count("\n") + 1)
        tagged: list[object] = []
        for tag, spans in ranges.items():
            tagged += (tag, tuple(spans))
        follow = self.follow
        self.text.tk.call(
            "::parley::append",
            str(self.text),
            int(follow),
            self._trim_lines(),
            "".join(texts),
            *tagged,
        )
        self.shown += len(lines)
        if not follow:
            self.missed += len(lines)
            self.jump.configure(text=f"New messages ({self.missed}) ↓")
            self.jump.place(relx=1.0, rely=1.0, x=-28, y=-14, anchor="se")

    def _append(self, flat: list[object], trim: int, *, follow: bool) -> None:
        """Insert at the end, drop `trim` lines from the top and scroll to the end, in one call
        (`_TCL`'s `parley::append`): each call from Python hands the GIL to the network thread,
        which may keep it a whole switch interval, so calls per batch are what a busy worker
        makes slow."""
        if flat or trim:
            self.text.tk.call("::parley::insert", str(self.text), int(follow), trim, *flat)
        elif follow:
            self.text.see("end")

    def _add_slow(
        self, flat: list[object], earlier: list[object], confirms: list[Line], *, follow: bool
    ) -> None:
        """History under its divider, or pending lines confirmed: a few calls more."""
        text = self.text
        text.configure(state="normal")
        try:
            if earlier:
                # A mark that moves past what is inserted at it, then the "earlier" mark there.
                text.mark_set("ins", "earlier")
                text.mark_gravity("ins", "right")
                text.tk.call(str(text), "insert", "ins", *earlier)
                text.mark_set("earlier", "ins")
            if flat:
                text.tk.call(str(text), "insert", "end", *flat)
            for line in confirms:
                self._confirm(line)
            self._trim()
        finally:
            text.configure(state="disabled")
        if follow:
            text.see("end")

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

    def _insert_end(self, flat: list[object]) -> None:
        text = self.text
        text.configure(state="normal")
        try:
            text.tk.call(str(text), "insert", "end", *flat)
        finally:
            text.configure(state="disabled")

    def _divider(self, line: Line) -> list[object]:
        return [f"  {line.text}  ", ("entry", "divider"), "\n", ("entry", "divider")]

    def _chunks(self, line: Line) -> list[Chunk]:
        """A line as (text, tags) pieces; every piece's first tag is "entry"."""
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
            if line.mention:
                body += ("mention",)  # names you: highlighted
            if line.sender is not None:
                colour = self._colour_tag(line.sender)
                chunks += [(for_display(line.sender), (*base, colour)), ("  ", base)]
        else:
            body = (*base, line.kind)
        for i, part in enumerate(line.text.split("\n")):
            tags = body if i == 0 else (*body, "cont")
            if i:
                chunks.append(("\n", tags))
            chunks += self._linked(part, tags)
        chunks.append(("\n", base))
        return chunks

    def _linked(self, part: str, tags: tuple[str, ...]) -> list[Chunk]:
        """One line of a message: links made active, the rest put in reading order."""
        out: list[Chunk] = []
        for piece, url in link_spans(part):
            if url:
                tag = f"u{len(self._links)}"
                self._links[tag] = url
                out.append((piece, (*tags, "link", tag)))
            elif piece:
                out.append((for_display(piece), tags))
        return out

    def _open_link(self, _event: object) -> str:
        for tag in self.text.tag_names("current"):
            url = self._links.get(tag)
            if url is not None:
                self._on_link(url)
                break
        return "break"

    def link_tags(self) -> dict[str, str]:
        """Links shown, by tag (for tests: `text.tag_ranges(tag)`)."""
        return dict(self._links)

    def _confirm(self, line: Line) -> None:
        assert line.id is not None
        tag = _pending_tag(line.id)
        ranges = self.text.tag_ranges(tag)
        if ranges:
            self.text.tag_remove("pending", ranges[0], ranges[-1])
        self.text.tag_delete(tag)

    def _trim(self) -> None:
        lines = self._trim_lines()
        if lines:
            self.text.delete("1.0", f"{lines + 1}.0")

    def _trim_lines(self) -> int:
        """Forget the entries over `scrollback`; the text lines they took, for deleting."""
        excess = len(self._sizes) - self.scrollback
        if excess <= 0:
            return 0
        lines = sum(self._sizes.popleft() for _ in range(excess))
        if self._earlier_index >= 0:
            self._earlier_index = max(0, self._earlier_index - excess)
        return lines

    def _colour_tag(self, name: str) -> str:
        """The tag of `name`'s colour slot (tags "name0" ... are painted from the palette)."""
        if self._name_slot is None:
            from app.gui.logic import NameColours

            return f"name{NameColours(len(self._theme.palette.names)).preferred(name)}"
        return f"name{self._name_slot(name)}"

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

    def _scrollbar_moved(self, *args: str) -> None:
        self.text.yview(*args)
        self._user_scrolled()

    def _user_scrolled(self, _event: object = None) -> None:
        self.after_idle(self._check_follow)

    def user_scrolled(self) -> None:
        """The view was scrolled for the user (keys in the entry box): follow only at the end."""
        self._user_scrolled()

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
        text.tag_bind("link", "<Button-1>", self._open_link)
        text.tag_bind("link", "<Enter>", lambda e: text.configure(cursor="hand2"))
        text.tag_bind("link", "<Leave>", lambda e: text.configure(cursor="xterm"))
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
        paint = self._theme.paint_tag
        text.tag_configure("entry", lmargin2=indent)
        text.tag_configure("cont", lmargin1=indent)
        for i in range(len(self._theme.palette.names)):
            # A sender's name: its colour and the bold font in one tag (one tag range less per
            # line to lay out in a flood than a separate "sender" tag).
            text.tag_configure(f"name{i}", font=fonts.bold)

            def name_colour(palette: theme.Palette, tag: str = f"name{i}", i: int = i) -> None:
                text.tag_configure(tag, foreground=palette.names[i])

            self._theme.follow(text, name_colour)
        text.tag_configure("time", font=fonts.small)
        paint(text, "time", foreground="muted")
        paint(text, "mine", background="mine_fill")
        text.tag_configure("notice", font=fonts.italic)
        paint(text, "notice", foreground="muted")
        paint(text, "error", foreground="error")
        text.tag_configure("alarm", font=fonts.bold)
        paint(text, "alarm", foreground="error", background="error_fill")
        text.tag_configure("ended", font=fonts.bold)
        paint(text, "ended", foreground="muted")
        # Pending: muted and italic (a pale grey would fall below readable contrast).
        text.tag_configure("pending", font=fonts.italic)
        paint(text, "pending", foreground="muted")
        paint(text, "earlier", foreground="muted")
        text.tag_configure("divider", font=fonts.small, justify="center", spacing1=8, spacing3=4)
        paint(text, "divider", foreground="muted")
        text.tag_configure("link", underline=True)
        paint(text, "link", foreground="link")
        text.tag_raise("earlier")
        text.tag_raise("link")
        text.tag_configure("mention", font=fonts.bold)
        paint(text, "mention", background="mention_fill")
        text.tag_raise("sel")


# `append`: new lines in one call (see `Transcript._add_at_end`); `insert`: (text, tags) pieces
# in one call (`Transcript._append`). `yscroll`: the scrollbar follows
# the view; with nothing to scroll it is disabled, which the theme draws as its bare trough.
_TCL = """
namespace eval ::parley {}
proc ::parley::insert {w follow trim args} {
    $w configure -state normal
    try {
        if {[llength $args]} { $w insert end {*}$args }
        if {$trim > 0} { $w delete 1.0 [expr {$trim + 1}].0 }
    } finally {
        $w configure -state disabled
    }
    if {$follow} { $w see end }
}
proc ::parley::append {w follow trim text args} {
    $w configure -state normal
    try {
        lassign [split [$w index end-1c] .] base col
        $w insert end $text entry
        foreach {tag spans} $args {
            set at {}
            foreach {r1 c1 r2 c2} $spans {
                if {$r1 == 0} { incr c1 $col }
                if {$r2 == 0} { incr c2 $col }
                lappend at [expr {$base + $r1}].$c1 [expr {$base + $r2}].$c2
            }
            $w tag add $tag {*}$at
        }
        if {$trim > 0} { $w delete 1.0 [expr {$trim + 1}].0 }
    } finally {
        $w configure -state disabled
    }
    if {$follow} { $w see end }
}
proc ::parley::yscroll {bar first last} {
    $bar set $first $last
    if {$first <= 0.0 && $last >= 1.0} { $bar state disabled } else { $bar state !disabled }
}
"""


_WIDE_COUNTS_TWO = [True]  # Tk 8.6 counts a character past U+FFFF as two; Tk 9 as one


def _tk_len(chars: str) -> int:
    """Characters as this Tk counts them in an index (8.6: UTF-16 code units)."""
    if chars.isascii() or not _WIDE_COUNTS_TWO[0]:
        return len(chars)
    return len(chars.encode("utf-16-le")) // 2


def _pending_tag(msg_id: str) -> str:
    return "p:" + msg_id
