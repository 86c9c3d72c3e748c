"""Finding files in `assets/`, from a checkout and from inside a PyInstaller bundle alike."""

from __future__ import annotations

import sys
from pathlib import Path


def assets_dir() -> Path:
    """PyInstaller unpacks bundled data under `sys._MEIPASS`; a checkout keeps it beside `app/`."""
    bundle = getattr(sys, "_MEIPASS", None)
    base = Path(bundle) if bundle else Path(__file__).resolve().parent.parent
    return base / "assets"


def asset_path(name: str) -> Path:
    return assets_dir() / name
