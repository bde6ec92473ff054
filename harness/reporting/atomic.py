"""Writing record and report files so that a reader never sees half of one: a temporary file beside the target,
then ``os.replace``; any failure (a full disk above all) removes the temporary file and raises one
:class:`RecordWriteError` line naming the file, leaving the previous version untouched.

Appends (``results.jsonl``) get the same promise by other means: one ``write`` of the whole line, and on failure
the file is cut back to its previous length, so a full disk can never leave a line cut in half.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from harness.errors import RecordWriteError

__all__ = ["append_line", "describe_os_error", "write_atomic", "write_error"]


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def write_error(path: Path, exc: OSError, what: str = "cannot write") -> RecordWriteError:
    """The one-line error for a failed write of ``path``."""
    return RecordWriteError(f"{path}: {what} ({describe_os_error(exc)})", disk_full=exc.errno in _FULL)


def describe_os_error(exc: OSError) -> str:
    """``no space left on device`` rather than ``[Errno 28] No space left on device: '/x/y'``."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    return (exc.strerror or str(exc)).lower()


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Replace ``path`` with ``data`` in one step (the directory is created when missing)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise write_error(path, exc) from None
    return path


def append_line(path: Path, line: str) -> None:
    """Append ``line`` plus a newline whole, or not at all."""
    payload = (line + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        before = os.fstat(fd).st_size
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            try:
                os.ftruncate(fd, before)
            except OSError:
                pass
            raise write_error(path, exc) from None
    finally:
        os.close(fd)
