"""The window's look: two palettes (light and dark), fonts and text size, in one place.

How new widgets get their colours
---------------------------------
Never write a colour in a widget. Name a *role* (the fields of `Palette`: "surface", "text",
"muted", "accent", "error", ...), and let this module apply it, now and whenever the theme or the
text size changes:

* ttk widgets: use a style configured in `_configure_styles` ("TLabel", "Muted.TLabel",
  "Bar.TFrame", "Accent.TButton", "Card.TFrame" ...), or add yours there. ttk restyles itself.
* classic Tk widgets (Text, Listbox, Canvas, Menu): ``theme.paint(widget, background="surface",
  foreground="text")`` or ``theme.paint(widget, **theme.surface_roles())`` for the usual
  white-on-page look; ``theme.paint_tag(text, "mytag", foreground="muted")`` for Text tags.
* anything else: ``theme.get(widget).on_change(callback)``; the callback gets the new `Palette`.
* fonts: ``theme.get(widget).fonts.body`` (and .bold, .small, .italic, .heading, .mono); they are
  named fonts, so Ctrl+plus / Ctrl+minus resize every widget that uses them.

Name colours for people: ``palette.names[i]``, readable on "surface" and "mine_fill" in both
themes (tests/test_theme.py checks every text role for WCAG AA, 4.5:1).

One `Theme` per Tk interpreter (``theme.install(root)``; ``theme.get(widget)`` finds it): ttk
styles are per interpreter anyway. "system" follows the platform's setting as `darkdetect`
reads it (light where it cannot be read; on Linux the first answer is asked for before the window
is built, see app/dark_mode.py).

On Windows and macOS the native ttk themes are kept for the light look; elsewhere, and for dark
everywhere, the built-in "clam" theme is tuned with the palette.
"""

from __future__ import annotations

import contextlib
import tkinter as tk
import tkinter.font as tkfont
from collections.abc import Callable
from dataclasses import dataclass, fields
from tkinter import ttk
from typing import Literal, TypedDict

from app.logs import logger

log = logger(__name__)

ThemeChoice = Literal["system", "light", "dark"]
THEME_CHOICES: tuple[ThemeChoice, ...] = ("system", "light", "dark")
MIN_SIZE_STEP, MAX_SIZE_STEP = -3, 12  # text size: steps of one point from the default


@dataclass(frozen=True)
class Palette:
    """Colours by role. Text roles keep WCAG AA (4.5:1) on the backgrounds they are drawn on."""

    dark: bool
    background: str  # the page: panels, status bar
    surface: str  # where text sits: transcript, member list, entry, connection bar
    border: str
    text: str
    muted: str  # secondary text: times, notices, hints
    accent: str  # buttons that matter, focus rings, the selected toggle
    accent_hover: str
    accent_pressed: str
    accent_disabled: str
    on_accent: str  # text on the accent
    on_accent_disabled: str
    error: str
    error_fill: str  # behind alarming text
    mine_fill: str  # behind my own lines
    select: str  # selected text
    link: str
    button_hover: str
    button_pressed: str
    thumb: str  # scrollbar
    thumb_hover: str
    greyed: str  # a member list that is no longer current (reconnecting)
    card: str  # a card in the transcript (a file's offer and progress)
    names: tuple[str, ...]  # people's name colours
    mention_fill: str = "#fff1c2"  # behind a message that names you (text stays "text")


LIGHT = Palette(
    dark=False,
    background="#f3f4f6",
    surface="#ffffff",
    border="#b8c0cc",
    text="#1f2328",
    muted="#5b6473",
    accent="#2563eb",
    accent_hover="#2059d8",
    accent_pressed="#1d4ed8",
    accent_disabled="#9db7ef",
    on_accent="#ffffff",
    on_accent_disabled="#eef3fd",
    error="#b42318",
    error_fill="#fdecea",
    mine_fill="#eaf1ff",
    select="#cfe0ff",
    link="#1d4ed8",
    button_hover="#eef0f3",
    button_pressed="#e5e7eb",
    thumb="#c4cad3",
    thumb_hover="#a9b1bd",
    greyed="#8a919c",
    card="#f7f9fc",
    names=(
        "#1d4ed8",  # blue
        "#166534",  # green
        "#9333ea",  # purple
        "#c2410c",  # orange
        "#0e7490",  # teal
        "#be185d",  # pink
        "#3f6212",  # olive
        "#854d0e",  # amber
        "#7c2d12",  # brown
        "#4338ca",  # indigo
    ),
)

DARK = Palette(
    dark=True,
    background="#17191d",
    surface="#22252a",
    border="#4a515c",
    text="#e7e9ec",
    muted="#a3abb7",
    accent="#2563eb",
    accent_hover="#2059d8",
    accent_pressed="#1d4ed8",
    accent_disabled="#2b3b5c",
    on_accent="#ffffff",
    on_accent_disabled="#8b97ad",
    error="#ff8a80",
    error_fill="#3a1d1d",
    mine_fill="#1c2a40",
    select="#2f4f7f",
    link="#8ab4ff",
    button_hover="#2d3137",
    button_pressed="#353a41",
    thumb="#4a515c",
    thumb_hover="#5f6773",
    greyed="#7d8590",
    card="#2a2e34",
    names=(
        "#8ab4ff",  # blue
        "#4ade80",  # green
        "#c9a2ff",  # purple
        "#fb923c",  # orange
        "#22d3ee",  # teal
        "#f9a8d4",  # pink
        "#bef264",  # olive
        "#facc15",  # amber
        "#e0b089",  # brown
        "#a5b4fc",  # indigo
    ),
    mention_fill="#4a3b12",
)

# Name colours that look alike, by slot (the same in both palettes): blue and indigo; green and
# olive; orange, amber and brown. People present get different families while there are some.
NAME_FAMILIES = (0, 1, 2, 3, 4, 5, 1, 3, 3, 0)

# The light palette's colours under their old names, for code written before the roles.
BACKGROUND = LIGHT.background
SURFACE = LIGHT.surface
BORDER = LIGHT.border
TEXT = LIGHT.text
MUTED = LIGHT.muted
ACCENT = LIGHT.accent
ACCENT_DARK = LIGHT.accent_pressed
ERROR = LIGHT.error
ERROR_FILL = LIGHT.error_fill
MINE_FILL = LIGHT.mine_fill
SELECT = LIGHT.select


def palette_for(dark: bool) -> Palette:
    return DARK if dark else LIGHT


def system_is_dark() -> bool:
    """The platform's setting where `darkdetect` can read it; light otherwise. The first
    question's answer may have been asked for as the app started (`app.dark_mode`)."""
    try:
        from app import dark_mode

        return dark_mode.is_dark()
    except Exception:  # no way to ask on this desktop: light, as Tk draws by default
        log.debug("could not read the system's dark mode", exc_info=True)
        return False


# --- contrast (WCAG 2.x) ---------------------------------------------------------------------


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """Relative luminance of "#rrggbb"."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two colours (1 to 21); AA for text is 4.5."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# --- fonts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fonts:
    body: tkfont.Font
    bold: tkfont.Font
    small: tkfont.Font
    italic: tkfont.Font
    heading: tkfont.Font
    mono: tkfont.Font


def _font_sizes(base: int, step: int) -> dict[str, int]:
    size = base + step
    return {
        "body": size + 1,
        "bold": size + 1,
        "small": max(size - 1, 7),
        "italic": size + 1,
        "heading": size,
        "mono": max(size - 1, 7),
        "TkDefaultFont": size,
        "TkTextFont": size,
        "TkMenuFont": size,
        "TkHeadingFont": size,
    }


def _checkbox_colours(size: int, fill: str, edge: str, mark: str | None) -> list[list[str]]:
    """A checkbox's pixels, row by row: a box with rounded corners, and a check mark if `mark`."""
    ticked: set[tuple[int, int]] = set()
    if mark is not None:
        # A check: down from (0.22, 0.50) to (0.42, 0.72), then up to (0.78, 0.30); 2 px thick.
        def line(x0: float, y0: float, x1: float, y1: float) -> None:
            steps = size * 2
            for i in range(steps + 1):
                t = i / steps
                x = round((x0 + (x1 - x0) * t) * (size - 1))
                y = round((y0 + (y1 - y0) * t) * (size - 1))
                for dx, dy in ((0, 0), (0, 1), (1, 0), (1, 1)):
                    ticked.add((x + dx, y + dy))

        line(0.22, 0.48, 0.42, 0.70)
        line(0.42, 0.70, 0.76, 0.28)
    rows = []
    last = size - 1
    for y in range(size):
        row = []
        for x in range(size):
            corner = (x in (0, last)) and (y in (0, last))
            if corner:
                colour = edge if fill == edge else fill
            elif x in (0, last) or y in (0, last):
                colour = edge
            elif (x, y) in ticked and mark is not None:
                colour = mark
            else:
                colour = fill
            row.append(colour)
        rows.append(row)
    return rows


class Bitmap(TypedDict):
    data: str
    foreground: str
    background: str


def _checkbox_bitmap(size: int, fill: str, edge: str, mark: str | None) -> Bitmap:
    """The same checkbox as a two-colour X bitmap (options for `tk.BitmapImage`).

    Every look has two colours (a box is its fill and its edge; a ticked box is all accent but
    the mark). A bitmap, not a photo image: the first photo image a Tk process shows makes
    Tk allocate its colour table, 256 round trips to the X server (15-20 ms before the first
    paint on this machine), where a bitmap's two colours take two."""
    rows = _checkbox_colours(size, fill, edge, mark)
    ink = next((c for row in rows for c in row if c != fill), fill)
    assert all(c in (fill, ink) for row in rows for c in row), "a checkbox has two colours"
    data = []
    for row in rows:
        for start in range(0, size, 8):  # XBM: rows padded to bytes, least significant bit first
            bits = sum(1 << i for i, c in enumerate(row[start : start + 8]) if c == ink)
            data.append(f"0x{bits:02x}")
    xbm = (
        f"#define check_width {size}\n#define check_height {size}\n"
        f"static unsigned char check_bits[] = {{ {', '.join(data)} }};"  # Tk wants the spaces
    )
    return Bitmap(data=xbm, foreground=ink, background=fill)


# --- the theme of one interpreter ------------------------------------------------------------

Role = str
Painter = Callable[["Palette"], None]


class Theme:
    """The palette, fonts and text size of one Tk interpreter, and who to repaint on change."""

    def __init__(self, root: tk.Misc, choice: ThemeChoice = "system", size_step: int = 0) -> None:
        self.root = root
        self.style = ttk.Style(root)
        names = self.style.theme_names()
        self.native = next((t for t in ("aqua", "vista") if t in names), None)
        base = tkfont.nametofont("TkDefaultFont", root=root)
        self.family = base.actual("family")
        size = abs(int(base.actual("size"))) or 10
        self.base_size = size if self.native else max(size, 10)
        mono_family = tkfont.nametofont("TkFixedFont", root=root).actual("family")
        self.fonts = Fonts(
            body=tkfont.Font(root=root, family=self.family),
            bold=tkfont.Font(root=root, family=self.family, weight="bold"),
            small=tkfont.Font(root=root, family=self.family),
            italic=tkfont.Font(root=root, family=self.family, slant="italic"),
            heading=tkfont.Font(root=root, family=self.family, weight="bold"),
            mono=tkfont.Font(root=root, family=mono_family),
        )
        self.choice: ThemeChoice = choice
        self.size_step = 0
        self.palette = LIGHT
        self._painters: list[tuple[tk.Misc, Painter]] = []
        self._listeners: list[Painter] = []
        self._checks: dict[str, tk.BitmapImage] = {}
        self.set_size(size_step)
        self.set_choice(choice)

    # --- choosing ------------------------------------------------------------------------------

    def set_choice(self, choice: ThemeChoice, *, system_dark: bool | None = None) -> None:
        """System / Light / Dark. `system_dark` is what the platform says (asked if None)."""
        self.choice = choice
        if choice == "system":
            dark = system_is_dark() if system_dark is None else system_dark
        else:
            dark = choice == "dark"
        self._use(palette_for(dark))

    def set_size(self, step: int) -> int:
        """Text size in steps of one point from the default (clamped); returns the step."""
        self.size_step = max(MIN_SIZE_STEP, min(MAX_SIZE_STEP, step))
        sizes = _font_sizes(self.base_size, self.size_step)
        for field in fields(Fonts):
            getattr(self.fonts, field.name).configure(size=sizes[field.name])
        if self.native is None:
            for name in ("TkDefaultFont", "TkTextFont", "TkMenuFont", "TkHeadingFont"):
                with contextlib.suppress(tk.TclError):
                    tkfont.nametofont(name, root=self.root).configure(
                        family=self.family, size=sizes[name]
                    )
        return self.size_step

    def _use(self, palette: Palette) -> None:
        self.palette = palette
        self.style.theme_use(self.native if self.native and not palette.dark else "clam")
        if self.native is None or palette.dark:
            _tune_clam(self.style, palette)
            self._check_marks(palette)
        _configure_styles(self.style, palette, self.fonts)
        alive = []
        for widget, painter in self._painters:
            try:
                if not widget.winfo_exists():
                    continue
                painter(palette)
            except tk.TclError:
                continue
            alive.append((widget, painter))
        self._painters = alive
        for listener in list(self._listeners):
            try:
                listener(palette)
            except Exception:  # one broken listener must not stop the others
                log.exception("theme listener failed")

    def _check_marks(self, p: Palette) -> None:
        """Checkboxes with a check mark (clam draws a cross): our own indicator images, whose
        pixels are redrawn for each palette."""
        size = max(14, self.fonts.body.metrics("linespace") - 4)
        looks = {
            "off": (p.surface, p.border, None),
            "on": (p.accent, p.accent, p.on_accent),
            "off_disabled": (p.background, p.border, None),
            "on_disabled": (p.accent_disabled, p.accent_disabled, p.on_accent_disabled),
        }
        fresh = not self._checks
        for key, (fill, edge, mark) in looks.items():
            look = _checkbox_bitmap(size, fill, edge, mark)
            image = self._checks.get(key)
            if image is None:
                self._checks[key] = tk.BitmapImage(master=self.root, **look)
            else:
                image.configure(**look)
        if fresh or "Parley.Checkbutton.indicator" not in self.style.element_names():
            with contextlib.suppress(tk.TclError):
                self.style.element_create(
                    "Parley.Checkbutton.indicator",
                    "image",
                    self._checks["off"],
                    ("disabled", "selected", self._checks["on_disabled"]),
                    ("selected", self._checks["on"]),
                    ("disabled", self._checks["off_disabled"]),
                    sticky="",
                    padding=(0, 0, 6, 0),
                )
        self.style.layout(
            "TCheckbutton",
            [
                (
                    "Checkbutton.padding",
                    {
                        "sticky": "nswe",
                        "children": [
                            ("Parley.Checkbutton.indicator", {"side": "left", "sticky": ""}),
                            (
                                "Checkbutton.focus",
                                {
                                    "side": "left",
                                    "sticky": "w",
                                    "children": [("Checkbutton.label", {"sticky": "nswe"})],
                                },
                            ),
                        ],
                    },
                )
            ],
        )

    # --- following -----------------------------------------------------------------------------

    def paint(self, widget: tk.Misc, **roles: Role) -> None:
        """Configure `widget`'s options from palette roles, now and on every change."""

        def painter(palette: Palette) -> None:
            widget.configure(**{opt: getattr(palette, role) for opt, role in roles.items()})

        self.follow(widget, painter)

    def paint_tag(self, text: tk.Text, tag: str, **roles: Role) -> None:
        """A Text tag's colour options from palette roles, now and on every change."""

        def painter(palette: Palette) -> None:
            text.tag_configure(tag, **{opt: getattr(palette, role) for opt, role in roles.items()})

        self.follow(text, painter)

    def follow(self, widget: tk.Misc, painter: Painter) -> None:
        """Call `painter(palette)` now and on every change while `widget` exists."""
        painter(self.palette)
        self._painters.append((widget, painter))

    def on_change(self, listener: Painter) -> Callable[[], None]:
        """Call `listener(palette)` on every change; returns a function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return stop


def install(root: tk.Misc, choice: ThemeChoice = "system", size_step: int = 0) -> Theme:
    """The interpreter's `Theme`, created on first use (later calls return the same one)."""
    top = root.nametowidget(".")  # the interpreter's root window
    found: Theme | None = getattr(top, "_parley_theme", None)
    if found is None:
        found = Theme(top, choice, size_step)
        setattr(top, "_parley_theme", found)  # noqa: B010 (an attribute tkinter does not declare)
    return found


def get(widget: tk.Misc) -> Theme:
    """The `Theme` of `widget`'s interpreter (installed with defaults if nobody did)."""
    return install(widget)


def apply_theme(root: tk.Misc) -> Fonts:
    """Install the theme (once per interpreter); returns its fonts."""
    return install(root).fonts


class Surface(TypedDict):
    background: str
    foreground: str
    relief: Literal["flat"]
    borderwidth: int
    highlightthickness: int
    highlightbackground: str
    highlightcolor: str


def surface(focus_ring: str = BORDER) -> Surface:
    """Options for plain Tk widgets on the page, in the light palette (older code: prefer
    `surface_roles` with `paint`, which follows the theme)."""
    return Surface(
        background=SURFACE,
        foreground=TEXT,
        relief="flat",
        borderwidth=0,
        highlightthickness=1,
        highlightbackground=BORDER,
        highlightcolor=focus_ring,
    )


def surface_roles(focus_ring: Role = "border") -> dict[str, Role]:
    """The roles for a plain Tk widget on the page (transcript, member list, entry)."""
    return {
        "background": "surface",
        "foreground": "text",
        "highlightbackground": "border",
        "highlightcolor": focus_ring,
    }


class Flat(TypedDict):
    relief: Literal["flat"]
    borderwidth: int
    highlightthickness: int


FLAT = Flat(relief="flat", borderwidth=0, highlightthickness=1)  # with `surface_roles`


def style_menu(menu: tk.Menu) -> None:
    """Menus are classic Tk widgets; on X11 give them the palette, some padding and a border."""
    if menu.tk.call("tk", "windowingsystem") != "x11":
        return
    if isinstance(menu.master, tk.Tk | tk.Toplevel):  # the menu bar: flat, no frame
        menu.configure(relief="flat", borderwidth=0, activeborderwidth=0)
    else:
        menu.configure(relief="solid", borderwidth=1, activeborderwidth=3)
    get(menu).paint(
        menu,
        background="surface",
        foreground="text",
        activebackground="select",
        activeforeground="text",
        disabledforeground="greyed",
        selectcolor="accent",
    )


def _configure_styles(style: ttk.Style, p: Palette, fonts: Fonts) -> None:
    """Styles every theme gets (native or tuned)."""
    style.configure("Status.TLabel", foreground=p.muted, background=p.background, padding=(10, 4))
    style.configure("Warn.Status.TLabel", foreground=p.error, font=fonts.heading)
    style.configure("Hint.TLabel", foreground=p.error)
    style.configure("Bar.Code.TLabel", font=fonts.mono)
    style.configure("Alarm.TFrame", background=p.error_fill)
    style.configure("Alarm.TLabel", background=p.error_fill, foreground=p.error, font=fonts.heading)
    style.configure("Heading.TLabel", font=fonts.heading)
    style.configure("Muted.TLabel", foreground=p.muted)
    style.map("TEntry", fieldbackground=[("invalid", p.error_fill)])


def _tune_clam(style: ttk.Style, p: Palette) -> None:
    style.configure(
        ".",
        background=p.background,
        foreground=p.text,
        bordercolor=p.border,
        darkcolor=p.background,
        lightcolor=p.background,
        troughcolor=p.background,
        focuscolor=p.accent,
        selectbackground=p.select,
        selectforeground=p.text,
        insertcolor=p.text,
        fieldbackground=p.surface,
    )
    style.configure("TFrame", background=p.background)
    style.configure("Bar.TFrame", background=p.surface)
    style.configure("Bar.TLabel", background=p.surface, foreground=p.muted)
    style.configure("Bar.Hint.TLabel", background=p.surface, foreground=p.error)
    style.configure("Bar.Code.TLabel", background=p.surface, foreground=p.text)
    for name in ("TCheckbutton", "Bar.TCheckbutton"):
        style.configure(
            name,
            background=p.surface if name.startswith("Bar") else p.background,
            foreground=p.text,
        )
        style.map(
            name,
            background=[("active", p.surface if name.startswith("Bar") else p.background)],
            foreground=[("disabled", p.muted)],
        )
    style.configure("Statusbar.TFrame", background=p.background)
    style.configure("TLabel", background=p.background, foreground=p.text)
    style.configure(
        "TEntry",
        fieldbackground=p.surface,
        foreground=p.text,
        padding=(6, 4),
        lightcolor=p.surface,
        darkcolor=p.surface,
        insertcolor=p.text,
    )
    style.map(
        "TEntry",
        bordercolor=[("invalid", p.error), ("focus", p.accent)],
        lightcolor=[("focus", p.accent)],
        fieldbackground=[("invalid", p.error_fill), ("disabled", p.background)],
        foreground=[("disabled", p.muted)],
    )
    style.configure(
        "TCombobox",
        fieldbackground=p.surface,
        foreground=p.text,
        padding=(6, 4),
        arrowsize=14,
        background=p.surface,
        arrowcolor=p.text,
    )
    style.map(
        "TCombobox",
        fieldbackground=[("readonly", p.surface)],
        selectbackground=[("readonly", p.surface)],
        selectforeground=[("readonly", p.text)],
        bordercolor=[("focus", p.accent)],
    )
    # Every button shows focus: clam's dotted focus ring is hard to see, so focus also colours
    # the border (and for the accent button, a ring of the text colour).
    style.configure(
        "TButton",
        padding=(12, 4),
        background=p.surface,
        foreground=p.text,
        lightcolor=p.surface,
        darkcolor=p.surface,
        focuscolor=p.accent,
        focusthickness=1,
    )
    style.map(
        "TButton",
        background=[
            ("disabled", p.background),
            ("pressed", p.button_pressed),
            ("active", p.button_hover),
        ],
        foreground=[("disabled", p.muted)],
        bordercolor=[("focus", p.accent)],
        lightcolor=[("focus", p.accent)],
        darkcolor=[("focus", p.accent)],
    )
    style.configure(
        "Accent.TButton",
        background=p.accent,
        foreground=p.on_accent,
        bordercolor=p.accent_pressed,
        lightcolor=p.accent,
        darkcolor=p.accent_pressed,
        focuscolor=p.on_accent,
        padding=(16, 4),
    )
    style.map(
        "Accent.TButton",
        background=[
            ("disabled", p.accent_disabled),
            ("pressed", p.accent_pressed),
            ("active", p.accent_hover),
        ],
        foreground=[("disabled", p.on_accent_disabled)],
        lightcolor=[("disabled", p.accent_disabled), ("pressed", p.accent_pressed)],
        darkcolor=[("disabled", p.accent_disabled)],
        bordercolor=[("disabled", p.accent_disabled), ("focus", p.text)],
    )
    style.configure(
        "Toolbutton",
        padding=(12, 4),
        background=p.surface,
        foreground=p.text,
        bordercolor=p.border,
        lightcolor=p.surface,
        darkcolor=p.surface,
        relief="solid",
        borderwidth=1,
        focuscolor=p.accent,
    )
    style.map(
        "Toolbutton",
        background=[("selected", p.accent), ("active", p.button_hover)],
        foreground=[("selected", p.on_accent), ("disabled", p.muted)],
        bordercolor=[("focus", p.text), ("selected", p.accent_pressed)],
        lightcolor=[("selected", p.accent)],
        darkcolor=[("selected", p.accent)],
        relief=[("selected", "solid")],
    )
    # A slim scrollbar without arrows, as current desktops draw them.
    style.tk.eval(
        "ttk::style layout Vertical.TScrollbar {Vertical.Scrollbar.trough -sticky ns -children "
        "{Vertical.Scrollbar.thumb -expand 1 -sticky nswe}}"
    )
    style.configure(
        "Vertical.TScrollbar",
        troughcolor=p.surface,
        background=p.thumb,
        bordercolor=p.surface,
        lightcolor=p.thumb,
        darkcolor=p.thumb,
        gripcount=0,
        arrowsize=10,
    )
    style.map(
        "Vertical.TScrollbar",
        background=[("disabled", p.surface), ("active", p.thumb_hover)],
        lightcolor=[("disabled", p.surface)],
        darkcolor=[("disabled", p.surface)],
        bordercolor=[("disabled", p.surface)],
    )
    style.configure("TPanedwindow", background=p.background)
    style.configure("Sash", sashthickness=6, background=p.background)
    style.configure("TSeparator", background=p.border)
    style.configure("TMenubutton", background=p.surface, foreground=p.text)
