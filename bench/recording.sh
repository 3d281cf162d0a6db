#!/usr/bin/env bash
# Recording benchmark (issue 5): 100 and 500 cameras recording looped fixture clips padded to
# 4 Mbit/s each (examples/bench_recording.rs): CPU of the recorder's threads and of the feeder,
# writes/s vs GOPs/s, MB/s, frame-arrival-to-disk lag, frames skipped, index bytes per camera-day.
# Usage: bench/recording.sh [out.jsonl]   (env: SECONDS_PER_RUN=60 WARMUP=10 KBPS=4000
#        CAMERAS="100 500" WRITER_THREADS=2 BENCH_TMP=/var/tmp AUDIO=1 to add AAC audio to every camera)
# The recordings go to a temporary directory on a real disk (not tmpfs), deleted afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/recording.jsonl}
SECS=${SECONDS_PER_RUN:-60}
WARMUP=${WARMUP:-10}
KBPS=${KBPS:-4000}
CAMERAS=${CAMERAS:-"100 500"}
THREADS=${WRITER_THREADS:-2}
BASE=${BENCH_TMP:-/var/tmp}
AUDIO_ARG=()
if [ "${AUDIO:-0}" = 1 ]; then AUDIO_ARG=(--audio); fi
mkdir -p "$(dirname "$OUT")"

cargo build --release -p vantage --examples --bin vantage
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- crates 2>/dev/null || commit="$commit+dirty"

fstype=$(stat -f -c %T "$BASE")
if [ "$fstype" = tmpfs ]; then echo "$BASE is tmpfs; set BENCH_TMP to a directory on a disk" >&2; exit 1; fi
TMP=$(mktemp -d "$BASE/vantage-recording.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT

for n in $CAMERAS; do
  # Everything the run writes (retention keeps only about half of it), plus 2 GB of margin.
  need_mb=$(( n * KBPS * (SECS + WARMUP + 5) / 8 / 1000 + 2000 ))
  avail_mb=$(df -Pm "$TMP" | awk 'NR==2 {print $4}')
  secs=$SECS
  if [ "$avail_mb" -lt "$need_mb" ]; then
    secs=$(( (avail_mb - 2000) * 8 * 1000 / (n * KBPS) - WARMUP - 5 ))
    if [ "$secs" -lt 10 ]; then echo "not enough disk for $n cameras (${avail_mb} MB free)" >&2; exit 1; fi
    echo "only ${avail_mb} MB free (want ${need_mb}): $n cameras for ${secs} s instead of ${SECS} s" >&2
  fi
  sync
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "== $n cameras x ${KBPS} kbit/s, ${WARMUP} s warm-up + ${secs} s measured (load: $load)" >&2
  line=$(target/release/examples/bench_recording --cameras "$n" --seconds "$secs" \
    --warmup "$WARMUP" --bitrate-kbps "$KBPS" --writer-threads "$THREADS" --dir "$TMP/rec-$n" "${AUDIO_ARG[@]}")
  line="{\"date\":\"$(date -u +%FT%TZ)\",\"commit\":\"$commit\",\"disk_fs\":\"$(stat -f -c %T "$TMP")\",\"nproc\":$(nproc),\"loadavg_start\":\"$load\",${line#\{}"
  echo "$line" | tee -a "$OUT"
  python3 - "$line" <<'EOF' >&2
import json, sys
r = json.loads(sys.argv[1]); c = r["cpu_pct_of_one_core"]; l = r["lag_ms"]; f = r["frames"]; i = r["index"]
print(f"  recorder CPU {c['recorder']} % of one core (writers {c['rec_writers']}, syncer {c['rec_syncer']}, "
      f"retention {c['rec_retention']}); feeder {c['feeder']} %; process {c['process']} %; "
      f"machine busy {c['machine_busy_pct_of_all_cores']} % of 2 cores, iowait {c['machine_iowait_pct_of_all_cores']} %")
print(f"  writes/s {r['writes_per_s']} vs GOPs/s {r['gops_per_s']} (writes per GOP {r['writes_per_gop']}); "
      f"{r['mbyte_per_s']} MB/s; syncs/s {r['syncs_per_s']}")
print(f"  lag p50 <= {l['p50_le']} ms, p95 <= {l['p95_le']} ms, p99 <= {l['p99_le']} ms, max {l['max_whole_run']} ms")
a = r.get("audio", {})
if a.get("enabled"):
    print(f"  audio frames into segmenter {a['into_segmenter']}, written {a['written']}, skipped {a['skipped']}")
print(f"  frames lost in hub queue {f['lost_in_hub_queue']}, skipped by segmenter {f['skipped_by_segmenter']}, "
      f"dropped fragments {f['dropped_fragments']}, write errors {r['write_errors']}")
print(f"  index: {i['raw_bytes_per_camera_day_recorded']:.0f} B/camera-day raw (db+wal), "
      f"{i['used_bytes_per_camera_day_held']:.0f} B/camera-day settled; "
      f"{i['segments_per_camera_day_held']:.0f} segments, {i['keyframes_per_camera_day_held']:.0f} key frames per camera-day held; "
      f"{i['bytes_per_segment_row']:.0f} B/segment row, {i['bytes_per_keyframe_row']} B/key-frame row "
      f"-> {i['steady_bytes_per_camera_day']:.0f} B per steady camera-day (60 s segments, 2 s GOP)")
EOF
  rm -rf "$TMP/rec-$n"
  sync
done
