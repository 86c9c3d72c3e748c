"""Desktop notifications: when to show one (pure policy), and showing it (desktop-notifier).

How this works
--------------
`NotifyPolicy` decides, for each new message, whether the person should be told: only while the
window is not focused, never for one's own or earlier lines; ordinary messages at most once per
quiet spell (a burst is one notification), while a message naming you or a private message
notifies every time. Notifications can be turned off (`enabled`).

`DesktopNotifications` is the one place that imports `desktop_notifier` (freedesktop over D-Bus
on Linux, the native centre on Windows and macOS). The library is asyncio-based, so it runs on a
small thread with its own event loop, started on the first notification; `notify()` returns at
once. The library logs and swallows failures, so success is read from its `on_dispatched`
callback: the first notification that is not dispatched (no D-Bus session, as under Xvfb, or no
notification server on it) marks the service unavailable, and the window falls back, silently,
to what it does anyway: the unread count in the title and the bell.

A freedesktop server that advertises `body-markup` reads the body as a subset of XML (bold,
links, images): a message is text a person typed, so for such a server its `<`, `>` and `&`
are escaped and it shows as typed. Servers without markup get the text untouched.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from app.logs import logger

if TYPE_CHECKING:
    import asyncio

log = logger(__name__)


class Notifier(Protocol):
    """What the window needs from a notification service."""

    available: bool

    def notify(self, title: str, body: str) -> None: ...

    def close(self) -> None: ...


class NotifyPolicy:
    """Which messages become notifications; `quiet` seconds end a burst."""

    def __init__(self, quiet: float = 5.0, enabled: bool = True) -> None:
        self.quiet = quiet
        self.enabled = enabled
        self._last: float | None = None

    def wants(self, *, focused: bool, urgent: bool, now: float) -> bool:
        """A new message from someone else arrived; `urgent`: it names you or is private."""
        if not self.enabled or focused:
            return False
        if urgent:
            return True
        quiet = self._last is None or now - self._last >= self.quiet
        self._last = now
        return quiet


def describe(sender: str | None, text: str, private: str | None, mention: bool) -> tuple[str, str]:
    """The notification's title and body for a message."""
    who = sender or "Parley"
    if private is not None:
        title = f"{who} (private)"
    elif mention:
        title = f"{who} mentioned you"
    else:
        title = who
    body = text if len(text) <= 200 else text[:199] + "…"
    return title, body


class DesktopNotifications:
    """desktop-notifier on a thread of its own; `available` turns False once it fails."""

    def __init__(self, app_name: str = "Parley", *, timeout: float = 5.0) -> None:
        self.app_name = app_name
        self.timeout = timeout
        self.available = True
        self.sent = 0  # notifications the service took (for tests and the curious)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._notifier: Any = None
        self._lock = threading.Lock()
        self._markup: bool | None = None  # does the server read the body as markup?

    def notify(self, title: str, body: str) -> None:
        if not self.available:
            return
        loop = self._start()
        if loop is not None:
            import asyncio  # only once a notification is due: never before the window's first paint

            asyncio.run_coroutine_threadsafe(self._send(title, body), loop)

    def _start(self) -> asyncio.AbstractEventLoop | None:
        with self._lock:
            if self._loop is None:
                import logging  # here, not with the window (see app/logs.py)

                # The library warns (with a traceback) for every failed notification; the
                # window falls back by itself, so keep that quiet.
                logging.getLogger("desktop_notifier").setLevel(logging.CRITICAL)
                try:
                    from desktop_notifier import DesktopNotifier
                except Exception as exc:  # not installed, or no backend for this platform
                    log.info("no desktop notifications: %s", exc)
                    self.available = False
                    return None
                import asyncio

                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    try:
                        self._notifier = DesktopNotifier(app_name=self.app_name)
                    except Exception as exc:
                        log.info("no desktop notifications: %s", exc)
                        self.available = False
                    ready.set()
                    loop.run_forever()
                    loop.close()

                self._loop = loop
                self._thread = threading.Thread(target=run, name="parley-notify", daemon=True)
                self._thread.start()
                ready.wait(self.timeout)
            return self._loop if self.available else None

    async def _send(self, title: str, body: str) -> None:
        import asyncio

        dispatched = threading.Event()
        if await self._reads_markup():
            import html  # here, not above: not before the window's first paint

            body = html.escape(body, quote=False)
        try:
            await asyncio.wait_for(
                self._notifier.send(title=title, message=body, on_dispatched=dispatched.set),
                self.timeout,
            )
        except Exception as exc:  # the library swallows most failures; not all
            log.info("notification failed: %s", exc)
        if dispatched.is_set():
            self.sent += 1
        else:
            self.available = False  # no service: the title count and the bell will do

    async def _reads_markup(self) -> bool:
        """Ask a freedesktop server (once) whether it renders markup in a body."""
        if self._markup is None:
            self._markup = False
            if sys.platform not in ("darwin", "win32"):  # elsewhere desktop-notifier uses D-Bus
                import asyncio

                try:
                    caps = await asyncio.wait_for(_server_capabilities(), self.timeout)
                except Exception as exc:  # no bus, no server: the send will say so
                    log.info("notification capabilities unknown: %s", exc)
                else:
                    self._markup = "body-markup" in caps
        return self._markup

    def close(self) -> None:
        """Stop the thread (and with it the D-Bus connection), within `timeout`."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(self.timeout)


async def _server_capabilities() -> list[str]:
    """org.freedesktop.Notifications.GetCapabilities on the session bus (dbus-fast is what
    desktop-notifier itself speaks D-Bus with)."""
    from dbus_fast import Message, MessageType
    from dbus_fast.aio import MessageBus

    bus = await MessageBus().connect()
    try:
        reply = await bus.call(
            Message(
                destination="org.freedesktop.Notifications",
                path="/org/freedesktop/Notifications",
                interface="org.freedesktop.Notifications",
                member="GetCapabilities",
            )
        )
    finally:
        bus.disconnect()
    if reply is None or reply.message_type != MessageType.METHOD_RETURN:
        return []
    return [str(cap) for cap in reply.body[0]]


class NoNotifications:
    """Notifications off at the source (tests, or a platform without any)."""

    available = False

    def notify(self, title: str, body: str) -> None:
        pass

    def close(self) -> None:
        pass


NotifierFactory = Callable[[], Notifier]
