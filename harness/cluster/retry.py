"""The API client's retry policy, modelled on client-go's: throttling and server errors are survived, not reported.

A real API server answers 429 when API Priority and Fairness sheds load (with ``Retry-After``) and 5xx while it or
etcd restarts; client-go retries those, so a conformance or performance suite that fails on them measures its own
client, not the cluster. The policy:

- **429** is retried for every verb: the server refused the request before acting on it.
- **500, 502, 503, 504** are retried for idempotent verbs (GET, HEAD, OPTIONS, PUT, DELETE), and for any verb when
  the answer carries ``Retry-After`` (client-go retries exactly those, for every verb); a POST or PATCH that failed
  with a plain 500 may have been applied, so repeating it is the caller's decision.
- Connection errors before the request was sent are retried for every verb; read errors (sent, no answer) only for
  idempotent ones.
- ``Retry-After`` is honoured (capped at :data:`MAX_RETRY_AFTER_S`), otherwise exponential back-off with jitter.
- The budget is bounded: :data:`MAX_RETRIES` per call; the final answer (a 429 or 5xx) then reaches the caller as
  an ``ApiException`` with its status, never a ``MaxRetryError``.

Every retry is counted in a :class:`RetryCounter` shared by all copies of the policy (urllib3 copies a ``Retry``
on each increment), which the run record reports per test and per run.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

from urllib3.util.retry import Retry

__all__ = [
    "IDEMPOTENT",
    "MAX_RETRIES",
    "MAX_RETRY_AFTER_S",
    "ApiRetry",
    "RetryCounter",
    "api_retry",
    "explain_api_error",
]

MAX_RETRIES = 6
MAX_RETRY_AFTER_S = 10.0
BACKOFF_FACTOR_S = 0.1  # 0.1, 0.2, 0.4 ... seconds (urllib3 doubles it per consecutive error)
BACKOFF_MAX_S = 5.0
CONNECT_RETRIES = 3
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
THROTTLED = 429
SERVER_ERRORS = frozenset({500, 502, 503, 504})


class RetryCounter:
    """Retries made so far, by reason (``429``, ``500``..., ``connect``, ``read``); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


class ApiRetry(Retry):
    """urllib3's ``Retry`` with the verb rules above and a shared :class:`RetryCounter`."""

    counter: RetryCounter

    def __init__(self, *args: Any, counter: RetryCounter | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counter = counter if counter is not None else RetryCounter()

    def new(self, **kwargs: Any) -> ApiRetry:
        copy = super().new(**kwargs)
        copy.counter = self.counter
        return copy

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if not self.total:  # no budget left (urllib3 counts it down)
            return False
        if status_code == THROTTLED or (has_retry_after and status_code >= 500):  # the server asked for a retry
            return True
        return status_code in SERVER_ERRORS and method.upper() in IDEMPOTENT

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER_S)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> ApiRetry:
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        if response is not None and getattr(response, "status", None):
            reason = str(response.status)
        elif error is not None and self._is_connection_error(error):
            reason = "connect"
        else:
            reason = "read"
        self.counter.add(reason)
        return new


def api_retry(counter: RetryCounter | None = None) -> ApiRetry:
    """The policy for one API client (see the module docstring)."""
    return ApiRetry(
        total=MAX_RETRIES,
        connect=CONNECT_RETRIES,
        read=2,
        redirect=0,
        status=MAX_RETRIES,
        other=0,
        allowed_methods=IDEMPOTENT,  # read errors: only idempotent verbs are repeated
        status_forcelist=frozenset({THROTTLED, *SERVER_ERRORS}),
        backoff_factor=BACKOFF_FACTOR_S,
        backoff_max=BACKOFF_MAX_S,
        backoff_jitter=BACKOFF_FACTOR_S,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last 429/5xx reaches the caller as an ApiException with its status
        raise_on_redirect=False,
        counter=counter,
    )


def explain_api_error(exc: BaseException) -> str:
    """One line for an API error answer that reached a caller after the policy above: status, reason, the Status
    message, and why it was not retried (empty for anything but a kubernetes ``ApiException``)."""
    status = getattr(exc, "status", None)
    if not isinstance(status, int) or not hasattr(exc, "body") or status < 400:
        return ""
    detail = ""
    try:
        body = json.loads(getattr(exc, "body", "") or "{}")
        detail = str(body.get("message", "")) if isinstance(body, dict) else ""
    except (ValueError, TypeError):
        detail = ""
    reason = getattr(exc, "reason", "") or ""
    line = f"API server answered {status} {reason}" + (f": {detail}" if detail else "")
    if status == THROTTLED:
        line += f" (still throttled after {MAX_RETRIES} retries)"
    elif status >= 500:
        line += (
            " (5xx is retried for idempotent verbs or with Retry-After; this call was neither, or ran out of retries)"
        )
    return " ".join(line.split())
