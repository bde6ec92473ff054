"""nftables through libnftables (the library ``nft`` itself is built on), entering a pod's namespace per call.

Why: ``nsenter --net=... nft -f -`` costs a fork and two execs per script (about 4 ms here, much more when the
cores are busy); libnftables through ctypes costs about 1 ms. A network namespace is a per-thread attribute, so
each script for a pod runs on a short-lived thread that ``setns``-es into the pod's namespace and ends there: no
other thread of the process ever changes namespace, and nothing has to be switched back. ctypes releases the GIL
during the library call. Without the library (``nftables`` not installed) callers use the ``nft`` command.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000


class NftError(RuntimeError):
    """A script libnftables refused; the message is nft's own."""


def _load() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("nftables") or "libnftables.so.1"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    return lib


_LIB = _load()
_LIBC = ctypes.CDLL(None, use_errno=True)


def available() -> bool:
    return _LIB is not None


def _run(text: str) -> None:
    assert _LIB is not None
    ctx = _LIB.nft_ctx_new(0)
    if not ctx:
        raise NftError("libnftables: cannot create a context")
    try:
        _LIB.nft_ctx_buffer_output(ctx)
        _LIB.nft_ctx_buffer_error(ctx)
        if _LIB.nft_run_cmd_from_buffer(ctx, text.encode()) != 0:
            error = (_LIB.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace").strip()
            raise NftError(error or "nft: the script was refused")
    finally:
        _LIB.nft_ctx_free(ctx)


def apply(text: str, netns: Path | None = None) -> None:
    """Apply one script as one transaction, in ``netns`` (a /run/netns path) or in this process's namespace."""
    if netns is None:
        _run(text)
        return
    failure: list[BaseException] = []

    def in_namespace() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _LIBC.setns(fd, CLONE_NEWNET) != 0:
                    raise NftError(f"setns({netns}): {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
            _run(text)
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=in_namespace, name="aibench-nft-netns", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
