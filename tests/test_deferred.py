"""app/deferred.py: the executable's files that are unpacked on their first import."""

from __future__ import annotations

import importlib
import json
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import deferred


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stand-in for the executable's folder: on sys.path, with a zip of two modules."""
    folder = tmp_path / "_MEI123"
    folder.mkdir()
    with zipfile.ZipFile(folder / deferred.ARCHIVE, "w", zipfile.ZIP_DEFLATED) as files:
        files.writestr("late_pkg_q7/__init__.py", "from late_pkg_q7.inner import VALUE\n")
        files.writestr("late_pkg_q7/inner.py", "VALUE = 42\n")
        files.writestr("late_pkg_q7/data/table.txt", "a table\n")
        files.writestr("_late_mod_q7.py", "NAME = 'late'\n")
        files.writestr("_late_two_q7.py", "NAME = 'two'\n")
    manifest = {"modules": ["late_pkg_q7", "_late_mod_q7", "_late_two_q7"]}
    (folder / deferred.MANIFEST).write_text(json.dumps(manifest))
    monkeypatch.setattr(sys, "_MEIPASS", str(folder), raising=False)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    yield folder
    for name in ("late_pkg_q7", "late_pkg_q7.inner", "_late_mod_q7", "_late_two_q7"):
        sys.modules.pop(name, None)


def test_nothing_is_unpacked_until_a_deferred_module_is_imported(bundle: Path) -> None:
    finder = deferred.install()
    assert finder is not None
    assert sys.meta_path[0] is finder
    importlib.import_module("email.utils")  # any other import leaves the zip alone
    assert not (bundle / "late_pkg_q7").exists()
    assert not finder.unpacked
    module = importlib.import_module("late_pkg_q7")
    assert module.VALUE == 42
    assert (bundle / "late_pkg_q7" / "data" / "table.txt").read_text() == "a table\n"
    assert finder.unpacked
    assert importlib.import_module("_late_mod_q7").NAME == "late"  # the rest came with it


def test_threads_importing_at_once_unpack_it_once(bundle: Path) -> None:
    finder = deferred.install()
    assert finder is not None
    calls: list[str] = []
    real = zipfile.ZipFile.extractall

    def counted(self: zipfile.ZipFile, *args: object, **kwargs: object) -> None:
        calls.append(threading.current_thread().name)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    results: list[object] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zipfile.ZipFile, "extractall", counted)

        def load(name: str) -> None:
            results.append(importlib.import_module(name))

        threads = [
            threading.Thread(target=load, args=(name,))
            # three different modules (one thread importing a package while another imports
            # its submodule is Python's own deadlock case, whatever the finder does)
            for name in ("late_pkg_q7", "_late_mod_q7", "_late_two_q7")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert len(results) == 3
    assert len(calls) == 1


def test_a_damaged_archive_is_a_clear_import_error(bundle: Path) -> None:
    (bundle / deferred.ARCHIVE).write_bytes(b"not a zip")
    assert deferred.install() is not None
    with pytest.raises(ImportError, match="could not unpack its network and TLS files"):
        importlib.import_module("late_pkg_q7")


def test_outside_the_executable_nothing_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    before = list(sys.meta_path)
    assert deferred.install() is None
    assert sys.meta_path == before


def test_a_bundle_without_the_zip_unpacks_everything_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)  # macOS, Windows builds
    before = list(sys.meta_path)
    assert deferred.install() is None
    assert sys.meta_path == before
