"""Whether a message names you: "@Ann" or "Ann" as a word of its own, in any case. No I/O.

A mention is highlighted in the transcript and always notifies, so it must not fire inside
other words ("Annabel", "Joanne") nor miss punctuation around the name ("Ann," "(@Ann)").
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=64)
def _pattern(name: str) -> re.Pattern[str] | None:
    name = name.strip()
    if not name:
        return None
    return re.compile(rf"(?<!\w)@?{re.escape(name)}(?!\w)", re.IGNORECASE)


def mention_spans(text: str, name: str) -> list[tuple[int, int]]:
    """Where `text` names `name`, as (start, end) character offsets."""
    pattern = _pattern(name)
    if pattern is None:
        return []
    return [m.span() for m in pattern.finditer(text)]


def mentions(text: str, name: str) -> bool:
    pattern = _pattern(name)
    return pattern is not None and pattern.search(text) is not None
