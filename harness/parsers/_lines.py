"""Helpers shared by the parsers: ParseError messages that quote the offending input.

A parse failure must be diagnosable from the report alone, so every message names the line number (1-based) and
the line itself, shortened to one line of bounded length.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from harness.errors import ParseError

_MAX_EXCERPT = 160


def excerpt(line: str) -> str:
    """``line`` as a short one-line excerpt: control characters made visible, long lines cut with an ellipsis."""
    shown = line.rstrip("\r\n").replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    if len(shown) > _MAX_EXCERPT:
        shown = shown[: _MAX_EXCERPT - 3] + "..."
    return shown


def parse_error(tool: str, message: str, line_no: int | None = None, line: str | None = None) -> ParseError:
    """A :class:`ParseError` saying ``tool: message`` plus ``at line N: <excerpt>`` when the line is known."""
    where = ""
    if line_no is not None:
        where = f" at line {line_no}: {excerpt(line or '')!r}"
    elif line is not None:
        where = f" near: {excerpt(line)!r}"
    return ParseError(f"{tool}: {message}{where}")


def line_at(text: str, offset: int) -> tuple[int, str]:
    """The 1-based line number and the text of the line containing character ``offset`` of ``text``."""
    offset = max(0, min(offset, len(text)))
    line_no = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return line_no, text[start : end if end != -1 else len(text)]


def json_error(tool: str, text: str, exc: json.JSONDecodeError) -> ParseError:
    """A JSON decoding failure of ``text`` as a ParseError quoting the line the decoder stopped at."""
    line_no, line = line_at(text, exc.pos)
    return parse_error(tool, f"invalid JSON ({exc.msg})", line_no, line)


def json_document(text: str, tool: str) -> Any:
    """``text`` decoded as one JSON document; a ParseError quoting the line where it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise json_error(tool, text, exc) from None


def json_lines(text: str, tool: str) -> Iterator[tuple[int, str, Any]]:
    """(line number, line, decoded value) of every non-blank line of a JSON-lines text; a line that is not JSON
    is a ParseError naming it."""
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, line, json.loads(line)
        except json.JSONDecodeError as exc:
            raise parse_error(tool, f"invalid JSON ({exc.msg})", line_no, line) from None
