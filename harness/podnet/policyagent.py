"""The NetworkPolicy agent: recompiles on every relevant change, applies only the pod tables that differ.

Changes (a NetworkPolicy, a Namespace, a pod's labels or address) only mark the agent dirty; its thread coalesces
what arrived while it worked, takes one snapshot, compiles (:func:`harness.podnet.policy.compile_policies`, pure)
and replaces the policy table of each pod namespace whose rendering changed, one ``nft -f`` transaction per
namespace. Pod status churn that changes neither labels nor address costs nothing. What a policy asks for that
cannot be enforced is handed to ``report`` once per distinct set of problems (the kubelet turns it into a Warning
event on the policy). The time from the change to its last namespace being programmed is kept for the benchmark
("policy applied -> enforced").
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.podnet.policy import OPEN, PolicyKey, compile_policies, render_table
from harness.podnet.ranges import BENCH_RANGE

log = logging.getLogger(__name__)

Snapshot = tuple[list[Mapping[str, Any]], list[Mapping[str, Any]], list[Mapping[str, Any]]]
LATENCY_SAMPLES = 1000
APPLY_WORKERS = 8  # replacing a table waits ~10 ms for the kernel (RCU), not for a CPU: overlap the waits


def _pod_fingerprint(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    terminal = status.get("phase") in ("Succeeded", "Failed")
    labels = tuple(sorted((meta.get("labels") or {}).items()))
    return (meta.get("namespace"), labels, status.get("podIP"), terminal, bool(meta.get("deletionTimestamp")))


def _on_pod_network(pod: Mapping[str, Any]) -> bool:
    ip = (pod.get("status") or {}).get("podIP")
    if not ip or (pod.get("spec") or {}).get("hostNetwork"):
        return False
    try:
        return ipaddress.ip_address(ip) in BENCH_RANGE
    except ValueError:
        return False


class PolicyAgent:
    def __init__(
        self,
        *,
        snapshot: Callable[[], Snapshot],
        targets: Callable[[], Mapping[str, str]],
        apply: Callable[[str, str], None],
        report: Callable[[PolicyKey, tuple[str, ...]], None],
        host_address: str,
    ) -> None:
        self._snapshot = snapshot
        self._targets = targets  # pod uid -> netns name, for the pods this agent programs
        self._apply = apply
        self._report = report
        self._host = host_address
        self._applied: dict[str, str] = {}
        self._reported: dict[PolicyKey, tuple[str, ...]] = {}
        self._pods: dict[str, tuple[Any, ...]] = {}
        self._dirty_since: float | None = None
        self._generation = 0
        self._done_generation = 0
        self._cond = threading.Condition()
        self._stop = False
        self.latencies_s: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._thread = threading.Thread(target=self._loop, name="aibench-netpol", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.changed()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    # ------------------------------------------------------------------ inputs
    def changed(self) -> None:
        with self._cond:
            if self._dirty_since is None:
                self._dirty_since = time.monotonic()
            self._generation += 1
            self._cond.notify_all()

    def pod_changed(self, pod: Mapping[str, Any], *, deleted: bool = False) -> None:
        """Only label/address/lifecycle changes matter; status churn is ignored here."""
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        if deleted:
            if self._pods.pop(uid, None) is not None:
                self.changed()
            return
        fingerprint = _pod_fingerprint(pod)
        if uid not in self._pods and not _on_pod_network(pod):
            return  # emulated or host-network pods: no policy can name their addresses
        if self._pods.get(uid) != fingerprint:
            self._pods[uid] = fingerprint
            self.changed()

    def forget(self, uid: str) -> None:
        """The pod's namespace is gone: its table with it."""
        with self._cond:
            self._applied.pop(uid, None)

    def initial_table(self, pod: Mapping[str, Any]) -> str:
        """The policy table of a pod being attached (address already set), so it starts isolated if selected."""
        policies, pods, namespaces = self._snapshot()
        uid = str(pod["metadata"]["uid"])
        others = [p for p in pods if (p.get("metadata") or {}).get("uid") != uid]
        compiled = compile_policies(policies, [*others, pod], namespaces, local_uids=[uid])
        text = render_table(compiled.rules.get(uid, OPEN), host_address=self._host)
        with self._cond:
            self._applied[uid] = text
        return render_table(compiled.rules.get(uid, OPEN), host_address=self._host, replace=False)

    def wait_synced(self, timeout_s: float) -> bool:
        """True once every change made before this call is programmed (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            wanted = self._generation
            while self._done_generation < wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._dirty_since is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                since, self._dirty_since = self._dirty_since, None
                generation = self._generation
            try:
                changed = self._sync()
            except Exception:
                log.exception("NetworkPolicy sync failed")
                changed = 0
            with self._cond:
                self._done_generation = max(self._done_generation, generation)
                self._cond.notify_all()
            if changed and since is not None:
                self.latencies_s.append(time.monotonic() - since)

    def _sync(self) -> int:
        policies, pods, namespaces = self._snapshot()
        targets = dict(self._targets())
        compiled = compile_policies(policies, pods, namespaces, local_uids=targets)
        pending: list[tuple[str, str, str]] = []
        for uid, netns in targets.items():
            text = render_table(compiled.rules.get(uid, OPEN), host_address=self._host)
            with self._cond:
                if self._applied.get(uid) != text:
                    pending.append((uid, netns, text))

        def apply_one(item: tuple[str, str, str]) -> bool:
            uid, netns, text = item
            try:
                self._apply(netns, text)
            except Exception as exc:  # a pod torn down meanwhile: its namespace is gone
                log.debug("policy table for %s not applied: %s", netns, exc)
                return False
            with self._cond:
                self._applied[uid] = text
            return True

        if len(pending) > 1:
            with ThreadPoolExecutor(max_workers=APPLY_WORKERS, thread_name_prefix="aibench-netpol-apply") as pool:
                changed = sum(pool.map(apply_one, pending))
        else:
            changed = sum(apply_one(item) for item in pending)
        for key, problems in compiled.problems.items():
            if self._reported.get(key) != problems:
                self._reported[key] = problems
                self._report(key, problems)
        for key in [k for k in self._reported if k not in compiled.problems]:
            del self._reported[key]
        return changed
