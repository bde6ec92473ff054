"""What an RDMA / SR-IOV device-plugin allocation gave the pod, as one result block.

SR-IOV device plugins announce the allocated VFs' PCI addresses in ``PCIDEVICE_<RESOURCE>`` environment variables;
RDMA device plugins (shared or exclusive) mount the verbs devices under ``/dev/infiniband`` (``uverbsN``,
``rdma_cm``). The suite checks that a pod requesting the resource got at least one of those.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

BEGIN, END = "===AIBENCH-RESULT-BEGIN===", "===AIBENCH-RESULT-END==="


def main() -> int:
    pci = {k: v for k, v in os.environ.items() if k.startswith("PCIDEVICE_")}
    vfs = [a for v in pci.values() for a in v.split(",") if a]
    ib = Path("/dev/infiniband")
    verbs = sorted(p.name for p in ib.iterdir()) if ib.is_dir() else []
    uverbs = [n for n in verbs if n.startswith("uverbs")]
    labels = {"resource": os.environ.get("RESOURCE", "")}
    measurements = [
        {"metric": "pci_devices", "value": len(vfs), "unit": "count", "labels": labels},
        {"metric": "uverbs_devices", "value": len(uverbs), "unit": "count", "labels": labels},
    ]
    info = {"pcidevice_env": pci, "dev_infiniband": verbs, "node": os.environ.get("NODE_NAME", "")}
    print(BEGIN, json.dumps({"measurements": measurements, "info": info}), END, sep="\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
