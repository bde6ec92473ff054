"""Numbers in tool output: text tokens of a table or CSV row, and values of a decoded JSON document.

Why one place: every parser asks the same two questions ("is this column header / cell a number", "is this JSON
value a real, finite number and not a boolean") and a token that is not a number must fail the same way in each:
a ParseError naming the token and quoting its line (:mod:`harness.parsers._lines`). JSON decoded by Python can hold
``true`` (an ``int`` subclass) and ``NaN``/``Infinity``; neither is a measurement.
"""

from __future__ import annotations

import math
from typing import TypeGuard

from harness.parsers._lines import parse_error

__all__ = ["finite", "is_finite", "is_number", "number"]


def is_number(token: str) -> bool:
    """Whether ``float()`` reads ``token`` (``"99.9"``, ``"1e3"``, ``"nan"``); for telling columns and cells apart."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def number(tool: str, token: str, line_no: int, line: str) -> float:
    """``token`` as a float; a ParseError ``<tool>: not a number: '<token>'`` quoting the line when it is not one."""
    try:
        return float(token)
    except ValueError:
        raise parse_error(tool, f"not a number: {token!r}", line_no, line) from None


def is_finite(value: object) -> TypeGuard[int | float]:
    """Whether a decoded JSON value is a finite number: not a boolean, not NaN or an infinity, not a string."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def finite(value: object) -> float | None:
    """A decoded JSON value as a float when it is a finite number (see :func:`is_finite`), else None."""
    return float(value) if is_finite(value) else None
