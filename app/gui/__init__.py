"""The desktop window. `run_window` is what `python -m app` (no subcommand) calls."""

from __future__ import annotations

from app.gui.launch import run_window

__all__ = ["run_window"]
