"""What the window remembers between launches: mode, host, port and name, in a small JSON file.
Never a password, nor an invite (it may carry one), nor the two "unencrypted" checkboxes ("No
encryption", "Also admit unencrypted peers"): giving up encryption is chosen anew each time, so
a box ticked once cannot silently stay ticked. Older files that hold them are read without them.

The file lives in the user's config folder (`platformdirs`), or in `$PARLEY_CONFIG_DIR` when that
is set (tests point it at a temporary folder). Reading never fails: a missing, unreadable or
corrupt file, or a field of the wrong type, simply means the default for that field. Writing goes
through a temporary file and a rename, so a crash mid-write cannot leave a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import platformdirs

from app.address import DEFAULT_PORT
from app.logs import logger

log = logger(__name__)

ENV_DIR = "PARLEY_CONFIG_DIR"
FILE_NAME = "settings.json"
Mode = Literal["host", "join"]


@dataclass(frozen=True)
class Settings:
    mode: Mode = "host"
    host: str = ""  # where to connect when joining (without the port)
    port: int = DEFAULT_PORT
    name: str = ""
    # The window's reading comfort (issue 12): theme, text size, member list, asking first.
    theme: str = "system"  # "system", "light" or "dark"
    text_size: int = 0  # steps of one point from the default
    show_members: bool = True
    confirm_end: bool = True  # a host's Leave / close asks "End the room for everyone?"
    room: str = ""  # hosting: the room's name on the network ("" : "NAME's room")
    announce: bool = True  # hosting: "Visible on this network"
    recent: tuple[dict[str, Any], ...] = ()  # rooms joined before: {"name", "host", "port"}
    keep_history: bool = True  # Chat → Keep history on this computer (off: nothing on disk)
    notifications: bool = True  # Chat → Notifications

    @classmethod
    def from_json(cls, data: Any) -> Settings:
        """Take what is usable from `data`; anything else falls back to its default."""
        if not isinstance(data, dict):
            return cls()
        default = cls()
        mode = data.get("mode")
        host = data.get("host")
        port = data.get("port")
        name = data.get("name")
        return cls(
            mode=mode if mode in ("host", "join") else default.mode,
            host=host if isinstance(host, str) and len(host) <= 255 else default.host,
            port=port
            if isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535
            else default.port,
            name=name if isinstance(name, str) and len(name) <= 255 else default.name,
            **_comfort(data, default),
            **_discovery_fields(data),
            keep_history=_flag(data, "keep_history", default.keep_history),
            notifications=_flag(data, "notifications", default.notifications),
        )


def _comfort(data: dict[str, Any], default: Settings) -> dict[str, Any]:
    """The window's comfort settings from `data`, each falling back to its default."""
    theme = data.get("theme")
    size = data.get("text_size")
    members = data.get("show_members")
    confirm = data.get("confirm_end")
    return {
        "theme": theme if theme in ("system", "light", "dark") else default.theme,
        "text_size": size
        if isinstance(size, int) and not isinstance(size, bool) and -10 <= size <= 20
        else default.text_size,
        "show_members": members if isinstance(members, bool) else default.show_members,
        "confirm_end": confirm if isinstance(confirm, bool) else default.confirm_end,
    }


def _discovery_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The room name, "Visible on this network" and the recent rooms, where usable."""
    room = data.get("room")
    announce = data.get("announce")
    recent = data.get("recent")
    return {
        "room": room if isinstance(room, str) and len(room) <= 100 else "",
        "announce": announce if isinstance(announce, bool) else True,
        "recent": tuple(r for r in recent[:20] if isinstance(r, dict))
        if isinstance(recent, list)
        else (),
    }


def _flag(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key)
    return value if isinstance(value, bool) else default


def config_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The settings folder: `override`, else `$PARLEY_CONFIG_DIR`, else the platform's own."""
    if override is not None:
        return Path(override)
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("Parley", appauthor=False))


class SettingsStore:
    """Loads and saves `Settings` in one folder; never raises for file problems."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.path = config_dir(directory) / FILE_NAME

    def load(self) -> Settings:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Settings()
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("could not read %s: %s", self.path, exc)
            return Settings()
        try:
            data = json.loads(text)
        except ValueError as exc:
            log.warning("ignoring corrupt settings file %s: %s", self.path, exc)
            return Settings()
        return Settings.from_json(data)

    def save(self, settings: Settings) -> bool:
        """Write `settings`; returns False (and logs) if the folder is not writable."""
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(asdict(settings), out, indent=2)
                out.write("\n")
            os.replace(tmp, self.path)
            return True
        except OSError as exc:
            log.warning("could not save settings to %s: %s", self.path, exc)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            return False
