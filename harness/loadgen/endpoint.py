"""An OpenAI-compatible endpoint named by a URL, and the preflight that checks it before any load is sent.

Why a preflight: without it a wrong URL, a TLS problem, a missing API key or a wrong model name shows only after
the whole run, as thousands of failed samples (or none). One request of each kind (``GET /v1/models``, then one
tiny completion) finds all of them in well under a second and says which, in one line: the CLI turns
:class:`EndpointUnreachable` into exit 3 (the endpoint cannot be reached or refuses us) and :class:`ConfigError`
into exit 2 (an option is wrong: the URL's form, the model name).

URL rules: ``http://host[:port][/prefix]`` or ``https://...``; the path is a prefix kept in front of every route
(``http://gw/team-a`` sends to ``/team-a/v1/completions``), as inference-perf's ``base_url`` and vLLM's
``--root-path`` behind a gateway expect. A trailing ``/v1`` is accepted and removed (OpenAI SDK base URLs end
in it). Query strings, fragments and credentials in the URL are refused: credentials go in ``--header``, where
the record redacts them.

The stdlib ``http.client`` is used (not requests): the preflight sends four requests at most, and the same
module serves every Python the harness runs on.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from harness.errors import ConfigError, HarnessError

__all__ = [
    "APIS",
    "Endpoint",
    "EndpointUnreachable",
    "Preflight",
    "parse_endpoint",
    "parse_header",
    "preflight",
]

APIS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
PREFLIGHT_TIMEOUT_S = 10.0
_BODY_LIMIT = 300  # characters of an error body quoted in a message


class EndpointUnreachable(HarnessError):
    """The endpoint cannot be reached, fails TLS, or refuses our credentials (exit 3)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where the endpoint is and how to talk to it."""

    scheme: str
    host: str
    port: int
    prefix: str = ""  # "" or "/something" (no trailing slash)
    verify_tls: bool = True
    ca_file: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        """scheme://host:port, what locust's ``--host`` takes (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def url(self) -> str:
        return self.origin + self.prefix

    def path(self, api: str) -> str:
        """The request path of ``api`` (completions | chat) with the prefix kept."""
        return self.prefix + APIS[api]

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def parse_endpoint(
    url: str,
    *,
    insecure: bool = False,
    ca_file: str = "",
    headers: Mapping[str, str] | None = None,
    option: str = "--url",
) -> Endpoint:
    """A checked :class:`Endpoint`; a malformed URL is a ConfigError naming ``option``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{option} {url}: must start with http:// or https://")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{option} {url}: the port is not a number in 1..65535") from None
    if not parts.hostname:
        raise ConfigError(f"{option} {url}: names no host")
    if parts.username or parts.password:
        raise ConfigError(f"{option} {url}: credentials in the URL are not sent; pass --header 'Authorization: ...'")
    if parts.query or parts.fragment:
        raise ConfigError(f"{option} {url}: a query or fragment cannot be part of an endpoint's base URL")
    if parts.scheme == "http" and (insecure or ca_file):
        raise ConfigError(f"{option} {url}: --insecure and --ca-file apply to https:// URLs only")
    prefix = parts.path.rstrip("/")
    if prefix.endswith("/v1"):
        prefix = prefix[: -len("/v1")]
    return Endpoint(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        prefix=prefix,
        verify_tls=not insecure,
        ca_file=ca_file,
        headers=dict(headers or {}),
    )


def parse_header(text: str) -> tuple[str, str]:
    """``Name: value`` (the ``--header`` option; ``Name:value`` too) -> (name, value); ValueError when malformed."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(c in name for c in " \t\r\n") or "\n" in value or "\r" in value:
        raise ValueError(f"expected 'Name: value' (got {text!r})")
    return name, value.strip()


@dataclass(frozen=True, slots=True, kw_only=True)
class Preflight:
    """What the preflight learned: the model to ask for and which generation controls the server takes."""

    model: str
    models: tuple[str, ...]
    extra_body: Mapping[str, Any]  # {"ignore_eos": True, "min_tokens": N} or a subset, as accepted
    notes: tuple[str, ...] = ()


def _connection(endpoint: Endpoint) -> http.client.HTTPConnection:
    if endpoint.scheme == "https":
        return http.client.HTTPSConnection(
            endpoint.host, endpoint.port, timeout=PREFLIGHT_TIMEOUT_S, context=endpoint.tls_context()
        )
    return http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=PREFLIGHT_TIMEOUT_S)


def _exchange(endpoint: Endpoint, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    """One request; transport and TLS failures become :class:`EndpointUnreachable` lines."""
    where = f"{endpoint.url} ({method} {path})"
    connection = _connection(endpoint)
    headers = {"Accept": "application/json", **endpoint.headers}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read(1 << 20)
    except ssl.SSLCertVerificationError as exc:
        hint = "--ca-file CA.pem names the issuer, --insecure skips the check"
        raise EndpointUnreachable(f"{where}: TLS certificate not trusted ({exc.verify_message}); {hint}") from None
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        raise EndpointUnreachable(f"{where}: TLS handshake failed ({reason}); is it an http:// endpoint?") from None
    except ConnectionRefusedError:
        raise EndpointUnreachable(f"{where}: connection refused (nothing listens on port {endpoint.port})") from None
    except TimeoutError:
        raise EndpointUnreachable(f"{where}: no answer within {PREFLIGHT_TIMEOUT_S:g} s") from None
    except socket.gaierror as exc:
        raise EndpointUnreachable(f"{where}: host {endpoint.host} not found ({exc.strerror})") from None
    except (http.client.HTTPException, OSError) as exc:
        if endpoint.scheme == "http" and isinstance(exc, http.client.BadStatusLine | ConnectionResetError):
            raise EndpointUnreachable(f"{where}: not an HTTP answer ({exc!r}); is it an https:// endpoint?") from None
        raise EndpointUnreachable(f"{where}: {type(exc).__name__}: {exc}") from None
    finally:
        connection.close()


def _quote(body: bytes) -> str:
    return " ".join(body.decode("utf-8", "replace").split())[:_BODY_LIMIT]


def _refused(endpoint: Endpoint, path: str, status: int, body: bytes) -> EndpointUnreachable:
    given = "the --header values given" if endpoint.headers else "no credentials (pass --header 'Authorization: ...')"
    return EndpointUnreachable(f"{endpoint.url}: HTTP {status} from {path} with {given}: {_quote(body) or 'no body'}")


def _model_ids(endpoint: Endpoint) -> tuple[str, ...]:
    path = endpoint.prefix + "/v1/models"
    status, body = _exchange(endpoint, "GET", path)
    if status in (401, 403):
        raise _refused(endpoint, path, status, body)
    if status != 200:
        raise EndpointUnreachable(
            f"{endpoint.url}: GET {path} answered HTTP {status} ({_quote(body) or 'no body'}); "
            "is the URL the OpenAI-compatible base (with its path prefix)?"
        )
    try:
        data = json.loads(body)["data"]
        ids = tuple(str(card["id"]) for card in data)
    except (ValueError, KeyError, TypeError):
        raise EndpointUnreachable(f"{endpoint.url}: GET {path} is not an OpenAI model list: {_quote(body)}") from None
    return ids


def _probe_body(api: str, model: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "max_tokens": 2, "stream": False, **extra}
    if api == "chat":
        body["messages"] = [{"role": "user", "content": "preflight"}]
    else:
        body["prompt"] = "preflight"
    return body


def preflight(endpoint: Endpoint, *, api: str, model: str = "", exact_output: bool = True) -> Preflight:
    """Check the endpoint before a run: reachable, TLS trusted, credentials accepted, the model served; then
    learn whether it takes ``ignore_eos`` / ``min_tokens`` (one tiny request each way; a server that refuses an
    unknown field with 400 is asked again without it). ``exact_output=False`` asks for neither."""
    ids = _model_ids(endpoint)
    if not ids:
        raise EndpointUnreachable(f"{endpoint.url}: GET {endpoint.prefix}/v1/models lists no model")
    chosen = model or ids[0]
    path = endpoint.path(api)
    notes: list[str] = []
    candidates: list[dict[str, Any]] = [{"ignore_eos": True, "min_tokens": 2}, {"ignore_eos": True}, {}]
    if not exact_output:
        candidates = [{}]
    for extra in candidates:
        status, body = _exchange(endpoint, "POST", path, _probe_body(api, chosen, extra))
        if status in (401, 403):
            raise _refused(endpoint, path, status, body)
        if status == 404 and b"model" in body.lower():
            raise ConfigError(
                f"--model {chosen}: {endpoint.url} does not serve it ({_quote(body)}); it serves: {', '.join(ids)}"
            )
        if status == 200:
            if extra != candidates[0] and exact_output:
                notes.append("the server refused ignore_eos/min_tokens; output lengths follow the model's own stops")
            return Preflight(model=chosen, models=ids, extra_body=extra, notes=tuple(notes))
        if status not in (400, 422) or not extra:
            break
    raise EndpointUnreachable(f"{endpoint.url}: POST {path} answered HTTP {status}: {_quote(body) or 'no body'}")
