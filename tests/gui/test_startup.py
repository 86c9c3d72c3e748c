"""Start-up: the window's network waits for the first paint, and no longer than that."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tkinter as tk
from collections.abc import Iterable
from pathlib import Path
from tkinter import ttk
from typing import Any

import pytest

from app import deferred
from app.gui.launch import _after_first_paint
from tests.gui.conftest import MakeWindow
from tests.gui.tk_helpers import pump_until, start_host

NEVER = 600_000  # a fallback the test never reaches: only the map may start the action


def test_a_window_mapped_while_it_was_built_starts_its_network_at_once(root: tk.Tk) -> None:
    # Building the real window runs update_idletasks() (the connection bar measures itself),
    # which maps a toplevel on the spot: no <Map> event reaches a binding made after that.
    top = tk.Toplevel(root)
    ttk.Label(top, text="Parley").pack()
    top.update_idletasks()
    assert top.winfo_ismapped()
    ran: list[str] = []
    _after_first_paint(top, lambda: ran.append("released"), fallback_ms=NEVER)
    pump_until(top, lambda: bool(ran), "the action after the first paint")
    assert ran == ["released"]
    top.destroy()


def test_a_window_not_yet_mapped_waits_for_its_map(root: tk.Tk) -> None:
    top = tk.Toplevel(root)
    top.withdraw()
    ran: list[str] = []
    _after_first_paint(top, lambda: ran.append("released"), fallback_ms=NEVER)
    for _ in range(20):
        top.update()
    assert ran == []  # hidden: nothing painted, nothing started
    top.deiconify()
    pump_until(top, lambda: bool(ran), "the action after the map")
    assert ran == ["released"]  # once, however many maps
    top.destroy()


def test_the_app_window_lists_its_addresses_just_after_its_first_paint(
    make_window: MakeWindow,
) -> None:
    # Listing them loads ifaddr and runs `ldconfig -p`; the app's window does it once drawn.
    window = make_window(bind=None, addresses_after_paint=True)
    assert window.bar.current_mode == "host"
    assert window.bar.addresses.get() == ""
    window.show_addresses_now()
    assert window.bar.addresses.get().endswith(":5151")
    window.bar.port.set("6000")  # and from then on they follow the port, as before
    assert window.bar.addresses.get().endswith(":6000")


# The real window, built as `python -m app` builds it (`run_window`), looked at once it is mapped:
# the script prints which of `names` are in sys.modules by then, and exits.
_AT_FIRST_PAINT = """
import os, sys, json, tkinter as tk
import app.gui.launch as launch
names = json.loads(sys.argv[1])
def at_paint(root, action, fallback_ms=1000):
    def look():
        if not root.winfo_ismapped():
            root.after(10, look)
            return
        print(json.dumps(sorted(n for n in names if n in sys.modules)), flush=True)
        os._exit(0)
    root.after(0, look)
launch._after_first_paint = at_paint
launch.run_window(__import__("argparse").Namespace())
"""


def _run_window_script(code: str, home: Path, *args: str) -> Any:
    """Run a script that builds the real window (`run_window`) with `home` as its home, and
    return the JSON it prints."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def loaded_at_first_paint(names: Iterable[str], home: Path) -> list[str]:
    loaded: list[str] = _run_window_script(_AT_FIRST_PAINT, home, json.dumps(list(names)))
    return loaded


def test_nothing_the_executable_unpacks_later_is_loaded_before_the_first_paint(
    tmp_path: Path,
) -> None:
    # None of what build_exe.spec defers (app/deferred.py) may be loaded by then, or the
    # executable would unpack its 21 MB before the window shows.
    names = deferred.DEFERRED_PACKAGES + deferred.DEFERRED_EXTENSIONS
    assert loaded_at_first_paint(names, tmp_path) == []


# What the first screen (the bar, the start screen, an empty transcript) does not draw with:
# the events and the protocol are dataclasses by the score, `regex` compiles Unicode tables, and
# the file frames and the names' rules come with them: 30-40 ms before the window showed.
ENGINE_MODULES = (
    "app.events",
    "app.protocol",
    "app.messages",
    "app.transfer",
    "app.names",
    "regex",
    "app.net",
    "asyncio",
    "ssl",
)


def test_the_window_is_painted_before_the_events_the_protocol_and_regex_are_imported(
    tmp_path: Path,
) -> None:
    assert loaded_at_first_paint(ENGINE_MODULES, tmp_path) == []


def test_the_window_is_painted_before_html_is_imported(tmp_path: Path) -> None:
    # `html` (with its 2,000-entry table of named characters, 1.7 ms in the executable) only
    # escapes a notification's text for servers that read markup: never before the paint.
    assert loaded_at_first_paint(("html", "html.entities"), tmp_path) == []


# A script's lines that keep each ChatWindow `run_window` makes, in `made`.
_WINDOWS_MADE = """made = []
class Window(launch.ChatWindow):
    def __init__(self, *args, **kwargs):
        made.append(self)
        super().__init__(*args, **kwargs)
launch.ChatWindow = Window
"""


def test_the_first_paint_shows_the_machines_addresses(tmp_path: Path) -> None:
    # They used to be listed only after the paint (ifaddr's first call ran `ldconfig -p`), and
    # the address field changed 25 ms after the window was drawn.
    code = _AT_FIRST_PAINT.replace(
        "print(json.dumps(sorted(n for n in names if n in sys.modules)), flush=True)",
        "print(json.dumps(made[0].bar.addresses.get()), flush=True)",
    ).replace(
        "launch._after_first_paint = at_paint",
        "launch._after_first_paint = at_paint\n" + _WINDOWS_MADE,
    )
    shown = _run_window_script(code, tmp_path, "[]")
    assert shown.endswith(":5151"), shown


_LIST_ADDRESSES = """
import json, subprocess, sys
ran = []
class Recorded(subprocess.Popen):
    def __init__(self, args, *rest, **kwargs):
        ran.append(args if isinstance(args, str) else " ".join(map(str, args)))
        super().__init__(args, *rest, **kwargs)
subprocess.Popen = Recorded
from app.address import local_addresses
print(json.dumps([local_addresses(None, 5151), ran]))
"""


def test_listing_the_addresses_runs_no_ldconfig_and_finds_what_ifaddr_finds() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _LIST_ADDRESSES], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    listed, ran = json.loads(out.stdout)
    assert ran == []  # ctypes.util.find_library("c") ran `ldconfig -p` (15 ms) at every start
    import ifaddr  # the usual way, in this process: the same addresses

    expected = [
        f"{ip.ip}:5151" if isinstance(ip.ip, str) else f"[{ip.ip[0]}]:5151"
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
    ]
    assert listed
    assert set(listed) <= set(expected) | {"127.0.0.1:5151"}


# The real window as `run_window` builds it, looked at when it is mapped: the script prints
# `eval(argv[1])` with `window` (the ChatWindow) in scope, and exits.
_LOOK_AT_FIRST_PAINT = (
    """
import json, os, sys
import app.gui.launch as launch
"""
    + _WINDOWS_MADE
    + """def at_paint(root, action, fallback_ms=1000):
    def look():
        if not root.winfo_ismapped():
            root.after(10, look)
            return
        print(json.dumps(eval(sys.argv[1], {"window": made[0]})), flush=True)
        os._exit(0)
    root.after(0, look)
launch._after_first_paint = at_paint
launch.run_window(__import__("argparse").Namespace())
"""
)


def at_first_paint(expression: str, home: Path) -> object:
    return _run_window_script(_LOOK_AT_FIRST_PAINT, home, expression)


_PHOTOS_IN_USE = (
    "[n for n in window.top.tk.splitlist(window.top.tk.call('image', 'names'))"
    " if window.top.tk.call('image', 'type', n) == 'photo'"
    " and window.top.tk.call('image', 'inuse', n)]"
)


def test_the_first_paint_shows_no_photo_image(tmp_path: Path) -> None:
    # The first photo image a Tk process shows makes Tk allocate its colour table: 256 round
    # trips to the X server, 15-20 ms of the window's 60 before its map. The checkboxes' marks
    # were photo images; they are two-colour bitmaps now (the icons are photos, but the window
    # manager's: no widget shows them).
    assert at_first_paint(_PHOTOS_IN_USE, tmp_path) == []


def _xbm_pixels(data: str, size: int) -> list[list[bool]]:
    body = data[data.index("{") + 1 : data.index("}")]
    octets = [int(x, 16) for x in body.replace(",", " ").split()]
    per_row = (size + 7) // 8
    assert len(octets) == per_row * size
    return [
        [bool(octets[y * per_row + x // 8] >> (x % 8) & 1) for x in range(size)]
        for y in range(size)
    ]


def test_the_checkbox_bitmaps_have_the_pixels_of_the_drawn_checkboxes(root: tk.Tk) -> None:
    from app.gui import theme

    for palette in (theme.LIGHT, theme.DARK):
        for size in (14, 17, 23):  # the default size and larger text
            for fill, edge, mark in (
                (palette.surface, palette.border, None),
                (palette.accent, palette.accent, palette.on_accent),
                (palette.background, palette.border, None),
                (palette.accent_disabled, palette.accent_disabled, palette.on_accent_disabled),
            ):
                look = theme._checkbox_bitmap(size, fill, edge, mark)
                inked = _xbm_pixels(look["data"], size)
                drawn = [
                    [look["foreground"] if ink else look["background"] for ink in row]
                    for row in inked
                ]
                assert drawn == theme._checkbox_colours(size, fill, edge, mark)
                assert look["background"] == fill
                assert (mark is not None) == any(any(row[2:-2]) for row in inked[2:-2])  # a tick
                image = tk.BitmapImage(master=root, **look)  # Tk reads it
                assert (image.width(), image.height()) == (size, size)


# Input methods: off until the first paint, then on; a key typed after that reaches the field
# through them. Real keys (xdotool, XTEST) into the real window.
_KEYS_AFTER_PAINT = (
    """
import json, os, shutil, subprocess, sys, time
import app.gui.launch as launch
"""
    + _WINDOWS_MADE
    + """seen = {}
painted_first = launch._after_first_paint
def input_methods(root):
    return bool(root.tk.getboolean(root.tk.call("tk", "useinputmethods")))
def at_paint(root, action, fallback_ms=1000):
    def look():
        if not root.winfo_ismapped():
            root.after(5, look)
            return
        seen["at map"] = input_methods(root)
    root.after(0, look)
    painted_first(root, action, fallback_ms)
launch._after_first_paint = at_paint
def watch():
    window = made[0]
    root = window.top
    deadline = time.monotonic() + 20
    while not input_methods(root) and time.monotonic() < deadline:
        root.update()
        time.sleep(0.005)
    seen["after the paint"] = input_methods(root)
    field = window.start_screen.room_entry
    field.focus_force()
    root.update()
    subprocess.run([shutil.which("xdotool"), "type", "--delay", "5", "Tea"], check=True)
    while window.room_name.get() != "Tea" and time.monotonic() < deadline:
        root.update()
        time.sleep(0.005)
    seen["typed"] = window.room_name.get()
    print(json.dumps(seen), flush=True)
    os._exit(0)
import tkinter
tkinter.Tk.mainloop = lambda self, n=0: watch()  # run_window's loop: this one, then exit
launch.run_window(__import__("argparse").Namespace())
"""
)


def test_input_methods_wait_for_the_first_paint_and_keys_then_reach_the_fields(
    tmp_path: Path,
) -> None:
    # With them on, Tk made an input context for each of the window's ~110 X windows at the
    # map (230 round trips to the X server) before drawing anything; now only for the
    # widgets that get events after the paint.
    assert shutil.which("xdotool"), "xdotool is needed to type real keys (apt install xdotool)"
    assert _run_window_script(_KEYS_AFTER_PAINT, tmp_path) == {
        "at map": False,
        "after the paint": True,
        "typed": "Tea",
    }


# The real window again: what its after-paint work leaves it with.
_AFTER_PAINT = """
import os, sys, json
import app.gui.launch as launch
first = launch._after_first_paint
def at_paint(root, action, fallback_ms=1000):
    def then():
        loaded_before = "tkinterdnd2" in sys.modules
        action()
        takes_files = bool(root.tk.call("bind", root._w, "<<Drop:DND_Files>>"))
        print(json.dumps([loaded_before, takes_files]), flush=True)
        os._exit(0)
    first(root, then, fallback_ms)
launch._after_first_paint = at_paint
launch.run_window(__import__("argparse").Namespace())
"""


def test_the_app_window_takes_dropped_files_once_painted_and_loads_tkdnd_only_then(
    tmp_path: Path,
) -> None:
    assert _run_window_script(_AFTER_PAINT, tmp_path) == [False, True]


def test_the_room_transcript_inside_is_not_built_before_the_first_paint(tmp_path: Path) -> None:
    # It lies under the start screen until a session starts: its Text, scrollbar, tags and
    # bindings were 4 ms of the window's build before its map.
    assert at_first_paint("[str(w) for w in window.transcript.winfo_children()]", tmp_path) == []


def test_a_transcript_made_for_later_builds_itself_when_first_used(root: tk.Tk) -> None:
    from app.gui import theme
    from app.gui.logic import Line
    from app.gui.transcript import Transcript

    top = tk.Toplevel(root)
    transcript = Transcript(top, theme.apply_theme(top), later=True)
    transcript.pack(fill="both", expand=True)
    assert transcript.winfo_children() == []
    transcript.add([Line("notice", "Hello from before the paint")])
    assert "Hello from before the paint" in transcript.text.get("1.0", "end")
    assert {str(transcript.text), str(transcript.scrollbar)} <= {
        str(w) for w in transcript.winfo_children()
    }
    transcript.build_inside()  # once: nothing is made twice
    assert len([w for w in transcript.winfo_children() if isinstance(w, tk.Text)]) == 1
    top.destroy()


# Host (argv: host) or Join (argv: join PORT) pressed at once, before the first paint (and so
# before the room transcript is built and the network is let go): the session opens, and its
# lines (argv's last: a fragment of them) are in the transcript once it is built.
_PRESSED_AT_ONCE = """
import json, os, sys, time
import app.gui.launch as launch
made, seen = [], {}
class Window(launch.ChatWindow):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        made.append(self)
        self.announce.set(False)
        seen["built when pressed"] = bool(self.transcript.winfo_children())
        if sys.argv[1] == "host":
            self.bar.port.set("0")
            self.start_screen.host_button.invoke()
        else:
            self.bar.address.set("127.0.0.1")
            self.bar.port.set(sys.argv[2])
            self.bar.name.set("Ann")
            self.start_screen.join_button.invoke()
launch.ChatWindow = Window
def watch():
    window = made[0]
    deadline = time.monotonic() + 30
    def shown():
        if not window.transcript.winfo_children():
            return ""
        return window.transcript.text.get("1.0", "end")
    while time.monotonic() < deadline and not (
        window.view.state == "in_room" and sys.argv[-1] in shown()
    ):
        window.top.update()
        time.sleep(0.005)
    seen["state"] = str(window.view.state)
    seen["in the transcript"] = sys.argv[-1] in shown()
    seen["start screen"] = window.start_screen.shown
    print(json.dumps(seen), flush=True)
    window.close()
    os._exit(0)
import tkinter
tkinter.Tk.mainloop = lambda self, n=0: watch()  # run_window's loop: this one, then exit
launch.run_window(__import__("argparse").Namespace(bind="127.0.0.1"))
"""


def pressed_at_once(home: Path, *args: str) -> object:
    return _run_window_script(_PRESSED_AT_ONCE, home, *args)


IN_A_ROOM = {
    "built when pressed": False,  # (built before the paint until now)
    "state": "in_room",
    "in the transcript": True,
    "start screen": False,
}


def test_host_pressed_before_the_first_paint_still_hosts(tmp_path: Path) -> None:
    assert pressed_at_once(tmp_path, "host", "Others reach this room at") == IN_A_ROOM


def test_join_pressed_before_the_first_paint_still_joins(
    make_window: MakeWindow, tmp_path: Path
) -> None:
    hal = make_window()
    port = start_host(hal, "Hal")
    joined = pressed_at_once(tmp_path, "join", str(port), "Connected as Ann. In the room: Hal")
    assert joined == IN_A_ROOM


# The window as `python -m app` opens it with no arguments (app/__main__.py run as __main__,
# through `main()`), looked at when it is mapped and again once its after-paint work ran: the
# script prints `eval(argv[1])` at the map and `eval(argv[2])` after the paint.
_AS_LAUNCHED = """
import json, os, runpy, sys
import app.gui.launch as launch
first = launch._after_first_paint
seen = []
def at_paint(root, action, fallback_ms=1000):
    def look():
        if not root.winfo_ismapped():
            root.after(5, look)
            return
        seen.append(eval(sys.argv[1]))
    root.after(0, look)
    def then():
        action()
        seen.append(eval(sys.argv[2]))
        print(json.dumps(seen), flush=True)
        os._exit(0)
    first(root, then, fallback_ms)
launch._after_first_paint = at_paint
sys.argv[1:] = []  # python -m app, nothing asked
runpy.run_module("app", run_name="__main__", alter_sys=True)
"""


def as_launched(home: Path, at_map: str, after_paint: str = "None") -> Any:
    # the expressions are read before run_module clears the arguments
    code = _AS_LAUNCHED.replace("sys.argv[1]", repr(at_map)).replace(
        "sys.argv[2]", repr(after_paint)
    )
    return _run_window_script(code, home)


def test_a_window_opened_without_arguments_imports_no_argparse_logging_or_darkdetect(
    tmp_path: Path,
) -> None:
    # argparse (1.9 ms in the executable), logging with concurrent.futures for the held
    # worker's futures (4 ms), darkdetect: none of them draws anything on the first screen.
    names = ("argparse", "logging", "concurrent.futures", "darkdetect", "traceback")
    loaded = as_launched(tmp_path, f"sorted(n for n in {names!r} if n in sys.modules)")
    assert loaded == [[], None]


def test_garbage_is_collected_again_once_the_window_is_painted(tmp_path: Path) -> None:
    # Off while the program starts (4-5 ms of collector passes over start-up's objects), on
    # again from the first paint.
    gc_state = "__import__('gc').isenabled()"
    assert as_launched(tmp_path, gc_state, gc_state) == [False, True]


_FAKE_GSETTINGS = """#!/bin/sh
echo "'prefer-dark'"
"""

# `python -m app` with no arguments again, looked at once the window is built (its main loop
# replaced): whether each `gsettings` started found the window's modules imported already, and
# whether the built window is dark.
_DARK_ASKED = """
import json, os, runpy, subprocess, sys, tkinter
asked = []
class Recorded(subprocess.Popen):
    def __init__(self, args, *rest, **kwargs):
        if "gsettings" in str(args):
            asked.append("app.gui.window" in sys.modules)
        super().__init__(args, *rest, **kwargs)
subprocess.Popen = Recorded
def shown(root, n=0):
    from app.gui import theme
    print(json.dumps([asked, theme.get(root).palette.dark]), flush=True)
    os._exit(0)
tkinter.Tk.mainloop = shown  # run_window's loop: look at the built window, then exit
sys.argv[1:] = []
runpy.run_module("app", run_name="__main__", alter_sys=True)
"""


def test_the_desktops_dark_mode_is_asked_before_the_window_is_imported_and_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The `gsettings` that darkdetect ran while the theme was made (5-6 ms before the map) now
    # runs while the window's modules are imported, and its answer paints the first screen.
    fake = tmp_path / "bin" / "gsettings"
    fake.parent.mkdir()
    fake.write_text(_FAKE_GSETTINGS)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert _run_window_script(_DARK_ASKED, tmp_path) == [[False], True]


_COUNT_FOCUS_LOOKS = """import app.gui.launch as launch
looks = []
looked = launch.ChatWindow._focus_changed
def counted(self, event):
    looks.append(str(getattr(event, "widget", "")))
    looked(self, event)
launch.ChatWindow._focus_changed = counted
"""


def test_the_first_map_calls_the_windows_map_handler_once_not_once_per_widget(
    tmp_path: Path,
) -> None:
    # A <Map> bound on the toplevel ran for each of its ~70 widgets as they were mapped, each
    # call with tkinter's 19-field event substitution, in the middle of the first paint.
    code = _AS_LAUNCHED.replace("import app.gui.launch as launch\n", _COUNT_FOCUS_LOOKS, 1)
    looks = _run_window_script(
        code.replace("sys.argv[1]", repr("None")).replace("sys.argv[2]", repr("looks")),
        tmp_path,
    )
    at_map, after_paint = looks
    # the window's own look as it is built (""), and the root's own maps: no widget's
    assert set(after_paint) <= {"", "."}, after_paint


def test_a_binding_of_the_toplevel_itself_is_not_called_for_its_widgets(root: tk.Tk) -> None:
    from app.gui.window import bind_own

    top = tk.Toplevel(root)
    top.withdraw()
    for _ in range(5):
        ttk.Label(top, text="a widget").pack()
    own: list[str] = []
    every: list[str] = []
    bind_own(top, "<Map>", lambda e: own.append(str(e.widget)))
    bind_own(top, "<Map>", lambda e: own.append("again"))  # added, not replaced
    top.bind("<Map>", lambda e: every.append(str(e.widget)), add="+")
    top.deiconify()
    pump_until(top, lambda: len(every) >= 6, "the widgets' maps")
    top.update()
    assert own == [str(top), "again"]
    assert len(every) == 6  # the toplevel's own binding tag, as before: all six
    assert top.bindtags()[1:] == (str(top), "Toplevel", "all")
    top.destroy()


_ICON_SIZES = """import app.gui.launch as launch
def icon_sizes():
    # the widths of the icons in _NET_WM_ICON, on the toplevel's wrapper (its X parent)
    from Xlib import Xatom, display
    root = launch.tk._default_root
    x = display.Display()
    try:
        wrapper = x.create_resource_object("window", root.winfo_id()).query_tree().parent
        prop = wrapper.get_full_property(x.intern_atom("_NET_WM_ICON"), Xatom.CARDINAL)
        values = list(prop.value) if prop is not None else []
    finally:
        x.close()
    widths, i = [], 0
    while i + 1 < len(values):
        widths.append(values[i])
        i += 2 + values[i] * values[i + 1]
    return widths
"""


def test_the_large_icons_follow_the_first_paint_and_the_small_ones_are_there_at_the_map(
    tmp_path: Path,
) -> None:
    # Decoding the 256 and 128 pixel PNGs was 2.3 ms before the map; the window manager has
    # the sizes for its title bar and taskbar at the map, and all six just after the paint.
    code = _AS_LAUNCHED.replace("import app.gui.launch as launch\n", _ICON_SIZES, 1)
    sizes = _run_window_script(
        code.replace("sys.argv[1]", repr("icon_sizes()")).replace(
            "sys.argv[2]", repr("icon_sizes()")
        ),
        tmp_path,
    )
    assert sizes == [[64, 48, 32, 16], [256, 128, 64, 48, 32, 16]]


def test_every_app_module_loaded_at_the_first_paint_is_stored_uncompressed(
    tmp_path: Path,
) -> None:
    # build_exe.spec stores these as they are in the executable (app/deferred.py): a module
    # added to the window's first paint and missing here would be inflated at every start.
    import importlib.util

    ours = ("app", "tkinter", "platformdirs", "ifaddr")
    loaded = as_launched(
        tmp_path,
        f"sorted(n for n in sys.modules if n.split('.')[0] in {ours!r})",
    )[0]
    assert "app.gui.window" in loaded
    assert set(loaded) - set(deferred.STORED_MODULES) == set()
    missing = [n for n in deferred.STORED_MODULES if importlib.util.find_spec(n) is None]
    assert missing == []
