"""The S3 store options (--s3-endpoint, --s3-bucket, --s3-secret, --s3-insecure): strict, one-line errors."""

from __future__ import annotations

import pytest

from harness.config import resolve
from harness.errors import ConfigError


def test_a_user_endpoint_with_its_secret_resolves() -> None:
    config = resolve({"s3_endpoint": "minio.storage.svc:9000", "s3_secret": "storage/s3-creds"}, {}, {})
    assert (config.s3_endpoint, config.s3_secret, config.s3_insecure) == (
        "minio.storage.svc:9000",
        "storage/s3-creds",
        False,
    )
    env = {"AIBENCH_S3_ENDPOINT": "10.0.0.5:443", "AIBENCH_S3_SECRET": "a/b", "AIBENCH_S3_INSECURE": "true"}
    assert resolve({}, env, {}).s3_insecure is True


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        ({"s3_endpoint": "http://minio:9000", "s3_secret": "a/b"}, "--s3-endpoint: must be host:port"),
        ({"s3_endpoint": "minio", "s3_secret": "a/b"}, "--s3-endpoint: must be host:port"),
        ({"s3_endpoint": "minio:99999", "s3_secret": "a/b"}, "--s3-endpoint: must be host:port"),
        ({"s3_endpoint": "minio:9000"}, "--s3-endpoint: needs --s3-secret"),
        ({"s3_endpoint": "minio:9000", "s3_secret": "creds"}, "--s3-secret: must be namespace/name"),
        ({"s3_bucket": "Models_2"}, "--s3-bucket: must be an S3 bucket name"),
        ({"s3_insecure": "true"}, "--s3-insecure: only applies with --s3-endpoint"),
    ],
)
def test_bad_s3_options_are_one_line_config_errors(cli: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as exc:
        resolve(cli, {}, {})
    assert "\n" not in str(exc.value)
