"""Partial files kept for a later session, so that a download survives the app being closed.

A transfer that stops because our own session ended (the window closed, the terminal left, the
app was killed) or because the host no longer knows the offer (it restarted) keeps its
``NAME.part``. This index, one small JSON file in Parley's data folder, remembers for each kept
partial file the SHA-256 and size of the file it is the start of. When the same file is offered
again (same hash, same size: the same bytes, whoever offers them) and accepted into the same
folder, the transfer carries on from the partial file's end instead of from byte 0; the whole
file's hash is still checked before it gets its name, so a partial file changed meanwhile costs
a failed transfer, never a wrong file.

Entries are written when a partial file is created (so a crash keeps it resumable too) and
removed when the file is saved or its partial file deleted. An entry whose partial file is gone
is dropped the next time the index is written. The index is advisory: unreadable, it is empty.

A partial file being written is held with an exclusive lock (`hold`) for as long as its handle
is open: a second Parley of the same person (the same data and downloads folders) that finds it
in the index while the first still writes it leaves it alone and saves its own copy beside it,
instead of appending to the same file (which the whole file's hash would have failed anyway).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

if sys.platform == "win32":
    import msvcrt

    def hold(handle: BinaryIO) -> bool:
        """Take an exclusive lock on an open partial file for this process (released when
        the handle is closed); False when another process holds it."""
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # its first byte will do
        except OSError:
            return False
        return True

else:
    import fcntl

    def hold(handle: BinaryIO) -> bool:
        """Take an exclusive lock on an open partial file for this process (released when
        the handle is closed); False when another process holds it."""
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


KEPT = "partial_files.json"
MAX_KEPT = 200  # entries at most: the oldest go first (their partial files stay on disk)


class KeptParts:
    """The index of kept partial files, at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def keep(self, part: Path, sha256: str, size: int) -> None:
        """Remember that `part` holds the start of the file with this hash and size."""
        key = str(part.absolute())  # a relative downloads folder means the same one later
        entries = self._read()
        entries.pop(key, None)
        entries[key] = {"sha256": sha256, "size": size}
        self._write(entries)

    def forget(self, part: Path) -> None:
        entries = self._read()
        if entries.pop(str(part.absolute()), None) is not None:
            self._write(entries)

    def find(self, folder: Path, sha256: str, size: int) -> Path | None:
        """A kept partial file in `folder` of the file with this hash and size, if one is
        still there and no longer than the file."""
        folder = folder.absolute()
        for name, entry in self._read().items():
            part = Path(name)
            if (
                part.parent == folder
                and entry.get("sha256") == sha256
                and entry.get("size") == size
            ):
                with contextlib.suppress(OSError):
                    if part.is_file() and part.stat().st_size <= size:
                        return part
        return None

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, dict)}

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        """Atomically (a temporary file, then a rename); a failure only loses the index."""
        live = {k: v for k, v in entries.items() if Path(k).exists()}
        kept = dict(list(live.items())[-MAX_KEPT:])
        tmp = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(kept), encoding="utf-8")
            os.replace(tmp, self.path)
