#!/bin/bash
# MPIJob launcher: mpirun one rank per GPU over the operator's hostfile, NCCL_DEBUG=INFO forwarded to every rank,
# and the NCCL tuning variables forwarded only when set. A hung run is cut by `timeout` and fails with the last
# lines of NCCL's log on stderr; nccl-tests exits non-zero on wrong results (#wrong > 0).
set -u -o pipefail
forward=(-x LD_LIBRARY_PATH -x NCCL_DEBUG=INFO)
for name in NCCL_SOCKET_IFNAME NCCL_IB_HCA NCCL_IB_GID_INDEX NCCL_ALGO; do
  [ -n "${!name:-}" ] && forward+=(-x "$name")
done
timeout --signal=TERM --kill-after=10 "$RUN_TIMEOUT_S" \
  mpirun -np "$RANKS" --bind-to none --tag-output "${forward[@]}" \
  "/opt/nccl_tests/build/${NCCL_OP}_perf" -b "$MIN_BYTES" -e "$MAX_BYTES" -f 2 -g 1 -w "$WARMUP" -n "$ITERS" -c 1 \
  2>&1 | tee /tmp/nccl.log
rc=$?
if [ "$rc" -eq 124 ]; then
  echo "nccl-tests: ${NCCL_OP}_perf hung: no result within ${RUN_TIMEOUT_S}s; last NCCL lines:" >&2
  tail -n 20 /tmp/nccl.log >&2
fi
exit "$rc"
