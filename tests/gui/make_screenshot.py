"""Stage a real conversation in a real window and save assets/screenshot.png for the README.

Everything is real: the window hosts a room on 127.0.0.1:5151, two people join with the engine
(`NetWorker`s) and chat; the window's own lines are typed into its entry box. The picture is
taken from the X server with ImageMagick's `import -window root`, on a private Xvfb, cropped to
the window (whose menu bar, on X11, sits above its client area).

Run: python tests/gui/make_screenshot.py [OUTPUT]   (needs Xvfb and ImageMagick)
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import time
import tkinter as tk
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from app import events as ev  # noqa: E402
from app.gui.window import ChatWindow  # noqa: E402
from app.net import JoinOptions  # noqa: E402
from app.worker import NetWorker  # noqa: E402

WIDTH, HEIGHT = 960, 640
PORT = 5151


def pump_until(root: tk.Misc, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        root.after(5, lambda: None)
        root.tk.dooneevent(0)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "assets" / "screenshot.png"
    read, write = os.pipe()
    screen = f"{WIDTH + 200}x{HEIGHT + 200}x24"  # room for the menu bar above the window
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", screen, "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    people: list[NetWorker] = []
    try:
        with os.fdopen(read) as pipe:
            os.environ["DISPLAY"] = ":" + pipe.readline().strip()
        tmp = tempfile.mkdtemp()
        os.environ["PARLEY_CONFIG_DIR"] = str(Path(tmp) / "config")
        os.environ["PARLEY_DATA_DIR"] = str(Path(tmp) / "data")

        root = tk.Tk()
        events: queue.Queue[ev.Event] = queue.Queue()
        maya = ChatWindow(root, NetWorker(events.put), events, bind="127.0.0.1")
        root.geometry(f"{WIDTH}x{HEIGHT}+0+0")
        pump_until(root, lambda: bool(root.winfo_ismapped()), "the window")
        maya.bar.port.set(str(PORT))
        maya.bar.name.set("Maya")
        maya.start()
        pump_until(root, lambda: maya.view.state == "in_room", "hosting")

        def shown(text: str) -> Callable[[], bool]:
            return lambda: text in maya.transcript.contents()

        def join(name: str) -> NetWorker:
            worker = NetWorker(lambda event: None)
            people.append(worker)
            worker.join(JoinOptions("127.0.0.1", PORT, name=name))
            pump_until(root, shown(f"{name} joined"), f"{name} to join")
            return worker

        def says(worker: NetWorker, text: str, shows: str | None = None) -> None:
            worker.send(text)
            pump_until(root, shown(shows or text), f"{text!r} to arrive")

        def maya_says(text: str) -> None:
            maya.entry.focus_force()
            maya.entry.insert("insert", text)
            maya.entry.event_generate("<Return>")
            pump_until(root, shown(text), "Maya's own line")

        ben = join("Ben")
        priya = join("Priya")
        says(ben, "Morning! Is the build server back up?")
        maya_says("Yes, restarted it at 9. Logs: https://ci.example.com/builds/482")
        says(
            priya,
            "Thanks! Two things from the review:\n"
            "1. the retry loop needs a cap\n"
            "2. the timeout should be a setting, not a constant",
        )
        says(ben, "/nick Benji", "Ben is now Benji.")
        says(ben, "Agreed on both ✓")
        maya_says("I'll take the cap. Lunch at 12:30? ☕")
        omar = join("Omar")
        says(omar, "Sorry I'm late, catching up on the thread now ☺")
        says(priya, "12:30 works for me")
        maya.entry.insert("insert", "Great, I'll book the table")
        maya.entry.focus_force()
        for _ in range(20):  # let the last redraws land
            root.update()
        root.update_idletasks()
        width = root.winfo_rootx() + root.winfo_width()
        height = root.winfo_rooty() + root.winfo_height()  # the menu bar is above rooty
        subprocess.run(
            ["import", "-window", "root", "-crop", f"{width}x{height}+0+0", "+repage", str(out)],
            check=True,
            timeout=30,
        )
        print(f"saved {out}")
        maya.close()
    finally:
        for worker in people:
            worker.stop()
        xvfb.terminate()
        xvfb.wait(10)


if __name__ == "__main__":
    main()
