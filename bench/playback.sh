#!/usr/bin/env bash
# Playback time-to-first-byte benchmark (issue 10): `recorder::playback::mp4` at random
# timestamps over an index holding a day of CAMERAS cameras (examples/bench_playback.rs; real
# segment files from the recorder's segmenter with tiny frames, hard-linked across cameras).
# Usage: bench/playback.sh [out.jsonl]   (env: CAMERAS=100 REQUESTS=1000 SPAN_S=60 BENCH_TMP=/var/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/playback.jsonl}
CAMERAS=${CAMERAS:-100}
REQUESTS=${REQUESTS:-1000}
SPAN_S=${SPAN_S:-60}
BASE=${BENCH_TMP:-/var/tmp}
mkdir -p "$(dirname "$OUT")"
cargo build --release -p vantage --example bench_playback
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- crates 2>/dev/null || commit="$commit+dirty"
DIR=$(mktemp -d "$BASE/vantage-playback.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
line=$(target/release/examples/bench_playback "$DIR/rec" "$CAMERAS" "$REQUESTS" "$SPAN_S")
du_kib=$(du -sk "$DIR/rec" | cut -f1)
line="{\"date\":\"$(date -u +%FT%TZ)\",\"commit\":\"$commit\",\"disk_kib\":$du_kib,${line#\{}"
echo "$line" | tee -a "$OUT"
