"""In-cluster load run: locust (master + workers in this pod) with the shipped user classes, then the raw samples
printed to the log between markers, gzip+base64 (pod logs rotate at 10 MiB; the harness decodes the block).

Environment: LOCUST_ARGS (locust's arguments after ``-f``), LG_ENV (JSON object of LG_* settings),
DEADLINE_S (wall-clock bound on locust). Exit status: locust's, or 2 for bad settings.
"""

from __future__ import annotations

import base64
import glob
import gzip
import json
import os
import shlex
import subprocess
import sys

BEGIN, END = "===AIBENCH-SAMPLES-BEGIN===", "===AIBENCH-SAMPLES-END==="
SAMPLES = "/tmp/samples"


def main() -> int:
    try:
        settings = json.loads(os.environ["LG_ENV"])
        args = shlex.split(os.environ["LOCUST_ARGS"])
        deadline = float(os.environ.get("DEADLINE_S", "600"))
    except (KeyError, ValueError) as exc:
        print(f"inference-load: bad settings: {exc}", file=sys.stderr)
        return 2
    if not isinstance(settings, dict) or not all(str(k).startswith("LG_") for k in settings):
        print("inference-load: LG_ENV must be a JSON object of LG_* settings", file=sys.stderr)
        return 2
    os.makedirs(SAMPLES, exist_ok=True)
    env = {**os.environ, **{str(k): str(v) for k, v in settings.items()}, "LG_SAMPLES_DIR": SAMPLES}
    here = os.path.dirname(os.path.abspath(__file__))
    command = [sys.executable, "-m", "locust", "-f", os.path.join(here, "locustfile.py"), *args]
    print("inference-load: " + shlex.join(command), flush=True)
    try:
        code = subprocess.run(command, env=env, timeout=deadline, check=False).returncode
    except subprocess.TimeoutExpired:
        print(f"inference-load: locust ran past {deadline:g} s; stopped", file=sys.stderr)
        return 1
    parts = []
    for path in sorted(glob.glob(os.path.join(SAMPLES, "samples-*.jsonl"))):
        with open(path) as handle:
            parts.append(handle.read())
    text = "".join(parts)
    blob = base64.b64encode(gzip.compress(text.encode(), 6)).decode()
    print(BEGIN)
    for i in range(0, len(blob), 16384):
        print(blob[i : i + 16384])
    print(END, flush=True)
    if os.environ.get("MESH") == "true":
        _stop_sidecar()
    return code


def _stop_sidecar() -> None:
    """A Job with an Istio sidecar (not a native sidecar) never completes unless the proxy is told to exit."""
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:15020/quitquitquit", method="POST"), timeout=5)
    except OSError as exc:
        print(f"inference-load: could not stop the Istio sidecar: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
