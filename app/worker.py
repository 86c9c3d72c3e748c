"""`NetWorker`: the network's own thread, and the small synchronous facade front ends call.

How this works
--------------
`start()` launches one thread that runs one asyncio event loop forever. The front end (Tk's main
thread, or the terminal's) calls `host()`, `join()`, `send()`, `reconnect_now()`, `leave()` and
`stop()`; each hands
its work to the loop with `call_soon_threadsafe` / `run_coroutine_threadsafe` and returns at once
(`stop()` waits, with a bound). Nothing else crosses into the loop.

The loop runs at most one session (a `Host` or a `Joiner`) at a time. Sessions report through the
injected `post` callable, which the front end reads on its own thread (a `queue.Queue.put` in the
app, `list.append` in tests). Every session ends with exactly one `ChatEnded` or `Failed`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from app.logs import logger

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

    from app.net import Host, HostOptions, Joiner, JoinOptions, Post
    from app.net.discovery import Discovery
    from app.net.files import Transfers

# The network stack (and with it TLS and the crypto) is imported when a session starts, not
# with this module: the window creates its worker before its first paint.

log = logger(__name__)


class NetWorker:
    def __init__(self, post: Post) -> None:
        self._post = post
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: Host | Joiner | None = None
        # The sessions started since the last one opened. An ended session may still be closing
        # its TLS politely, and asyncio may no longer hold it: we do, and abort what is left
        # of it when the next session opens or the loop stops, so no socket outlives it.
        self._sessions: list[Host | Joiner] = []
        # Multicast DNS (announcing rooms, browsing for them): made on first need, on the loop,
        # and closed when the loop stops. Its events go to the same `post`.
        self._discovery: Discovery | None = None
        # Calls kept until the window's first paint (`hold` / `release`); None: not holding.
        # A call whose caller wants no future keeps none (`_call`).
        self._held: (
            list[tuple[Coroutine[Any, Any, None], concurrent.futures.Future[None] | None]] | None
        ) = None

    # --- the facade (any thread) ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="parley-net", daemon=True
        )
        self._thread.start()
        ready.wait()

    def host(self, options: HostOptions) -> None:
        """Open a room; `Hosting` or `Failed` follows."""
        self._call(self._open_host(options))

    def browse(self) -> None:
        """Start posting the rooms on the network (`RoomFound` / `RoomGone`)."""
        self._call(self._browse(True))

    def stop_browsing(self) -> None:
        """Stop looking for rooms (a `RoomGone` follows for each room posted)."""
        self._call(self._browse(False))

    def join(self, options: JoinOptions) -> None:
        """Join a room; `Connected` or `Failed` follows."""
        from app.net import Joiner

        self._call(self._open(Joiner(options, self._post)))

    def send(self, text: str, to: str | None = None) -> None:
        """Say `text` in the current session (a bye ends it); with `to`, to that member only."""
        loop = self._require_loop()
        loop.call_soon_threadsafe(self._send, text, to)

    def send_file(self, path: str, to: str | None = None) -> None:
        """Offer a file to the room, or to the member called `to`."""
        self._files(lambda files: files.offer(path, to))

    def accept_file(self, number: int) -> None:
        self._files(lambda files: files.accept(number))

    def decline_file(self, number: int) -> None:
        self._files(lambda files: files.decline(number))

    def cancel_file(self, number: int) -> None:
        self._files(lambda files: files.cancel(number))

    def _files(self, action: Callable[[Transfers], None]) -> None:
        def run() -> None:
            session = self._session
            if session is None or session.closed.is_set():
                from app import events as ev

                self._post(ev.ErrorShown("Not in a chat: host or join first."))
                return
            action(session.transfers)

        self._require_loop().call_soon_threadsafe(run)

    def reconnect_now(self) -> None:
        """While reconnecting after a drop: try again now instead of after the wait."""
        loop = self._require_loop()
        loop.call_soon_threadsafe(self._reconnect_now)

    def clear_history(self) -> None:
        """Forget the kept history of the current room (the host's log, or a joiner's
        transcript of it)."""
        self._require_loop().call_soon_threadsafe(self._clear_history)

    def _clear_history(self) -> None:
        session = self._session
        if session is not None and not session.closed.is_set():
            session.clear_history()

    def leave(self) -> concurrent.futures.Future[None]:
        """Say bye and end the session (the host's bye ends the room for everyone). While a
        joiner is reconnecting this cancels it: no further attempt is made."""
        return self._submit(self._leave())

    def stop(self, timeout: float = 1.5) -> None:
        """Say bye, then stop the loop and the thread; returns within about `timeout` seconds."""
        held, self._held = self._held, None
        for coro, future in held or []:  # held and never released: nothing was started
            coro.close()
            if future is not None:
                future.cancel()
        if self._thread is None or self._loop is None:
            return
        import concurrent.futures

        with contextlib.suppress(concurrent.futures.TimeoutError):
            self.leave().result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- inside the loop -----------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        import asyncio

        from app.hold import new_loop

        # A selector loop on every platform: the same behaviour everywhere, and sockets are all
        # this loop handles (no subprocesses, which is what Windows' proactor loop is for). Its
        # selector can be held by a host while a gathered flush waits (app/hold.py).
        loop = new_loop()
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_log_exception)
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            # Close what is still open, politely or not (inside the loop, as sessions expect).
            loop.run_until_complete(self._abort_all())
            if self._discovery is not None:  # goodbyes for rooms still announced
                loop.run_until_complete(self._discovery.close())
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _abort_all(self) -> None:
        for session in self._sessions:
            session.abort()
        self._sessions = []

    def _discovery_now(self) -> Discovery:
        if self._discovery is None:
            from app.net.discovery import Discovery

            self._discovery = Discovery(self._post)
        return self._discovery

    async def _browse(self, on: bool) -> None:
        try:
            if on:
                await self._discovery_now().browse()
            elif self._discovery is not None:
                await self._discovery.stop_browsing()
        except Exception as exc:  # e.g. zeroconf missing from a broken install: say so
            log.exception("browsing failed")
            from app import events as ev

            self._post(ev.NoticeShown(f"Cannot look for rooms on the network: {exc}"))

    async def _open_host(self, options: HostOptions) -> None:
        from app.net import Host

        discovery = self._discovery_now() if options.announce else None
        await self._open(Host(options, self._post, discovery))

    async def _open(self, session: Host | Joiner) -> None:
        await self._leave()
        await self._abort_all()
        self._session = session
        self._sessions.append(session)
        try:
            await session.start()
        except Exception as exc:  # a bug must not leave the front end waiting forever
            log.exception("session failed to start")
            from app import events as ev

            self._post(ev.Failed(f"Something went wrong: {exc}"))

    def _send(self, text: str, to: str | None = None) -> None:
        session = self._session
        if session is None or session.closed.is_set():
            from app import events as ev

            self._post(ev.ErrorShown("Not in a chat: host or join first."))
            return
        session.say(text, to)

    def _reconnect_now(self) -> None:
        from app.net import Joiner

        if isinstance(self._session, Joiner):
            self._session.reconnect_now()

    async def _leave(self) -> None:
        session, self._session = self._session, None
        if session is None or session.closed.is_set():
            return
        from app.net import Host

        if isinstance(session, Host):
            await session.end()
        else:
            await session.leave()

    def _submit(self, coro: Coroutine[Any, Any, None]) -> concurrent.futures.Future[None]:
        if self._held is not None:
            import concurrent.futures

            future: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._held.append((coro, future))
            return future
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._require_loop())

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        """`_submit` for a caller that wants no future. While the worker is held none is
        made: the window browses before its first paint, and concurrent.futures (with logging)
        was 3-4 ms of its start for a future nobody reads."""
        if self._held is not None:
            self._held.append((coro, None))
        else:
            self._submit(coro)

    def hold(self) -> None:
        """Until `release()`, keep what is asked of the loop waiting. The window holds its
        worker until its first paint: starting the loop imports asyncio, browsing imports
        zeroconf, a session the network and TLS stack, and none of that should delay the
        window's appearance."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Run what waited for `release()`, in order."""
        held, self._held = self._held, None
        for coro, future in held or []:
            if future is None:
                self._submit(coro)
            else:
                _chain(self._submit(coro), future)
        self._submit(self._warm_up())

    async def _warm_up(self) -> None:
        """Import the network stack on the loop's thread while the window is idle, so that
        Start and Connect do not wait for it."""
        import app.net  # noqa: F401

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self.start()
        assert self._loop is not None
        return self._loop


def _chain(
    source: concurrent.futures.Future[None], target: concurrent.futures.Future[None]
) -> None:
    """Settle `target` the way `source` settles (a held call's future, once it has run)."""

    def settle(done: concurrent.futures.Future[None]) -> None:
        if target.done():
            return
        if done.cancelled():
            target.cancel()
        elif done.exception() is not None:
            target.set_exception(done.exception())
        else:
            target.set_result(None)

    source.add_done_callback(settle)


def _log_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    log.error("network loop: %s", context.get("message"), exc_info=context.get("exception"))
