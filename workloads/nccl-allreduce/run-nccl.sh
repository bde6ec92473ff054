#!/bin/bash
# nccl-tests on one node: every GPU of the pod driven by one process (-g), NCCL_DEBUG=INFO so the log shows the
# transports NCCL chose. A hung run is cut by `timeout` and fails with the last lines of NCCL's log on stderr;
# nccl-tests itself exits non-zero on wrong results (#wrong > 0).
set -u -o pipefail
for name in NCCL_IB_HCA NCCL_IB_GID_INDEX NCCL_SOCKET_IFNAME; do
  [ -n "${!name:-}" ] || unset "$name"
done
for name in NCCL_P2P_DISABLE NCCL_SHM_DISABLE; do
  [ "${!name:-0}" = "1" ] || unset "$name"
done
bin="${NCCL_TESTS_DIR}/${NCCL_OP}_perf"
if [ ! -x "$bin" ]; then
  echo "nccl-tests: no executable $bin in this image (workload param bin_dir)" >&2
  exit 2
fi
timeout --signal=TERM --kill-after=10 "$RUN_TIMEOUT_S" "$bin" -b "$MIN_BYTES" -e "$MAX_BYTES" -f "$STEP_FACTOR" \
  -g "$GPUS" -w "$WARMUP" -n "$ITERS" -c "$CHECK" 2>&1 | tee /work/nccl.log
rc=$?
if [ "$rc" -eq 124 ]; then
  echo "nccl-tests: ${NCCL_OP}_perf hung: no result within ${RUN_TIMEOUT_S}s; last NCCL lines:" >&2
  tail -n 20 /work/nccl.log >&2
fi
exit "$rc"
