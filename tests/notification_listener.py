"""Run with DBUS_SESSION_BUS_ADDRESS set: a real org.freedesktop.Notifications service on that
bus that prints each notification it receives as one JSON line (for tests/test_exe.py, where
the notifying app is the executable, a separate process)."""

import asyncio
import json
import sys

from dbus_fast import BusType
from dbus_fast.aio import MessageBus

from tests import notification_server as server

LIFETIME = 60.0  # seconds; the test stops it sooner


async def main() -> int:
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    bus.export("/org/freedesktop/Notifications", server.Notifications())
    await bus.request_name("org.freedesktop.Notifications")
    print("ready", flush=True)
    shown = 0
    for _ in range(int(LIFETIME / 0.05)):
        while shown < len(server.received):
            print(json.dumps(server.received[shown]), flush=True)
            shown += 1
        await asyncio.sleep(0.05)
    bus.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
