#!/usr/bin/env bash
# Readers beside recording (issue 10): CAMERAS (100) cameras recording at 4 Mbit/s
# (examples/bench_recording.rs), run WITHOUT and then WITH 20 playback readers and 10 exports busy
# during the measured seconds (`--readers`), back to back, same length; prints the recording lag
# p50/p99/max and frames lost of each and the ratio, and the readers' own figures.
# Both runs get a byte budget (MAX_USAGE_GB) above what they write, so retention never deletes the
# recent video the readers ask for (bench/recording.sh sets half of it, to exercise retention:
# here that would delete most of each camera's first minute, and readers would ask for it).
# Usage: bench/readers.sh [out.jsonl]   (env: CAMERAS=100 SECONDS_PER_RUN=60 WARMUP=10 KBPS=4000
#        PLAYBACK_READERS=20 EXPORT_SLOTS=10 WRITER_THREADS=2 BENCH_TMP=/var/tmp MAX_USAGE_GB=)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/readers.jsonl}
N=${CAMERAS:-100}
SECS=${SECONDS_PER_RUN:-60}
WARMUP=${WARMUP:-10}
KBPS=${KBPS:-4000}
THREADS=${WRITER_THREADS:-2}
READERS=${PLAYBACK_READERS:-20}
SLOTS=${EXPORT_SLOTS:-10}
BASE=${BENCH_TMP:-/var/tmp}
MAX_GB=${MAX_USAGE_GB:-$(awk -v n="$N" -v k="$KBPS" -v s="$((SECS + WARMUP + 5))" 'BEGIN {printf "%.1f", n * k * s / 8e6 * 1.5}')}
mkdir -p "$(dirname "$OUT")"
cargo build --release -p vantage --example bench_recording
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- crates 2>/dev/null || commit="$commit+dirty"
fstype=$(stat -f -c %T "$BASE")
if [ "$fstype" = tmpfs ]; then echo "$BASE is tmpfs; set BENCH_TMP to a directory on a disk" >&2; exit 1; fi
# What a run writes (retention keeps about half) plus exports in flight, plus 2 GB of margin.
need_mb=$(( N * KBPS * (SECS + WARMUP + 5) / 8 / 1000 + 2000 ))
avail_mb=$(df -Pm "$BASE" | awk 'NR==2 {print $4}')
if [ "$avail_mb" -lt "$need_mb" ]; then echo "need ${need_mb} MB free in $BASE, have ${avail_mb}" >&2; exit 1; fi
TMP=$(mktemp -d "$BASE/vantage-readers.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

lines=()
for mode in without with; do
  extra=()
  if [ "$mode" = with ]; then extra=(--readers --playback-readers "$READERS" --export-slots "$SLOTS"); fi
  sync
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "== $N cameras x ${KBPS} kbit/s, ${WARMUP} s warm-up + ${SECS} s measured, $mode readers (load: $load)" >&2
  line=$(target/release/examples/bench_recording --cameras "$N" --seconds "$SECS" --warmup "$WARMUP" \
    --bitrate-kbps "$KBPS" --writer-threads "$THREADS" --max-usage-gb "$MAX_GB" --dir "$TMP/rec-$mode" "${extra[@]}")
  line="{\"date\":\"$(date -u +%FT%TZ)\",\"commit\":\"$commit\",\"disk_fs\":\"$fstype\",\"nproc\":$(nproc),\"loadavg_start\":\"$load\",\"mode\":\"$mode readers\",${line#\{}"
  echo "$line" >> "$OUT"
  lines+=("$line")
  rm -rf "$TMP/rec-$mode"
done

python3 - "${lines[@]}" <<'PY'
import json, sys
a, b = (json.loads(x) for x in sys.argv[1:3])
def row(name, f):
    x, y = f(a), f(b)
    ratio = f"{y / x:.2f}" if isinstance(x, (int, float)) and x else "-"
    print(f"  {name:<34} {x!s:>12} {y!s:>12} {ratio:>8}")
print(f"  {'':<34} {'without':>12} {'with':>12} {'ratio':>8}")
row("lag p50 (ms, bucket bound)", lambda r: r["lag_ms"]["p50_le"])
row("lag p95 (ms, bucket bound)", lambda r: r["lag_ms"]["p95_le"])
row("lag p99 (ms, bucket bound)", lambda r: r["lag_ms"]["p99_le"])
row("lag max (ms)", lambda r: r["lag_ms"]["max_whole_run"])
row("frames lost in hub queue", lambda r: r["frames"]["lost_in_hub_queue"])
row("frames skipped by segmenter", lambda r: r["frames"]["skipped_by_segmenter"])
row("fragments dropped", lambda r: r["frames"]["dropped_fragments"])
row("write errors", lambda r: r["write_errors"])
row("writes per GOP", lambda r: r["writes_per_gop"])
row("recorder CPU (% of one core)", lambda r: r["cpu_pct_of_one_core"]["recorder"])
row("process CPU (% of one core)", lambda r: r["cpu_pct_of_one_core"]["process"])
row("machine busy (% of 2 cores)", lambda r: r["cpu_pct_of_one_core"]["machine_busy_pct_of_all_cores"])
row("iowait (% of 2 cores)", lambda r: r["cpu_pct_of_one_core"]["machine_iowait_pct_of_all_cores"])
row("feeder late max (ms)", lambda r: r["feeder_late_max_ms"])
row("load average at start", lambda r: r["loadavg_start"])
row("load average at end", lambda r: r["loadavg_end"])
rd = b["readers"]
print(f"  readers: {rd['playback_readers']} playback readers, {rd['playback_requests']} requests "
      f"({rd['playback_requests_per_s']}/s, {rd['playback_failures']} failed), {rd['playback_mbyte_per_s']} MB/s read, "
      f"reader threads {rd['readers_cpu_pct_of_one_core']} % of one core")
print(f"  exports: {rd['export_slots']} slots, {rd['exports_completed']} completed ({rd['export_failures']} failed), "
      f"mean {rd['export_mbyte_mean']} MB in {rd['export_s_mean']} s = {rd['export_mbyte_per_s_each']} MB/s each, "
      f"{rd['export_mbyte_per_s_total']} MB/s in all")
PY
