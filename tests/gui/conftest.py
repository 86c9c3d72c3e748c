"""Real Tk windows under Xvfb. pytest-xvfb starts Xvfb for the session, but quietly does nothing
when Xvfb is missing, and these tests would then fail in confusing ways (or pop up windows on a
desktop): so stop at once with a clear message instead."""

from __future__ import annotations

import os
import queue
import shutil
import tkinter as tk
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app import events as ev
from app.gui.logic import Request
from app.gui.window import ChatWindow
from app.net import HostOptions, JoinOptions
from app.settings import ENV_DIR, SettingsStore
from app.worker import NetWorker
from tests.gui.tk_helpers import pump_until

if shutil.which("Xvfb") is None:
    raise pytest.UsageError(
        "tests/gui need Xvfb, and it is not installed: pytest-xvfb would silently run them on "
        "no display. Install it (Debian/Ubuntu: apt-get install xvfb), or deselect tests/gui."
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.gui)


@pytest.fixture(scope="session", autouse=True)
def _display(request: pytest.FixtureRequest) -> None:
    xvfb = request.getfixturevalue("xvfb")
    if xvfb is None and not request.config.getoption("--no-xvfb"):
        pytest.fail("pytest-xvfb did not start Xvfb (is the plugin disabled?)", pytrace=False)
    if not os.environ.get("DISPLAY"):
        pytest.fail("no DISPLAY for the GUI tests", pytrace=False)


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings go to a temporary folder, never the user's own."""
    path = tmp_path / "config"
    monkeypatch.setenv(ENV_DIR, str(path))
    return path


@pytest.fixture
def root() -> Iterator[tk.Tk]:
    """One Tk root per test, withdrawn; every window lives in a Toplevel of it (idlelib style)."""
    tk_root = tk.Tk()
    tk_root.withdraw()
    yield tk_root
    tk_root.update_idletasks()
    for child in list(tk_root.winfo_children()):
        child.destroy()
    tk_root.destroy()


def host_options(request: Request) -> HostOptions:
    # Loopback only, and a short wait before a silent peer counts as a text peer. Not announced
    # on the (loopback) network unless a test asks: tests/gui/test_discovery.py does.
    return HostOptions(
        port=request.port, bind="127.0.0.1", name=request.name, hello_wait=0.3, announce=False
    )


def join_options(request: Request) -> JoinOptions:
    # Reconnect attempts close together, so a test that restarts a host need not wait long.
    return JoinOptions(
        request.host,
        request.port,
        name=request.name,
        greet_wait=1.0,
        reconnect_initial=0.2,
        reconnect_max=1.0,
    )


MakeWindow = Callable[..., ChatWindow]


@pytest.fixture
def make_window(root: tk.Tk, config_dir: Path) -> Iterator[MakeWindow]:
    """Windows in Toplevels of `root`, each with its own worker and queue; closed at the end."""
    windows: list[ChatWindow] = []

    def make(**kwargs: object) -> ChatWindow:
        events: queue.Queue[ev.Event] = queue.Queue()
        worker = NetWorker(events.put)
        options: dict[str, object] = {
            "store": SettingsStore(config_dir),
            "bind": "127.0.0.1",
            "host_options": host_options,
            "join_options": join_options,
            "discover": False,  # no browsing for rooms unless a test asks
        }
        options.update(kwargs)
        window = ChatWindow(tk.Toplevel(root), worker, events, **options)  # type: ignore[arg-type]
        windows.append(window)
        pump_until(root, lambda: window.top.winfo_ismapped(), "the window to be mapped")
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.worker.running, "a window left its network thread running"
