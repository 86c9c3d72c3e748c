"""tools/system-packages: what `make test`, `make run` and `.ci/run` install when it is missing.

The script runs for real, with PATH narrowed to a folder of chosen commands so that some needs
are missing; `id` and `sudo` are small shims there, so no test installs anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "system-packages"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script")


def _bin(tmp_path: Path, present: list[str], uid: int, sudo_ok: bool | None) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ["sh", "grep", *present]:
        found = shutil.which(name)
        assert found, name
        (folder / name).symlink_to(found)
    (folder / "python3").symlink_to(sys.executable)  # a Python with Tk and venv
    (folder / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    if sudo_ok is not None:
        (folder / "sudo").write_text(f"#!/bin/sh\nexit {0 if sudo_ok else 1}\n")
    for shim in ("id", "sudo"):
        if (folder / shim).exists():
            (folder / shim).chmod(0o755)
    return folder


def _run(folder: Path, want: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(SCRIPT), want],
        env={"PATH": str(folder), "PYTHON": str(folder / "python3"), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


TEST_TOOLS = [
    "make",
    "Xvfb",
    "xauth",
    "xdotool",
    "import",
    "ncat",
    "nc",
    "openssl",
    "objcopy",
    "dbus-run-session",
]


def test_nothing_missing_installs_nothing(tmp_path: Path) -> None:
    present = [c for c in TEST_TOOLS if shutil.which(c)]
    if present != TEST_TOOLS:
        pytest.skip("this machine lacks some test tools itself")
    folder = _bin(tmp_path, present, uid=1000, sudo_ok=False)
    done = _run(folder, "test")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_without_root_or_sudo_it_stops_with_the_exact_command(tmp_path: Path) -> None:
    folder = _bin(tmp_path, ["apt-get"] if shutil.which("apt-get") else [], uid=1000, sudo_ok=False)
    done = _run(folder, "test")
    assert done.returncode == 1
    assert "sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends" in done.stderr
    for package in ("xvfb", "xauth", "xdotool", "imagemagick", "ncat", "openssl", "binutils"):
        assert package in done.stderr
    assert "python3-tk" not in done.stderr  # this Python has Tk


def test_as_root_it_installs_only_what_is_missing(tmp_path: Path) -> None:
    if not shutil.which("apt-get"):
        pytest.skip("no apt-get here")
    folder = _bin(tmp_path, ["apt-get", "ncat"], uid=0, sudo_ok=None)
    done = _run(folder, "test", PARLEY_SYSTEM_PACKAGES_DRY_RUN="1")
    assert done.returncode == 0, done.stderr
    assert "(dry run) sh -c 'apt-get update -qq && apt-get install" in done.stderr
    assert "xvfb" in done.stderr
    assert " ncat" not in done.stderr


def test_with_passwordless_sudo_it_uses_sudo(tmp_path: Path) -> None:
    if not shutil.which("apt-get"):
        pytest.skip("no apt-get here")
    folder = _bin(tmp_path, ["apt-get"], uid=1000, sudo_ok=True)
    done = _run(folder, "run", PARLEY_SYSTEM_PACKAGES_DRY_RUN="1")
    # run needs only Tk and venv, which this Python has
    assert done.returncode == 0
    assert done.stderr == ""
    done = _run(folder, "test", PARLEY_SYSTEM_PACKAGES_DRY_RUN="1")
    assert "(dry run) sudo sh -c 'apt-get update" in done.stderr


def test_run_asks_for_tk_and_venv_when_python_lacks_them(tmp_path: Path) -> None:
    folder = _bin(tmp_path, [], uid=1000, sudo_ok=False)
    fake = tmp_path / "python-without-tk"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    done = _run(folder, "run", PYTHON=str(fake))
    assert done.returncode == 1
    assert "python3-tk python3-venv" in done.stderr
    assert "xvfb" not in done.stderr
    assert os.access(SCRIPT, os.X_OK)
