"""The connection bar: Host / Join, address, port, name, password, and Start / Connect / Leave.

Fields are columns registered with `add_field(key, label, widget, modes)`: each shows only in the
modes it belongs to, and `set_errors` marks fields by key. A field added with `below=True` (the
"unencrypted" checkboxes) goes on the options row under the columns instead, its widget a child
of `self.options`.

Under those rows: the host's invite with its Copy invite button (while hosting), the red hints
for bad fields, and a muted note (what an invite pasted into the address field will do).
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


PASSWORD_MASK = "\u2022"
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
        field = Field(
            key,
            ttk.Label(self, text=label, style="Bar.TLabel"),
            widget,
            modes,
            tuple(inputs),
            below,
        )
        self._fields.append(field)
        if hasattr(self, "start_button"):
            self._layout()
        return field

    def field(self, key: str) -> Field:
        return next(f for f in self._fields if f.key == key)

    def min_width(self) -> int:
        """The width the bar needs in its widest mode (so the window never hides the button)."""
        mode = self.current_mode
        widths = []
        for each in ("host", "join"):
            self.mode.set(each)
            self._layout()
            self.update_idletasks()
            widths.append(self.winfo_reqwidth())
        self.mode.set(mode)
        self._layout()
        return max(widths)

    def _layout(self) -> None:
        mode = self.current_mode
        for child in self.grid_slaves():
            child.grid_forget()
        self.toggle_label.grid(row=0, column=0, sticky="w", padx=(0, 14))
        self.toggle.grid(row=1, column=0, sticky="w", padx=(0, 14))
        column = 1
        for child in self.options.pack_slaves():
            child.pack_forget()
        for field in self._fields:
            if mode not in field.modes:
                continue
            if field.below:
                field.widget.pack(side="left", padx=(0, 16))
                continue
            field.label.grid(row=0, column=column, sticky="w", padx=(0, 10))
            field.widget.grid(row=1, column=column, sticky="w", padx=(0, 10))
            column += 1
        self.columnconfigure(column, weight=1)
        self.start_button.grid(row=1, column=column + 1, sticky="e")
        span = column + 1
        if self.options.pack_slaves():
            self.options.grid(row=2, column=1, columnspan=span, sticky="w", pady=(6, 0))
        if self._invite and mode == "host":
            self.invite_label.grid(row=3, column=0, sticky="w", pady=(8, 0))
            self.invite_row.grid(row=3, column=1, columnspan=span, sticky="w", pady=(8, 0))
        if self.hint.cget("text"):
            self.hint.grid(row=4, column=0, columnspan=span + 1, sticky="w", pady=(6, 0))
        if self.note.cget("text"):
            self.note.grid(row=5, column=0, columnspan=span + 1, sticky="w", pady=(6, 0))

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
            self.start_button.configure(text="Connecting…" if joining else "Starting…")
            self.start_button.state(["disabled"])
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
            self.invite_label.grid_forget()
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
