"""Reading container log files for the embedded kubelet's ``/log`` subresource.

The runtime appends a container's raw stdout+stderr to one file (no per-line framing, so binary output survives
unchanged). The price is that lines carry no timestamps: ``timestamps=true`` is unsupported, and ``sinceSeconds``
can only be honoured at file granularity (whole log if the file was written within the window, else nothing).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024


def _tail_offset(fh_path: Path, size: int, tail_lines: int) -> int:
    """Byte offset where the last ``tail_lines`` lines start (a final unterminated line counts as a line)."""
    if tail_lines <= 0:
        return size
    with fh_path.open("rb") as fh:
        pos = size
        newlines = 0
        # A trailing newline terminates the last line; it does not start a new one.
        skip_last = True
        while pos > 0:
            step = min(CHUNK, pos)
            pos -= step
            fh.seek(pos)
            block = fh.read(step)
            for i in range(len(block) - 1, -1, -1):
                if block[i] != 0x0A:
                    skip_last = False
                    continue
                if skip_last and pos + i == size - 1:
                    continue
                newlines += 1
                if newlines == tail_lines:
                    return pos + i + 1
    return 0


def read_log(
    path: Path,
    tail_lines: int | None = None,
    limit_bytes: int | None = None,
    since_seconds: float | None = None,
) -> bytes:
    """The log as kubectl expects it: last ``tail_lines`` lines, then cut to ``limit_bytes``.

    A missing file is an empty log (the container has not written anything yet).
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return b""
    if since_seconds is not None and st.st_mtime < time.time() - since_seconds:
        return b""
    start = _tail_offset(path, st.st_size, tail_lines) if tail_lines is not None else 0
    length = st.st_size - start
    if limit_bytes is not None:
        length = min(length, max(0, limit_bytes))
    with path.open("rb") as fh:
        fh.seek(start)
        return fh.read(length)


def follow_log(
    path: Path,
    stop: Callable[[], bool],
    poll_s: float = 0.05,
    *,
    tail_lines: int | None = None,
    limit_bytes: int | None = None,
) -> Iterator[bytes]:
    """Yield the log (from ``tail_lines`` back) and then new chunks as they are appended.

    Ends once ``stop()`` is true *and* everything written up to then has been yielded, so the last lines of a
    container that just exited are never lost; also ends after ``limit_bytes``.
    """
    sent = 0
    offset: int | None = None
    while True:
        stopping = stop()
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            if stopping:
                return
            time.sleep(poll_s)
            continue
        if offset is None:
            offset = _tail_offset(path, size, tail_lines) if tail_lines is not None else 0
        if size < offset:  # truncated/rotated: start over
            offset = 0
        while offset < size:
            want = min(CHUNK, size - offset)
            if limit_bytes is not None:
                want = min(want, limit_bytes - sent)
                if want <= 0:
                    return
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read(want)
            if not chunk:
                break
            offset += len(chunk)
            sent += len(chunk)
            yield chunk
        if limit_bytes is not None and sent >= limit_bytes:
            return
        if stopping:
            return
        time.sleep(poll_s)


__all__ = ["follow_log", "read_log"]
