"""The s3-model-store script's own logic, without a store: contents, percentiles, credential scrubbing, config."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from types import ModuleType

import pytest

from harness.catalog.spec import catalog_root

SCRIPT = catalog_root() / "s3-model-store" / "s3bench.py"


@pytest.fixture(scope="module")
def s3bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("s3bench_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_pattern_reader_yields_exact_sizes_and_the_digest_it_promises(s3bench: ModuleType) -> None:
    base = bytes(range(256)) * 4096  # 1 MiB
    pattern = s3bench.Pattern(base, 3, 5 * s3bench.MIB + 123)
    reader = pattern.reader()
    parts = []
    while chunk := reader.read(2 * s3bench.MIB + 7):
        parts.append(chunk)
    assert [len(p) for p in parts] == [2 * s3bench.MIB + 7] * 2 + [s3bench.MIB + 123 - 14]
    assert hashlib.sha256(b"".join(parts)).hexdigest() == pattern.digest()
    other = s3bench.Pattern(base, 4, pattern.length)
    assert other.digest() != pattern.digest(), "objects differ from one another"
    assert pattern.block(0) != pattern.block(1), "MiB blocks differ within an object (reordered parts show)"


def test_percentiles_interpolate_like_numpy(s3bench: ModuleType) -> None:
    samples = [float(v) for v in range(1, 101)]
    assert s3bench.percentile(samples, 50) == pytest.approx(50.5)
    assert s3bench.percentile(samples, 99) == pytest.approx(99.01)
    assert s3bench.percentile([7.0], 99) == 7.0


def test_scrub_blanks_both_credential_values(s3bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3bench, "_SECRETS", ["AKIAEXAMPLE", "s3cr3t-value"])
    text = s3bench.scrub("key AKIAEXAMPLE rejected; secret s3cr3t-value; Credential=AKIAEXAMPLE/2026")
    assert "AKIAEXAMPLE" not in text and "s3cr3t-value" not in text and text.count("***") == 3


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"S3_ENDPOINT": "http://minio:9000"}, "S3_ENDPOINT must be host:port without a scheme"),
        ({"S3_ACCESS_KEY": ""}, "S3_ACCESS_KEY / S3_SECRET_KEY are empty"),
        ({"PART_SIZE_MIB": "4"}, "PART_SIZE_MIB must be >= 5"),
        ({"OBJECTS": "many"}, "OBJECTS must be an integer"),
        ({"S3_SECURE": "maybe"}, "S3_SECURE must be true or false"),
    ],
)
def test_bad_configuration_is_one_clear_line(
    s3bench: ModuleType, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    base = {"S3_ENDPOINT": "127.0.0.1:9", "S3_BUCKET": "b", "S3_ACCESS_KEY": "ak-value", "S3_SECRET_KEY": "sk-value"}
    for key, value in {**base, **env}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(s3bench.Fatal, match=message):
        s3bench.Config()
