"""``k8s-ai-bench load``: load any OpenAI-compatible endpoint and write a normal run record.

Why a command outside ``run``: a team with a vLLM, llama.cpp or gateway endpoint wants the serving figures of
*that* endpoint (TTFT, TPOT, ITL, NTPOT, goodput, error rate, req/s, tokens/s) without a cluster to deploy into,
the way inference-perf or GuideLLM are run. The load itself is the serving suite's (:mod:`harness.runners.load`:
same user classes, same raw samples, same definitions, :mod:`harness.parsers.stream_samples`), so a number from
``load`` and one from ``run -m serving`` mean the same thing; the record is the one ``run`` writes (``run.json``
+ ``results.jsonl``, rendered to HTML/JUnit/CSV by :mod:`harness.reporting.render`), so ``report compare`` and
``report history`` work on it.

Order of work: options are checked (exit 2 on a bad one), then the preflight asks the endpoint once
(:func:`harness.loadgen.endpoint.preflight`: unreachable, TLS, 401/403 exit 3; unknown model exit 2), then the
run: warm-up, then the measured duration, bounded in time and in requests. Each load level is one result; with
``--profile`` it is judged against the profile's ``inference-server`` bars, without one it passes when no request
failed. Header values never reach the record (names only).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.config import parse_run_id
from harness.errors import ConfigError, WorkloadFailed
from harness.loadgen.dataset import Prompt, parse_length, sharegpt_prompts, synthetic_prompts
from harness.loadgen.endpoint import APIS, Endpoint, Preflight, parse_endpoint, parse_header, preflight
from harness.measurement import Measurement
from harness.parsers.stream_samples import Slo, StreamSummary, stream_measurements
from harness.redact import REDACTED

__all__ = ["add_load_arguments", "run_load_command"]

WORKLOAD = "inference-server"  # the profile section whose bars judge an endpoint's serving figures
POOL_MAX = 2000  # prompts in a pool; each request still gets its own first word
SHAREGPT_OUTPUT_CAP = 1024
# The goodput SLO default: MLPerf Inference's interactive pair for Llama-3.1-8B (mlcommons/inference
# loadgen/mlperf.conf), the pair the serving suite uses.
DEFAULT_SLO = (500.0, 30.0, "MLPerf Inference interactive, Llama-3.1-8B (mlperf.conf)")


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``load`` subcommand's options (cli.py calls this; the meaning of each is here, next to its use)."""
    parser.add_argument("--url", required=True, help="OpenAI-compatible base URL, http(s)://host[:port][/prefix]")
    parser.add_argument("--insecure", action="store_true", help="https: do not verify the server's certificate")
    parser.add_argument("--ca-file", default="", help="https: PEM file of the CA that signed the server's certificate")
    parser.add_argument("--model", default="", help="model to ask for (default: the first id of GET /v1/models)")
    parser.add_argument("--api", choices=sorted(APIS), default="completions", help="endpoint (default completions)")
    parser.add_argument(
        "--header", action="append", default=[], metavar="K:V", help="extra request header, e.g. auth (repeatable)"
    )
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--concurrency", type=int, default=None, help="closed loop: N requests always in flight")
    shape.add_argument("--rate", type=float, default=None, help="open loop: Poisson arrivals at R requests/s")
    shape.add_argument("--sweep", default=None, metavar="N,N,...", help="closed-loop levels until throughput stops")
    parser.add_argument("--max-inflight", type=int, default=256, help="--rate: most requests in flight at once")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per level (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the measured window")
    parser.add_argument("--requests", type=int, default=100_000, help="most requests per level (default 100000)")
    parser.add_argument("--processes", type=int, default=1, help="load generator processes (closed loop)")
    parser.add_argument(
        "--dataset", default="synthetic", help="'synthetic' (default) or sharegpt:PATH (ShareGPT-format JSON)"
    )
    parser.add_argument("--input-len", default="128", help="synthetic prompt words: N | uniform:LO:HI | normal:...")
    parser.add_argument("--output-len", default="128", help="output tokens: N | uniform:LO:HI | normal:M:SD:LO:HI")
    parser.add_argument(
        "--no-exact-output", action="store_true", help="do not send ignore_eos/min_tokens (outputs end at EOS)"
    )
    parser.add_argument("--slo-ttft-ms", type=float, default=None, help="goodput SLO: TTFT bound (default 500)")
    parser.add_argument("--slo-tpot-ms", type=float, default=None, help="goodput SLO: TPOT bound (default 30)")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="seconds per request (default 120)")
    parser.add_argument("--seed", type=int, default=0, help="seed of prompts and arrivals (default 0)")
    parser.add_argument("--profile", default=None, help="judge against this profile's inference-server bars")
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where run records go")
    parser.add_argument("--run-id", default=None, help="name of the run record (default load-<UTC time>)")


@dataclass(frozen=True, slots=True)
class _Plan:
    endpoint: Endpoint
    shape: Any  # LoadShape
    input_spec: str
    output_spec: str
    prompts: tuple[Prompt, ...]
    slo: Slo


def _headers(values: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for text in values:
        try:
            name, value = parse_header(text)
        except ValueError as exc:
            raise ConfigError(f"--header: {exc}") from None
        headers[name] = value
    return headers


def _shape(args: argparse.Namespace) -> Any:
    from harness.runners.load import load_shape

    fields: dict[str, Any] = {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "max_requests": args.requests,
        "processes": args.processes,
        "seed": args.seed,
    }
    if args.rate is not None:
        fields |= {"kind": "rate", "rate": args.rate, "max_inflight": args.max_inflight}
    elif args.sweep is not None:
        fields |= {"kind": "sweep", "levels": [p.strip() for p in args.sweep.split(",") if p.strip()]}
    else:
        fields |= {"kind": "concurrency", "concurrency": args.concurrency if args.concurrency is not None else 1}
    try:
        return load_shape(fields, source="load")
    except ConfigError as exc:
        option = {
            "duration_s": "--duration",
            "warmup_s": "--warmup",
            "max_requests": "--requests",
            "levels": "--sweep",
            "max_inflight": "--max-inflight",
        }
        text = str(exc).removeprefix("load: ")
        key = text.split(":", 1)[0].split("[", 1)[0]
        raise ConfigError(f"{option.get(key, '--' + key.replace('_', '-'))}: {text.split(':', 1)[1].strip()}") from None


def _plan(args: argparse.Namespace) -> _Plan:
    endpoint = parse_endpoint(args.url, insecure=args.insecure, ca_file=args.ca_file, headers=_headers(args.header))
    if args.ca_file and not Path(args.ca_file).is_file():
        raise ConfigError(f"--ca-file {args.ca_file}: no such file")
    if args.request_timeout <= 0 or args.request_timeout > 3600:
        raise ConfigError(f"--request-timeout {args.request_timeout:g}: must be in (0, 3600] seconds")
    shape = _shape(args)
    pool = max(1, min(POOL_MAX, shape.max_requests))
    outputs = parse_length(args.output_len, option="--output-len")
    if args.dataset == "synthetic":
        inputs = parse_length(args.input_len, option="--input-len")
        prompts = synthetic_prompts(inputs, outputs, count=pool, seed=args.seed)
        input_spec = f"synthetic, {inputs.describe()} words"
        output_spec = f"{outputs.describe()} tokens"
    elif args.dataset.startswith("sharegpt:"):
        path = Path(args.dataset.removeprefix("sharegpt:"))
        prompts = sharegpt_prompts(path, count=pool, max_output=SHAREGPT_OUTPUT_CAP, seed=args.seed)
        input_spec = f"ShareGPT file {path.name} ({len(prompts)} conversations)"
        output_spec = f"the answer's words, at most {SHAREGPT_OUTPUT_CAP} tokens"
    else:
        raise ConfigError(f"--dataset {args.dataset}: expected 'synthetic' or sharegpt:PATH")
    ttft = args.slo_ttft_ms if args.slo_ttft_ms is not None else DEFAULT_SLO[0]
    tpot = args.slo_tpot_ms if args.slo_tpot_ms is not None else DEFAULT_SLO[1]
    if ttft <= 0 or tpot <= 0:
        raise ConfigError("--slo-ttft-ms/--slo-tpot-ms: must be positive")
    custom = args.slo_ttft_ms is not None or args.slo_tpot_ms is not None
    slo = Slo(ttft_s=ttft / 1e3, tpot_s=tpot / 1e3, source="--slo-ttft-ms/--slo-tpot-ms" if custom else DEFAULT_SLO[2])
    return _Plan(endpoint, shape, input_spec, output_spec, prompts, slo)


def _model_label(model: str) -> str:
    """The served id as the profiles' ``model`` label reads it (``org/Name`` -> ``name``, as the suite does)."""
    return model.rsplit("/", 1)[-1].lower()


def _level_label(shape: Any) -> dict[str, str]:
    return {"rate": f"{shape.rate:g}"} if shape.kind == "rate" else {"concurrency": str(shape.concurrency)}


def _judge(profile: Any, measurements: list[Measurement], model: str, summary: StreamSummary) -> dict[str, Any]:
    from harness.thresholds import evaluate
    from harness.thresholds.model import Status

    problems = []
    if summary.failures:
        problems.append(f"{summary.failures} of {summary.requests} requests failed")
    if profile is None:
        if problems:
            return {"status": "failed", "failure_kind": "errors", "message": "; ".join(problems), "checks": []}
        return {"status": "passed", "failure_kind": "", "message": "measured, no --profile to judge it", "checks": []}
    # bars naming another model do not apply; "of" narrows out the mesh-overhead bar (a routing-test measurement)
    checks = evaluate(profile, WORKLOAD, measurements, scope={"model": _model_label(model), "of": "-"})
    judged = [c for c in checks if c.status is not Status.NO_DATA or c.counts_as_failure]
    failed = [c for c in judged if c.counts_as_failure]
    if failed:
        lines = [f"{len(failed)} of {len(judged)} checks failed:", *[f"  {c.message}" for c in failed]]
        return {
            "status": "failed",
            "failure_kind": "threshold",
            "message": "\n".join(lines),
            "checks": [c.to_dict() for c in judged],
        }
    if not judged:
        why = checks.unjudged or f"no {WORKLOAD} bar of profile {profile.name} applies"
        return {"status": "skipped", "failure_kind": "", "message": f"measured, not judged: {why}", "checks": []}
    return {"status": "passed", "failure_kind": "", "message": "", "checks": [c.to_dict() for c in judged]}


def _summary_line(shape: Any, summary: StreamSummary) -> str:
    def ms(ranked: Any, q: float) -> str:
        return f"{ranked[q] * 1e3:.1f}" if q in ranked else "-"

    level = f"rate {shape.rate:g}/s" if shape.kind == "rate" else f"concurrency {shape.concurrency}"
    good = f", goodput {100 * summary.goodput_ratio:.1f} %" if summary.goodput_ratio is not None else ""
    late = f", send lateness p99 {ms(summary.lateness, 99)} ms" if summary.lateness else ""
    return (
        f"{level}: {summary.requests} requests, {summary.failures} failed, {summary.requests_per_s:.1f} req/s, "
        f"{summary.output_tokens_per_s:.0f} tok/s, TTFT p50/p99 {ms(summary.ttft, 50)}/{ms(summary.ttft, 99)} ms, "
        f"TPOT p50/p99 {ms(summary.tpot, 50)}/{ms(summary.tpot, 99)} ms, in flight {summary.inflight_mean:.1f}"
        f"{good}{late}"
    )


def _level_identity(url: str, shape: Any) -> dict[str, Any]:
    """What a load level's result is, measured or failed: one test id per endpoint and level."""
    key, value = next(iter(_level_label(shape).items()))
    return {
        "id": f"load::{url}::{key}={value}",
        "name": f"load {url} {key} {value}",
        "doc": "k8s-ai-bench load against an OpenAI-compatible endpoint",
        "area": "serving",
        "workload": WORKLOAD,
        "markers": ["serving", "perf", "load"],
    }


def run_load_command(args: argparse.Namespace) -> int:
    """The ``load`` subcommand; returns the exit code (0 passed, 1 a check or request failed). Bad options raise
    ConfigError (exit 2), an unreachable or refusing endpoint EndpointUnreachable (exit 3)."""
    from harness.reporting.record import RunRecord
    from harness.reporting.render import render_all
    from harness.runners.load import LoadRun, RequestProfile, failure_report, run_local, run_sweep
    from harness.thresholds import load_profile

    plan = _plan(args)
    profile = load_profile(args.profile) if args.profile else None
    run_id = args.run_id or time.strftime("load-%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        parse_run_id(run_id)
    except ValueError as exc:
        raise ConfigError(f"--run-id: {exc}") from None
    run_dir = args.reports_dir / run_id
    if run_dir.exists():
        raise ConfigError(f"run record {run_dir}: exists already; run ids are never reused (choose another --run-id)")
    checked: Preflight = preflight(plan.endpoint, api=args.api, model=args.model, exact_output=not args.no_exact_output)
    for note in checked.notes:
        print(f"k8s-ai-bench load: note: {note}", flush=True)
    request = RequestProfile(
        api=args.api,
        model=checked.model,
        headers=dict(plan.endpoint.headers),
        timeout_s=args.request_timeout,
        prompts=plan.prompts,
        extra_body=dict(checked.extra_body),
        verify_tls=plan.endpoint.verify_tls,
        ca_file=str(Path(args.ca_file).resolve()) if args.ca_file else "",
    )
    record = RunRecord(run_dir)
    started = time.time()
    print(
        f"k8s-ai-bench load: {plan.endpoint.url} model {checked.model}, {plan.shape.describe()}, warm-up "
        f"{plan.shape.warmup_s:g} s + {plan.shape.duration_s:g} s measured; record {run_dir}",
        flush=True,
    )

    completed: list[LoadRun] = []
    level_failed: tuple[Any, WorkloadFailed] | None = None  # the level whose load generator failed, and how

    def one(shape: Any) -> LoadRun:
        tag = f"c{shape.concurrency}" if shape.kind != "rate" else f"rate{shape.rate:g}"
        try:
            run = run_local(plan.endpoint.url, shape, request, workdir=run_dir / "artifacts" / tag)
        except WorkloadFailed as exc:
            nonlocal level_failed
            level_failed = (shape, exc)
            raise
        completed.append(run)
        return run

    # A level whose load generator fails (locust crashed, timed out, wrote no samples) ends the run, but the record
    # stays whole: the levels measured before it are judged and kept, the failed one is an error result, and
    # run.json is written, so `report` reads the directory and the exit code is 1 (not 3, "unreachable").
    try:
        runs = run_sweep(one, plan.shape) if plan.shape.kind == "sweep" else [one(plan.shape)]
    except WorkloadFailed:
        runs = completed
    statuses = []
    params = {
        "url": plan.endpoint.url,
        "api": plan.endpoint.path(args.api),
        "model": checked.model,
        "models_served": ",".join(checked.models),
        "headers": {name: REDACTED for name in plan.endpoint.headers},
        "tls": "" if plan.endpoint.scheme == "http" else ("not verified" if args.insecure else "verified"),
        "prompts": plan.input_spec,
        "output": plan.output_spec,
        "exact_output": ",".join(sorted(checked.extra_body)) or "not sent (outputs end at the model's EOS)",
        "goodput_slo": f"TTFT <= {plan.slo.ttft_s * 1e3:g} ms and TPOT <= {plan.slo.tpot_s * 1e3:g} ms "
        f"({plan.slo.source})",
    }
    for run in runs:
        summary = run.summary(plan.slo)
        labels = {"api": args.api, **_level_label(run.shape), "model": _model_label(checked.model)}
        measurements = stream_measurements(summary, labels)
        verdict = _judge(profile, measurements, checked.model, summary)
        if summary.failures:
            verdict["message"] = (verdict["message"] + "\n" + failure_report(summary, run.samples)).strip()
        statuses.append(verdict["status"])
        record.add_result(
            {
                **_level_identity(plan.endpoint.url, run.shape),
                "duration_s": run.wall_s,
                "requirements": [],
                "emulated": False,
                "artifacts": str(run.artifacts.relative_to(run_dir)) if run.artifacts else "",
                "params": {
                    **params,
                    "load": f"{run.shape.describe()}, {run.shape.duration_s:g} s measured after a "
                    f"{run.shape.warmup_s:g} s warm-up, {run.where}",
                    "warmup_excluded": str(summary.warmup_excluded),
                },
                "measurements": [m.to_dict() for m in measurements],
                **verdict,
            }
        )
        print(f"  {_summary_line(run.shape, summary)} -> {verdict['status'].upper()}", flush=True)
    if level_failed is not None:
        failed_shape, failure = level_failed
        record.add_result(
            {
                **_level_identity(plan.endpoint.url, failed_shape),
                "status": "error",
                "failure_kind": "workload",
                "message": f"the load generator failed: {failure}",
                "params": {**params, "load": failed_shape.describe()},
            }
        )
        statuses.append("error")
        level = ", ".join(f"{k}={v}" for k, v in _level_label(failed_shape).items())
        print(f"  {level}: the load generator failed -> ERROR", flush=True)
    exit_code = 1 if {"failed", "error"} & set(statuses) else 0
    record.write_info(
        {
            "run_id": run_id,
            "started_at": started,
            "finished_at": time.time(),
            "exit_status": exit_code,
            "ended_by": "completed",
            "harness_version": __version__,
            "target": {"kind": "endpoint", "name": plan.endpoint.url},
            "profile": {"name": profile.name, "reason": "named with --profile (load)"} if profile else {},
            "load": {"command": "k8s-ai-bench load", **params},
        }
    )
    for path in render_all(run_dir):
        print(path)
    return exit_code
