from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.paths import ENV_DATA
from tests.helpers import RawPeer


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own host identity and known hosts (subprocesses inherit it)."""
    monkeypatch.setenv(ENV_DATA, str(tmp_path / "parley-data"))


@pytest.fixture(autouse=True)
def _close_raw_peers() -> Iterator[None]:
    yield
    while RawPeer.opened:
        RawPeer.opened.pop().close()
