"""Whether the desktop is in dark mode: asked as the window's start-up begins, read when needed.

How this works
--------------
On Linux, `darkdetect` answers by running `gsettings get org.gnome.desktop.interface
color-scheme` (and the older `gtk-theme` key when that says nothing), and the window's theme
waited for that process: 5-6 ms of its build before the first paint, most of it the process
starting. `ask()`, called by `app.__main__` before it imports the window, starts that same
first `gsettings` at once; it runs on the other core while Python imports the window's modules,
and `is_dark()` reads its answer when the theme asks, by then long finished. The answer is read
as darkdetect reads it ("-dark" in the value: `'prefer-dark'`); an empty one (no such key) goes
to darkdetect itself, which asks the older key as before. Every later question (View > System
theme) is darkdetect's, asked at that moment. Elsewhere (macOS, Windows) `ask()` does nothing
and `is_dark()` is darkdetect's answer.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

# darkdetect's own first question on Linux (darkdetect/_linux_detect.py)
COMMAND = ("gsettings", "get", "org.gnome.desktop.interface", "color-scheme")
WAIT = 2.0  # seconds the early answer may still take when it is needed; light after that

_asked: subprocess.Popen[bytes] | None = None


def ask() -> None:
    """Start asking the desktop (Linux: the `gsettings` darkdetect would run); no wait."""
    global _asked
    if _asked is not None or not sys.platform.startswith("linux"):
        return
    import subprocess

    try:
        _asked = subprocess.Popen(
            COMMAND, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except OSError:  # no gsettings: darkdetect finds the same when it is asked
        _asked = None


def is_dark() -> bool:
    """The desktop's dark mode: the early answer once, darkdetect's from then on."""
    answer = _early_answer()
    if answer is None:  # took too long: light, as when nothing can be asked
        return False
    if answer:
        theme = answer.lower().strip()[1:-1]  # "'prefer-dark'\n" -> "prefer-dark"
        return "-dark" in theme
    import darkdetect

    return bool(darkdetect.isDark())


def discard() -> None:
    """Forget an early answer nobody needed (the saved theme was light or dark)."""
    global _asked
    asked, _asked = _asked, None
    if asked is not None:
        if asked.poll() is None:
            asked.kill()
        asked.communicate()


def _early_answer() -> str | None:
    """What the early `gsettings` printed: "" if it was not asked, failed or printed nothing
    (darkdetect then asks), None if it did not answer within `WAIT`."""
    global _asked
    asked, _asked = _asked, None
    if asked is None:
        return ""
    import subprocess

    try:
        out, _ = asked.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        asked.kill()
        asked.communicate()
        return None
    return out.decode(errors="replace") if asked.returncode == 0 else ""
