#!/usr/bin/env bash
# XProtect catalog sync benchmark: `vantage sim xprotect` (500 cameras in 25 nested groups) as a
# separate process, and one full sync as the node runs it (examples/bench_sync.rs), 5 times.
# Usage: bench/xprotect.sh [out.jsonl]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/out/xprotect.jsonl}
mkdir -p "$(dirname "$OUT")"; : > "$OUT"
cargo build --release -p vantage --bin vantage --example bench_sync
TMP=$(mktemp -d)
RUST_LOG=warn target/release/vantage sim xprotect --cameras 500 --groups 25 --h265-every 0 > "$TMP/sim.log" 2>&1 &
S=$!
trap 'kill $S 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do grep -q READY "$TMP/sim.log" && break; sleep 0.1; done
SERVER=$(sed -n 's/.*milestone.server_url: *//p' "$TMP/sim.log")
RTSP=$(sed -n 's/.*milestone.rtsp_base_url: *//p' "$TMP/sim.log")
for i in 1 2 3 4 5; do
  r=$(target/release/examples/bench_sync "$SERVER" "$RTSP" rta-integration sim-password)
  echo "{\"bench\":\"xprotect_full_sync_500\",\"run\":$i,\"result\":$r}" | tee -a "$OUT"
done
