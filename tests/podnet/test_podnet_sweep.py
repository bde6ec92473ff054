"""A cluster whose process died (even by SIGKILL) leaves namespaces, links and a table behind; the next pod
network on the machine sweeps them at start, and never touches a live cluster's. Root-only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.podnet.dataplane import PodNetwork, unavailable_reason

WHY = unavailable_reason()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"no pod network on this host: {WHY}")

CHILD = """
import json, sys, time
from pathlib import Path
from harness.podnet.dataplane import PodNetwork
net = PodNetwork.create(state_root=Path(sys.argv[1]))
net.attach({"metadata": {"name": "p", "namespace": "n", "uid": "u1"}, "spec": {}}, lambda a, b: None)
print(json.dumps({"id": net.cluster_id, "subnet": str(net.pod_subnet)}), flush=True)
time.sleep(600)
"""


def _leftovers(cluster_id: str) -> list[str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    netns = [p.name for p in Path("/run/netns").iterdir()] if Path("/run/netns").is_dir() else []
    found = [f"link {line.split(': ')[1]}" for line in links.splitlines() if cluster_id in line]
    found += [f"table {t}" for t in tables.splitlines() if cluster_id in t]
    return found + [f"netns {n}" for n in netns if cluster_id in n]


def test_dead_clusters_are_swept_live_ones_kept(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline())
        assert _leftovers(info["id"]), "the child built nothing"
        live = PodNetwork(state_root=tmp_path)  # sweeps, but the child is alive: its subnet is avoided
        assert str(live.pod_subnet) != info["subnet"] and _leftovers(info["id"])
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert _leftovers(info["id"]), "SIGKILL leaves the kernel objects behind"
    PodNetwork(state_root=tmp_path)  # the owner is dead now: swept
    assert _leftovers(info["id"]) == []
    assert not (tmp_path / info["id"]).exists()
