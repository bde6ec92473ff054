"""Prints one AIBENCH result block, then exits with the requested code."""

import json
import os
import sys

value, code = float(sys.argv[1]), int(sys.argv[2])
index = os.environ.get("JOB_COMPLETION_INDEX", "0")
print("some tool output before the block")
print("===AIBENCH-RESULT-BEGIN===")
print(json.dumps({"measurements": [{"metric": "value", "value": value, "unit": "count", "labels": {"index": index}}]}))
print("===AIBENCH-RESULT-END===")
sys.exit(code)
