"""Stage a real conversation in a real window and save a screenshot of it.

Everything is real: sockets on 127.0.0.1:5151, TLS, the password exchange. The window's own
lines are typed into its entry box. The picture is taken from the X server with ImageMagick's
`import -window root`, on a private Xvfb, cropped to the window (whose menu bar, on X11, sits
above its client area).

Scenes:
  conversation  (default; assets/screenshot.png, the README's picture) the window hosts a
                password room, showing its invite; three people join with the password and chat.
  identity      a joiner's window after the host's identity changed: the warning and the
                "Trust new identity" button (default output: parley-identity-changed.png in
                the system's temporary folder).
  dark          the conversation in the dark theme (assets/screenshot-dark.png).
  narrow        a joiner's window at 640 × 480, the member list hidden
                (assets/screenshot-narrow.png).
  reconnecting  a joiner whose host vanished: greyed members, the countdown, Reconnect now and
                Cancel (assets/screenshot-reconnecting.png).
  rtl           Hebrew and Arabic lines shown in reading order (assets/screenshot-rtl.png).

Run: python tests/gui/make_screenshot.py [--scene SCENE] [OUTPUT]   (needs Xvfb and ImageMagick)
"""

from __future__ import annotations

import argparse
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
from app.net import HostOptions, JoinOptions  # noqa: E402
from app.worker import NetWorker  # noqa: E402

WIDTH, HEIGHT = 960, 740
PORT = 5151
PASSWORD = "lunch at noon"


def pump_until(root: tk.Misc, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        root.after(5, lambda: None)
        root.tk.dooneevent(0)


class Stage:
    """A private X display, a window on it, and the bare workers playing the other people."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.people: list[NetWorker] = []
        self.root = tk.Tk()
        self.events: queue.Queue[ev.Event] = queue.Queue()
        self.window = ChatWindow(
            self.root, NetWorker(self.events.put), self.events, bind="127.0.0.1"
        )
        self.root.geometry(f"{WIDTH}x{HEIGHT}+0+0")
        pump_until(self.root, lambda: bool(self.root.winfo_ismapped()), "the window")

    def shown(self, text: str) -> Callable[[], bool]:
        return lambda: text in self.window.transcript.contents()

    def wait(self, condition: Callable[[], bool], what: str) -> None:
        pump_until(self.root, condition, what)

    def worker(self, post: Callable[[ev.Event], None] = lambda event: None) -> NetWorker:
        worker = NetWorker(post)
        self.people.append(worker)
        return worker

    def type_and_send(self, text: str) -> None:
        entry = self.window.entry
        entry.focus_force()
        entry.insert("insert", text)
        entry.event_generate("<Return>")
        self.wait(self.shown(text), "the window's own line")

    def shoot(self, out: Path) -> None:
        root = self.root
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

    def close(self) -> None:
        self.window.close()
        for worker in self.people:
            worker.stop()


def conversation(stage: Stage, out: Path) -> None:
    maya = stage.window
    maya.bar.port.set(str(PORT))
    maya.bar.name.set("Maya")
    maya.bar.password.set(PASSWORD)
    maya.start()
    stage.wait(lambda: maya.view.state == "in_room", "hosting")

    def join(name: str) -> NetWorker:
        worker = stage.worker()
        worker.join(JoinOptions("127.0.0.1", PORT, name=name, password=PASSWORD))
        stage.wait(stage.shown(f"{name} joined"), f"{name} to join")
        return worker

    def says(worker: NetWorker, text: str, shows: str | None = None) -> None:
        worker.send(text)
        stage.wait(stage.shown(shows or text), f"{text!r} to arrive")

    ben = join("Ben")
    priya = join("Priya")
    says(ben, "Morning! Is the build server back up?")
    stage.type_and_send("Yes, restarted it at 9. Logs: https://ci.example.com/builds/482")
    says(
        priya,
        "Thanks! Two things from the review:\n"
        "1. the retry loop needs a cap\n"
        "2. the timeout should be a setting, not a constant",
    )
    says(ben, "/nick Benji", "Ben is now Benji.")
    says(ben, "Agreed on both \u2713")
    stage.type_and_send("I'll take the cap. Lunch at 12:30? \u2615")
    omar = join("Omar")
    says(omar, "Sorry I'm late, catching up on the thread now \u263a")
    says(priya, "12:30 works for me")
    maya.entry.insert("insert", "Great, I'll book the table")
    maya.entry.focus_force()
    stage.shoot(out)


def identity(stage: Stage, out: Path) -> None:
    """Ann joined Maya's room before; today another machine answers at the same address."""
    ann = stage.window

    def host(name: str, folder: str) -> NetWorker:
        heard: list[ev.Event] = []
        worker = stage.worker(heard.append)
        options = HostOptions(port=PORT, bind="127.0.0.1", name=name, data_dir=stage.tmp / folder)
        worker.host(options)
        stage.wait(lambda: any(isinstance(e, ev.Hosting) for e in heard), f"{name} to host")
        return worker

    maya = host("Maya", "maya")
    ann.bar.set_mode("join")
    ann.bar.address.set(f"127.0.0.1:{PORT}")
    ann.bar.name.set("Ann")
    ann.start()
    stage.wait(lambda: ann.view.state == "in_room", "Ann to join")
    maya.send("Hi Ann! Same time tomorrow?")
    stage.wait(stage.shown("Same time tomorrow?"), "Maya's line")
    stage.type_and_send("Yes, see you then")
    maya.stop()
    stage.wait(lambda: ann.view.state == "idle", "the room to end")
    host("Maya", "someone-else")
    ann.start()
    stage.wait(lambda: bool(ann.view.warning), "the warning")
    stage.shoot(out)


def dark(stage: Stage, out: Path) -> None:
    stage.window.theme_choice.set("dark")
    stage.window._theme_chosen()
    conversation(stage, out)


def _terminal_host(name: str, *extra: str) -> tuple[subprocess.Popen[str], int]:
    """A real host in a terminal process of its own (so it can vanish without a goodbye)."""
    command = [sys.executable, "-m", "app", "host", "--port", "0", "--bind", "127.0.0.1"]
    proc = subprocess.Popen(
        [*command, "--name", name, *extra],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "on port" in line:
            return proc, int(line.rsplit(" ", 1)[1])
    raise SystemExit("the host did not start")


def _join_as(stage: Stage, name: str, port: int) -> None:
    ann = stage.window
    ann.bar.set_mode("join")
    ann.bar.address.set("127.0.0.1")
    ann.bar.port.set(str(port))
    ann.bar.name.set(name)
    ann.start()
    stage.wait(lambda: ann.view.state == "in_room", f"{name} to join")


def narrow(stage: Stage, out: Path) -> None:
    heard: list[ev.Event] = []
    host = stage.worker(heard.append)
    host.host(HostOptions(port=0, bind="127.0.0.1", name="Maya", data_dir=stage.tmp / "maya"))
    stage.wait(lambda: any(isinstance(e, ev.Hosting) for e in heard), "Maya to host")
    port = next(e.port for e in heard if isinstance(e, ev.Hosting))
    window = stage.window
    window.show_members.set(False)
    window._members_toggled()
    stage.root.geometry("640x480")
    _join_as(stage, "Ann", port)
    host.send("Hi Ann, the slides are at https://intranet.example/slides/q3")
    stage.wait(stage.shown("slides/q3"), "Maya's line")
    stage.type_and_send("Thanks! Reading them on the small laptop today.")
    stage.shoot(out)


def reconnecting(stage: Stage, out: Path) -> None:
    proc, port = _terminal_host("Maya")
    try:
        _join_as(stage, "Ann", port)
        assert proc.stdin is not None
        proc.stdin.write("Back in five, restarting the router\n")
        proc.stdin.flush()
        stage.wait(stage.shown("restarting the router"), "Maya's line")
        stage.type_and_send("OK, I'll wait")
        proc.kill()  # gone without a word, as a machine that lost power
        proc.wait(10)
        stage.wait(lambda: stage.window.view.reconnecting, "Ann to be reconnecting")
        stage.wait(stage.window.reconnect_now_button.winfo_ismapped, "the buttons")
        stage.shoot(out)
    finally:
        proc.kill()
        proc.wait(10)


def rtl(stage: Stage, out: Path) -> None:
    heard: list[ev.Event] = []
    host = stage.worker(heard.append)
    host.host(HostOptions(port=0, bind="127.0.0.1", name="Noa", data_dir=stage.tmp / "noa"))
    stage.wait(lambda: any(isinstance(e, ev.Hosting) for e in heard), "Noa to host")
    port = next(e.port for e in heard if isinstance(e, ev.Hosting))
    _join_as(stage, "Sam", port)
    said: list[ev.Event] = []
    samir = stage.worker(said.append)
    samir.join(JoinOptions("127.0.0.1", port, name="Samir", data_dir=stage.tmp / "samir"))
    stage.wait(lambda: len(stage.window.view.members) == 3, "Samir to join")
    host.send("שלום לכולם! הפגישה מחר בעשר.")
    samir.send("مرحبا بالجميع، سأكون هناك.")
    stage.wait(lambda: "ﻙﺎﻨﻫ" in stage.window.transcript.contents(), "the Arabic line")
    stage.type_and_send("Great, see you both at 10")
    stage.shoot(out)


def private(stage: Stage, out: Path) -> None:
    """A mention highlighted in the room's tab, and a private tab opened by a private message."""
    heard: list[ev.Event] = []
    host = stage.worker(heard.append)
    host.host(HostOptions(port=0, bind="127.0.0.1", name="Maya", data_dir=stage.tmp / "maya"))
    stage.wait(lambda: any(isinstance(e, ev.Hosting) for e in heard), "Maya to host")
    port = next(e.port for e in heard if isinstance(e, ev.Hosting))
    _join_as(stage, "Sam", port)
    noa = stage.worker()
    noa.join(JoinOptions("127.0.0.1", port, name="Noa", data_dir=stage.tmp / "noa"))
    stage.wait(lambda: len(stage.window.view.members) == 3, "Noa to join")
    host.send("Release notes are up. @Sam can you check the install section?")
    stage.wait(stage.shown("install section"), "Maya's mention")
    stage.type_and_send("On it")
    noa.send("Lunch after the review?", "Sam")
    stage.wait(lambda: int(stage.window.tabs.index("end")) > 1, "Noa's private tab")
    stage.shoot(out)


SCENES = {
    "private": private,
    "conversation": conversation,
    "identity": identity,
    "dark": dark,
    "narrow": narrow,
    "reconnecting": reconnecting,
    "rtl": rtl,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", choices=sorted(SCENES), default="conversation")
    parser.add_argument("output", nargs="?", type=Path)
    args = parser.parse_args()
    out = args.output
    if out is None:
        if args.scene == "conversation":
            out = REPO / "assets" / "screenshot.png"
        elif args.scene == "identity":
            out = Path(tempfile.gettempdir()) / "parley-identity-changed.png"
        else:
            out = REPO / "assets" / f"screenshot-{args.scene}.png"
    read, write = os.pipe()
    screen = f"{WIDTH + 200}x{HEIGHT + 200}x24"  # room for the menu bar above the window
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", screen, "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    stage: Stage | None = None
    try:
        with os.fdopen(read) as pipe:
            os.environ["DISPLAY"] = ":" + pipe.readline().strip()
        tmp = Path(tempfile.mkdtemp())
        os.environ["PARLEY_CONFIG_DIR"] = str(tmp / "config")
        os.environ["PARLEY_DATA_DIR"] = str(tmp / "data")
        stage = Stage(tmp)
        SCENES[args.scene](stage, out)
    finally:
        if stage is not None:
            stage.close()
        xvfb.terminate()
        xvfb.wait(10)


if __name__ == "__main__":
    main()
