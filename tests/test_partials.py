"""The index of partial files kept for a later session (`app/partials.py`), on a real folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.partials import KeptParts

SHA = "ab" * 32


def test_a_kept_partial_file_is_found_by_folder_hash_and_size(tmp_path: Path) -> None:
    kept = KeptParts(tmp_path / "data" / "partial_files.json")
    part = tmp_path / "dl" / "movie.mkv.part"
    part.parent.mkdir()
    part.write_bytes(b"x" * 10)
    kept.keep(part, SHA, 100)
    assert kept.find(part.parent, SHA, 100) == part
    assert kept.find(part.parent, "cd" * 32, 100) is None  # another file
    assert kept.find(part.parent, SHA, 99) is None  # another size
    assert kept.find(tmp_path / "elsewhere", SHA, 100) is None  # another downloads folder
    kept.forget(part)
    assert kept.find(part.parent, SHA, 100) is None


def test_a_partial_file_longer_than_the_file_or_gone_is_not_used(tmp_path: Path) -> None:
    kept = KeptParts(tmp_path / "partial_files.json")
    long, gone = tmp_path / "a.part", tmp_path / "b.part"
    long.write_bytes(b"x" * 11)
    gone.write_bytes(b"")
    kept.keep(long, SHA, 10)
    kept.keep(gone, "cd" * 32, 10)
    gone.unlink()
    assert kept.find(tmp_path, SHA, 10) is None
    assert kept.find(tmp_path, "cd" * 32, 10) is None
    kept.keep(tmp_path / "a.part", SHA, 20)  # written again: the vanished entry is dropped
    assert "b.part" not in (tmp_path / "partial_files.json").read_text()


def test_an_unreadable_index_counts_as_empty_and_is_replaced(tmp_path: Path) -> None:
    index = tmp_path / "partial_files.json"
    index.write_text("{not json")
    kept = KeptParts(index)
    part = tmp_path / "c.part"
    part.write_bytes(b"12")
    assert kept.find(tmp_path, SHA, 5) is None
    kept.keep(part, SHA, 5)
    assert kept.find(tmp_path, SHA, 5) == part


def test_a_relative_downloads_folder_finds_what_it_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kept = KeptParts(tmp_path / "partial_files.json")
    Path("dl").mkdir()
    part = Path("dl") / "d.part"
    part.write_bytes(b"1")
    kept.keep(part, SHA, 3)
    assert kept.find(Path("dl"), SHA, 3) == (tmp_path / "dl" / "d.part")
    assert kept.find(tmp_path / "dl", SHA, 3) == (tmp_path / "dl" / "d.part")
    kept.forget(part)
    assert kept.find(Path("dl"), SHA, 3) is None
