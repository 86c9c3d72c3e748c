"""The built executable, tested as a user gets it: the file itself, on a real (virtual) display.

Uses the executable named by PARLEY_EXE (e.g. `make exe && PARLEY_EXE=dist/Parley pytest -m exe`),
or builds one from `build_exe.spec` into a temporary directory. A missing PyInstaller or a failed
build fails these tests: a broken build must fail CI, not a user.

The one-file executable is two processes: the bootloader unpacks the bundle and starts the real
app as its child. The test finds that child in /proc, reads the port it listens on from its
sockets (so the host can use port 0 with no race and the test needs no output from a windowed
app), and checks at the end that both processes are gone. On failure it stops them with SIGTERM,
never SIGKILL: a SIGKILLed bootloader leaves its child running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from app import __version__
from app.paths import ENV_DATA
from app.security import CERT_FILE, safety_code
from tests.helpers import ROOT, Proc
from tools.xdnd import drop_files
from tools.xwin import Window, XWatcher

pytestmark = [pytest.mark.exe, pytest.mark.timeout(600)]  # building may take minutes in CI

T = TypeVar("T")
WINDOW_DEADLINE = 30.0  # unpacking the bundle on a slow CI machine
DEADLINE = 15.0
ICON_SIZES = {16, 32, 48, 64, 128, 256}  # the PNGs in assets/ (see assets/make_icons.py)
LOOPBACK_HEX = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it


@pytest.fixture(scope="module")
def exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("PARLEY_EXE")
    if given:
        path = Path(given).resolve()
        if not path.is_file():
            pytest.fail(f"PARLEY_EXE={given} does not exist: run `make exe` first")
        return path
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        pytest.fail(
            "PyInstaller is not installed, so the executable cannot be built: "
            "`pip install -e '.[build]'`, or `make exe` and set PARLEY_EXE=dist/Parley"
        )
    out = tmp_path_factory.mktemp("build")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            f"--distpath={out / 'dist'}",
            f"--workpath={out / 'work'}",
            str(ROOT / "build_exe.spec"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    if result.returncode != 0:
        pytest.fail(f"the build failed:\n{result.stderr[-4000:]}")
    return out / "dist" / "Parley"


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Identity, known hosts and settings go to a fresh home, never the real user's.

    The executable gets a data folder of its own when it is started (see `Launched`).
    """
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv(ENV_DATA, str(home / "joiner-data"))
    for var, sub in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ]:
        monkeypatch.setenv(var, str(home / sub))
    return home


def wait_until(probe: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
    """Poll `probe` until it returns something (state in /proc has no event to wait on)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {what}")
        time.sleep(0.02)


def start_time(pid: int) -> str | None:
    """The process's start time (tells a pid apart from a later process given the same pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def listening(pid: int) -> list[tuple[str, int]]:
    """(address in /proc hex, port) of every TCP socket `pid` listens on."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return []
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].rsplit(":", 1)
                found.append((address, int(port, 16)))
    return found


@pytest.fixture
def xdotool() -> str:
    path = shutil.which("xdotool")
    if path is None:
        pytest.fail("xdotool is needed to type into the window (apt install xdotool)")
    return path


@pytest.fixture
def watcher() -> Iterator[XWatcher]:
    if not os.environ.get("DISPLAY"):
        pytest.fail("no DISPLAY: these tests need Xvfb (pytest-xvfb starts one when installed)")
    with XWatcher() as x:
        x.unfocus()
        yield x


class Launched:
    """The executable, started as a desktop would start it, and its unpacked child."""

    def __init__(self, exe: Path, args: list[str], data: Path, errors: Path) -> None:
        self.errors = errors
        with errors.open("w") as err:
            self.proc = subprocess.Popen(
                [exe, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=dict(os.environ, **{ENV_DATA: str(data)}),
            )
        self.started = start_time(self.proc.pid)
        self.child = -1
        self.child_started: str | None = None

    def find_child(self) -> int:
        self.child = wait_until(lambda: next(iter(children(self.proc.pid)), None), "the app")
        self.child_started = start_time(self.child)
        return self.child

    def wait_gone(self) -> None:
        """Both processes exit on their own, the bootloader with status 0."""
        assert self.proc.wait(DEADLINE) == 0, self.errors.read_text()
        wait_until(
            lambda: True if start_time(self.child) != self.child_started else None,
            "the unpacked app to exit",
        )

    def stop(self) -> None:
        """SIGTERM (never SIGKILL: that would orphan the child) to whichever is still running."""
        for pid, started in [(self.proc.pid, self.started), (self.child, self.child_started)]:
            if started is not None and start_time(pid) == started:
                os.kill(pid, signal.SIGTERM)
        try:
            self.proc.wait(DEADLINE)
        finally:
            print(self.errors.read_text(), file=sys.stderr)


@contextmanager
def launched(exe: Path, args: list[str], tmp_path: Path) -> Iterator[Launched]:
    app = Launched(exe, args, tmp_path / "exe-data", tmp_path / "exe-stderr.txt")
    try:
        yield app
    finally:
        app.stop()


def focus_and_leave(xdotool: str, watcher: XWatcher, window: Window) -> None:
    """Focus the window, then take the focus away, as a user clicking elsewhere does.

    From then on the window counts unread messages in its title: "(1) Parley" is the test's
    sign that the window is in the room and has shown a message (its widgets are not visible
    to X). Done right after the window maps, long before any message can arrive.
    """
    subprocess.run([xdotool, "windowfocus", "--sync", str(window.id)], check=True, timeout=DEADLINE)
    watcher.unfocus()


def type_into(xdotool: str, window: Window, text: str) -> None:
    """Focus the window as a click would, then type a line and press Return (real key events)."""
    for args in (["windowfocus", "--sync", str(window.id)], ["type", "--delay", "5", text]):
        subprocess.run([xdotool, *args], check=True, timeout=DEADLINE)
    subprocess.run([xdotool, "key", "Return"], check=True, timeout=DEADLINE)


def rooms_listed(command: list[str], room: str, tries: int = 3) -> str:
    """What `COMMAND rooms` prints once it lists `room` (a host still probing its name may
    miss one look): a bounded number of looks."""
    out = ""
    for _ in range(tries):
        done = subprocess.run(
            [*command, "rooms", "--wait", "3"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        out = done.stdout
        if room in out:
            return out
    raise AssertionError(f"{room!r} not listed by {command}: {out!r}")


def test_version_comes_from_app_init(exe: Path) -> None:
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Parley {__version__}"


def test_window_hosts_a_room_a_terminal_joins_and_closing_ends_it(
    exe: Path, isolated_home: Path, watcher: XWatcher, xdotool: str, tmp_path: Path
) -> None:
    room = f"Exe room {uuid.uuid4().hex[:8]}"
    # Closing a host's window asks "End the room for everyone?" unless told not to (issue 12):
    # this test closes it as a session's end would, without a person to answer.
    settings = isolated_home / "config" / "Parley" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{"confirm_end": false}')
    args = ["--host", "--port", "0", "--bind", "127.0.0.1", "--name", "Hostess", "--room", room]
    with launched(exe, args, tmp_path) as app:
        window, _ = watcher.wait_mapped("Parley", WINDOW_DEADLINE)
        focus_and_leave(xdotool, watcher, window)
        sizes = watcher.icon_sizes(window)
        assert sizes, "the window has no icon: assets/icon-*.png not found in the bundle?"
        assert {w for w, h in sizes if w == h} <= ICON_SIZES, sizes

        child = app.find_child()
        sockets = wait_until(lambda: listening(child) or None, "the window to listen")
        assert all(address == LOOPBACK_HEX for address, _ in sockets), (
            f"--bind 127.0.0.1 was not honoured: listening on {sockets}"
        )
        joiner = Proc("join", f"127.0.0.1:{sockets[0][1]}", "--name", "T")
        try:
            joiner.expect(r"^You are T\. In the room: Hostess, T\.$")
            # TLS inside the bundle: the joiner saw the certificate the executable made itself
            code = joiner.expect(r"^Encrypted\. Safety code: (.+)$")[1]
            cert = ssl.PEM_cert_to_DER_cert((tmp_path / "exe-data" / CERT_FILE).read_text())
            assert code == safety_code(cert)

            # The bundled zeroconf announces the window's room (on loopback: the suite's
            # PARLEY_MDNS_INTERFACES reaches the executable too).
            assert f"{room}  127.0.0.1:{sockets[0][1]}  2 members" in rooms_listed(
                [sys.executable, "-m", "app"], room
            )

            joiner.say("hi from the terminal")
            # shown, unread: in the room (the title names the room)
            watcher.wait_title(window, f"(1) {room} — Parley", DEADLINE)
            type_into(xdotool, window, "hello from the window")
            joiner.expect(r"^Hostess: hello from the window$")

            # The bundled tkdnd takes a file dropped on the window (a real XDND drop from
            # another X client, as a file manager makes it), and the file is offered.
            dropped = tmp_path / "dropped notes.txt"
            dropped.write_text("hello")
            geometry = window.get_geometry()
            middle = watcher.root.translate_coords(
                window, geometry.width // 2, geometry.height // 2
            )
            assert drop_files([dropped], middle.x, middle.y) == "finished"
            joiner.expect(r"^Hostess offers dropped notes\.txt \(5 B\): /accept 1 or /decline 1$")

            watcher.request_close(window)
            joiner.expect(r"^Chat ended\.$")
            assert joiner.wait(DEADLINE) == 0
            app.wait_gone()
        finally:
            joiner.kill()


def test_window_joins_a_terminal_host_and_closing_leaves(
    exe: Path, isolated_home: Path, watcher: XWatcher, xdotool: str, tmp_path: Path
) -> None:
    room = f"Terminal room {uuid.uuid4().hex[:8]}"
    host = Proc("host", "--port", "0", "--bind", "127.0.0.1", "--name", "Terminal", "--room", room)
    try:
        port = host.expect(r"on port (\d+)")[1]
        # The executable finds rooms on the network too.
        assert f"{room}  127.0.0.1:{port}  1 member" in rooms_listed([str(exe)], room)
        args = ["--join", f"127.0.0.1:{port}", "--name", "Wendy"]
        with launched(exe, args, tmp_path) as app:
            window, _ = watcher.wait_mapped("Parley", WINDOW_DEADLINE)
            focus_and_leave(xdotool, watcher, window)
            app.find_child()
            host.expect(r"\(Wendy\)$|^Wendy joined\.$")
            host.say("hi from the terminal")
            watcher.wait_title(window, "(1) Terminal's room — Parley", DEADLINE)
            type_into(xdotool, window, "hello from the window")
            host.expect(r"^Wendy: hello from the window$")

            watcher.request_close(window)
            host.expect(r"^Wendy left\.$")
            app.wait_gone()
    finally:
        host.kill()


def test_the_terminal_host_in_the_executable_reads_confusables_and_keeps_its_log_in_sqlite(
    exe: Path, isolated_home: Path, tmp_path: Path
) -> None:
    # What the one-file build unpacks only on first use (app/deferred.py) must still be there
    # when used: TR39's confusables.txt (a look-alike of the host's name gets a suffix), SQLite
    # (the room log), TLS and the certificate the host makes with cryptography.
    import sqlite3

    data = tmp_path / "exe-host-data"
    host = Proc(
        argv=[str(exe), "host", "--port", "0", "--bind", "127.0.0.1", "--name", "Hal"],
        env={ENV_DATA: str(data)},
    )
    joiner = None
    try:
        port = host.expect(r"Server is waiting for a connection\.\.\. on port (\d+)")[1]
        joiner = Proc("join", f"127.0.0.1:{port}", "--name", "H\u0430l")  # Cyrillic a
        joiner.expect(r"^You are H\u0430l \(2\)\. In the room: Hal, H\u0430l \(2\)\.$")
        joiner.expect(r"^Encrypted\. Safety code: ")
        joiner.say("kept in the log")
        host.expect(r"^H\u0430l \(2\): kept in the log$")
        host.p.send_signal(signal.SIGTERM)  # ends the room politely, as Ctrl-C does
        joiner.expect(r"^Chat ended\.$")
        assert host.wait(DEADLINE) == 0
    finally:
        if joiner is not None:
            joiner.kill()
        host.kill()
    with sqlite3.connect(data / "room-log.sqlite3") as db:  # schema 2: a row per read
        rows = db.execute("SELECT sender, texts FROM chats").fetchall()
    assert ("H\u0430l (2)", ["kept in the log"]) in [(s, json.loads(t)) for s, t in rows]


@pytest.fixture
def session_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private D-Bus session bus (dbus-daemon), for this test and the processes it starts."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.fail("dbus-daemon is needed (apt install dbus)")
    proc = subprocess.Popen(
        [daemon, "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address, "dbus-daemon gave no address"
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address
    finally:
        proc.terminate()
        proc.wait(DEADLINE)
        if proc.stdout is not None:
            proc.stdout.close()


def test_the_window_in_the_executable_notifies_a_mention_on_the_desktop(
    exe: Path,
    isolated_home: Path,
    watcher: XWatcher,
    xdotool: str,
    tmp_path: Path,
    session_bus: str,
) -> None:
    # desktop-notifier (its icon file) and dbus-fast (unpacked on first use) inside the bundle:
    # a real notification service on a real session bus receives the window's notification.
    settings = isolated_home / "config" / "Parley" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{"confirm_end": false}')
    service = Proc(argv=[sys.executable, "-m", "tests.notification_listener"])
    joiner = None
    try:
        service.expect("^ready$")
        args = ["--host", "--port", "0", "--bind", "127.0.0.1", "--name", "Hostess"]
        with launched(exe, [*args, "--no-announce"], tmp_path) as app:
            window, _ = watcher.wait_mapped("Parley", WINDOW_DEADLINE)
            focus_and_leave(xdotool, watcher, window)  # notifications are for an unfocused window
            child = app.find_child()
            sockets = wait_until(lambda: listening(child) or None, "the window to listen")
            joiner = Proc("join", f"127.0.0.1:{sockets[0][1]}", "--name", "Tess")
            joiner.expect(r"^You are Tess\. In the room: Hostess, Tess\.$")
            joiner.say("@Hostess are you there?")
            note = json.loads(service.expect(r"^\{.*\}$")[0])
            assert note == {
                "app": "Parley",
                "summary": "Tess mentioned you",
                "body": "@Hostess are you there?",
            }
            watcher.request_close(window)
            app.wait_gone()
    finally:
        if joiner is not None:
            joiner.kill()
        service.kill()


def test_the_modules_of_the_first_paint_are_stored_and_the_rest_compressed(exe: Path) -> None:
    # Inflating the ~80 modules imported before the first paint was ~10 ms of every start; the
    # network stack's, imported after it, stay compressed (the file stays under 25 MB).
    import zlib

    from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader

    from app.deferred import STORED_MODULES

    archive = CArchiveReader(str(exe))
    name = next(n for n in archive.toc if n.endswith(".pyz"))
    offset = archive._start_offset + archive.toc[name][0]  # the PYZ, in place in the file
    pyz = ZlibArchiveReader(str(exe), offset)
    with open(exe, "rb") as file:

        def stored_as(module: str) -> tuple[int, int]:
            _, start, length = pyz.toc[module]
            file.seek(offset + start)
            blob = file.read(length)
            return length, len(zlib.decompress(blob))

        for module in STORED_MODULES:
            if module in pyz.toc:
                length, size = stored_as(module)
                assert length >= size, module  # stored: no smaller than its bytecode
        for module in ("asyncio.base_events", "zeroconf._core", "app.net.host"):
            length, size = stored_as(module)
            assert length < size * 0.7, module  # compressed
    assert exe.stat().st_size < 25_000_000
