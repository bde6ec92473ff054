"""Shared model volume: ``write`` fills the volume with a model file set, ``read`` reads and verifies it.

Standard library only (runs in python:3.11-slim and, on the embedded target, in the harness's interpreter).

Layout on the volume (DATA_DIR)::

    model/part-000.bin ...     the model shards (random bytes)
    MANIFEST.json              written last, atomically: name, bytes and sha256 of every shard
    barrier/ready-<i>          reader i has the manifest and is about to read
    results/reader-<i>.json    reader i's numbers and digests, for reader 0's fleet summary

Timing (what each number means):

- write ``bw``: shard bytes / (time inside write() and fsync() calls). Generating and hashing the bytes is not
  timed: the number is the volume's, not this script's.
- read ``bw`` per reader: shard bytes / (time inside read() calls), reading into one reused buffer as a model
  loader does, with nothing else running in the pod.
- ``load_time``: barrier release to the last shard read, per reader.
- verification is a second pass after the timed one (sha256 of every shard against the writer's manifest; on a
  node with enough memory it reads from the page cache): hashing costs CPU (about 1.7 GB/s per core) and would
  otherwise be measured instead of the volume, especially with several readers on one small node.
- fleet (reader 0, after every reader has published its result): aggregate read ``bw`` = all bytes read / (last
  load end - first load start), and ``time_to_all_ready`` = last load end - first barrier release. Both use the
  wall clocks of the readers' nodes, so clock skew between nodes (NTP: milliseconds) adds to the error.

Every wait is bounded (WAIT_S); a timeout exits non-zero with a sentence saying what was awaited.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
BEGIN, END = "===AIBENCH-RESULT-BEGIN===", "===AIBENCH-RESULT-END==="
MIB = 1024 * 1024
DATA = os.environ.get("DATA_DIR", "/data")
MODEL = os.path.join(DATA, "model")
MANIFEST = os.path.join(DATA, "MANIFEST.json")
BARRIER = os.path.join(DATA, "barrier")
RESULTS = os.path.join(DATA, "results")
NODE = os.environ.get("NODE_NAME", "") or os.uname().nodename
STORAGE_CLASS = os.environ.get("STORAGE_CLASS", "")
CHUNK = max(1, int(os.environ.get("CHUNK_MIB", "8"))) * MIB
DROP_CACHE = os.environ.get("DROP_CACHE", "true") == "true"
POLL_S = 0.02


def fail(message: str, code: int = 2) -> None:
    print(f"model-share: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def emit(measurements: list[dict], info: dict) -> None:
    print(BEGIN)
    print(json.dumps({"measurements": measurements, "info": info}, sort_keys=True))
    print(END, flush=True)


def measurement(metric: str, value: float, unit: str, **labels: object) -> dict:
    labels = {"storage_class": STORAGE_CLASS, **labels}
    return {"metric": metric, "value": value, "unit": unit, "labels": {k: str(v) for k, v in labels.items()}}


def drop_cache(fd: int) -> None:
    """Evict the file from this node's page cache (clean pages only), so reads come from the volume."""
    if DROP_CACHE and hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass  # not every filesystem supports it (FUSE); the read is then possibly warm, which info says


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some network filesystems refuse fsync on directories; the files themselves were fsynced
    finally:
        os.close(fd)


def wait_until(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll ``probe`` until it returns something truthy; exit with a clear message after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            fail(f"timed out after {timeout_s:.0f}s waiting for {what}", code=3)
        time.sleep(POLL_S)


# ----------------------------------------------------------------------------------------------------- writer
def write() -> None:
    size = int(os.environ.get("SIZE_MIB", "256")) * MIB
    files = max(1, int(os.environ.get("FILES", "4")))
    if size <= 0:
        fail("SIZE_MIB must be positive")
    try:
        os.makedirs(MODEL, exist_ok=True)
        os.makedirs(BARRIER, exist_ok=True)
        os.makedirs(RESULTS, exist_ok=True)
    except PermissionError as exc:
        mode = oct(os.stat(DATA).st_mode & 0o7777)
        fail(
            f"cannot write to the volume ({exc}); it is mode {mode} owned by uid {os.stat(DATA).st_uid} and this "
            f"pod runs as uid {os.getuid()}: the class ignores fsGroup (some NFS exports do); "
            "export it writable for the pod's uid or use a class that applies fsGroup"
        )
    stat = os.statvfs(DATA)
    free = stat.f_bavail * stat.f_frsize
    if free < size:
        fail(f"the volume has {free / MIB:.0f} MiB free, the model needs {size / MIB:.0f} MiB: raise pvc_size")
    # One random pool; each chunk is a window of it at an offset that is not 4 KiB-aligned and differs per chunk,
    # so no two 4 KiB blocks of the file set are equal (no dedup) and nothing compresses, at memcpy speed.
    pool = memoryview(os.urandom(2 * CHUNK))
    sizes = [size // files + (1 if i < size % files else 0) for i in range(files)]
    entries, timed_s, written, chunk_no = [], 0.0, 0, 0
    for i, file_size in enumerate(sizes):
        name = f"part-{i:03d}.bin"
        digest = hashlib.sha256()
        fd = os.open(os.path.join(MODEL, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            left = file_size
            while left:
                n = min(CHUNK, left)
                offset = (chunk_no * 4099) % CHUNK
                chunk = pool[offset : offset + n]
                chunk_no += 1
                digest.update(chunk)
                t0 = time.perf_counter()
                done = 0
                while done < n:
                    done += os.write(fd, chunk[done:])
                timed_s += time.perf_counter() - t0
                left -= n
            t0 = time.perf_counter()
            os.fsync(fd)
            timed_s += time.perf_counter() - t0
            drop_cache(fd)
        finally:
            os.close(fd)
        written += file_size
        entries.append({"name": name, "bytes": file_size, "sha256": digest.hexdigest()})
    fsync_dir(MODEL)
    manifest = {"files": entries, "total_bytes": written, "writer_node": NODE}
    tmp = MANIFEST + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(manifest, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, MANIFEST)
    fsync_dir(DATA)
    emit(
        [
            measurement("bw", written / timed_s / 1e9, "GB/s", direction="write", node=NODE),
            measurement("bytes", written, "B", direction="write", node=NODE),
            measurement("duration", timed_s, "s", direction="write", node=NODE),
        ],
        {
            "role": "writer",
            "node": NODE,
            "files": len(entries),
            "sha256": [e["sha256"] for e in entries],
            "chunk_bytes": CHUNK,
        },
    )


# ----------------------------------------------------------------------------------------------------- readers
def read_manifest() -> dict | None:
    try:
        with open(MANIFEST) as handle:  # open(), not stat(): NFS revalidates on open (close-to-open)
            return json.load(handle)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def all_present(directory: str, names: list[str]) -> list[str] | None:
    present = []
    for name in names:
        try:
            with open(os.path.join(directory, name), "rb"):
                present.append(name)
        except FileNotFoundError:
            return None
    return present


def load(path: str, buf: bytearray) -> tuple[int, float]:
    """(bytes, seconds inside read() calls) of one file, read into a reused buffer as a model loader does."""
    total, timed = 0, 0.0
    with open(path, "rb", buffering=0) as handle:
        while True:
            t0 = time.perf_counter()
            n = handle.readinto(buf)
            timed += time.perf_counter() - t0
            if not n:
                return total, timed
            total += n


def sha256_of(path: str, buf: bytearray) -> tuple[int, str]:
    """(bytes, sha256) of one file."""
    digest, total, view = hashlib.sha256(), 0, memoryview(buf)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buf):
            digest.update(view[:n])
            total += n
    return total, digest.hexdigest()


def read() -> None:
    index = int(os.environ.get("JOB_COMPLETION_INDEX", "0"))
    readers = int(os.environ.get("READERS", "1"))
    wait_s = float(os.environ.get("WAIT_S", "600"))
    manifest = wait_until(read_manifest, wait_s, f"the writer's {MANIFEST}")
    entries = manifest["files"]
    for entry in entries:  # start cold: pages this node cached (e.g. the writer ran here) are evicted
        fd = os.open(os.path.join(MODEL, entry["name"]), os.O_RDONLY)
        try:
            drop_cache(fd)
        finally:
            os.close(fd)
    with open(os.path.join(BARRIER, f"ready-{index}"), "w") as handle:
        handle.write(NODE)
        handle.flush()
        os.fsync(handle.fileno())
    ready_names = [f"ready-{i}" for i in range(readers)]
    barrier_t0 = time.monotonic()
    wait_until(lambda: all_present(BARRIER, ready_names), wait_s, f"all {readers} readers at the barrier {BARRIER}")
    barrier_wait_s = time.monotonic() - barrier_t0
    release_wall, release_mono = time.time(), time.monotonic()
    buf = bytearray(CHUNK)
    # Load phase (timed): every shard read once, nothing else running in this pod.
    total, read_s, unreadable = 0, 0.0, {}
    read_start_wall = time.time()
    for entry in entries:
        try:
            nbytes, seconds = load(os.path.join(MODEL, entry["name"]), buf)
        except OSError as exc:
            unreadable[entry["name"]] = str(exc)
            continue
        total += nbytes
        read_s += seconds
    read_end_wall = time.time()
    load_time = time.monotonic() - release_mono
    # Verify phase (not in the bandwidth): hash what the volume serves and compare with the writer's manifest.
    verify_t0 = time.monotonic()
    digests, errors = [], 0
    for entry in entries:
        path = os.path.join(MODEL, entry["name"])
        try:
            nbytes, digest = sha256_of(path, buf) if entry["name"] not in unreadable else (0, "")
        except OSError as exc:
            unreadable[entry["name"]] = str(exc)
            nbytes, digest = 0, ""
        digests.append(digest)
        if digest != entry["sha256"] or nbytes != entry["bytes"]:
            errors += 1
            why = unreadable.get(entry["name"]) or f"{nbytes} bytes sha256 {digest}"
            print(
                f"model-share: reader {index} on {NODE}: {entry['name']} differs from the writer's: {why}, "
                f"expected {entry['bytes']} bytes sha256 {entry['sha256']}",
                file=sys.stderr,
                flush=True,
            )
    verify_s = time.monotonic() - verify_t0
    done_wall = time.time()
    mine = {
        "index": index,
        "node": NODE,
        "bytes": total,
        "read_s": read_s,
        "integrity_errors": errors,
        "sha256": digests,
        "release_wall": release_wall,
        "read_start_wall": read_start_wall,
        "read_end_wall": read_end_wall,
        "done_wall": done_wall,
        "load_time": load_time,
    }
    tmp = os.path.join(RESULTS, f".reader-{index}.tmp")
    with open(tmp, "w") as handle:
        json.dump(mine, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, os.path.join(RESULTS, f"reader-{index}.json"))
    labels = {"reader": index, "node": NODE}
    measurements = [
        measurement(
            "bw", total / read_s / 1e9 if read_s > 0 else 0.0, "GB/s", direction="read", scope="reader", **labels
        ),
        measurement("bytes", total, "B", direction="read", **labels),
        measurement("load_time", load_time, "s", **labels),
        measurement("integrity_errors", errors, "count", **labels),
    ]
    info = {
        "role": "reader",
        "index": index,
        "node": NODE,
        "sha256": digests,
        "expected_sha256": [e["sha256"] for e in entries],
        "barrier_wait_s": round(barrier_wait_s, 4),
        "verify_s": round(verify_s, 4),
        "cache_dropped": DROP_CACHE and hasattr(os, "posix_fadvise"),
    }
    if index == 0:
        fleet, fleet_info = summarize(readers, wait_s, [e["sha256"] for e in entries])
        measurements += fleet
        info["fleet"] = fleet_info
    emit(measurements, info)


def summarize(readers: int, wait_s: float, expected: list[str]) -> tuple[list[dict], dict]:
    """Reader 0: once every reader has published its result on the volume, the fleet's numbers."""
    names = [f"reader-{i}.json" for i in range(readers)]
    wait_until(lambda: all_present(RESULTS, names), wait_s, f"all {readers} readers' results in {RESULTS}")
    results = []
    for name in names:
        with open(os.path.join(RESULTS, name)) as handle:
            results.append(json.load(handle))
    total = sum(r["bytes"] for r in results)
    span = max(r["read_end_wall"] for r in results) - min(r["read_start_wall"] for r in results)
    ready = max(r["read_end_wall"] for r in results) - min(r["release_wall"] for r in results)
    nodes = sorted({r["node"] for r in results})
    # Each reader counted the shards whose bytes differ from the writer's manifest; info names the readers.
    errors = sum(r["integrity_errors"] for r in results)
    disagree = [r["index"] for r in results if r["sha256"] != expected]
    fleet = {"readers": readers}
    measurements = [
        measurement(
            "bw", total / span / 1e9 if span > 0 else 0.0, "GB/s", direction="read", scope="aggregate", **fleet
        ),
        measurement("bytes", total, "B", direction="read", scope="aggregate", **fleet),
        measurement("time_to_all_ready", ready, "s", **fleet),
        measurement("readers_distinct_nodes", len(nodes), "count", **fleet),
        measurement("readers_reported", len(results), "count", **fleet),
        measurement("integrity_errors", errors, "count", scope="all", **fleet),
    ]
    return measurements, {"nodes": nodes, "readers_disagreeing": disagree, "read_span_s": round(span, 6)}


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("write", "read"):
        fail("usage: model_share.py write|read")
    if sys.argv[1] == "write":
        write()
    else:
        read()
