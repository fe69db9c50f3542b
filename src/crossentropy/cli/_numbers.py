"""Numbers as typed on a command line: ASCII digits with an optional sign, point and exponent,
or inf / nan; not Python's ``1_000`` or other scripts' digits, which ``int`` and ``float`` also
read. The one rule of ``calc`` and ``score`` alike."""

from __future__ import annotations

import re

_NUMBER = re.compile(
    r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf(inity)?|nan)", re.IGNORECASE | re.ASCII
)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)


def typed_float(text: str) -> float | None:
    """The number ``text`` writes (white space around it allowed), None if it writes none."""
    return float(text) if _NUMBER.fullmatch(text.strip()) else None


def typed_int(text: str) -> int | None:
    """The integer ``text`` writes (white space around it allowed), None if it writes none."""
    return int(text) if _INTEGER.fullmatch(text.strip()) else None
