"""`app.logs.logger`: a module's logger, with logging imported on first use."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from app.logs import logger


def test_it_is_the_named_logger_once_used(caplog: pytest.LogCaptureFixture) -> None:
    log = logger("app.test_logs")
    with caplog.at_level(logging.INFO, logger="app.test_logs"):
        log.info("one %s", "line")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("app.test_logs", "one line")]
    assert log.getEffectiveLevel() == logging.getLogger("app.test_logs").getEffectiveLevel()
    assert log.handlers is logging.getLogger("app.test_logs").handlers  # the same object's


def test_logging_is_imported_when_the_logger_is_first_used_not_before() -> None:
    code = (
        "import sys\n"
        "from app.logs import logger\n"
        "log = logger('x')\n"
        "print('logging' in sys.modules)\n"
        "log.debug('nothing to see')\n"
        "print('logging' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
