from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import RawPeer


@pytest.fixture(autouse=True)
def _close_raw_peers() -> Iterator[None]:
    yield
    while RawPeer.opened:
        RawPeer.opened.pop().close()
