"""Files dropped onto the window are offered to the room, as Send file… would offer them.

How this works
--------------
Tk has no drag-and-drop of its own. tkdnd, a Tk extension (Tcl scripts and one small shared
library per platform), speaks each desktop's protocol: XDND version 5 on X11 (what GNOME, KDE,
GTK, Qt and the browsers use), OLE on Windows, Cocoa on macOS. The `tkinterdnd2` package ships
tkdnd for Linux, macOS and Windows (x64 and arm64) and a PyInstaller hook that bundles the one
the build runs on; only its loader is used here (`TkinterDnD._require`), and the window is
registered through tkdnd's own Tcl commands, so no tkinter class is replaced.

It is loaded after the window's first paint (`app.gui.launch`): tkdnd's scripts cost the first
picture nothing then. Where it cannot be loaded (another platform, a Tk built differently), the
window simply takes no drops, and Send file… does the same job.

A drop of files (`DND_Files`) arrives as a Tcl list of paths; anything else offered (text, a
link) is refused during the drag, so the pointer shows that it would not be taken.
"""

from __future__ import annotations

import logging
import tkinter as tk
from collections.abc import Callable

log = logging.getLogger(__name__)

FILES = "DND_Files"


def enable(
    widget: tk.Misc, on_files: Callable[[list[str]], bool], ready: Callable[[], bool]
) -> bool:
    """Make `widget` (the window) take dropped files: `on_files(paths)` says whether they were
    taken; while `ready()` is False a drag over the window shows it would not be taken. False:
    drag-and-drop is not available here (the reason is logged)."""
    try:
        from tkinterdnd2 import TkinterDnD

        TkinterDnD._require(widget)
        widget.tk.call("tkdnd::drop_target", "register", widget._w, (FILES,))  # type: ignore[attr-defined]
    except (ImportError, RuntimeError, tk.TclError) as exc:
        log.info("Drag-and-drop is not available: %s", exc)
        return False

    def hovering(*_: str) -> str:
        return "copy" if ready() else "refuse_drop"

    def dropped(data: str) -> str:
        paths = [str(p) for p in widget.tk.splitlist(data) if str(p)]
        return "copy" if paths and on_files(paths) else "refuse_drop"

    for sequence in ("<<DropEnter>>", "<<DropPosition>>"):
        widget.tk.call("bind", widget._w, sequence, widget.register(hovering))  # type: ignore[attr-defined]
    widget.tk.call("bind", widget._w, "<<Drop:DND_Files>>", widget.register(dropped) + " %D")  # type: ignore[attr-defined]
    return True
