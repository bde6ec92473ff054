"""Load against an OpenAI-compatible endpoint with locust: shapes, where locust runs, and the raw samples back.

Why locust always runs in its own process: ``import locust`` monkey-patches the whole interpreter with gevent
(sockets, threads, subprocess), which breaks the kubernetes client and anything else in the harness process
(../shared/research/ecosystem-baselines.md section 3d). So the harness never imports it; it starts
``python -m locust`` as a local subprocess (the embedded target, whose Service addresses are loopback addresses
reachable from here) or runs the ``inference-load`` workload, an in-cluster Job with locust's own image, on a
real cluster (ClusterIPs are reachable only from inside). Both run the same user classes
(``workloads/inference-load/locustfile.py``), which time every stream themselves and write one raw sample per
request; the harness parses those (:mod:`harness.parsers.stream_samples`), never locust's rounded percentiles.

The endpoint is any OpenAI-compatible base URL: ``http(s)://host:port[/prefix]``; the prefix is kept in front of
``/v1/...`` (:mod:`harness.loadgen.endpoint`), https is verified unless the request profile says otherwise, the
model defaults to the first id of ``GET /v1/models`` (the load processes ask once each), and every prompt is
unique to its request (:mod:`harness.loadgen.dataset`): no prefix cache flatters TTFT.

The warm-up comes *before* the measured duration: a shape of ``duration_s=30, warmup_s=5`` sends for 35 s and
measures the last 30 (the samples sent in the first 5 s are kept in the artifacts but excluded from every figure).

Shapes: ``concurrency`` (closed loop, C streams always in flight), ``rate`` (open loop, Poisson arrivals at R/s,
at most ``max_inflight`` at once; waiting is measured as client-side queueing), and ``sweep`` (closed-loop levels
run one after another until throughput stops growing: the saturation point). Every run is bounded in time
(``duration_s``) and in count (``max_requests``).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.catalog.spec import load_workload
from harness.errors import ConfigError, WorkloadFailed
from harness.loadgen.dataset import Prompt, prompts_jsonl
from harness.loadgen.endpoint import APIS, parse_endpoint
from harness.parsers.stream_samples import Slo, StreamSample, StreamSummary, parse_stream_samples, summarise

log = logging.getLogger(__name__)

WORKLOAD = "inference-load"
LOCUSTFILE = "locustfile.py"
SAMPLES_BEGIN = "===AIBENCH-SAMPLES-BEGIN==="
SAMPLES_END = "===AIBENCH-SAMPLES-END==="
SHAPES = ("concurrency", "rate", "sweep")
MAX_DURATION_S = 3600.0
MAX_CONCURRENCY = 4096
STOP_TIMEOUT_S = 30.0  # locust lets running requests finish this long after the duration
RAMP_SHARE = 0.5  # share of the warm-up over which closed-loop streams start
RUN_TIME_GRACE_S = 15.0  # locust's own --run-time bound beyond duration_s
SWEEP_MIN_GAIN = 0.05  # a level that adds less than 5 % throughput is saturation


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadShape:
    """How much load, for how long. Build with :func:`load_shape`, which checks every field."""

    kind: str
    duration_s: float
    max_requests: int
    concurrency: int = 1
    rate: float = 0.0
    max_inflight: int = 256
    levels: tuple[int, ...] = ()
    warmup_s: float = 1.0
    processes: int = 1
    seed: int = 0

    def describe(self) -> str:
        if self.kind == "rate":
            return f"Poisson arrivals at {self.rate:g} req/s (at most {self.max_inflight} in flight)"
        if self.kind == "sweep":
            return f"concurrency sweep {','.join(map(str, self.levels))}"
        return f"{self.concurrency} concurrent streams"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestProfile:
    """What each request asks for. ``model`` empty: the first id the endpoint's ``/v1/models`` lists.
    ``prompts``: a pool (synthetic or ShareGPT, :mod:`harness.loadgen.dataset`); empty: ``prompt_words`` words
    and ``max_tokens`` for every request (each still led by its unique word). ``extra_body``: merged into every
    request (``ignore_eos``/``min_tokens`` where the server takes them). ``verify_tls``/``ca_file``: https."""

    api: str = "completions"
    model: str = ""
    prompt_words: int = 128
    max_tokens: int = 32
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0
    prompts: tuple[Prompt, ...] = ()
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    verify_tls: bool = True
    ca_file: str = ""

    @property
    def path(self) -> str:
        return APIS[self.api]


@dataclass(slots=True, kw_only=True)
class LoadRun:
    """One locust run: where it ran, its samples, and what it was asked to do."""

    shape: LoadShape
    url: str
    where: str  # "local subprocess" | "in-cluster job"
    samples: tuple[StreamSample, ...]
    command: list[str]
    wall_s: float
    artifacts: Path | None = None

    def summary(self, slo: Slo | None = None) -> StreamSummary:
        return summarise(self.samples, warmup_s=self.shape.warmup_s, slo=slo)


def _fail(source: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {message}")


def _number(source: str, key: str, value: Any, *, integer: bool, low: float, high: float) -> Any:
    kind = int if integer else float
    try:
        number = kind(value)
        if integer and isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise _fail(source, key, f"must be {'an integer' if integer else 'a number'} (got {value!r})") from None
    if not low <= number <= high:
        raise _fail(source, key, f"must be in {low:g}..{high:g} (got {value!r})")
    return number


def load_shape(fields: Mapping[str, Any], *, source: str = "load shape") -> LoadShape:
    """A checked :class:`LoadShape` from a mapping (a profile entry, CLI values, a test's parameters): unknown
    keys, out-of-range values and impossible combinations are ConfigError lines naming the field (exit 2)."""
    allowed = {f for f in LoadShape.__dataclass_fields__}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise _fail(source, unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")
    kind = fields.get("kind", "concurrency")
    if kind not in SHAPES:
        raise _fail(source, "kind", f"must be one of {', '.join(SHAPES)} (got {kind!r})")
    duration = _number(source, "duration_s", fields.get("duration_s", 10), integer=False, low=1, high=MAX_DURATION_S)
    max_requests = _number(source, "max_requests", fields.get("max_requests", 100_000), integer=True, low=1, high=10**7)
    # the warm-up runs before the measured duration, not inside it
    warmup = _number(source, "warmup_s", fields.get("warmup_s", 1.0), integer=False, low=0, high=MAX_DURATION_S)
    processes = _number(source, "processes", fields.get("processes", 1), integer=True, low=1, high=64)
    concurrency = _number(
        source, "concurrency", fields.get("concurrency", 1), integer=True, low=1, high=MAX_CONCURRENCY
    )
    rate = fields.get("rate", 0.0)
    max_inflight = _number(
        source, "max_inflight", fields.get("max_inflight", 256), integer=True, low=1, high=MAX_CONCURRENCY
    )
    levels: tuple[int, ...] = ()
    if kind == "rate":
        rate = _number(source, "rate", rate, integer=False, low=0.001, high=100_000)
        if processes != 1:
            raise _fail(source, "processes", "a rate shape runs one arrival process (Poisson arrivals are one stream)")
    elif "rate" in fields:
        raise _fail(source, "rate", f"only for kind rate (this shape is {kind})")
    if kind == "concurrency" and concurrency < processes:
        raise _fail(source, "concurrency", f"must be at least processes ({concurrency} < {processes})")
    if kind == "sweep":
        raw = fields.get("levels")
        if isinstance(raw, str):
            raw = [p for p in raw.split(",") if p.strip()]
        if not isinstance(raw, list | tuple) or len(raw) < 2:
            raise _fail(source, "levels", f"a sweep needs at least two concurrency levels (got {raw!r})")
        levels = tuple(
            _number(source, f"levels[{i}]", v, integer=True, low=1, high=MAX_CONCURRENCY) for i, v in enumerate(raw)
        )
        if list(levels) != sorted(set(levels)):
            raise _fail(source, "levels", f"must increase strictly (got {list(levels)})")
    elif "levels" in fields:
        raise _fail(source, "levels", f"only for kind sweep (this shape is {kind})")
    return LoadShape(
        kind=kind,
        duration_s=duration,
        max_requests=max_requests,
        concurrency=concurrency,
        rate=float(rate),
        max_inflight=max_inflight,
        levels=levels,
        warmup_s=warmup,
        processes=processes,
        seed=_number(source, "seed", fields.get("seed", 0), integer=True, low=0, high=2**32 - 1),
    )


def locust_environment(
    shape: LoadShape, request: RequestProfile, samples_dir: str, *, url: str = "", prompts_file: str = ""
) -> dict[str, str]:
    """The LG_* variables the user classes read (one place, used by the subprocess and the Job alike). ``url``:
    the endpoint (its path prefix goes in front of the API path); ``prompts_file``: where the prompt pool was
    written (local runs); without it a pool travels inline, gzip+base64 (the in-cluster Job)."""
    per_process = -(-shape.max_requests // shape.processes)  # the budget is per load process
    prefix = parse_endpoint(url, option="load URL").prefix if url else ""
    env = {
        "LG_PATH": prefix + request.path,
        "LG_MODEL": request.model,
        "LG_PROMPT_WORDS": str(request.prompt_words),
        "LG_MAX_TOKENS": str(request.max_tokens),
        "LG_HEADERS": json.dumps(dict(request.headers)),
        "LG_SAMPLES_DIR": samples_dir,
        "LG_MAX_REQUESTS": str(per_process),
        "LG_RATE": f"{shape.rate:g}",
        "LG_MAX_INFLIGHT": str(shape.max_inflight),
        "LG_TIMEOUT_S": f"{request.timeout_s:g}",
        "LG_SEED": str(shape.seed),
        "LG_DURATION_S": f"{shape.warmup_s + shape.duration_s:g}",  # sending time: warm-up, then the measured part
        "LG_EXTRA_BODY": json.dumps(dict(request.extra_body)),
        "LG_TLS_VERIFY": "1" if request.verify_tls else "0",
        "LG_CA_FILE": request.ca_file,
        # closed loop: first requests evenly spaced over the first half of the warm-up, so the streams do not run
        # in lock-step (all started together, every next request lands in the same millisecond: +23 % TTFT p99 at
        # 64 streams) and all run before the measured window opens
        "LG_RAMP_S": f"{RAMP_SHARE * shape.warmup_s:g}" if shape.kind != "rate" else "0",
        "LG_USERS": str(max(1, shape.concurrency // shape.processes)),
    }
    if request.prompts and prompts_file:
        env["LG_PROMPTS_FILE"] = prompts_file
    elif request.prompts:
        env["LG_PROMPTS_B64"] = base64.b64encode(gzip.compress(prompts_jsonl(request.prompts).encode())).decode()
    return env


def locust_arguments(shape: LoadShape, url: str) -> list[str]:
    """locust's command-line arguments after ``-f locustfile``: user class, users, spawn rate, bounds. locust's
    ``--host`` is the endpoint's origin; its path prefix travels in LG_PATH."""
    if shape.kind == "rate":
        user, users, spawn_rate = "ArrivalUser", 1, 1.0
    else:
        # all users start at once; each delays its first request by its share of the ramp (LG_RAMP_S)
        user, users, spawn_rate = "ConcurrencyUser", shape.concurrency, float(shape.concurrency)
    args = [
        user,
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        f"{spawn_rate:g}",
        "--run-time",  # a hard bound: the users stop themselves at duration_s, between requests
        f"{math.ceil(shape.warmup_s + shape.duration_s + RUN_TIME_GRACE_S)}s",
        "--host",
        parse_endpoint(url, option="load URL").origin,
        "--only-summary",
        "--stop-timeout",
        f"{STOP_TIMEOUT_S:g}",
        "--exit-code-on-error",
        "0",  # failed requests are samples the harness counts, not a failed run
        "--loglevel",
        "WARNING",
    ]
    if shape.processes > 1:
        args += ["--processes", str(shape.processes)]
    return args


def locustfile_path() -> Path:
    return load_workload(WORKLOAD).directory / LOCUSTFILE


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the locust process and its workers (its own session/group), SIGTERM first."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_local(url: str, shape: LoadShape, request: RequestProfile, *, workdir: Path) -> LoadRun:
    """locust as a subprocess of this machine (own process group, stopped by its PID); samples read from files."""
    if shape.kind == "sweep":
        raise ValueError("run_local runs one level; use run_sweep for a sweep")
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("samples-*.jsonl"):
        old.unlink()
    command = [sys.executable, "-m", "locust", "-f", str(locustfile_path()), *locust_arguments(shape, url)]
    prompts_file = ""
    if request.prompts:
        prompts_file = str(workdir / "prompts.jsonl")
        Path(prompts_file).write_text(prompts_jsonl(request.prompts))
    lg_env = locust_environment(shape, request, str(workdir), url=url, prompts_file=prompts_file)
    env = {**os.environ, **lg_env, "PYTHONUNBUFFERED": "1"}
    limit = shape.warmup_s + shape.duration_s + RUN_TIME_GRACE_S + STOP_TIMEOUT_S + 30.0
    log.info("load: %s against %s for %gs (local locust)", shape.describe(), url, shape.duration_s)
    started = time.monotonic()
    with (workdir / "locust.log").open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            raise WorkloadFailed(
                f"locust did not finish within {limit:g} s (duration {shape.duration_s:g} s); stopped it. "
                f"Last output:\n{_tail(workdir / 'locust.log')}"
            ) from None
        finally:
            if proc.poll() is None:
                _stop_group(proc)
    wall = time.monotonic() - started
    if code != 0:
        raise WorkloadFailed(f"locust exited {code}. Last output:\n{_tail(workdir / 'locust.log')}")
    text = "".join(p.read_text() for p in sorted(workdir.glob("samples-*.jsonl")))
    if not text.strip():
        raise WorkloadFailed(
            f"locust ran {wall:.1f} s against {url} but wrote no sample. Last output:\n{_tail(workdir / 'locust.log')}"
        )
    return LoadRun(
        shape=shape,
        url=url,
        where="local subprocess",
        samples=parse_stream_samples(text),
        command=command,
        wall_s=wall,
        artifacts=workdir,
    )


def job_name(tag: str) -> str:
    """The Job's name for one run: ``inference-load-<tag>`` as a DNS label. Why one name per run: a Job's pod
    template is immutable, so a real kube-apiserver refuses a second run (another level of a sweep) re-applied
    under the same name (``spec.template: field is immutable``)."""
    clean = re.sub(r"[^a-z0-9-]+", "-", tag.lower()).strip("-")
    return f"{WORKLOAD}-{clean}"[:63].rstrip("-") if clean else WORKLOAD


def job_params(
    shape: LoadShape, request: RequestProfile, url: str, *, mesh: bool = False, name: str = WORKLOAD
) -> dict[str, str]:
    """Parameters of the ``inference-load`` workload (the in-cluster Job) for one run."""
    env = locust_environment(shape, request, "/tmp/samples", url=url)
    return {
        "job_name": name,
        "mesh": "true" if mesh else "false",
        "host_url": url,
        "locust_args": " ".join(locust_arguments(shape, url)),
        "lg_env": json.dumps({k: v for k, v in env.items() if k != "LG_SAMPLES_DIR"}),
        "deadline_s": str(round(shape.warmup_s + shape.duration_s + RUN_TIME_GRACE_S + STOP_TIMEOUT_S + 120)),
    }


def samples_from_log(log_text: str) -> str:
    """The samples the Job printed: gzip+base64 JSON lines between the markers (pod logs rotate at 10 MiB,
    so they travel compressed)."""
    begin = log_text.find(SAMPLES_BEGIN)
    end = log_text.find(SAMPLES_END, begin + 1)
    if begin < 0 or end < 0:
        raise WorkloadFailed(f"the load Job printed no {SAMPLES_BEGIN} block; log tail:\n{log_text[-1500:]}")
    blob = "".join(log_text[begin + len(SAMPLES_BEGIN) : end].split())
    try:
        return gzip.decompress(base64.b64decode(blob, validate=True)).decode()
    except (ValueError, OSError) as exc:
        raise WorkloadFailed(f"the load Job's samples block is corrupt ({exc})") from None


def run_job(
    run_workload: Callable[..., Any],
    url: str,
    shape: LoadShape,
    request: RequestProfile,
    *,
    mesh: bool = False,
    name: str = WORKLOAD,
) -> LoadRun:
    """locust inside the cluster: the ``inference-load`` Job ``name`` (master + ``processes`` workers in one pod);
    give every run in a namespace its own ``name`` (:func:`job_name`)."""
    if shape.kind == "sweep":
        raise ValueError("run_job runs one level; use run_sweep for a sweep")
    started = time.monotonic()
    result = run_workload(WORKLOAD, **job_params(shape, request, url, mesh=mesh, name=name))
    # earlier runs' pods in the namespace carry the same run labels: read this Job's pod only
    logs: Mapping[str, str] = getattr(result, "logs", None) or {}
    mine = [k for k in sorted(logs) if k.startswith(f"{name}-") and k.endswith("/locust")]
    text = samples_from_log("".join(logs[k] for k in mine) if mine else result.log_of("locust"))
    return LoadRun(
        shape=shape,
        url=url,
        where="in-cluster job",
        samples=parse_stream_samples(text),
        command=["locust", *locust_arguments(shape, url)],
        wall_s=time.monotonic() - started,
    )


def run_sweep(run_one: Callable[[LoadShape], LoadRun], shape: LoadShape) -> list[LoadRun]:
    """Closed-loop levels in order until throughput grows by less than 5 % (saturation) or errors appear;
    every level run is kept (the report plots them)."""
    if shape.kind != "sweep":
        raise ValueError("run_sweep needs a sweep shape")
    runs: list[LoadRun] = []
    best = 0.0
    for level in shape.levels:
        run = run_one(replace(shape, kind="concurrency", concurrency=level, levels=()))
        runs.append(run)
        summary = run.summary()
        if summary.failures:
            break
        if best and summary.requests_per_s < best * (1 + SWEEP_MIN_GAIN):
            break
        best = max(best, summary.requests_per_s)
    return runs


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadDriver:
    """Runs load where it can reach the Service: a local subprocess on the embedded target (ClusterIPs are
    loopback addresses here), the in-cluster Job elsewhere. Built by the serving suite's ``load`` fixture."""

    local: bool
    workdir: Path
    run_workload: Callable[..., Any] | None = None

    @property
    def where(self) -> str:
        return "local subprocess" if self.local else "in-cluster job"

    def one(
        self, url: str, shape: LoadShape, request: RequestProfile, *, tag: str = "load", mesh: bool = False
    ) -> LoadRun:
        """One run; ``mesh``: from a pod with Istio's sidecar (in-cluster only: no mesh on the embedded target)."""
        if self.local:
            if mesh:
                raise ValueError("a load run through the mesh needs the in-cluster Job (no sidecar runs here)")
            return run_local(url, shape, request, workdir=self.workdir / tag)
        if self.run_workload is None:
            raise ValueError("an in-cluster load run needs the run_workload fixture")
        return run_job(self.run_workload, url, shape, request, mesh=mesh, name=job_name(tag))

    def sweep(self, url: str, shape: LoadShape, request: RequestProfile) -> list[LoadRun]:
        return run_sweep(lambda level: self.one(url, level, request, tag=f"c{level.concurrency}"), shape)


def failure_report(summary: StreamSummary, samples: tuple[StreamSample, ...], *, limit: int = 3) -> str:
    """Why requests failed, with the server's own error bodies (the first few distinct ones)."""
    lines = [f"{summary.failures} of {summary.requests} requests failed"]
    lines += [f"  {count} x {reason}" for reason, count in sorted(summary.errors.items(), key=lambda kv: -kv[1])]
    bodies = list(dict.fromkeys(s.body.strip() for s in samples if s.body.strip()))
    lines += [f"  server said: {body}" for body in bodies[:limit]]
    return "\n".join(lines)


def shape_from_text(text: str) -> LoadShape:
    """A shape from ``key=value,...`` text (the ``--serving-load`` option), e.g. ``concurrency=64,duration_s=30``
    or ``kind=sweep,levels=1;4;16``; raises ValueError naming the field (the option parser makes it exit 2)."""
    fields: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"expected key=value pairs separated by commas (got {part!r})")
        key, value = key.strip(), value.strip()
        fields[key] = [v for v in value.split(";") if v] if key == "levels" else value
    try:
        return load_shape(fields, source="load shape")
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix("load shape: ")) from None
