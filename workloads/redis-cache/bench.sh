#!/bin/sh
# redis-cache: one bounded redis-benchmark run against a Redis Service. Prints redis-benchmark's own --csv output
# (parsed by harness/parsers/redis_benchmark.py); every refusal below is one line on stderr and exit status 2.

fail() {
    echo "redis-cache: $*" >&2
    exit 2
}

bounded() { # name value min max
    case "$2" in
        '' | *[!0-9]*) fail "$1 must be a whole number (got '$2')" ;;
    esac
    if [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then
        fail "$1=$2 is outside $3..$4 (the load is bounded)"
    fi
}

bounded port "$REDIS_PORT" 1 65535
bounded clients "$CLIENTS" 1 1000
bounded requests "$REQUESTS" 1 1000000
bounded value_size "$VALUE_SIZE" 1 1048576
bounded dbnum "$DBNUM" 0 15
bounded max_seconds "$MAX_SECONDS" 1 540
bounded wait_s "$WAIT_S" 0 300
case "$TESTS" in
    '' | *[!A-Za-z0-9_,]*) fail "tests must be comma-separated redis-benchmark test names such as set,get (got '$TESTS')" ;;
esac
[ -n "$REDIS_HOST" ] || fail "host is empty"

# redis-benchmark busy-loops when it cannot connect: first wait (bounded by wait_s) for PONG, which also rides out
# a Service whose endpoint is not ready yet, and say why it will not work when it never comes.
end=$(($(date +%s) + WAIT_S))
while :; do
    reply=$(timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>&1)
    [ "$reply" = "PONG" ] && break
    if [ "$(date +%s)" -ge "$end" ]; then
        fail "Redis at $REDIS_HOST:$REDIS_PORT did not answer PING with PONG within wait_s=$WAIT_S: ${reply:-no reply}"
    fi
    sleep 1
done

timeout "$MAX_SECONDS" redis-benchmark -h "$REDIS_HOST" -p "$REDIS_PORT" --dbnum "$DBNUM" \
    -c "$CLIENTS" -n "$REQUESTS" -d "$VALUE_SIZE" -t "$TESTS" --csv
status=$?
if [ "$status" -eq 124 ]; then
    fail "redis-benchmark did not finish $REQUESTS requests per test within max_seconds=$MAX_SECONDS"
fi
exit "$status"
