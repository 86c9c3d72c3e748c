"""Notifications: the policy, and the real path over a real D-Bus session bus (dbus-run-session)
with a notification service on it, and without one (the fallback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from app.notify import NotifyPolicy, describe
from tests.helpers import ROOT


def test_policy_notifies_only_unfocused_bursts_once_and_urgent_always() -> None:
    policy = NotifyPolicy(quiet=5.0)
    assert not policy.wants(focused=True, urgent=True, now=0.0)
    assert policy.wants(focused=False, urgent=False, now=1.0)
    assert not policy.wants(focused=False, urgent=False, now=2.0)  # the same burst
    assert policy.wants(focused=False, urgent=True, now=2.5)  # a mention or private: always
    assert policy.wants(focused=False, urgent=False, now=8.0)  # after a quiet spell
    policy.enabled = False
    assert not policy.wants(focused=False, urgent=True, now=20.0)


def test_titles_say_private_and_mention() -> None:
    assert describe("Bob", "hi", "Bob", False) == ("Bob (private)", "hi")
    assert describe("Bob", "hi Ann", None, True) == ("Bob mentioned you", "hi Ann")
    assert describe("Bob", "x" * 300, None, False)[1] == "x" * 199 + "…"


def _run(*args: str) -> dict[str, object]:
    done = subprocess.run(
        ["dbus-run-session", "--", sys.executable, "tests/notification_server.py", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's app, installed or not
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_notification_reaches_the_service_on_a_real_session_bus() -> None:
    result = _run()
    assert result == {
        "available": True,
        "sent": 1,
        "received": [{"app": "Parley", "summary": "Bob mentioned you", "body": "hi @Ann <b>&</b>"}],
    }


def test_a_service_that_reads_markup_gets_the_text_escaped() -> None:
    """A message's "<b>" must reach the person as the characters typed: a server that
    advertises body-markup would otherwise render it (or a link, or an image)."""
    result = _run("--markup")
    assert result["received"] == [
        {
            "app": "Parley",
            "summary": "Bob mentioned you",
            "body": "hi @Ann &lt;b&gt;&amp;&lt;/b&gt;",
        }
    ]


def test_a_bus_without_a_notification_service_falls_back_quietly() -> None:
    assert _run("--no-server") == {"available": False, "sent": 0, "received": []}
