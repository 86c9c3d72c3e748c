"""A window hosting a room that many join at once (issue 13): the host's view posts a batch's
arrivals with one member list between them, and the window still lists exactly who is in.

The batch is made deterministic by `announce_max`: with `announce_wait` far beyond the test's
deadline, the arrivals go out exactly when that many app members' welcomes wait."""

from __future__ import annotations

import queue
import tkinter as tk

from app import events as ev
from app.gui.logic import Request
from app.net import HostOptions, JoinOptions
from app.worker import NetWorker
from tests.gui.conftest import MakeWindow
from tests.gui.tk_helpers import listed, pump_until, shows, start_host

ARRIVALS = 12


def batch_host(request: Request) -> HostOptions:
    return HostOptions(
        port=request.port,
        bind="127.0.0.1",
        name=request.name,
        announce=False,
        announce_wait=60.0,  # never reached: the batch goes out at `announce_max`
        announce_max=ARRIVALS,
    )


def test_a_window_hosting_a_batch_of_arrivals_lists_exactly_who_is_in(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window(host_options=batch_host)
    port = start_host(hal, "Hal")
    names = [f"Member {i:02d}" for i in range(1, ARRIVALS + 1)]  # none alike (Guest I, Guest l)
    joiners: list[NetWorker] = []
    queues: list[queue.Queue[ev.Event]] = []
    try:
        for name in names:
            events: queue.Queue[ev.Event] = queue.Queue()
            worker = NetWorker(events.put)
            joiners.append(worker)
            queues.append(events)
            worker.join(JoinOptions("127.0.0.1", port, name=name))
        pump_until(root, lambda: len(hal.view.members) == ARRIVALS + 1, "the batch", timeout=20)
        pump_until(root, shows(hal, f"{hal.view.members[-1]} joined"), "the last arrival's line")
        members = hal.view.members
        assert members[0] == "Hal"
        assert sorted(members[1:]) == sorted(names)  # exactly who is in, once each
        assert len(listed(hal)) == ARRIVALS + 1
        assert [label.split(" (")[0] for label in listed(hal)] == list(members)
        assert hal.count_label.cget("text") == f"{ARRIVALS + 1} in the room"
        text = hal.transcript.contents()
        for name in names:  # the window's own person: one line per arrival, as ever
            assert text.count(f"{name} joined from 127.0.0.1:") == 1
    finally:
        for worker in joiners:
            worker.stop(timeout=2)
