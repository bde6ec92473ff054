#!/bin/sh
# What NVIDIA devices this container can reach, as the real tools report them. The format (marker lines around
# nvidia-smi's own output) is read by harness/parsers/cuda.py parse_device_probe.
# nvidia-smi -L lists the GPUs whose device nodes the container runtime exposed: on a real node that is the device
# plugin's (or DRA driver's) allocation, so it is the isolation truth; CUDA_VISIBLE_DEVICES only hides GPUs from CUDA.
start=$(date +%s)
echo "aibench-probe: begin nvidia-smi -L"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi -L 2>&1
  rc=$?
else
  rc=127
fi
echo "aibench-probe: end nvidia-smi -L rc=$rc"
echo "aibench-probe: env NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES-}"
echo "aibench-probe: env CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-}"
echo "aibench-probe: dev $(ls /dev/nvidia[0-9]* 2>/dev/null | tr '\n' ' ')"
driver=""
if [ "$rc" = 0 ]; then
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
fi
echo "aibench-probe: driver $driver"
# hold the devices (HOLD_S seconds) so pods probed together overlap in time; the window says when they were held
sleep "${HOLD_S:-0}"
echo "aibench-probe: window $start $(date +%s)"
