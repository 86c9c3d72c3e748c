"""Start-up: the window's network waits for the first paint, and no longer than that."""

from __future__ import annotations

import json
import subprocess
import sys
import tkinter as tk
from tkinter import ttk

from app.gui.launch import _after_first_paint
from tests.gui.conftest import MakeWindow
from tests.gui.tk_helpers import pump_until

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


def test_nothing_the_executable_unpacks_later_is_loaded_before_the_first_paint() -> None:
    # The real window, built as `python -m app` builds it, looked at once it is mapped: none of
    # what build_exe.spec defers (app/deferred.py) may be loaded by then, or the executable
    # would unpack its 21 MB before the window shows.
    code = (
        "import os, sys, json, tkinter as tk\n"
        "from app import deferred\n"
        "import app.gui.launch as launch\n"
        "def at_paint(root, action, fallback_ms=1000):\n"
        "    def look():\n"
        "        if not root.winfo_ismapped():\n"
        "            root.after(10, look)\n"
        "            return\n"
        "        names = deferred.DEFERRED_PACKAGES + deferred.DEFERRED_EXTENSIONS\n"
        "        print(json.dumps(sorted(n for n in names if n in sys.modules)), flush=True)\n"
        "        os._exit(0)\n"
        "    root.after(0, look)\n"
        "launch._after_first_paint = at_paint\n"
        "launch.run_window(__import__('argparse').Namespace())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
