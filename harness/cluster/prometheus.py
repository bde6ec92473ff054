"""A small Prometheus HTTP API client that reaches Prometheus the way a platform engineer's laptop can.

Two ways in, one code path after that:
- a URL (``--prometheus-url http://...``): when the harness runs in the cluster, or through a port-forward;
- ``namespace/service[:port]``: through the API server's service proxy (``/api/v1/namespaces/<ns>/services/
  <svc>:<port>/proxy/...``), which needs nothing but the kubeconfig. Discovery hands over this form.

Every failure is one :class:`MetricsUnavailable` with one reason (unreachable, an HTTP status with the start of the
body, or Prometheus' own ``errorType: error``), so a suite reports "could not measure" once instead of a cascade of
tracebacks. A query that returns no series is not an error here: callers decide, and a suite treats it as a failed
check that shows the query (missing data is a failure, never a pass).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from harness.cluster.forbidden import forbidden_from_body
from harness.cluster.target import ClusterHandle
from harness.cluster.wait import wait_for
from harness.errors import AccessDenied, HarnessError, WaitTimeout
from harness.series import Series

QUERY_TIMEOUT_S = 30.0
#: how long a check gives Prometheus to produce a first sample (two scrape intervals of a 30 s default)
FIRST_SAMPLE_S = 60.0
_BODY_EXCERPT = 300


class MetricsUnavailable(HarnessError):
    """Raised when Prometheus (or an exporter) cannot be asked: unreachable, HTTP error, or a rejected query."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryResult:
    query: str
    series: tuple[Series, ...]
    elapsed_s: float  # client-observed, including the API server proxy hop when there is one


@dataclass(frozen=True, slots=True, kw_only=True)
class ScrapeTarget:
    """One active scrape target as ``/api/v1/targets`` reports it."""

    job: str
    instance: str
    health: str  # up | down | unknown
    last_error: str
    scrape_url: str
    labels: Mapping[str, str] = field(default_factory=dict)


class ServiceHttp:
    """GET from an in-cluster HTTP service: a URL directly, or ``namespace/service[:port]`` through the API server's
    service proxy. Prometheus, exporters and Grafana are all reached through one of these."""

    def __init__(self, endpoint: str, *, cluster: ClusterHandle | None = None, what: str = "service") -> None:
        self.endpoint = endpoint.rstrip("/")
        self._api_client = cluster.api_client if cluster is not None else None
        self._proxied = not self.endpoint.startswith(("http://", "https://"))
        if self._proxied and cluster is None:
            raise ValueError("a namespace/service endpoint needs a cluster to proxy through")
        self.what = what

    @property
    def describe(self) -> str:
        if self._proxied:
            return f"{self.what} Service {self.endpoint} (through the API server's service proxy)"
        return f"{self.what} at {self.endpoint}"

    def _proxy_path(self, path: str) -> str:
        namespace, _, service = self.endpoint.partition("/")
        return f"/api/v1/namespaces/{namespace}/services/{service}/proxy{path}"

    def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> tuple[int, bytes, float]:
        """(status, body, seconds) of GET ``path``; raises MetricsUnavailable when there is no HTTP answer."""
        started = time.monotonic()
        if self._proxied:
            api_client = self._api_client
            if api_client is None:  # excluded by __init__; keeps the type checker honest
                raise MetricsUnavailable(f"{self.describe}: no API client")
            method, url, headers, _, _ = api_client.param_serialize(
                "GET", self._proxy_path(path), query_params=list(params), auth_settings=["BearerToken"]
            )
            try:
                response = api_client.call_api(method, url, header_params=headers, _request_timeout=QUERY_TIMEOUT_S)
                response.read()
            except Exception as exc:  # urllib3 and client errors alike mean "no answer"
                raise MetricsUnavailable(f"{self.describe} is unreachable: {exc}") from None
            body = response.data or b""
            if forbidden := forbidden_from_body(response.status, body):  # the API server refused the proxy itself
                raise AccessDenied(f"GET {path} from {self.describe}: {forbidden.explain()}")
            return response.status, body, time.monotonic() - started
        url = self.endpoint + path + (f"?{urlencode(list(params))}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=QUERY_TIMEOUT_S) as answer:
                return answer.status, answer.read(), time.monotonic() - started
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), time.monotonic() - started
        except (urllib.error.URLError, OSError) as exc:
            raise MetricsUnavailable(f"{self.describe} is unreachable: {exc}") from None

    def text(self, path: str) -> str:
        """The body of a GET that must answer 200 (an exporter's ``/metrics``)."""
        status, body, _ = self.get(path)
        if status != 200:
            excerpt = body[:_BODY_EXCERPT].decode(errors="replace").strip()
            raise MetricsUnavailable(f"{self.describe} answered HTTP {status} to GET {path}: {excerpt}")
        return body.decode(errors="replace")


class Prometheus:
    """Ask one Prometheus; build one per test session and reuse it."""

    def __init__(self, endpoint: str, *, cluster: ClusterHandle | None = None) -> None:
        self.http = ServiceHttp(endpoint, cluster=cluster, what="Prometheus")
        self.endpoint = self.http.endpoint

    @property
    def describe(self) -> str:
        return self.http.describe

    def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> tuple[int, bytes, float]:
        return self.http.get(path, params)

    def _api(self, path: str, params: Sequence[tuple[str, str]] = (), *, what: str) -> tuple[Any, float]:
        status, body, elapsed = self.get(path, params)
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and document.get("status") == "error":
            raise MetricsUnavailable(
                f"{self.describe} rejected {what}: {document.get('errorType', 'error')}: {document.get('error', '')}"
            )
        if status != 200 or not isinstance(document, dict) or "data" not in document:
            excerpt = body[:_BODY_EXCERPT].decode(errors="replace").strip()
            raise MetricsUnavailable(f"{self.describe} answered HTTP {status} to {what}: {excerpt or '(empty body)'}")
        return document["data"], elapsed

    # ------------------------------------------------------------------ API
    def ready(self) -> float:
        """Seconds ``/-/ready`` took; raises when Prometheus is not ready (still replaying its WAL, for instance)."""
        status, body, elapsed = self.get("/-/ready")
        if status != 200:
            excerpt = body[:_BODY_EXCERPT].decode(errors="replace").strip()
            raise MetricsUnavailable(f"{self.describe} is not ready: HTTP {status} {excerpt}")
        return elapsed

    def query(self, promql: str) -> QueryResult:
        """An instant query; vector and scalar results alike become :class:`Series`."""
        data, elapsed = self._api("/api/v1/query", [("query", promql)], what=f"query {promql!r}")
        result_type = data.get("resultType")
        raw = data.get("result")
        if result_type == "scalar":
            series: tuple[Series, ...] = (Series(labels={}, value=float(raw[1])),)
        elif result_type == "vector":
            series = tuple(Series(labels=dict(item["metric"]), value=float(item["value"][1])) for item in raw)
        else:
            raise MetricsUnavailable(f"{self.describe}: query {promql!r} returned a {result_type}, not a vector")
        return QueryResult(query=promql, series=series, elapsed_s=elapsed)

    def query_with_data(self, promql: str, *, within_s: float) -> QueryResult:
        """Query until series come back or ``within_s`` passes, then return the last answer (empty or not).

        Why wait at all: a Prometheus that just started, or an exporter that was just scheduled, has no sample
        until its first scrape; one or two scrape intervals is the fair time to give it before calling it no-data.
        """
        try:
            return wait_for(
                lambda: self.query(promql),
                timeout_s=within_s,
                describe=f"series for {promql!r}",
                done=lambda result: bool(result.series),
            )
        except WaitTimeout:
            return self.query(promql)

    def targets(self) -> list[ScrapeTarget]:
        data, _ = self._api("/api/v1/targets", [("state", "active")], what="the targets request")
        return [
            ScrapeTarget(
                job=t.get("labels", {}).get("job", ""),
                instance=t.get("labels", {}).get("instance", ""),
                health=t.get("health", "unknown"),
                last_error=t.get("lastError", ""),
                scrape_url=t.get("scrapeUrl", ""),
                labels=dict(t.get("labels", {})),
            )
            for t in data.get("activeTargets", [])
        ]


def choose_endpoint(explicit: str | None, discovered: Sequence[str]) -> str | None:
    """``--prometheus-url`` wins; else the first discovered ``namespace/service:port``; None when there is none."""
    if explicit:
        return explicit
    return discovered[0] if discovered else None


__all__ = [
    "MetricsUnavailable",
    "Prometheus",
    "QueryResult",
    "ScrapeTarget",
    "Series",
    "ServiceHttp",
    "choose_endpoint",
]
