"""The executable's second archive: files it unpacks only when something first needs them.

How this works
--------------
A one-file executable (PyInstaller, Linux) writes every binary and data file it carries into a
fresh folder (`sys._MEIPASS`) before Python starts, and on every start: about 48 MB for Parley,
half of it for the network, TLS and crypto stack (cryptography's 11.6 MB Rust library,
zeroconf's and dbus-fast's compiled modules, OpenSSL's libssl, SQLite, ...) that the window does
not load before its first paint. `build_exe.spec` therefore moves those files into one zip,
`_deferred.zip` (with `_deferred.json` naming the modules that need it), and the bootloader
writes only that zip.

`install()` (called first thing by `app.__main__` in the executable) puts a finder at the head
of `sys.meta_path`. The first import of any module named in the manifest (`_ssl`, `_asyncio`,
`_sqlite3`, `zeroconf`, `cryptography`, ...) unpacks the whole zip into `sys._MEIPASS`, at the
same paths PyInstaller would have used, and then lets the normal finders carry on: from then on
nothing differs from a plain one-file build, and the bootloader removes the folder at exit as
before. The window's worker imports that stack on its own thread after the first paint, so
that is where the unpacking happens; any other first import (the terminal's commands, a module
imported early by mistake) unpacks it there, only slower. Outside the executable, or in a build
without the zip, `install()` does nothing.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

ARCHIVE = "_deferred.zip"
MANIFEST = "_deferred.json"  # {"modules": [top-level module names whose files are in the zip]}

# What `build_exe.spec` defers (by the file's path inside the bundle), none of it loaded before
# the window's first paint (tests/gui/test_startup.py checks that):
DEFERRED_PACKAGES = (
    "cryptography", "zeroconf", "dbus_fast", "bidi", "confusables", "_cffi_backend", "regex",
)  # fmt: skip
DEFERRED_EXTENSIONS = (  # python3.X/lib-dynload/NAME.cpython-...so
    "_ssl", "_sqlite3", "_asyncio", "readline", "pyexpat", "_elementtree", "_decimal", "_pickle",
    "_csv", "_uuid", "_contextvars",
    # hashlib's OpenSSL half (it links libcrypto, 4.7 MB), and the East Asian codecs (0.9 MB):
    # nothing before the first paint hashes or decodes Shift JIS (the executable's files as
    # mapped at the first paint, listed from /proc/PID/maps, do not include them)
    "_hashlib", "_multibytecodec", "_codecs_jp", "_codecs_hk", "_codecs_cn", "_codecs_kr",
    "_codecs_tw", "_codecs_iso2022",
)  # fmt: skip
DEFERRED_LIBRARIES = (  # what only those load
    "libssl.so", "libsqlite3.so", "libreadline.so", "libcrypto.so",
)  # fmt: skip

# The other way round: the Python modules the executable imports before the window's first
# paint (PyInstaller's start-up, then the window's), which `build_exe.spec` stores in the PYZ
# as they are instead of compressed: inflating them at import was about 10 ms of the start
# (1 MB of zlib to 2.7 MB of bytecode), storing them costs 1.7 MB of file.
# tests/gui/test_startup.py checks that every one of the app's own modules loaded at the first
# paint is here.
STORED_MODULES = (
    "__future__", "_compression", "ast", "bisect", "bz2", "contextlib", "copy", "ctypes",
    "ctypes._endian", "ctypes.util", "dataclasses", "dis", "fnmatch", "getpass", "importlib",
    "importlib._abc", "importlib.machinery", "importlib.util", "inspect", "ipaddress", "json",
    "json.decoder", "json.encoder", "json.scanner", "lzma", "opcode", "pathlib", "platform",
    "queue", "random", "selectors", "shutil", "signal", "socket", "subprocess", "tempfile",
    "threading", "tkinter", "tkinter.constants", "tkinter.font", "tkinter.ttk", "token",
    "tokenize", "typing", "urllib", "urllib.parse", "zipfile",
    "ifaddr", "ifaddr._posix", "ifaddr._shared",
    "platformdirs", "platformdirs._paths", "platformdirs._runtime", "platformdirs._xdg",
    "platformdirs.api", "platformdirs.unix", "platformdirs.version",
    "app", "app.address", "app.assets", "app.dark_mode", "app.deferred", "app.export",
    "app.invite", "app.logs", "app.notify", "app.room_names", "app.settings", "app.worker",
    "app.paths", "app.gui", "app.gui.connection_bar", "app.gui.launch", "app.gui.logic",
    "app.gui.poller", "app.gui.room_browser", "app.gui.start_screen", "app.gui.tabs",
    "app.gui.theme", "app.gui.transcript", "app.gui.transfers", "app.gui.window",
)  # fmt: skip


def is_deferred(path: str) -> bool:
    """Whether the bundle's file at `path` (e.g. "zeroconf/_dns.cpython-311-x86_64-linux-gnu.so")
    belongs in the deferred archive."""
    parts = path.split("/")
    if parts[0] in DEFERRED_PACKAGES or parts[0].split(".")[0] in DEFERRED_PACKAGES:
        return True
    if len(parts) == 3 and parts[1] == "lib-dynload":
        return parts[2].split(".")[0] in DEFERRED_EXTENSIONS
    return len(parts) == 1 and path.startswith(DEFERRED_LIBRARIES)


class DeferredFiles:
    """Unpacks `archive` into `folder` before the first import of one of `modules`.

    A meta path finder by its `find_spec` (not a subclass of `importlib.abc.MetaPathFinder`,
    whose import costs 3.5 ms before the window's first paint)."""

    def __init__(self, folder: str, archive: str, modules: Sequence[str]) -> None:
        self.folder = folder
        self.archive = archive
        self.modules = frozenset(modules)
        self.unpacked = False
        self._lock = threading.RLock()
        self._busy = False  # unpacking: the zip module's own imports must not come back here

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if not self.unpacked and fullname.partition(".")[0] in self.modules:
            self.unpack()
        return None  # the usual finders find the module, now that its files are there

    def unpack(self) -> None:
        """Write the archive's files (once; other threads wait for it), then forget what the
        import system remembered about the folders that did not exist before."""
        with self._lock:
            if self.unpacked or self._busy:
                return
            self._busy = True
            try:
                import zipfile

                with zipfile.ZipFile(self.archive) as files:
                    files.extractall(self.folder)
            except Exception as exc:  # a full disk, a damaged file: say so in plain words
                raise ImportError(
                    f"Parley could not unpack its network and TLS files into {self.folder} "
                    f"({exc}). Check that the temporary folder has free space."
                ) from exc
            finally:
                self._busy = False
            for place, finder in list(sys.path_importer_cache.items()):
                if finder is None and place.startswith(self.folder):
                    del sys.path_importer_cache[place]
            importlib.invalidate_caches()
            self.unpacked = True


def install() -> DeferredFiles | None:
    """In the executable, arrange for the deferred files to be unpacked on first use."""
    folder = getattr(sys, "_MEIPASS", None)
    if folder is None:
        return None
    archive, manifest = os.path.join(folder, ARCHIVE), os.path.join(folder, MANIFEST)
    try:
        with open(manifest, encoding="utf-8") as file:
            modules = json.load(file)["modules"]
    except FileNotFoundError:
        return None  # a build that unpacks everything at start (macOS, Windows)
    for finder in sys.meta_path:
        if isinstance(finder, DeferredFiles):
            return finder
    finder = DeferredFiles(folder, archive, modules)
    sys.meta_path.insert(0, finder)
    return finder
