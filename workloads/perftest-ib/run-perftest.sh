#!/bin/bash
# perftest between two pods: `server` starts one perftest server per HCA (port base + i) and waits for them all;
# `client` runs the same test against each HCA in turn, retrying the first connection while the server starts.
# Every table is printed to stdout (the perftest parser labels each by its Device line). Bounded by WAIT_S.
set -u -o pipefail
mode="$1"
IFS=',' read -r -a devices <<< "$DEVICES"
common=(-s "$SIZE" -D "$DURATION_S" -F)
[[ "$TEST" == *_bw ]] && common+=(--report_gbits)
[ -n "$GID_INDEX" ] && common+=(-x "$GID_INDEX")
[ -n "$USE_CUDA" ] && common+=("--use_cuda=$USE_CUDA")
if [ "$mode" = server ]; then
  pids=()
  for i in "${!devices[@]}"; do
    timeout "$WAIT_S" "$TEST" -d "${devices[$i]}" -p $((PORT + i)) "${common[@]}" &
    pids+=($!)
  done
  status=0
  for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
  exit $status
fi
deadline=$(( $(date +%s) + WAIT_S ))
status=0
for i in "${!devices[@]}"; do
  while :; do
    out=$("$TEST" -d "${devices[$i]}" -p $((PORT + i)) "${common[@]}" "$SERVER" 2>&1)
    rc=$?
    if [ $rc -eq 0 ] || [ "$(date +%s)" -ge "$deadline" ] || ! grep -qi "couldn't connect\|unable to connect\|connection refused" <<< "$out"; then
      break
    fi
    sleep 1
  done
  echo "$out"
  if [ $rc -ne 0 ]; then
    echo "perftest: $TEST on ${devices[$i]} failed (exit $rc)" >&2
    status=$rc
  fi
done
exit $status
