"""A tiny X client for driving a real window the way a desktop would (used by tests and benchmarks).

It watches the root window for new top-level windows being mapped (MapNotify: the moment a
window becomes visible on a display with no window manager, such as Xvfb), and closes a window
the way a window manager's close button does: a WM_PROTOCOLS / WM_DELETE_WINDOW client message,
which the app can answer (say bye, stop its threads). `xdotool windowclose` is not that: it
destroys the window under the app's feet.

Start watching *before* starting the app, so its MapNotify cannot be missed.
"""

from __future__ import annotations

import select
import time

from Xlib import X, Xatom, display
from Xlib.error import XError
from Xlib.protocol import event as xevent
from Xlib.xobject.drawable import Window


class XWatcher:
    """One connection to the X server that sees every top-level window as it is mapped."""

    def __init__(self, display_name: str | None = None) -> None:
        self.display = display.Display(display_name)
        self.root = self.display.screen().root
        self.root.change_attributes(event_mask=X.SubstructureNotifyMask)
        self.display.sync()
        self._mapped: list[Window] = []

    def close(self) -> None:
        self.display.close()

    def __enter__(self) -> XWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def title(self, window: Window) -> str:
        """The window's title (UTF-8 _NET_WM_NAME, else WM_NAME); "" if it has none or is gone."""
        try:
            utf8 = self.display.intern_atom("UTF8_STRING")
            prop = window.get_full_property(self.display.intern_atom("_NET_WM_NAME"), utf8)
            if prop is not None:
                value = prop.value
                return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            prop = window.get_full_property(Xatom.WM_NAME, X.AnyPropertyType)
            if prop is not None:
                value = prop.value
                return value.decode("latin-1") if isinstance(value, bytes) else str(value)
        except XError:
            pass
        return ""

    def wait_mapped(self, title_part: str, timeout: float) -> tuple[Window, float]:
        """Wait for a top-level window whose title contains `title_part` to be mapped.

        Returns the window and the `time.monotonic()` at which its MapNotify was read.
        """
        deadline = time.monotonic() + timeout
        while True:
            for index, window in enumerate(self._mapped):
                if title_part in self.title(window):
                    del self._mapped[index]
                    return window, time.monotonic()
            while self.display.pending_events():
                ev = self.display.next_event()
                if ev.type == X.MapNotify and not ev.override:
                    seen = time.monotonic()
                    if title_part in self.title(ev.window):
                        return ev.window, seen
                    self._mapped.append(ev.window)  # its title may come a moment later
            left = deadline - time.monotonic()
            if left <= 0:
                titles = [self.title(w) for w in self._mapped]
                raise AssertionError(
                    f"no window titled *{title_part}* was mapped within {timeout}s "
                    f"(other windows mapped: {titles})"
                )
            # wake for the next event, or to look again at titles set after their MapNotify
            select.select([self.display], [], [], min(left, 0.05 if self._mapped else left))

    def wait_title(self, window: Window, title: str, timeout: float) -> None:
        """Wait until the window's title is exactly `title` (a title can carry state: unread)."""
        window.change_attributes(event_mask=X.PropertyChangeMask)
        self.display.sync()
        deadline = time.monotonic() + timeout
        while (now := self.title(window)) != title:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the window's title stayed {now!r}, not {title!r}")
            select.select([self.display], [], [], left)
            while self.display.pending_events():  # PropertyNotify and the like: just wake up
                ev = self.display.next_event()
                if ev.type == X.MapNotify and not ev.override:
                    self._mapped.append(ev.window)

    def unfocus(self) -> None:
        """Take the keyboard focus from every window, so a new window starts without it.

        With no window manager, X's default focus follows the pointer into whichever window
        happens to appear under it (and Tk counts that as focus); a test wants to know.
        """
        self.display.set_input_focus(X.NONE, X.RevertToNone, X.CurrentTime)
        self.display.sync()

    def icon_sizes(self, window: Window) -> list[tuple[int, int]]:
        """The sizes in the window's _NET_WM_ICON (what Tk's `iconphoto` sets)."""
        prop = window.get_full_property(
            self.display.intern_atom("_NET_WM_ICON"), Xatom.CARDINAL, sizehint=1 << 20
        )
        if prop is None:
            return []
        data, sizes, i = list(prop.value), [], 0
        while i + 2 <= len(data):
            width, height = int(data[i]), int(data[i + 1])
            sizes.append((width, height))
            i += 2 + width * height
        return sizes

    def request_close(self, window: Window) -> None:
        """Ask the window to close, as a window manager's close button does (WM_DELETE_WINDOW)."""
        protocols = self.display.intern_atom("WM_PROTOCOLS")
        delete = self.display.intern_atom("WM_DELETE_WINDOW")
        supported = window.get_wm_protocols() or []
        if delete not in supported:
            raise AssertionError("the window does not take WM_DELETE_WINDOW")
        message = xevent.ClientMessage(
            window=window, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])
        )
        window.send_event(message, event_mask=X.NoEventMask)
        self.display.flush()
