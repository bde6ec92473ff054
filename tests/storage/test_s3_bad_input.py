"""The s3-model-store workload on the embedded target: bad input fails clearly and never leaks the credentials,
and what it writes reads back byte-identical (against the target's moto S3 service).

Every endpoint here is on 127.0.0.0/8: the refusing store is a tiny HTTP server in this process that answers every
request as S3 does for an unknown access key (403 ``InvalidAccessKeyId``, echoing the key id in the body as AWS
does), so the test also proves the workload scrubs a key that the server sends back.
"""

from __future__ import annotations

import base64
import http.server
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventually import eventually
from kubernetes import client
from workload_runs import run_context

from harness.catalog.render import render
from harness.catalog.spec import catalog_root, load_spec
from harness.cluster.namespaces import run_labels
from harness.errors import WorkloadFailed
from harness.parsers.sentinel import parse_sentinel
from harness.runners.registry import run_workload
from harness.runners.skeleton import RunResult, scripts_configmap_name

SECRET = "s3-creds"


class _RefusingS3(http.server.BaseHTTPRequestHandler):
    """403 InvalidAccessKeyId for every request, the key id from the Authorization header echoed (as AWS does)."""

    def _deny(self) -> None:
        match = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
        key = match.group(1) if match else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidAccessKeyId</Code>'
            f"<Message>The AWS Access Key Id you provided ({key}) does not exist in our records.</Message>"
            f"<AWSAccessKeyId>{key}</AWSAccessKeyId><RequestId>4442587FB7D0A2F9</RequestId></Error>"
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _deny

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_endpoint(host_for_pods: str) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer((host_for_pods, 0), _RefusingS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{host_for_pods}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def credentials(api: client.ApiClient, ns: str) -> dict[str, str]:
    """Fresh random credentials in Secret ``s3-creds`` of the test namespace."""
    keys = {"accessKey": "AKIA" + secrets.token_hex(8).upper(), "secretKey": secrets.token_urlsafe(30)}
    client.CoreV1Api(api).create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=SECRET),
            data={k: base64.b64encode(v.encode()).decode() for k, v in keys.items()},
        ),
    )
    return keys


def _run(api: client.ApiClient, ns: str, tmp_path: Path, timeout_s: float = 120, **params: Any) -> RunResult:
    spec = load_spec(catalog_root() / "s3-model-store" / "workload.yaml")
    context = {"scripts_configmap": scripts_configmap_name(spec.name), "run_id": "run-s3"}
    rendered = render(spec, {"secret_name": SECRET, **params}, context=context)
    context = run_context(
        api, ns, run_labels("run-s3", "test-s3"), timeout_s=timeout_s, artifacts_dir=tmp_path / "artifacts"
    )
    return run_workload(spec, rendered, context)


def _assert_nowhere(keys: dict[str, str], message: str, artifacts: Path) -> None:
    texts = {"the failure message": message}
    texts.update({str(p): p.read_text(errors="replace") for p in artifacts.rglob("*") if p.is_file()})
    for where, text in texts.items():
        for name, value in keys.items():
            assert value not in text, f"{name} leaked into {where}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_refused_credentials_fail_with_a_clear_message_and_never_leak(
    api: client.ApiClient, ns: str, tmp_path: Path, refusing_endpoint: str, credentials: dict[str, str]
) -> None:
    with pytest.raises(WorkloadFailed) as exc:
        _run(api, ns, tmp_path, endpoint=refusing_endpoint, timeout_s=60)
    message = str(exc.value)
    assert f"S3 endpoint {refusing_endpoint}" in message and "refused the credentials" in message, message
    assert f"from Secret {SECRET}: InvalidAccessKeyId" in message, message
    assert "exit 3" in message, message
    _assert_nowhere(credentials, message, tmp_path / "artifacts")


def test_unreachable_endpoint_is_named(
    api: client.ApiClient, ns: str, tmp_path: Path, credentials: dict[str, str]
) -> None:
    endpoint = f"127.0.0.1:{_free_port()}"
    with pytest.raises(WorkloadFailed) as exc:
        _run(api, ns, tmp_path, endpoint=endpoint, timeout_s=60)
    message = str(exc.value)
    assert f"cannot reach S3 endpoint {endpoint}" in message and "Connection refused" in message, message
    _assert_nowhere(credentials, message, tmp_path / "artifacts")


def test_missing_secret_keys_are_named_not_guessed(api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    client.CoreV1Api(api).create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name=SECRET), string_data={"user": "x"})
    )
    with pytest.raises(WorkloadFailed) as exc:
        _run(api, ns, tmp_path, endpoint="127.0.0.1:9", timeout_s=60)
    assert "accessKey" in str(exc.value), str(exc.value)


def _moto_endpoint(api: client.ApiClient) -> str:
    core = client.CoreV1Api(api)
    service = core.read_namespaced_service("s3", "kube-system")

    def ready() -> bool:
        endpoints = core.read_namespaced_endpoints("s3", "kube-system")
        return any(subset.addresses for subset in endpoints.subsets or [])

    eventually(ready, what="the embedded s3 service to have a ready endpoint", timeout_s=60)
    return f"{service.spec.cluster_ip}:{service.spec.ports[0].port}"


def test_objects_read_back_byte_identical_and_versions_by_id(
    api: client.ApiClient, ns: str, tmp_path: Path, credentials: dict[str, str]
) -> None:
    try:
        endpoint = _moto_endpoint(api)
    except client.ApiException as exc:
        if exc.status == 404:
            pytest.skip("the embedded target offers no s3 service (install moto[server] into .venv-tools)")
        raise
    result = _run(
        api, ns, tmp_path, endpoint=endpoint, object_size_mib="11", objects="3", part_size_mib="5", small_objects="30"
    )
    parsed = parse_sentinel(result.log_of("s3bench"))
    values = {(m.metric, m.labels.get("direction", "")): m.value for m in parsed.measurements}
    assert values[("integrity_errors", "")] == 0
    assert values[("versions_retrievable", "")] == 2
    assert parsed.info["large_objects_verified"] == 3 and parsed.info["small_objects_verified"] == 30
    assert parsed.info["bucket_created"] and parsed.info["bucket_removed"], "a bucket it created is removed again"
    assert parsed.info["objects_deleted"] == 3 + 30 + 2, "every version it wrote is deleted again"
    assert values[("bw", "read")] > 0 and values[("bw", "write")] > 0
    _assert_nowhere(credentials, result.log_of(), tmp_path / "artifacts")
