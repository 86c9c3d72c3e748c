"""The load benchmark's C generator (benchmarks/loadgen.c) counts what real servers relay.

A small flood through Parley's terminal host and through `ncat --chat` on 127.0.0.1, as text
peers and (its TLS build) as Parley's own app members over TLS and `ncat --ssl` members: every
line must be counted once, credited to the name the server gave its sender, with nothing
garbled. No timing is asserted: speed belongs to `make bench`.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from benchmarks import load
from benchmarks._common import (
    NcatServer,
    ParleyServer,
    Server,
    build_loadgen,
    build_loadgen_tls,
    parley_host_help,
)

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")


@pytest.fixture(scope="module")
def loadgen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary, why = build_loadgen(tmp_path_factory.mktemp("bench"))
    assert binary is not None, why
    return binary


@pytest.fixture(scope="module")
def loadgen_tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary, why = build_loadgen_tls(tmp_path_factory.mktemp("bench"))
    assert binary is not None, why
    return binary


def _flood(server: Server, loadgen: Path, mode: str, app: bool = False) -> dict[str, object]:
    settings = load.Settings(deadline=20.0, join_timeout=20.0, stall=2.0, loadgen=loadgen)
    params = load.Params(members=5, lines=7)
    kind = load.member_kind(server, app)
    flood = load.c_flood(server, params, settings, kind, mode, loadgen)
    return asyncio.run(asyncio.wait_for(flood, 90))


def _parley(tls: bool = False) -> ParleyServer:
    return ParleyServer(tls=tls, max_members=6, help_text=parley_host_help(), lift_limits=True)


def _counted_once(result: dict[str, object]) -> None:
    assert "error" not in result, result
    assert result["expected"] == 5 * 7 * 4
    assert result["delivered"] == result["expected"]
    for key in ("lost", "duplicated", "reordered", "echoed", "garbled", "misattributed"):
        assert result[key] == 0, (key, result)
    assert result["members_dropped"] == 0
    assert result["generator"] == "C"


@pytest.mark.parametrize("mode", ["line", "bulk"])
def test_every_line_through_parley_is_counted_once_and_credited(loadgen: Path, mode: str) -> None:
    _counted_once(_flood(_parley(), loadgen, mode))


@pytest.mark.parametrize("mode", ["line", "bulk"])
def test_app_members_over_tls_are_counted_once_and_credited(loadgen_tls: Path, mode: str) -> None:
    """Parley's own members: TLS, a hello after the greeting, JSON frames both ways (a
    member's own line coming back is its confirmation, not an echo)."""
    _counted_once(_flood(_parley(tls=True), loadgen_tls, mode, app=True))


@pytest.mark.skipif(shutil.which("ncat") is None, reason="needs ncat")
def test_ncat_ssl_members_are_counted_once_and_credited(loadgen_tls: Path) -> None:
    result = _flood(NcatServer(tls=True, max_members=6), loadgen_tls, "line")
    assert "error" not in result, result
    assert result["delivered"] == result["expected"] == 5 * 7 * 4
    assert result["garbled"] == result["misattributed"] == result["duplicated"] == 0


@pytest.mark.skipif(shutil.which("ncat") is None, reason="needs ncat")
def test_ncat_prefixes_are_taken_apart_per_sender(loadgen: Path) -> None:
    """ncat prefixes each relayed read, wherever it falls in a line: the reader must still
    join every sender's bytes into its own lines and credit them to that sender."""
    result = _flood(NcatServer(tls=False, max_members=6), loadgen, "bulk")
    assert "error" not in result, result
    assert result["delivered"] == result["expected"] == 5 * 7 * 4
    assert result["garbled"] == result["misattributed"] == result["duplicated"] == 0
