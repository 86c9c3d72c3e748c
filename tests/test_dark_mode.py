"""The desktop's dark mode, asked early (app/dark_mode.py), against a stand-in `gsettings`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import dark_mode

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="gsettings: Linux")

# A `gsettings` that answers from files: color-scheme.txt and gtk-theme.txt (missing: prints
# nothing), and notes each question in asked.txt.
FAKE = """#!/bin/sh
echo "$3" >> "{folder}/asked.txt"
if [ -f "{folder}/$3.txt" ]; then cat "{folder}/$3.txt"; fi
"""


@pytest.fixture
def desktop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    script = tmp_path / "gsettings"
    script.write_text(FAKE.format(folder=tmp_path))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    yield tmp_path
    dark_mode.discard()


def asked(folder: Path) -> list[str]:
    path = folder / "asked.txt"
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize(
    ("answer", "dark"),
    [("'prefer-dark'\n", True), ("'default'\n", False), ("'prefer-light'\n", False)],
)
def test_the_early_answer_is_read_as_darkdetect_reads_it(
    desktop: Path, answer: str, dark: bool
) -> None:
    import darkdetect

    (desktop / "color-scheme.txt").write_text(answer)
    assert darkdetect.isDark() is dark  # the library, asking the same stand-in itself
    (desktop / "asked.txt").unlink()
    dark_mode.ask()
    assert dark_mode.is_dark() is dark
    assert asked(desktop) == ["color-scheme"]  # asked once, at ask()


def test_an_empty_answer_asks_darkdetect_which_tries_the_older_key(desktop: Path) -> None:
    (desktop / "gtk-theme.txt").write_text("'Adwaita-dark'\n")
    dark_mode.ask()
    assert dark_mode.is_dark() is True
    assert asked(desktop) == ["color-scheme", "color-scheme", "gtk-theme"]


def test_the_early_answer_serves_once_and_later_questions_are_asked_anew(desktop: Path) -> None:
    (desktop / "color-scheme.txt").write_text("'prefer-dark'\n")
    dark_mode.ask()
    assert dark_mode.is_dark() is True
    (desktop / "color-scheme.txt").write_text("'default'\n")  # the user switched it back
    assert dark_mode.is_dark() is False
    assert asked(desktop) == ["color-scheme", "color-scheme"]


def test_an_answer_that_never_comes_is_light_after_the_wait(
    desktop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (desktop / "gsettings").write_text("#!/bin/sh\nexec sleep 30\n")
    monkeypatch.setattr(dark_mode, "WAIT", 0.2)
    dark_mode.ask()
    assert dark_mode.is_dark() is False


def test_no_gsettings_at_all_is_light(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to run there
    dark_mode.ask()
    assert dark_mode.is_dark() is False


def test_an_answer_nobody_needed_is_discarded(desktop: Path) -> None:
    dark_mode.ask()
    asked_process = dark_mode._asked
    assert asked_process is not None
    dark_mode.discard()
    assert asked_process.returncode is not None  # reaped: no process left behind
    assert dark_mode._asked is None
