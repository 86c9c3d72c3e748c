"""A drag source that speaks XDND (version 5) to a real window, as a file manager does (tests).

A desktop's file manager drops files on a window in five steps, all X client messages and one
selection transfer, and this does the same from its own X connection:

1. it owns the `XdndSelection` selection and finds, under the drop point, the top-level window
   that says it takes drops (the `XdndAware` property);
2. `XdndEnter` names what it offers (`text/uri-list`), `XdndPosition` where the pointer is and
   the action (copy);
3. the window answers `XdndStatus`: accepted or not (then `XdndLeave`, and nothing is dropped);
4. `XdndDrop`; the window asks for the selection as `text/uri-list` and is given
   `file:///path` lines (percent-encoded, CRLF-ended);
5. the window answers `XdndFinished`.

`xdotool` cannot do this (it moves the pointer, but no program answers the window's questions).
Run `drop_files` on a thread of its own while the window's event loop runs: each side waits for
the other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from Xlib import X, display
from Xlib.protocol import event as xevent
from Xlib.xobject.drawable import Window

VERSION = 5


def drop_files(paths: Sequence[Path], x: int, y: int, timeout: float = 10.0) -> str:
    """Drop `paths` at root coordinates (`x`, `y`). Returns "finished" (dropped and the
    window said it was done), "refused" (the window did not accept), or why it stopped."""
    d = display.Display()
    try:
        return _drop(d, paths, x, y, timeout)
    finally:
        d.close()


def _drop(d: display.Display, paths: Sequence[Path], x: int, y: int, timeout: float) -> str:
    root = d.screen().root
    atom = d.intern_atom
    uri_list = atom("text/uri-list")
    source = root.create_window(0, 0, 1, 1, 0, X.CopyFromParent)
    source.set_selection_owner(atom("XdndSelection"), X.CurrentTime)
    target = _aware_window_at(d, root, x, y)
    if target is None:
        return "no window there takes drops"

    def send(name: str, *data: int) -> None:
        values = [source.id, *data, 0, 0, 0, 0][:5]
        message = xevent.ClientMessage(window=target, client_type=atom(name), data=(32, values))
        target.send_event(message, event_mask=0)
        d.flush()

    payload = "".join(f"file://{quote(str(p))}\r\n" for p in paths).encode()
    send("XdndEnter", VERSION << 24, uri_list)
    send("XdndPosition", 0, (x << 16) | y, X.CurrentTime, atom("XdndActionCopy"))
    dropped = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not d.pending_events():
            time.sleep(0.005)
            continue
        e = d.next_event()
        if e.type == X.ClientMessage and e.client_type == atom("XdndStatus"):
            if not e.data[1][1] & 1:
                send("XdndLeave")
                return "refused"
            if not dropped:
                send("XdndDrop", 0, X.CurrentTime)
                dropped = True
        elif e.type == X.SelectionRequest:
            e.requestor.change_property(e.property, uri_list, 8, payload)
            notify = xevent.SelectionNotify(
                time=e.time,
                requestor=e.requestor,
                selection=e.selection,
                target=e.target,
                property=e.property,
            )
            e.requestor.send_event(notify)
            d.flush()
        elif e.type == X.ClientMessage and e.client_type == atom("XdndFinished"):
            return "finished"
    return "dropped, but no XdndFinished came" if dropped else "no XdndStatus came"


def _aware_window_at(d: display.Display, root: Window, x: int, y: int) -> Window | None:
    """The window under (`x`, `y`) with the `XdndAware` property, descending from the root."""
    aware = d.intern_atom("XdndAware")
    window = root
    while True:
        child = window.translate_coords(root, x, y).child
        if not child:
            return None
        if child.get_full_property(aware, X.AnyPropertyType) is not None:
            return child
        window = child
