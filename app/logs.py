"""`logger(name)`: a module's `logging.Logger`, with `logging` imported when it is first used.

The window's modules make their loggers as they are imported, before the first paint, and
`import logging` (with traceback, textwrap, string and weakref behind it) was 3 ms of the
executable's start for loggers that, on a good day, never log. `logger(__name__)` stands in for
`logging.getLogger(__name__)`: the first attribute asked of it (`log.warning`, `log.exception`)
imports logging and gets the real logger, and every later one goes straight to it. Handlers,
levels and configuration set on the real logger apply as usual, since it is the same object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import logging


class _Deferred:
    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: logging.Logger | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._logger is None:
            import logging

            self._logger = logging.getLogger(self._name)
        return getattr(self._logger, attribute)

    def __repr__(self) -> str:
        return f"<logger {self._name!r}, {'in use' if self._logger else 'not used yet'}>"


def logger(name: str) -> logging.Logger:
    """What `logging.getLogger(name)` returns, got on first use."""
    return cast("logging.Logger", _Deferred(name))
