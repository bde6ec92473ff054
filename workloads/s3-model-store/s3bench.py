"""S3 model-store benchmark: multipart PUT / GET throughput, small-object GET latency and TTFB, versioning.

Runs inside the Job's container (stdlib + the ``minio`` SDK only). Configuration comes from the environment the
manifest sets; the credentials come from a Secret (``S3_ACCESS_KEY`` / ``S3_SECRET_KEY``) and are never printed:
every message that leaves this script passes through :func:`scrub`, which blanks both values.

Phases (each object under a per-run prefix, all versions deleted at the end):

1. bucket: created when missing; versioning enabled (restored to Suspended afterwards on a pre-existing bucket
   that had it off, the closest S3 allows to "never enabled").
2. PUT: ``OBJECTS`` objects of ``OBJECT_SIZE_MIB`` MiB, multipart with ``PART_SIZE_MIB`` parts, uploaded by
   ``CONCURRENCY`` threads (one object per thread at a time, parts sequential: the connection count is exactly
   ``CONCURRENCY``). Aggregate bandwidth = bytes / wall time of the phase.
3. GET: the same objects read back by ``CONCURRENCY`` threads, bodies drained and discarded (what a model loader's
   download costs, without this script's checksum work in the timing).
4. integrity: every object read again and its SHA-256 compared with what was written (not timed).
5. small objects: ``SMALL_OBJECTS`` objects of ``SMALL_OBJECT_KIB`` KiB, then read one at a time (queue depth 1):
   latency (request sent -> body complete) and TTFB (request sent -> first body chunk) percentiles.
6. versioning: two versions of ``model/weights.bin`` written, listed with their version ids, each read back by
   version id and compared with what was written.

The result is one ``===AIBENCH-RESULT-BEGIN===`` block; failures exit non-zero with one clear line.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error
from minio.versioningconfig import OFF, SUSPENDED, VersioningConfig

MIB = 1024 * 1024
KIB = 1024
BLOCK = MIB  # the pattern unit: object contents are rotations of one random block (cheap to generate, distinct)
MIN_PART_MIB = 5  # S3's minimum multipart part size (all parts but the last)
CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "InvalidSecurity",
    "AllAccessDisabled",
}
BEGIN = "===AIBENCH-RESULT-BEGIN==="
END = "===AIBENCH-RESULT-END==="


class Fatal(Exception):
    """A failure that ends the run with one clear line (already free of credentials)."""


_SECRETS: list[str] = []


def scrub(text: str) -> str:
    """``text`` with every credential value blanked (server messages may echo the access key id)."""
    for value in _SECRETS:
        if value:
            text = text.replace(value, "***")
    return text


def say(message: str) -> None:
    print(scrub(message), flush=True)


# ----------------------------------------------------------------------------- configuration
def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise Fatal(f"{name} must be an integer (got {raw!r})") from None
    if value < minimum:
        raise Fatal(f"{name} must be >= {minimum} (got {value})")
    return value


def _env_bool(name: str) -> bool:
    raw = os.environ.get(name, "false").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off", ""):
        return False
    raise Fatal(f"{name} must be true or false (got {raw!r})")


class Config:
    def __init__(self) -> None:
        self.endpoint = os.environ.get("S3_ENDPOINT", "").strip()
        if not self.endpoint or "://" in self.endpoint or "/" in self.endpoint:
            raise Fatal(f"S3_ENDPOINT must be host:port without a scheme (got {self.endpoint!r})")
        self.bucket = os.environ.get("S3_BUCKET", "").strip()
        if not self.bucket:
            raise Fatal("S3_BUCKET must not be empty")
        self.region = os.environ.get("S3_REGION", "").strip() or None
        self.secure = _env_bool("S3_SECURE")
        self.access_key = os.environ.get("S3_ACCESS_KEY", "")
        self.secret_key = os.environ.get("S3_SECRET_KEY", "")
        _SECRETS.extend(v for v in (self.access_key, self.secret_key) if len(v) >= 3)
        if not self.access_key or not self.secret_key:
            raise Fatal("S3_ACCESS_KEY / S3_SECRET_KEY are empty: the Secret needs keys accessKey and secretKey")
        self.object_size = _env_int("OBJECT_SIZE_MIB", 64, 1) * MIB
        self.objects = _env_int("OBJECTS", 8, 1)
        self.concurrency = _env_int("CONCURRENCY", 4, 1)
        self.part_size = _env_int("PART_SIZE_MIB", 16, MIN_PART_MIB) * MIB
        self.small_objects = _env_int("SMALL_OBJECTS", 200, 1)
        self.small_size = _env_int("SMALL_OBJECT_KIB", 4, 1) * KIB
        tag = os.environ.get("RUN_TAG", "").strip()
        self.prefix = f"aibench-{tag + '-' if tag else ''}{uuid.uuid4().hex[:8]}/"

    def public(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "bucket": self.bucket,
            "secure": self.secure,
            "region": self.region or "",
            "prefix": self.prefix,
            "object_size_mib": self.object_size // MIB,
            "objects": self.objects,
            "part_size_mib": self.part_size // MIB,
            "concurrency": self.concurrency,
            "small_objects": self.small_objects,
            "small_object_kib": self.small_size // KIB,
        }


def make_client(cfg: Config) -> Minio:
    pool = urllib3.PoolManager(
        maxsize=cfg.concurrency + 2,
        timeout=urllib3.Timeout(connect=10, read=120),
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        cert_reqs="CERT_REQUIRED" if cfg.secure else "CERT_NONE",
    )
    return Minio(
        cfg.endpoint,
        access_key=cfg.access_key,
        secret_key=cfg.secret_key,
        secure=cfg.secure,
        region=cfg.region,
        http_client=pool,
    )


# ----------------------------------------------------------------------------- object contents
class Pattern:
    """Object ``seed``'s bytes: block ``i`` is the base block rotated by an offset derived from (seed, i)."""

    def __init__(self, base: bytes, seed: int, length: int) -> None:
        self.base, self.seed, self.length = base, seed, length

    def block(self, index: int) -> bytes:
        offset = ((self.seed * 1_000_003 + index * 7_919 + 1) * 2_654_435_761) % BLOCK
        return self.base[offset:] + self.base[:offset]

    def digest(self) -> str:
        sha = hashlib.sha256()
        for start in range(0, self.length, BLOCK):
            sha.update(self.block(start // BLOCK)[: min(BLOCK, self.length - start)])
        return sha.hexdigest()

    def reader(self) -> PatternReader:
        return PatternReader(self)


class PatternReader:
    """A file-like ``read(n)`` over a :class:`Pattern` that returns exactly ``n`` bytes (minio concatenates
    short reads, which costs a copy per call)."""

    def __init__(self, pattern: Pattern) -> None:
        self.pattern, self.pos = pattern, 0

    def read(self, size: int = -1) -> bytes:
        end = self.pattern.length if size < 0 else min(self.pattern.length, self.pos + size)
        pieces = []
        while self.pos < end:
            index, within = divmod(self.pos, BLOCK)
            take = min(BLOCK - within, end - self.pos)
            pieces.append(self.pattern.block(index)[within : within + take])
            self.pos += take
        return b"".join(pieces)


# ----------------------------------------------------------------------------- helpers
def percentile(samples: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def parallel(concurrency: int, tasks: Iterable[Callable[[], Any]]) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(task) for task in tasks]
        return [f.result() for f in futures]


def drain(client: Minio, bucket: str, key: str, sha: Any = None, version_id: str | None = None) -> int:
    response = client.get_object(bucket, key, version_id=version_id)
    total = 0
    try:
        for chunk in response.stream(MIB):
            total += len(chunk)
            if sha is not None:
                sha.update(chunk)
    finally:
        response.close()
        response.release_conn()
    return total


def fetch(client: Minio, bucket: str, key: str, version_id: str | None = None) -> bytes:
    response = client.get_object(bucket, key, version_id=version_id)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


# ----------------------------------------------------------------------------- phases
class Bench:
    def __init__(self, cfg: Config, client: Minio) -> None:
        self.cfg, self.client = cfg, client
        self.measurements: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {"config": cfg.public()}
        self.created_bucket = False
        self.prior_versioning = ""
        self.integrity_errors = 0
        rng = random.Random(int.from_bytes(os.urandom(8), "big"))
        self.base = rng.randbytes(BLOCK)

    def measure(self, metric: str, value: float, unit: str, **labels: str) -> None:
        self.measurements.append({"metric": metric, "value": round(value, 4), "unit": unit, "labels": labels})

    def key(self, name: str) -> str:
        return self.cfg.prefix + name

    def prepare_bucket(self) -> None:
        cfg, client = self.cfg, self.client
        if not client.bucket_exists(cfg.bucket):
            client.make_bucket(cfg.bucket)
            self.created_bucket = True
            say(f"created bucket {cfg.bucket}")
        self.prior_versioning = client.get_bucket_versioning(cfg.bucket).status
        self.info["bucket_created"] = self.created_bucket
        self.info["versioning_before"] = self.prior_versioning

    def throughput(self) -> None:
        cfg, client = self.cfg, self.client
        patterns = [Pattern(self.base, seed, cfg.object_size) for seed in range(cfg.objects)]
        expected = {self.key(f"large/object-{p.seed:04d}.bin"): p.digest() for p in patterns}
        keys = list(expected)
        labels = {"object_size_mib": str(cfg.object_size // MIB), "concurrency": str(cfg.concurrency)}
        total_mib = cfg.objects * cfg.object_size / MIB

        def put(key: str, pattern: Pattern) -> Callable[[], Any]:
            return lambda: client.put_object(
                cfg.bucket,
                key,
                pattern.reader(),
                pattern.length,
                part_size=cfg.part_size,
                num_parallel_uploads=1,
            )

        started = time.perf_counter()
        parallel(cfg.concurrency, (put(k, p) for k, p in zip(keys, patterns, strict=True)))
        put_s = time.perf_counter() - started
        self.measure("bw", total_mib / put_s, "MiB/s", direction="write", op="put", **labels)
        say(f"PUT {cfg.objects} x {cfg.object_size // MIB} MiB: {total_mib / put_s:.1f} MiB/s in {put_s:.2f}s")

        sizes: list[int] = []
        started = time.perf_counter()
        sizes = parallel(cfg.concurrency, (lambda k=k: drain(client, cfg.bucket, k) for k in keys))
        get_s = time.perf_counter() - started
        if any(s != cfg.object_size for s in sizes):
            raise Fatal(f"GET returned {sizes} bytes, expected {cfg.object_size} per object")
        self.measure("bw", total_mib / get_s, "MiB/s", direction="read", op="get", **labels)
        say(f"GET {cfg.objects} x {cfg.object_size // MIB} MiB: {total_mib / get_s:.1f} MiB/s in {get_s:.2f}s")
        self.info["put_seconds"] = round(put_s, 4)
        self.info["get_seconds"] = round(get_s, 4)

        def verify(key: str) -> bool:
            sha = hashlib.sha256()
            drain(client, cfg.bucket, key, sha)
            return sha.hexdigest() == expected[key]

        results = parallel(cfg.concurrency, (lambda k=k: verify(k) for k in keys))
        bad = [k for k, ok in zip(keys, results, strict=True) if not ok]
        self.integrity_errors += len(bad)
        self.info["large_objects_verified"] = len(keys) - len(bad)
        if bad:
            say(f"INTEGRITY: {len(bad)} object(s) read back differ from what was written: {bad[:5]}")

    def small_objects(self) -> None:
        cfg, client = self.cfg, self.client
        payloads = {
            self.key(f"small/object-{i:05d}.bin"): Pattern(self.base, 10_000 + i, cfg.small_size).reader().read()
            for i in range(cfg.small_objects)
        }

        def put(key: str, data: bytes) -> Callable[[], Any]:
            return lambda: client.put_object(cfg.bucket, key, PatternBytes(data), len(data))

        parallel(cfg.concurrency, (put(k, v) for k, v in payloads.items()))
        keys = list(payloads)
        for key in keys[: min(10, len(keys))]:  # warm the connection; not recorded
            response = client.get_object(cfg.bucket, key)
            self.info["server"] = response.headers.get("Server", "")  # what answers, for the report
            response.read()
            response.close()
            response.release_conn()
        latencies: list[float] = []
        ttfbs: list[float] = []
        mismatched = 0
        for key in keys:
            started = time.perf_counter()
            response = client.get_object(cfg.bucket, key)
            try:
                chunks = response.stream(64 * KIB)
                first = next(chunks, b"")
                first_at = time.perf_counter()
                body = first + b"".join(chunks)
            finally:
                response.close()
                response.release_conn()
            done_at = time.perf_counter()
            ttfbs.append((first_at - started) * 1000.0)
            latencies.append((done_at - started) * 1000.0)
            if body != payloads[key]:
                mismatched += 1
        self.integrity_errors += mismatched
        size = str(cfg.small_size // KIB)
        for pct in (50, 90, 99):
            self.measure(
                "small_get_latency",
                percentile(latencies, pct),
                "ms",
                stat="percentile",
                percentile=str(pct),
                object_size_kib=size,
            )
        for pct in (50, 90, 99):
            self.measure(
                "ttfb", percentile(ttfbs, pct), "ms", stat="percentile", percentile=str(pct), object_size_kib=size
            )
        say(
            f"small GET {len(keys)} x {size} KiB at QD1: latency p50 {percentile(latencies, 50):.2f} ms "
            f"p99 {percentile(latencies, 99):.2f} ms; TTFB p50 {percentile(ttfbs, 50):.2f} ms"
        )
        self.info["small_objects_verified"] = len(keys) - mismatched

    def versioning(self) -> None:
        cfg, client = self.cfg, self.client
        key = self.key("model/weights.bin")
        retrievable = 0
        try:
            client.set_bucket_versioning(cfg.bucket, VersioningConfig(ENABLED))
            status = client.get_bucket_versioning(cfg.bucket).status
            self.info["versioning_status"] = status
            contents = [Pattern(self.base, 20_000 + i, 256 * KIB).reader().read() for i in range(2)]
            written = {}
            for data in contents:
                result = client.put_object(cfg.bucket, key, PatternBytes(data), len(data))
                written[result.version_id] = hashlib.sha256(data).hexdigest()
            listed = [
                o.version_id
                for o in client.list_objects(cfg.bucket, prefix=key, include_version=True)
                if o.object_name == key and not o.is_delete_marker
            ]
            self.info["versions_written"] = [v for v in written if v]
            self.info["versions_listed"] = listed
            for version_id in listed:
                if version_id in written and version_id not in (None, "null"):
                    got = hashlib.sha256(fetch(client, cfg.bucket, key, version_id=version_id)).hexdigest()
                    if got == written[version_id]:
                        retrievable += 1
                    else:
                        self.integrity_errors += 1
                        say(f"INTEGRITY: version {version_id} of {key} differs from what was written")
            latest = hashlib.sha256(fetch(client, cfg.bucket, key)).hexdigest()
            self.info["latest_is_second_version"] = latest == hashlib.sha256(contents[1]).hexdigest()
        except S3Error as exc:
            if exc.code in CREDENTIAL_CODES - {"AccessDenied"}:
                raise
            self.info["versioning_error"] = scrub(f"{exc.code}: {exc.message}")
            say(f"versioning check failed: {exc.code}: {exc.message}")
        self.measure("versions_retrievable", retrievable, "count")
        say(f"versioning: {retrievable} of 2 versions retrievable by version id")

    def cleanup(self) -> None:
        """Delete every version (and delete marker) under this run's prefix; undo what this run changed."""
        cfg, client = self.cfg, self.client
        deletes = [
            DeleteObject(o.object_name, o.version_id)
            for o in client.list_objects(cfg.bucket, prefix=cfg.prefix, recursive=True, include_version=True)
        ]
        errors = list(client.remove_objects(cfg.bucket, deletes))
        if errors:
            say(f"cleanup: {len(errors)} object(s) could not be deleted, e.g. {errors[0].name}: {errors[0].message}")
        self.info["objects_deleted"] = len(deletes) - len(errors)
        if self.created_bucket and not errors:
            client.remove_bucket(cfg.bucket)
            self.info["bucket_removed"] = True
        elif self.prior_versioning == OFF:
            client.set_bucket_versioning(cfg.bucket, VersioningConfig(SUSPENDED))
            self.info["versioning_after"] = SUSPENDED

    def result(self) -> dict[str, Any]:
        self.measure("integrity_errors", self.integrity_errors, "count")
        return {"measurements": self.measurements, "info": self.info}


class PatternBytes:
    """A ``read(n)`` stream over bytes (io.BytesIO works too; this keeps every upload on the same code path)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else min(len(self.data), self.pos + size)
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk


# ----------------------------------------------------------------------------- main
def explain(exc: Exception, cfg: Config | None) -> str:
    where = f"S3 endpoint {cfg.endpoint} (bucket {cfg.bucket})" if cfg else "S3 endpoint"
    secret = os.environ.get("S3_SECRET_NAME", "")
    if isinstance(exc, S3Error):
        if exc.code in CREDENTIAL_CODES:
            return (
                f"{where} refused the credentials from Secret {secret or '<unnamed>'}: {exc.code}"
                f" ({exc.message or 'no message'}); check the Secret's accessKey/secretKey and the bucket policy"
            )
        return f"{where} answered {exc.code}: {exc.message or 'no message'}"
    if isinstance(exc, InvalidResponseError):
        return f"{where} gave a response that is not S3: {exc}"
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        reason = exc.reason or exc
        return f"cannot reach {where}: {type(reason).__name__}: {reason}"
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return f"connection to {where} failed: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def main() -> int:
    cfg: Config | None = None
    try:
        cfg = Config()
        client = make_client(cfg)
        say(f"S3 model store benchmark against {cfg.endpoint} bucket {cfg.bucket} (secure={cfg.secure})")
        bench = Bench(cfg, client)
        bench.prepare_bucket()
        try:
            bench.throughput()
            bench.small_objects()
            bench.versioning()
        except Exception:
            try:
                bench.cleanup()
            except Exception as cleanup_exc:  # the first failure is the one to report
                say(f"cleanup after failure also failed: {explain(cleanup_exc, cfg)}")
            raise
        bench.cleanup()
        result = bench.result()
    except Fatal as exc:
        print(scrub(f"ERROR: {exc}"), file=sys.stderr, flush=True)
        return 2
    except (S3Error, InvalidResponseError, urllib3.exceptions.HTTPError, OSError) as exc:
        print(scrub(f"ERROR: {explain(exc, cfg)}"), file=sys.stderr, flush=True)
        return 3
    print(BEGIN)
    print(scrub(json.dumps(result, sort_keys=True)))
    print(END, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
