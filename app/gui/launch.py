"""Opening the app's window from the command line's arguments."""

from __future__ import annotations

import contextlib
import gc
import queue
import signal
import sys
import threading
import tkinter as tk
from collections.abc import Callable
from types import FrameType, SimpleNamespace
from typing import TYPE_CHECKING, Any

from app import dark_mode
from app.gui.window import ChatWindow, bind_own
from app.settings import SettingsStore
from app.worker import NetWorker

if TYPE_CHECKING:
    import argparse

    from app import events as ev  # imported by the window once events come, after the paint


def run_window(args: argparse.Namespace | SimpleNamespace) -> int:
    """Open the window (hosting or joining at once if asked), run until it closes."""
    try:
        root = tk.Tk(className="Parley")
    except tk.TclError as exc:
        print(
            f"Parley could not open its window ({exc}).\n"
            "In a terminal, use: python -m app host   or   python -m app join HOST",
            file=sys.stderr,
        )
        return 1
    # Hidden while it is built: measuring the connection bar runs update_idletasks(), which
    # would map a visible toplevel halfway through, and Tk then drew it in five or six passes
    # over 35 ms (an empty transcript, Send enabled, then the start screen, the hints...) as
    # the rest of the build changed it. Shown once complete, it is drawn once.
    root.withdraw()
    input_methods = _input_methods_off(root)
    events: queue.Queue[ev.Event] = queue.Queue()
    worker = NetWorker(events.put)
    # The window first: what needs the network loop (browsing, a --host/--join session) and the
    # import of the network, TLS and crypto stack wait until the window has been drawn.
    worker.hold()
    window = ChatWindow(
        root,
        worker,
        events,
        store=SettingsStore(),
        bind=getattr(args, "bind", None),
        addresses_after_paint=True,
        transcript_after_paint=True,
        icons_after_paint=True,
    )

    # Listed once the widgets are built, before the first paint (which then shows them): with
    # ifaddr imported without `ldconfig -p` (app/address.py) that takes 2-4 ms, where it took 20
    # and was left until after the paint, which it then changed 25 ms later.
    window.show_addresses_now()

    def painted() -> None:
        gc.enable()  # off while `python -m app` started (app/__main__.py): on from here
        dark_mode.discard()  # the desktop's answer if the saved theme did not need it
        window.build_after_paint()
        _input_methods_on(root, input_methods)
        _import_network_stack_then(root, worker.release)
        window.enable_drops()

    _after_first_paint(root, painted)
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C and SIGTERM close the window the polite way (bye first). Raising from the
        # handler would not do: inside a Tk callback, tkinter would swallow the exception.
        def close_soon(signum: int, frame: FrameType | None) -> None:
            window.close_soon()

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, close_soon)
    if getattr(args, "room", None):
        window.room_name.set(args.room)
    if getattr(args, "no_announce", False):
        window.announce.set(False)
    try:
        window.apply_arguments(
            host=bool(getattr(args, "host", False)),
            join=getattr(args, "join", None),
            port=getattr(args, "port", None),
            name=getattr(args, "name", None),
        )
        root.deiconify()
        root.mainloop()
    except KeyboardInterrupt:
        pass
    finally:
        window.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def _after_first_paint(
    root: tk.Tk | tk.Toplevel, action: Callable[[], None], fallback_ms: int = 1000
) -> None:
    """Run `action` once, soon after the window is mapped and drawn (or after `fallback_ms` if
    no map ever comes, e.g. a window manager that keeps it hidden).

    Building the window may already have mapped it (an `update_idletasks()` runs Tk's pending
    map), and then no <Map> comes to a binding made now: a window mapped already counts at once,
    or its network would wait out the whole fallback."""
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            # What the map made Tk draw is drawn before the action (in the app, a thread that
            # imports the network stack and unpacks its files): begun while Tk was still
            # drawing, it slowed the first paint by 10-14 ms on two cores.
            root.update_idletasks()
            action()

    def soon() -> None:
        root.after_idle(lambda: root.after(20, run))

    def mapped(event: tk.Event) -> None:
        if event.widget is root:
            soon()

    bind_own(root, "<Map>", mapped)  # not each widget's map: see `bind_own`
    if root.winfo_ismapped():
        soon()
    root.after(fallback_ms, run)


def _input_methods_off(root: tk.Tk) -> bool:
    """Turn Tk's X input methods off until the first paint; returns whether they were on.

    With input methods on, Tk gives every X window an input context (XCreateIC) the first time
    an event reaches it, and the first events reach all of them at once, at the map: about 230
    round trips to the X server for the window's ~110 widgets, 15-20 ms between the map and
    the first paint on this machine, for frames and labels that never take a key. While they
    are off, no window is marked as checked, so once they are on again each widget gets its
    context at its next event: the fields when they are clicked or focused, before their first
    key (compose keys and IMEs work there as before)."""
    try:
        was_on = bool(root.tk.getboolean(root.tk.call("tk", "useinputmethods")))
        if was_on:
            root.tk.call("tk", "useinputmethods", "0")
    except tk.TclError:  # not X11, or a Tk without input methods: nothing to put off
        return False
    return was_on


def _input_methods_on(root: tk.Tk, was_on: bool) -> None:
    """After the first paint: input methods back on (see `_input_methods_off`). A widget that
    took the focus meanwhile has no input context with that focus; giving it the focus again
    creates one and focuses it, so its next key goes through the input method."""
    if not was_on:
        return
    with contextlib.suppress(tk.TclError, KeyError):  # KeyError: a widget tkinter did not make
        root.tk.call("tk", "useinputmethods", "1")
        focused = root.focus_get()
        if focused is not None and focused is not root:
            root.focus_set()
            focused.focus_set()


def _import_network_stack_then(root: tk.Tk, action: Callable[[], None]) -> None:
    """Import asyncio and ssl on a thread of their own, then run `action` on Tk's thread.

    Releasing the worker imports asyncio where it is called, and in the executable that first
    import also unpacks the network and TLS files (`app.deferred`): on Tk's thread, the window
    would freeze for that long just after it appeared."""
    thread = threading.Thread(target=_import_network_stack, name="parley-import", daemon=True)
    thread.start()

    def check() -> None:
        if thread.is_alive():
            root.after(10, check)
        else:
            action()  # if the import failed, the worker's own import says why, where it counts

    check()


def _import_network_stack() -> None:
    with contextlib.suppress(Exception):
        import asyncio  # noqa: F401
        import ssl  # noqa: F401
