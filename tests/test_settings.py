"""Remembered settings: round trip, and every kind of bad file means defaults, never a crash."""

from __future__ import annotations

import json
import os
from pathlib import Path

import platformdirs
import pytest

from app.settings import ENV_DIR, FILE_NAME, Settings, SettingsStore, config_dir


def test_round_trip(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "deep" / "er")
    wanted = Settings(mode="join", host="192.168.1.5", port=6000, name="Ann ✓")
    assert store.save(wanted)
    assert SettingsStore(tmp_path / "deep" / "er").load() == wanted
    assert [p.name for p in store.path.parent.iterdir()] == [FILE_NAME]  # no temp file left


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    assert SettingsStore(tmp_path).load() == Settings()
    assert Settings() == Settings(mode="host", host="", port=5151, name="")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'"just a string"',
        b"null",
    ],
)
def test_a_corrupt_file_means_defaults(tmp_path: Path, content: bytes) -> None:
    (tmp_path / FILE_NAME).write_bytes(content)
    assert SettingsStore(tmp_path).load() == Settings()


def test_bad_fields_fall_back_one_by_one(tmp_path: Path) -> None:
    data = {"mode": "spectate", "host": 42, "port": 70000, "name": "Ann", "extra": True}
    (tmp_path / FILE_NAME).write_text(json.dumps(data))
    assert SettingsStore(tmp_path).load() == Settings(name="Ann")
    for port in (True, -1, "5151", 1.5):
        (tmp_path / FILE_NAME).write_text(json.dumps({"port": port}))
        assert SettingsStore(tmp_path).load().port == 5151


def test_an_unwritable_folder_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    store = SettingsStore(blocker / "sub")
    assert store.save(Settings(name="Ann")) is False
    assert store.load() == Settings()


def test_the_folder_can_be_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_DIR, raising=False)
    assert config_dir() == Path(platformdirs.user_config_dir("Parley", appauthor=False))
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "env"))
    assert config_dir() == tmp_path / "env"
    assert SettingsStore().path == tmp_path / "env" / FILE_NAME
    assert config_dir(tmp_path / "given") == tmp_path / "given"  # a parameter beats the env


def test_a_file_that_cannot_be_read_means_defaults(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).mkdir()  # a folder where the file should be
    assert SettingsStore(tmp_path).load() == Settings()
    assert os.path.isdir(tmp_path / FILE_NAME)


def test_the_unencrypted_checkboxes_are_never_kept(tmp_path: Path) -> None:
    assert not any("plain" in name for name in Settings.__dataclass_fields__)
    store = SettingsStore(tmp_path)
    # An older file that remembered them ticked is read without them.
    (tmp_path / FILE_NAME).write_text(
        json.dumps({"name": "Ann", "plain": True, "allow_plain": True})
    )
    assert store.load() == Settings(name="Ann")
    store.save(store.load())
    assert "plain" not in (tmp_path / FILE_NAME).read_text()


def test_no_password_field_exists_to_be_saved() -> None:
    assert not any("pass" in name for name in Settings.__dataclass_fields__)
