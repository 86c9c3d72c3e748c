# ruff: noqa: F821, F722
"""Run under `dbus-run-session`: a real org.freedesktop.Notifications service on the session
bus (what a desktop's notification daemon offers), then Parley's `DesktopNotifications` sending
through it. Prints what the service received, one JSON line, for tests/test_notify.py."""

import asyncio
import json
import sys
import threading
import time

from dbus_fast import BusType
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method

from app.notify import DesktopNotifications

received: list[dict[str, object]] = []
capabilities = ["body"]


class Notifications(ServiceInterface):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__("org.freedesktop.Notifications")

    @method()  # type: ignore[untyped-decorator]
    def Notify(
        self,
        app_name: "s",
        replaces_id: "u",
        app_icon: "s",
        summary: "s",
        body: "s",
        actions: "as",
        hints: "a{sv}",
        expire_timeout: "i",
    ) -> "u":
        received.append({"app": app_name, "summary": summary, "body": body})
        return len(received)

    @method()  # type: ignore[untyped-decorator]
    def GetCapabilities(self) -> "as":
        return capabilities

    @method()  # type: ignore[untyped-decorator]
    def CloseNotification(self, id: "u"):  # type: ignore[no-untyped-def]
        pass

    @method()  # type: ignore[untyped-decorator]
    def GetServerInformation(self) -> "ssss":
        return ["test", "parley", "1", "1.2"]


async def serve(ready: threading.Event, stop: asyncio.Event) -> None:
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    bus.export("/org/freedesktop/Notifications", Notifications())
    await bus.request_name("org.freedesktop.Notifications")
    ready.set()
    await stop.wait()
    bus.disconnect()


def main() -> int:
    with_server = "--no-server" not in sys.argv[1:]
    if "--markup" in sys.argv[1:]:  # a server that reads the body as markup
        capabilities.append("body-markup")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    if with_server:
        thread = threading.Thread(
            target=loop.run_until_complete, args=(serve(ready, stop),), daemon=True
        )
        thread.start()
        if not ready.wait(10):
            print(json.dumps({"error": "the service did not start"}))
            return 1
    notes = DesktopNotifications(timeout=5)
    notes.notify("Bob mentioned you", "hi @Ann <b>&</b>")
    deadline = time.monotonic() + 10
    while notes.available and notes.sent == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    notes.close()
    if with_server:
        loop.call_soon_threadsafe(stop.set)
    print(json.dumps({"available": notes.available, "sent": notes.sent, "received": received}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
