#!/bin/sh
# iperf3 client: retry until the server pod listens (bounded by WAIT_S), then print exactly one iperf3 -J
# document on stdout (the iperf parser reads it); progress goes to stderr.
set -u
deadline=$(( $(date +%s) + ${WAIT_S:-180} ))
out=/work/iperf3.json
while :; do
  # shellcheck disable=SC2086  # EXTRA_ARGS is a list of flags
  iperf3 -c "$TARGET" -p "$PORT" -t "$DURATION_S" -O "$OMIT_S" -P "$STREAMS" -J $EXTRA_ARGS > "$out"
  rc=$?
  if [ "$rc" -eq 0 ] && ! grep -q '"error"' "$out"; then
    break
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "iperf3 client: server $TARGET:$PORT not usable within ${WAIT_S}s" >&2
    cat "$out"
    exit 1
  fi
  grep '"error"' "$out" >&2
  sleep 1
done
cat "$out"
