"""Report the pod's network interfaces (from /sys/class/net) and what Multus says it attached, as one result block.

Why both: the kernel's view proves the interface exists in the pod; Multus' network-status annotation (mounted
through the downward API) names the attachment it came from. The suite checks the expected interface is there.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

BEGIN, END = "===AIBENCH-RESULT-BEGIN===", "===AIBENCH-RESULT-END==="


def main() -> int:
    interfaces = sorted(p.name for p in Path("/sys/class/net").iterdir())
    expected = os.environ.get("EXPECTED_INTERFACE", "net1")
    status_file = Path(os.environ.get("NETWORK_STATUS_FILE", "/etc/podinfo/network-status"))
    try:
        raw = status_file.read_text().strip()
        status = json.loads(raw) if raw else []
    except (OSError, json.JSONDecodeError) as exc:
        status = [{"error": f"{type(exc).__name__}: {exc}"}]
    print(f"[iface_probe] interfaces: {', '.join(interfaces)}", file=sys.stderr)
    measurements = [
        {"metric": "interfaces", "value": len(interfaces), "unit": "count", "labels": {}},
        {"metric": "attached", "value": int(expected in interfaces), "unit": "count",
         "labels": {"interface": expected}},
    ]  # fmt: skip
    info = {"interfaces": interfaces, "network_status": status, "node": os.environ.get("NODE_NAME", "")}
    print(BEGIN, json.dumps({"measurements": measurements, "info": info}), END, sep="\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
