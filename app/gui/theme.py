"""The window's look: a ttk theme, fonts and colours, set up once per Tk interpreter.

On Windows and macOS the native ttk themes already look current, so only fonts are added.
Elsewhere the built-in "clam" theme is used, lightened and given an accent colour: Tk's X11
defaults (grey-beige panels) look decades old next to today's desktop apps.
"""

from __future__ import annotations

import tkinter as tk
import tkinter.font as tkfont
from dataclasses import dataclass
from tkinter import ttk
from typing import Literal, TypedDict

BACKGROUND = "#f3f4f6"
SURFACE = "#ffffff"
BORDER = "#cbd2d9"
TEXT = "#1f2328"
MUTED = "#667085"
ACCENT = "#2563eb"
ACCENT_DARK = "#1d4ed8"
ERROR = "#b42318"
ERROR_FILL = "#fdecea"
MINE_FILL = "#eaf1ff"
SELECT = "#cfe0ff"


@dataclass(frozen=True)
class Fonts:
    body: tkfont.Font
    bold: tkfont.Font
    small: tkfont.Font
    italic: tkfont.Font
    heading: tkfont.Font
    mono: tkfont.Font


class Surface(TypedDict):
    background: str
    foreground: str
    relief: Literal["flat"]
    borderwidth: int
    highlightthickness: int
    highlightbackground: str
    highlightcolor: str


def surface(focus_ring: str = BORDER) -> Surface:
    """Options for the plain Tk widgets that sit on the page (transcript, member list, entry):
    white, flat, a one-pixel border, so they match the ttk theme around them."""
    return Surface(
        background=SURFACE,
        foreground=TEXT,
        relief="flat",
        borderwidth=0,
        highlightthickness=1,
        highlightbackground=BORDER,
        highlightcolor=focus_ring,
    )


def style_menu(menu: tk.Menu) -> None:
    """Menus are classic Tk widgets; on X11 give them the window's colours."""
    if menu.tk.call("tk", "windowingsystem") == "x11":
        menu.configure(
            background=BACKGROUND,
            foreground=TEXT,
            activebackground=SELECT,
            activeforeground=TEXT,
            relief="flat",
            borderwidth=0,
            activeborderwidth=0,
        )


def apply_theme(root: tk.Misc) -> Fonts:
    """Choose and tune the theme; returns the fonts the transcript and lists use."""
    style = ttk.Style(root)
    names = style.theme_names()
    native = next((t for t in ("aqua", "vista") if t in names), None)
    style.theme_use(native or "clam")

    base = tkfont.nametofont("TkDefaultFont", root=root)
    family = base.actual("family")
    size = abs(int(base.actual("size"))) or 10
    if native is None:
        size = max(size, 10)
        for name in ("TkDefaultFont", "TkTextFont", "TkMenuFont", "TkHeadingFont"):
            tkfont.nametofont(name, root=root).configure(family=family, size=size)
    fonts = Fonts(
        body=tkfont.Font(root=root, family=family, size=size + 1),
        bold=tkfont.Font(root=root, family=family, size=size + 1, weight="bold"),
        small=tkfont.Font(root=root, family=family, size=max(size - 1, 8)),
        italic=tkfont.Font(root=root, family=family, size=size + 1, slant="italic"),
        heading=tkfont.Font(root=root, family=family, size=size, weight="bold"),
        mono=tkfont.Font(
            root=root,
            family=tkfont.nametofont("TkFixedFont", root=root).actual("family"),
            size=max(size - 1, 8),
        ),
    )

    if native is None:
        _tune_clam(style)
    style.configure("Status.TLabel", foreground=MUTED, padding=(10, 4))
    style.configure("Warn.Status.TLabel", foreground=ERROR, font=fonts.heading)
    style.configure("Hint.TLabel", foreground=ERROR)
    style.configure("Bar.Code.TLabel", font=fonts.mono)
    style.configure("Alarm.TFrame", background=ERROR_FILL)
    style.configure("Alarm.TLabel", background=ERROR_FILL, foreground=ERROR, font=fonts.heading)
    style.configure("Heading.TLabel", font=fonts.heading)
    style.configure("Muted.TLabel", foreground=MUTED)
    style.map("TEntry", fieldbackground=[("invalid", ERROR_FILL)])
    return fonts


def _tune_clam(style: ttk.Style) -> None:
    style.configure(
        ".",
        background=BACKGROUND,
        foreground=TEXT,
        bordercolor=BORDER,
        darkcolor=BACKGROUND,
        lightcolor=BACKGROUND,
        troughcolor=BACKGROUND,
        focuscolor=ACCENT,
        selectbackground=SELECT,
        selectforeground=TEXT,
        insertcolor=TEXT,
    )
    style.configure("TFrame", background=BACKGROUND)
    style.configure("Bar.TFrame", background=SURFACE)
    style.configure("Bar.TLabel", background=SURFACE, foreground=MUTED)
    style.configure("Bar.Hint.TLabel", background=SURFACE, foreground=ERROR)
    style.configure("Bar.Code.TLabel", background=SURFACE, foreground=TEXT)
    style.configure("Bar.TCheckbutton", background=SURFACE, foreground=TEXT)
    style.map(
        "Bar.TCheckbutton",
        background=[("active", SURFACE)],
        foreground=[("disabled", MUTED)],
        indicatorbackground=[("disabled", BACKGROUND), ("pressed", SELECT)],
    )
    style.configure("Statusbar.TFrame", background=BACKGROUND)
    style.configure("TLabel", background=BACKGROUND)
    style.configure(
        "TEntry", fieldbackground=SURFACE, padding=(6, 4), lightcolor=SURFACE, darkcolor=SURFACE
    )
    style.map(
        "TEntry",
        bordercolor=[("invalid", ERROR), ("focus", ACCENT)],
        lightcolor=[("focus", ACCENT)],
        fieldbackground=[("invalid", ERROR_FILL), ("disabled", BACKGROUND)],
        foreground=[("disabled", MUTED)],
    )
    style.configure(
        "TCombobox", fieldbackground=SURFACE, padding=(6, 4), arrowsize=14, background=SURFACE
    )
    style.map(
        "TCombobox",
        fieldbackground=[("readonly", SURFACE)],
        selectbackground=[("readonly", SURFACE)],
        selectforeground=[("readonly", TEXT)],
    )
    style.configure("TButton", padding=(12, 4), background=SURFACE, lightcolor=SURFACE)
    style.map(
        "TButton",
        background=[("disabled", BACKGROUND), ("pressed", "#e5e7eb"), ("active", "#eef0f3")],
        foreground=[("disabled", MUTED)],
    )
    style.configure(
        "Accent.TButton",
        background=ACCENT,
        foreground="#ffffff",
        bordercolor=ACCENT_DARK,
        lightcolor=ACCENT,
        darkcolor=ACCENT_DARK,
        padding=(16, 4),
    )
    style.map(
        "Accent.TButton",
        background=[("disabled", "#9db7ef"), ("pressed", ACCENT_DARK), ("active", "#3b74f0")],
        foreground=[("disabled", "#eef3fd")],
        lightcolor=[("disabled", "#9db7ef"), ("pressed", ACCENT_DARK)],
        darkcolor=[("disabled", "#9db7ef")],
        bordercolor=[("disabled", "#9db7ef")],
    )
    style.configure(
        "Toolbutton",
        padding=(12, 4),
        background=SURFACE,
        bordercolor=BORDER,
        lightcolor=SURFACE,
        darkcolor=SURFACE,
        relief="solid",
        borderwidth=1,
    )
    style.map(
        "Toolbutton",
        background=[("selected", ACCENT), ("active", "#eef0f3")],
        foreground=[("selected", "#ffffff"), ("disabled", MUTED)],
        bordercolor=[("selected", ACCENT_DARK)],
        lightcolor=[("selected", ACCENT)],
        darkcolor=[("selected", ACCENT)],
        relief=[("selected", "solid")],
    )
    # A slim scrollbar without arrows, as current desktops draw them.
    style.tk.eval(
        "ttk::style layout Vertical.TScrollbar {Vertical.Scrollbar.trough -sticky ns -children "
        "{Vertical.Scrollbar.thumb -expand 1 -sticky nswe}}"
    )
    style.configure(
        "Vertical.TScrollbar",
        troughcolor=SURFACE,
        background="#c4cad3",
        bordercolor=SURFACE,
        lightcolor="#c4cad3",
        darkcolor="#c4cad3",
        gripcount=0,
        arrowsize=10,
    )
    style.map(
        "Vertical.TScrollbar",
        background=[("disabled", SURFACE), ("active", "#a9b1bd")],
        lightcolor=[("disabled", SURFACE)],
        darkcolor=[("disabled", SURFACE)],
        bordercolor=[("disabled", SURFACE)],
    )
    style.configure("TPanedwindow", background=BACKGROUND)
    style.configure("Sash", sashthickness=6)
