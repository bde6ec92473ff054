#!/bin/sh
# Runs the fio matrix against the volume at $FIO_TARGET (a directory, or a block device), checking first that the
# working set fits, and prints fio's JSON result (the suite parses it).
set -eu
target="${FIO_TARGET:?}"
size_bytes() {  # fio-style size (256m, 1g, 512k, plain bytes) -> bytes
  case "$1" in
    *[kK]) echo $(( ${1%?} * 1024 ));;
    *[mM]) echo $(( ${1%?} * 1024 * 1024 ));;
    *[gG]) echo $(( ${1%?} * 1024 * 1024 * 1024 ));;
    *) echo "$1";;
  esac
}
need=$(size_bytes "$FIO_SIZE")
if [ -b "$target" ]; then
  FIO_FILENAME="$target"
  have=$(blockdev --getsize64 "$target")
else
  FIO_FILENAME="$target/aibench-fio.dat"
  have=$(( $(df -Pk "$target" | awk 'NR==2 {print $4}') * 1024 ))
fi
if [ "$need" -gt "$have" ]; then
  echo "aibench: fio working set $FIO_SIZE ($need bytes) does not fit the volume at $target ($have bytes free)" >&2
  exit 2
fi
# sequential workers each take their own slice of the working set
FIO_JOB_SIZE=$(( need / FIO_NUMJOBS ))
export FIO_FILENAME FIO_JOB_SIZE
fio --version >&2
fio --output-format=json --output="$FIO_RESULT_DIR/fio.json" /opt/aibench/matrix.fio
cat "$FIO_RESULT_DIR/fio.json"
if [ ! -b "$target" ]; then rm -f "$FIO_FILENAME"; fi
