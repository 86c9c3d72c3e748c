"""Where Parley keeps its files: the host identity and known hosts live in the user's data folder.

`$PARLEY_DATA_DIR` overrides it (tests point it at a temporary folder; a portable install can
point it beside the executable).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_DATA = "PARLEY_DATA_DIR"
ENV_DOWNLOADS = "PARLEY_DOWNLOADS"
# How much of a conversation is kept there (the room log, transcripts): a count and an age.
KEEP_MESSAGES = 5000
KEEP_DAYS = 30.0


def data_dir() -> Path:
    override = os.environ.get(ENV_DATA)
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir("Parley", appauthor=False))


def downloads_dir() -> Path:
    """Where accepted files go: `$PARLEY_DOWNLOADS`, else the user's Downloads folder."""
    override = os.environ.get(ENV_DOWNLOADS)
    if override:
        return Path(override)
    return Path(platformdirs.user_downloads_dir())
