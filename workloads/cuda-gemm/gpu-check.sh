#!/bin/sh
# One-command GPU check on a machine with an NVIDIA GPU: the compute suite against the embedded target, which
# exposes the host's GPUs (NVML) as nvidia.com/gpu on the host node, so pods run gpu_bench.py and probe.sh on the
# real GPUs. Prints the PASS/FAIL line and the report path; the exit code is k8s-ai-bench's (0 = nothing failed).
#
# Run as root (as the README's setup does). Needs on the host: the NVIDIA driver (nvidia-smi on PATH), and in the harness venv PyTorch with CUDA and
# nvidia-ml-py (pip install -e . already brings nvidia-ml-py; torch: .venv/bin/pip install torch).
# Usage: workloads/cuda-gemm/gpu-check.sh [extra k8s-ai-bench run options, e.g. --profile h100-sxm-8x-ib400]
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
if [ "$(id -u)" != 0 ]; then
  # the embedded kubelet mounts each pod's volumes (the scripts ConfigMap) in its own mount namespace only as root
  echo "gpu-check: run as root (the embedded target mounts pod volumes in per-container mount namespaces)" >&2
  exit 2
fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L; then
  echo "gpu-check: nvidia-smi is missing or lists no GPU: install the NVIDIA driver first" >&2
  exit 2
fi
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu-check: the harness venv has no CUDA-enabled PyTorch: .venv/bin/pip install torch" >&2
  exit 2
fi
.venv/bin/python -c "import pynvml" 2>/dev/null || .venv/bin/pip install -q nvidia-ml-py
exec .venv/bin/k8s-ai-bench run -m compute "$@"
