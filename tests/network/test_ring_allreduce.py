"""The tcp-ring algorithm of workloads/collective-allreduce/collective.py, in-process: ranks as threads on their
own loopback addresses, the exact expected sum for uneven and tiny buffers, and the busbw math."""

from __future__ import annotations

import importlib.util
import socket
import threading
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "workloads" / "collective-allreduce" / "collective.py"


@pytest.fixture(scope="module")
def collective() -> ModuleType:
    module_spec = importlib.util.spec_from_file_location("collective_script", SCRIPT)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_ring(collective: ModuleType, world: int, count: int) -> list[np.ndarray]:
    port, results, errors = _free_port(), [None] * world, []
    template = "127.0.0.2{rank}"  # one loopback address per rank, as pods have one IP each

    def rank_main(rank: int) -> None:
        try:
            ring = collective.Ring(rank, world, template, template.format(rank=rank), port, wait_s=10, step_s=10)
            data = collective.expected_input(rank, count)
            ring.all_reduce(data, np.empty(count // world + 1, dtype=np.float32))
            ring.close()
            results[rank] = data
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


@pytest.mark.parametrize(("world", "count"), [(2, 1000), (3, 1001), (4, 3), (3, 262_147)])
def test_ring_all_reduce_is_exact(collective: ModuleType, world: int, count: int) -> None:
    expected = collective.expected_sum(world, count)
    for rank, data in enumerate(_run_ring(collective, world, count)):
        assert np.array_equal(data, expected), f"rank {rank} differs"


def test_sizes_parse_like_nccl_tests(collective: ModuleType) -> None:
    assert collective.parse_sizes("64K, 1M,2G") == [64 << 10, 1 << 20, 2 << 30]
    for bad in ("", "3", "1X", "-4"):
        with pytest.raises(SystemExit):
            collective.parse_sizes(bad)


def test_inputs_differ_per_rank_so_a_missing_rank_is_caught(collective: ModuleType) -> None:
    """The sum of ranks 0..n-1 with one rank's chunk lost differs from the expected sum everywhere."""
    partial = collective.expected_input(0, 500) + collective.expected_input(1, 500)
    assert np.count_nonzero(partial != collective.expected_sum(3, 500)) == 500
