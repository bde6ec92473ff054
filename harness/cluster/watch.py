"""A watch that survives what real API servers do to watches: streams cut (load balancers, server restarts, the
server's own timeout) and ``410 Gone`` when the resume point was compacted away.

This is client-go's reflector in miniature: list, then watch from the list's ``resourceVersion``; when the stream
ends before the caller is done, watch again from the last version seen; on 410, list again (every current object is
delivered once more as ``ADDED``, so a consumer that keys on names sees the same state it would have) and watch
from the new list. The Python client's own ``Watch.stream`` does neither once ``timeout_seconds`` is given (it ends
silently on a drop, and repeats a compacted version), which turned every dropped watch into a test timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

__all__ = ["WatchStats", "resilient_watch"]

log = logging.getLogger(__name__)

GONE = 410
#: Re-establishing faster than this means the server ends every stream at once: back off instead of spinning.
MIN_STREAM_S = 0.05


@dataclass(slots=True)
class WatchStats:
    """How often the watch had to be re-established, for the run record (a drop or a 410 is survived, not hidden)."""

    reconnects: int = 0  # the stream ended early and was resumed from the last resourceVersion
    relists: int = 0  # 410 Gone: the resume point was compacted, the collection was listed again
    watched_s: float = 0.0  # from the first stream opened to the last one closed


def resilient_watch(
    list_fn: Callable[..., Any],
    *args: Any,
    stop: threading.Event,
    deadline: float,
    stats: WatchStats | None = None,
    resource_version: str | None = None,
    **kwargs: Any,
) -> Iterator[dict[str, Any]]:
    """Events ``{"type", "object"}`` of ``list_fn`` (a ``list_*`` method of a typed API) until ``stop`` is set or
    the monotonic ``deadline`` passes, starting from ``resource_version`` (default: a fresh list). The first list's
    objects are not yielded (the caller listed already or cares only about changes); a relist after 410 yields every
    object as ``ADDED``."""
    stats = stats if stats is not None else WatchStats()
    decoder = watch.Watch()
    return_type = decoder.get_return_type(list_fn)
    version = resource_version or list_fn(*args, **kwargs).metadata.resource_version
    began = time.monotonic()
    try:
        yield from _streams(list_fn, args, kwargs, decoder, return_type, version, stop, deadline, stats)
    finally:
        stats.watched_s = time.monotonic() - began


def _streams(
    list_fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    decoder: Any,
    return_type: Any,
    version: str,
    stop: threading.Event,
    deadline: float,
    stats: WatchStats,
) -> Iterator[dict[str, Any]]:
    """The watch loop of :func:`resilient_watch`: one stream after another until stopped."""
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        opened = time.monotonic()
        response = list_fn(
            *args,
            watch=True,
            _preload_content=False,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=max(1, int(remaining) + 1),
            **kwargs,
        )
        gone = False
        try:
            for line in watch.watch.iter_resp_lines(response):
                event = decoder.unmarshal_event(line, return_type)
                if event is None:
                    continue
                if event["type"] == "ERROR":
                    status = event["raw_object"]
                    if status.get("code") == GONE:
                        gone = True
                        break
                    raise ApiException(status=status.get("code"), reason=status.get("message", "watch error"))
                if decoder.resource_version:
                    version = decoder.resource_version
                if event["type"] == "BOOKMARK":
                    continue
                yield event
                if stop.is_set():
                    return
        finally:
            response.close()
            response.release_conn()
        if stop.is_set() or time.monotonic() >= deadline:
            return
        if gone:
            stats.relists += 1
            log.info("watch of %s: resourceVersion %s is gone (410); listing again", _name(list_fn), version)
            listed = list_fn(*args, **kwargs)
            version = listed.metadata.resource_version
            for item in listed.items:
                yield {"type": "ADDED", "object": item, "raw_object": None}
        else:
            stats.reconnects += 1
            log.info("watch of %s ended early; resuming from resourceVersion %s", _name(list_fn), version)
            if time.monotonic() - opened < MIN_STREAM_S:
                stop.wait(MIN_STREAM_S)


def _name(list_fn: Callable[..., Any]) -> str:
    return getattr(list_fn, "__name__", "objects")
