"""One ``k8s-ai-bench run`` on the embedded target with API faults injected (or none, for the clean baseline).

Run as a script by ``test_api_faults.py``, in its own process so that the two runs compared do not share a
target, a client pool or a retry counter:

    python benchmarks/fault_run.py --faults on --reports-dir DIR --run-id ID -- -m control_plane ...

Faults (harness/embedded/faults.py): ``--error-rate`` of all API requests answered with one of ``--codes``
(429 carries Retry-After: 1), drawn evenly; every watch stream cut after ``--drop-after`` seconds; and once,
``--compact-after`` seconds into the pod-startup test (while its pod watch is open), the store's event window
compacted so that the watch's next resume gets 410 Gone.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Generator
from typing import Any

import pytest

from harness.pytest_plugin import SESSION_KEY
from harness.suite_run import RunOptions, run_suites


class FaultPlugin:
    """Sets the embedded target's faults once the session has started it; compacts its store once, mid-test."""

    def __init__(self, *, error_rate: float, codes: tuple[int, ...], drop_after: float, compact_after: float) -> None:
        self.error_rate = error_rate
        self.codes = codes
        self.drop_after = drop_after
        self.compact_after = compact_after
        self.cluster: Any = None
        self.compacted = threading.Event()
        self.timer: threading.Timer | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        state = session.config.stash[SESSION_KEY]
        if state.failure:
            return
        self.cluster = state.target.embedded
        faults = self.cluster.faults
        faults.error_codes = self.codes
        faults.error_rate = self.error_rate
        faults.watch_drop_after = self.drop_after

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        if self.cluster is not None and self.timer is None and "pod_startup" in item.nodeid:

            def compact() -> None:
                self.cluster.store.compact()
                self.compacted.set()

            self.timer = threading.Timer(self.compact_after, compact)
            self.timer.daemon = True
            self.timer.start()
        yield

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.cluster is not None:
            self.cluster.faults.reset()  # namespace clean-up and the target's stop are not what is measured


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faults", choices=["on", "off"], required=True)
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--codes", default="429,500", help="injected status codes, drawn evenly")
    parser.add_argument("--drop-after", type=float, default=10.0)
    parser.add_argument("--compact-after", type=float, default=1.0)
    parser.add_argument("--reports-dir", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("-m", dest="markexpr", default=None)
    parser.add_argument("--startup-pods", default=None)
    parser.add_argument("--api-calls", default=None)
    args = parser.parse_args(argv)
    plugins: list[object] = []
    if args.faults == "on":
        plugins.append(
            FaultPlugin(
                error_rate=args.error_rate,
                codes=tuple(int(c) for c in args.codes.split(",")),
                drop_after=args.drop_after,
                compact_after=args.compact_after,
            )
        )
    options = RunOptions(
        harness={
            "reports_dir": args.reports_dir,
            "run_id": args.run_id,
            "startup_pods": args.startup_pods,
            "api_calls": args.api_calls,
        },
        markexpr=args.markexpr,
    )
    return run_suites(options, plugins=plugins)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
