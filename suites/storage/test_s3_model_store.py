"""S3 model store: multipart PUT/GET throughput, small-object latency and TTFB, versioning and read-back integrity.

The store is the one named with ``--s3-endpoint`` (credentials from ``--s3-secret namespace/name``), else the
target's ``s3`` platform service (label ``aibench.io/system-service=s3``; on the embedded target moto's S3 server).
The recorded params say which server answered, so the report never passes off a stand-in as a real store.

Credentials travel only as a Secret in the test's namespace, mounted as environment through ``secretKeyRef``:
they are never rendered into manifests, printed, or recorded.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from harness.cluster.references import create_secret, read_secret_keys
from harness.fixture_types import Capabilities, HarnessConfig, Profile, RunWorkload, Target, TestRecord
from harness.parsers.sentinel import SentinelResult, parse_sentinel
from harness.thresholds.assertions import assert_passed
from harness.thresholds.evaluate import evaluate

pytestmark = [pytest.mark.storage]

WORKLOAD = "s3-model-store"
SECRET_NAME = "aibench-s3-credentials"
S3_KEYS = ("accessKey", "secretKey")
DEFAULT_BUCKET = "aibench-models"


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Store:
    """Where the workload goes and what it is (never the credentials)."""

    endpoint: str
    bucket: str
    secret_name: str
    secure: bool
    server: str  # what answers, for the report: the service's description or "user endpoint"

    def params(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint,
            "bucket": self.bucket,
            "secret_name": self.secret_name,
            "secure": self.secure,
        }


@pytest.fixture
def s3_store(
    request: pytest.FixtureRequest,
    target: Target,
    capabilities: Capabilities,
    namespace: str,
    harness_config: HarnessConfig,
) -> Iterator[S3Store]:
    """The store under test, with its credential Secret created in this test's namespace."""
    import base64

    from harness.cluster.namespaces import run_labels

    labels = run_labels(harness_config.run_id, request.node.nodeid)
    bucket = harness_config.s3_bucket or DEFAULT_BUCKET
    if harness_config.s3_endpoint:
        store = S3Store(
            endpoint=harness_config.s3_endpoint,
            bucket=bucket,
            secret_name=SECRET_NAME,
            secure=not harness_config.s3_insecure,
            server=f"user endpoint {harness_config.s3_endpoint} (--s3-endpoint)",
        )
        data = read_secret_keys(target.api_client, harness_config.s3_secret, S3_KEYS, option="--s3-secret")
    else:
        if reason := capabilities.missing("service:s3"):
            pytest.skip(f"requires service:s3: {reason}; or name a store with --s3-endpoint and --s3-secret")
        service = capabilities.system_services["s3"]
        store = S3Store(
            endpoint=service.address,
            bucket=bucket,
            secret_name=SECRET_NAME,
            secure=False,
            server=f"{service.namespace}/{service.name}: {service.description or 'S3 service'}",
        )
        if harness_config.s3_secret:
            data = read_secret_keys(target.api_client, harness_config.s3_secret, S3_KEYS, option="--s3-secret")
        elif capabilities.embedded:
            # moto accepts any well-formed credentials; fresh random ones keep the path identical to a real store
            keys = {"accessKey": "AKIA" + secrets.token_hex(8).upper(), "secretKey": secrets.token_urlsafe(30)}
            data = {k: base64.b64encode(v.encode()).decode() for k, v in keys.items()}
        else:
            pytest.skip(f"the target's s3 service ({store.server}) needs credentials: pass --s3-secret namespace/name")
    create_secret(target.api_client, namespace, SECRET_NAME, data, labels=labels)
    yield store


def _run(run_workload: RunWorkload, record: TestRecord, store: S3Store, **params: object) -> SentinelResult:
    result = run_workload(WORKLOAD, **store.params(), **params)
    parsed = parse_sentinel(result.log_of("s3bench"))
    record.add(params={"server": store.server, "server_header": parsed.info.get("server", "")})
    return parsed


@pytest.mark.perf
def test_s3_model_store_throughput(
    run_workload: RunWorkload, record: TestRecord, profile: Profile, s3_store: S3Store
) -> None:
    """The S3 model store moves model-sized objects fast enough: multipart PUT and GET bandwidth at the workload's
    concurrency, small-object GET latency and time-to-first-byte percentiles clear the profile's bars."""
    parsed = _run(run_workload, record, s3_store)
    checks = evaluate(profile, WORKLOAD, parsed.measurements)
    record.add(measurements=parsed.measurements, checks=checks)
    assert_passed(checks)


@pytest.mark.conformance
def test_s3_model_store_versioning_and_integrity(
    run_workload: RunWorkload, record: TestRecord, s3_store: S3Store
) -> None:
    """Bucket versioning can be enabled, two versions of a model object are retrievable by version id, and every
    object written (multipart and small) reads back byte-identical."""
    parsed = _run(run_workload, record, s3_store, object_size_mib=12, objects=2, part_size_mib=5, small_objects=20)
    record.add(measurements=parsed.measurements)
    values = {
        m.metric: m.value for m in parsed.measurements if m.metric in ("versions_retrievable", "integrity_errors")
    }
    info = parsed.info
    assert values.get("integrity_errors") == 0, (
        f"{values.get('integrity_errors')} object(s) read back differ from what was written "
        f"(large verified: {info.get('large_objects_verified')}, small verified: {info.get('small_objects_verified')})"
    )
    assert values.get("versions_retrievable") == 2, (
        f"{values.get('versions_retrievable', 0):g} of 2 versions of model/weights.bin retrievable by version id "
        f"(versioning status {info.get('versioning_status')!r}, written {info.get('versions_written')}, "
        f"listed {info.get('versions_listed')}"
        + (f", error: {info['versioning_error']}" if info.get("versioning_error") else "")
        + ")"
    )
