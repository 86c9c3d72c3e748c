from __future__ import annotations

import os

# Multicast DNS stays on loopback for every test, benchmark and smoke test this suite runs:
# set once, here, before anything imports the engine (subprocesses inherit it).
os.environ["PARLEY_MDNS_INTERFACES"] = "127.0.0.1"

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app import events as ev
from app.net import HostOptions, JoinOptions
from app.paths import ENV_DATA
from app.worker import NetWorker
from tests.helpers import Proc, RawPeer, Recorder

Hosted = tuple[NetWorker, Recorder, int]  # the host's worker, its events, its port
Joined = tuple[NetWorker, Recorder]  # a joiner's worker and its events


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own host identity and known hosts (subprocesses inherit it)."""
    monkeypatch.setenv(ENV_DATA, str(tmp_path / "parley-data"))


@pytest.fixture(autouse=True)
def _close_raw_peers() -> Iterator[None]:
    yield
    while RawPeer.opened:
        RawPeer.opened.pop().close()


@pytest.fixture
def workers() -> Iterator[list[NetWorker]]:
    """Workers a test started; each is stopped (saying bye) when the test ends."""
    started: list[NetWorker] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def start_host(workers: list[NetWorker], tmp_path: Path) -> Callable[..., Hosted]:
    """Host a room on 127.0.0.1, on a port the system picks unless `port` is given; `data`
    names its identity's folder (two names: two different hosts)."""

    def start(port: int = 0, data: str = "host", **options: object) -> Hosted:
        rec = Recorder()
        worker = NetWorker(rec)
        workers.append(worker)
        # Not announced unless a test asks (announce=True): the suite's many hosts stay off
        # the (loopback) network that other test runs on this machine browse.
        opts = HostOptions(
            port=port, bind="127.0.0.1", name="Hal", data_dir=tmp_path / data, announce=False
        )
        for key, value in options.items():
            setattr(opts, key, value)
        worker.host(opts)
        return worker, rec, rec.wait_for(ev.Hosting).port

    return start


@pytest.fixture
def join(workers: list[NetWorker]) -> Callable[..., Joined]:
    """Join 127.0.0.1:`port`; returns once the joiner is in the room or has failed."""

    def start(port: int, name: str = "Ann", **options: object) -> Joined:
        rec = Recorder()
        worker = NetWorker(rec)
        workers.append(worker)
        worker.join(JoinOptions("127.0.0.1", port, name=name, **options))  # type: ignore[arg-type]
        rec.wait_for((ev.Connected, ev.Failed))  # type: ignore[arg-type]
        return worker, rec

    return start


@pytest.fixture
def procs() -> Iterator[Callable[..., Proc]]:
    """`python -m app ...` subprocesses a test started; each is killed when the test ends."""
    started: list[Proc] = []

    def start(*args: str, **kwargs: object) -> Proc:
        proc = Proc(*args, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
