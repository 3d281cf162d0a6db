#!/usr/bin/env bash
# Start-up recovery benchmark (issue 5): how long `Recorder::start` takes after a crash, for
# archives of different sizes (examples/bench_recovery.rs). Every camera has one torn `writing`
# segment to cut back and recover, its last two hours of files to check, and DAYS days of rows.
# Usage: bench/recovery.sh [out.jsonl]   (env: SIZES="100:1 100:5 500:1 500:3" BENCH_TMP=/var/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/recovery.jsonl}
SIZES=${SIZES:-"100:1 100:5 500:1 500:3"}
BASE=${BENCH_TMP:-/var/tmp}
mkdir -p "$(dirname "$OUT")"
cargo build --release -p vantage --example bench_recovery
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- crates 2>/dev/null || commit="$commit+dirty"
DIR=$(mktemp -d "$BASE/vantage-recovery.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
for s in $SIZES; do
  cams=${s%%:*}; days=${s##*:}
  line=$(target/release/examples/bench_recovery "$DIR/rec" "$cams" "$days")
  line="{\"date\":\"$(date -u +%FT%TZ)\",\"commit\":\"$commit\",${line#\{}"
  echo "$line" | tee -a "$OUT"
done
