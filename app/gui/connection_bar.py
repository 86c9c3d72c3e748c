"""The connection bar: Host / Join, address, port, name, password, and Start / Connect / Leave.

Fields are columns registered with `add_field(key, label, widget, modes)`: each shows only in the
modes it belongs to, and `set_errors` marks fields by key. A field added with `below=True` (the
"unencrypted" checkboxes) goes on the options row under the columns instead, its widget a child
of `self.options`.

Under those rows: the host's invite with its Copy invite button (while hosting), the red hints
for bad fields, and a muted note (what an invite pasted into the address field will do).

The columns flow: each field sits in a cell (its label above its widget), and the cells fill
rows as wide as the bar, wrapping to the next row when the window is narrow, so no control is
ever cut off (at 640 × 480 the bar takes three rows). Cells are gridded into row frames
created before any widget, so the widgets stay above them in Tk's stacking order.

Keyboard: the Host / Join toggle answers the arrow keys (and Space on the focused one), and
Ctrl+A selects all in every field.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from tkinter import ttk

from app.gui.logic import Mode, State


@dataclass
class Field:
    key: str
    label: ttk.Label
    widget: tk.Widget
    modes: tuple[Mode, ...]
    inputs: tuple[ttk.Widget, ...]  # what gets disabled in a room and marked invalid
    below: bool = False  # on the options row, not a column
    cell: ttk.Frame | None = None  # label above widget, placed by the flow


PASSWORD_MASK = "\u2022"
CELL_GAP = 10  # pixels between cells of the flow
ALLOW_PLAIN_TEXT = "Also admit unencrypted peers (nc, telnet)"
PLAIN_TEXT = "No encryption, for nc -l / ncat --chat"


class ConnectionBar(ttk.Frame):
    def __init__(
        self,
        parent: tk.Misc,
        *,
        on_start: Callable[[], None],
        on_mode: Callable[[Mode], None],
        on_copy: Callable[[str], None],
    ) -> None:
        super().__init__(parent, style="Bar.TFrame", padding=(12, 8, 12, 10))
        # The flow's rows, first of all children, so every widget stacks above them.
        self.flow = ttk.Frame(self, style="Bar.TFrame")
        self._rows = [ttk.Frame(self.flow, style="Bar.TFrame") for _ in range(6)]
        self._placed: list[tuple[str, int]] = []
        self._on_mode = on_mode
        self._on_copy = on_copy
        self._fields: list[Field] = []
        self._state: State = "idle"
        self.errors: dict[str, str] = {}

        self.mode = tk.StringVar(self, "host")
        self.address = tk.StringVar(self)
        self.port = tk.StringVar(self)
        self.name = tk.StringVar(self)
        self.password = tk.StringVar(self)
        self.plain = tk.BooleanVar(self, False)
        self.allow_plain = tk.BooleanVar(self, False)
        self._invite = ""

        self.toggle = ttk.Frame(self, style="Bar.TFrame")
        self.host_button = ttk.Radiobutton(
            self.toggle,
            text="Host",
            value="host",
            variable=self.mode,
            style="Toolbutton",
            command=self._mode_changed,
        )
        self.join_button = ttk.Radiobutton(
            self.toggle,
            text="Join",
            value="join",
            variable=self.mode,
            style="Toolbutton",
            command=self._mode_changed,
        )
        self.host_button.pack(side="left")
        self.join_button.pack(side="left")
        self.toggle_label = ttk.Label(self, text="I want to", style="Bar.TLabel")
        self.toggle_cell = self._cell(self.toggle_label, self.toggle)
        for button in (self.host_button, self.join_button):
            for key in ("<Left>", "<Right>", "<Up>", "<Down>"):
                button.bind(key, self._toggle_key)
            button.bind("<space>", lambda e: self._toggle_to(str(e.widget)))

        self.address_entry = ttk.Entry(self, textvariable=self.address, width=24)
        self.add_field("address", "Host address", self.address_entry, ("join",))

        mine = ttk.Frame(self, style="Bar.TFrame")
        self.addresses = ttk.Combobox(mine, state="readonly", width=18)
        self.copy_button = ttk.Button(mine, text="Copy", width=6, command=self._copy)
        self.addresses.pack(side="left")
        self.copy_button.pack(side="left", padx=(4, 0))
        self.add_field("your_address", "Your address", mine, ("host",), inputs=())

        self.port_entry = ttk.Entry(self, textvariable=self.port, width=7)
        self.add_field("port", "Port", self.port_entry)
        self.name_entry = ttk.Entry(self, textvariable=self.name, width=13)
        self.add_field("name", "Your name", self.name_entry)
        self.password_entry = ttk.Entry(
            self, textvariable=self.password, width=11, show=PASSWORD_MASK
        )
        self.add_field("password", "Password", self.password_entry)

        self.options = ttk.Frame(self, style="Bar.TFrame")
        self.allow_plain_box = ttk.Checkbutton(
            self.options, text=ALLOW_PLAIN_TEXT, variable=self.allow_plain, style="Bar.TCheckbutton"
        )
        self.add_field("allow_plain", "", self.allow_plain_box, ("host",), below=True)
        self.plain_box = ttk.Checkbutton(
            self.options, text=PLAIN_TEXT, variable=self.plain, style="Bar.TCheckbutton"
        )
        self.add_field("plain", "", self.plain_box, ("join",), below=True)

        self.invite_label = ttk.Label(self, text="Invite", style="Bar.TLabel")
        self.invite_row = ttk.Frame(self, style="Bar.TFrame")
        self.invite_text = ttk.Label(self.invite_row, style="Bar.Code.TLabel")
        self.copy_invite_button = ttk.Button(
            self.invite_row, text="Copy invite", command=self._copy_invite
        )
        self.room_kind = ttk.Label(self.invite_row, style="Bar.TLabel")
        self.invite_text.pack(side="left")
        self.copy_invite_button.pack(side="left", padx=(8, 0))
        self.room_kind.pack(side="left", padx=(12, 0))

        self.start_button = ttk.Button(
            self, text="Start", style="Accent.TButton", command=on_start, width=12
        )
        self.hint = ttk.Label(self, style="Bar.Hint.TLabel", wraplength=700, justify="left")
        self.note = ttk.Label(self, style="Bar.TLabel", wraplength=700, justify="left")

        for key, var in (
            ("address", self.address),
            ("port", self.port),
            ("name", self.name),
            ("password", self.password),
            ("plain", self.plain),
            ("password", self.plain),  # "a password needs encryption" is about both
            ("plain", self.address),  # "an invite needs encryption" too
        ):
            var.trace_add("write", lambda *_args, key=key: self._edited(key))
        for entry in (self.address_entry, self.port_entry, self.name_entry, self.password_entry):
            entry.bind("<Return>", lambda e: on_start())
        self.bind("<Configure>", lambda e: self._reflow(), add="+")
        self._layout()

    # --- building -------------------------------------------------------------------------------

    def add_field(
        self,
        key: str,
        label: str,
        widget: tk.Widget,
        modes: tuple[Mode, ...] = ("host", "join"),
        inputs: Iterable[ttk.Widget] | None = None,
        *,
        below: bool = False,
    ) -> Field:
        """Add a column: `label` above `widget`, shown in `modes`. `inputs` default to `widget`.

        With `below`, `widget` (a child of `self.options`) goes on the options row instead,
        without a label: a checkbox says what it is itself."""
        if inputs is None:
            inputs = (widget,) if isinstance(widget, ttk.Widget) else ()
        label_widget = ttk.Label(self, text=label, style="Bar.TLabel")
        field = Field(
            key,
            label_widget,
            widget,
            modes,
            tuple(inputs),
            below,
            None if below else self._cell(label_widget, widget),
        )
        self._fields.append(field)
        if hasattr(self, "start_button"):
            self._layout()
        return field

    def _cell(self, label: tk.Widget, widget: tk.Widget) -> ttk.Frame:
        """A frame holding `label` above `widget` (both children of the bar, raised above it)."""
        cell = ttk.Frame(self, style="Bar.TFrame")
        label.grid(in_=cell, row=0, column=0, sticky="w")
        widget.grid(in_=cell, row=1, column=0, sticky="w")
        label.lift(cell)
        widget.lift(cell)
        return cell

    def entries(self) -> list[ttk.Entry]:
        """The text fields (for Ctrl+A and the like)."""
        return [self.address_entry, self.port_entry, self.name_entry, self.password_entry]

    def field(self, key: str) -> Field:
        return next(f for f in self._fields if f.key == key)

    def min_width(self) -> int:
        """The width the bar needs at the least: its widest cell (the rest wraps)."""
        self.update_idletasks()
        cells = [self.toggle_cell, self.start_button] + [f.cell for f in self._fields if f.cell]
        left, _top, right, _bottom = (int(str(x)) for x in self.cget("padding"))
        return max(c.winfo_reqwidth() for c in cells) + left + right + CELL_GAP

    def _layout(self) -> None:
        mode = self.current_mode
        for child in self.grid_slaves():
            child.grid_forget()
        self.flow.grid(row=0, column=0, sticky="ew")
        self.columnconfigure(0, weight=1)
        for child in self.options.pack_slaves():
            child.pack_forget()
        for field in self._fields:
            if mode in field.modes and field.below:
                field.widget.pack(side="left", padx=(0, 16))
        if self.options.pack_slaves():
            self.options.grid(row=2, column=0, sticky="w", pady=(6, 0))
        if self._invite and mode == "host":
            if not self.invite_label.winfo_manager():
                self.invite_label.pack(
                    in_=self.invite_row, side="left", before=self.invite_text, padx=(0, 10)
                )
            self.invite_label.lift(self.invite_row)
            self.invite_row.grid(row=3, column=0, sticky="w", pady=(8, 0))
        if self.hint.cget("text"):
            self.hint.grid(row=4, column=0, sticky="w", pady=(6, 0))
        if self.note.cget("text"):
            self.note.grid(row=5, column=0, sticky="w", pady=(6, 0))
        self._placed = []
        self._reflow()

    def _flowing(self) -> list[tk.Widget]:
        mode = self.current_mode
        cells: list[tk.Widget] = [self.toggle_cell]
        cells += [f.cell for f in self._fields if f.cell is not None and mode in f.modes]
        return [*cells, self.start_button]

    def _reflow(self) -> None:
        """Fill rows as wide as the bar with the cells; wrap what does not fit."""
        left, _top, right, _bottom = (int(str(x)) for x in self.cget("padding"))
        width = self.winfo_width() - left - right
        if width <= 1:
            width = 10_000  # not shown yet: one row
        placed: list[tuple[str, int]] = []
        row, used = 0, 0
        for cell in self._flowing():
            need = cell.winfo_reqwidth() + CELL_GAP
            if used and used + need > width and row < len(self._rows) - 1:
                row, used = row + 1, 0
            placed.append((str(cell), row))
            used += need
        for label in (self.hint, self.note):
            label.configure(wraplength=max(200, width - 10))
        if placed == self._placed:
            return
        self._placed = placed
        for frame in self._rows:
            for child in frame.grid_slaves():
                child.grid_forget()
            frame.grid_forget()
        columns: dict[int, int] = {}
        for path, row in placed:
            cell = self.nametowidget(path)
            column = columns.get(row, 0)
            columns[row] = column + 1
            last = path == str(self.start_button)
            cell.grid(
                in_=self._rows[row],
                row=0,
                column=column,
                sticky="sw",
                padx=(0, 0 if last else CELL_GAP),
            )
            cell.lift(self._rows[row])
            if isinstance(cell, ttk.Frame):
                for child in cell.grid_slaves():
                    child.lift(cell)
        for row in sorted(set(columns)):
            self._rows[row].grid(row=row, column=0, sticky="w", pady=(0 if row == 0 else 6, 0))

    def _toggle_key(self, event: tk.Event[tk.Misc]) -> str:
        """Arrow keys move the Host / Join choice (as in a radio group)."""
        if self._state == "idle":
            forward = event.keysym in ("Right", "Down")
            self._toggle_to(str(self.join_button if forward else self.host_button))
        return "break"

    def _toggle_to(self, path: str) -> str:
        button = self.nametowidget(path)
        if self._state == "idle" and isinstance(button, ttk.Radiobutton):
            button.focus_set()
            button.invoke()
        return "break"

    # --- state ----------------------------------------------------------------------------------

    @property
    def current_mode(self) -> Mode:
        return "join" if self.mode.get() == "join" else "host"

    def set_mode(self, mode: Mode) -> None:
        self.mode.set(mode)
        self._mode_changed()

    def _mode_changed(self) -> None:
        self.set_errors({})
        self._layout()
        self.set_state(self._state)
        self._on_mode(self.current_mode)

    def set_state(self, state: State) -> None:
        """Fields are editable only when not in a chat; the button follows the state."""
        self._state = state
        idle = state == "idle"
        flag = "!disabled" if idle else "disabled"
        for button in (self.host_button, self.join_button):
            button.state([flag])
        for field in self._fields:
            for widget in field.inputs:
                widget.state([flag])
        joining = self.current_mode == "join"
        if state == "idle":
            self.start_button.configure(text="Connect" if joining else "Start")
            self.start_button.state(["!disabled"])
        elif state == "starting":
            self.start_button.configure(text="Cancel")  # stop connecting (or starting)
            self.start_button.state(["!disabled"])
        else:
            self.start_button.configure(text="Leave")
            self.start_button.state(["!disabled"])

    def set_errors(self, errors: dict[str, str], *, focus: bool = True) -> None:
        """Mark the fields named in `errors` and show their hints under the bar."""
        self.errors = dict(errors)
        keys = {f.key for f in self._fields}
        hints = []
        for field in self._fields:
            bad = field.key in errors
            for widget in field.inputs:
                widget.state(["invalid" if bad else "!invalid"])
            if bad:
                hints.append(errors[field.key])
        hints += [text for key, text in errors.items() if key not in keys]
        self.hint.configure(text="\n".join(hints))
        if hints:
            self._layout()
            first = next((f for f in self._fields if f.key in errors and f.inputs), None)
            if focus and first is not None:
                first.inputs[0].focus_set()
        else:
            self.hint.grid_forget()

    def set_note(self, text: str) -> None:
        """A muted line under the bar (not an error): e.g. what a pasted invite will do."""
        if text == self.note.cget("text"):
            return
        self.note.configure(text=text)
        if text:
            self._layout()
        else:
            self.note.grid_forget()

    def show_invite(self, invite: str, shown: str, kind: str) -> None:
        """While hosting: `shown` (the invite as displayed) with Copy invite, which copies
        `invite` itself; `kind` says what room this is ("Password room"). "" hides the row."""
        if (invite, shown, kind) == (
            self._invite,
            self.invite_text.cget("text"),
            self.room_kind.cget("text"),
        ):
            return
        self._invite = invite
        self.invite_text.configure(text=shown)
        self.room_kind.configure(text=kind)
        if invite:
            self._layout()
        else:
            self.invite_label.pack_forget()
            self.invite_row.grid_forget()

    @property
    def invite(self) -> str:
        return self._invite

    def set_addresses(self, addresses: Iterable[str]) -> None:
        values = list(addresses)
        current = self.addresses.get()
        self.addresses.configure(values=values)
        self.addresses.set(current if current in values else (values[0] if values else ""))

    def _copy(self) -> None:
        text = self.addresses.get()
        if text:
            self._on_copy(text)
            self.copy_button.configure(text="Copied")
            self.after(1500, self._copy_done)

    def _copy_done(self) -> None:
        if self.copy_button.winfo_exists():
            self.copy_button.configure(text="Copy")

    def _copy_invite(self) -> None:
        if self._invite:
            self._on_copy(self._invite)
            self.copy_invite_button.configure(text="Copied")
            self.after(1500, self._copy_invite_done)

    def _copy_invite_done(self) -> None:
        if self.copy_invite_button.winfo_exists():
            self.copy_invite_button.configure(text="Copy invite")

    def _edited(self, key: str) -> None:
        """Editing a field clears its mark and its hint."""
        if key in self.errors:
            errors = dict(self.errors)
            del errors[key]
            self.set_errors(errors, focus=False)
