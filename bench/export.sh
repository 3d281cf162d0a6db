#!/usr/bin/env bash
# Export benchmark (issue 10): speed in multiples of real time and peak RSS of one export of
# 5, 15 and 60 minutes of one 4 Mbit/s camera, page cache warm and cold
# (examples/bench_export.rs: a recording built once through the recorder's segmenter, then each
# export through `node::exports::Exports` in a fresh process).
# Usage: bench/export.sh [out.jsonl]   (env: LENGTHS="5 15 60" REC_MINUTES=63 KBPS=4000
#        CACHES="warm cold" BENCH_TMP=/var/tmp)
# The recording (~1.9 GB for 63 min) goes to a temporary directory on a real disk (not tmpfs),
# deleted afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/export.jsonl}
LENGTHS=${LENGTHS:-"5 15 60"}
REC_MINUTES=${REC_MINUTES:-63}
KBPS=${KBPS:-4000}
CACHES=${CACHES:-"warm cold"}
BASE=${BENCH_TMP:-/var/tmp}
mkdir -p "$(dirname "$OUT")"
cargo build --release -p vantage --example bench_export
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- crates 2>/dev/null || commit="$commit+dirty"

fstype=$(stat -f -c %T "$BASE")
if [ "$fstype" = tmpfs ]; then echo "$BASE is tmpfs; set BENCH_TMP to a directory on a disk" >&2; exit 1; fi
# The recording, plus the longest export written beside it, plus 1 GB of margin.
need_mb=$(( REC_MINUTES * 60 * KBPS / 8 / 1000 * 2 + 1000 ))
avail_mb=$(df -Pm "$BASE" | awk 'NR==2 {print $4}')
if [ "$avail_mb" -lt "$need_mb" ]; then echo "need ${need_mb} MB free in $BASE, have ${avail_mb}" >&2; exit 1; fi
DIR=$(mktemp -d "$BASE/vantage-export.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
BIN=target/release/examples/bench_export

stamp() { # prefixes a JSON line with the date, commit, filesystem and load average at its start
  echo "{\"date\":\"$(date -u +%FT%TZ)\",\"commit\":\"$commit\",\"disk_fs\":\"$fstype\",\"nproc\":$(nproc),\"loadavg_start\":\"$2\",${1#\{}"
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== building ${REC_MINUTES} min of one camera at ${KBPS} kbit/s (load: $load)" >&2
line=$("$BIN" build "$DIR" "$REC_MINUTES" "$KBPS")
stamp "$line" "$load" | tee -a "$OUT"
sync

for cache in $CACHES; do
  for m in $LENGTHS; do
    if [ "$cache" = warm ]; then
      # Every segment file in the page cache (as just after recording it).
      find "$DIR/rec" -name '*.mp4' -exec cat {} + > /dev/null
    fi
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "== export of $m min, page cache $cache (load: $load)" >&2
    line=$("$BIN" export "$DIR" "$m" "$cache")
    line=$(stamp "$line" "$load")
    echo "$line" | tee -a "$OUT"
    python3 - "$line" <<'PY' >&2
import json, sys
r = json.loads(sys.argv[1]); m = r["rss_kib"]
print(f"  {r['minutes']} min {r['cache']}: {r['wall_s']} s wall (99 % written at {r['written_99pct_s']} s) = "
      f"{r['x_realtime']}x real time, {r['mbyte_per_s']} MB/s, {r['bytes']} bytes, {r['frames']} frames, "
      f"CPU {r['cpu_s']} s; VmHWM {m['hwm_before']} -> {m['hwm_end']} KiB (+{m['hwm_growth']}); "
      f"load {r['loadavg_start']} -> {r['loadavg_end']}")
PY
  done
done
