#!/usr/bin/env bash
# Reservation API benchmark: reserve + release pairs over HTTP with concurrent clients against a
# `vantage serve` process (release build), at several concurrency levels.
# Usage: bench/reserve.sh [out.jsonl]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/out/reserve.jsonl}
mkdir -p "$(dirname "$OUT")"; : > "$OUT"
cargo build --release -p vantage --bin vantage --example bench_reserve
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=$(free_port); UDP=$(free_port); TMP=$(mktemp -d)
{
  echo "server: { listen: \"127.0.0.1:$HTTP\" }"
  echo "webrtc: { udp_port: $UDP, bind: 127.0.0.1 }"
  echo "storage: { data_dir: \"$TMP/data\" }"
  echo "limits: { max_streams: 100000, max_streams_per_user: 16 }"
  echo "agencies: [{ id: OTHER, max_streams: 100000 }]"
  echo "cameras:"
  for i in $(seq 0 63); do echo "  - { id: bench-$i, agency: OTHER, rtsp_url: \"rtsp://127.0.0.1:9/x\" }"; done
} > "$TMP/vantage.yaml"
RUST_LOG=warn target/release/vantage serve --config "$TMP/vantage.yaml" > "$TMP/vantage.log" 2>&1 &
V=$!
trap 'kill $V 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP/healthz" >/dev/null && break; sleep 0.1; done
for c in 1 8 32; do
  r=$(target/release/examples/bench_reserve "http://127.0.0.1:$HTTP" 64 "$c" 10)
  audit=$(curl -sf "http://127.0.0.1:$HTTP/api/v1/audit?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dropped"])')
  echo "{\"bench\":\"reserve_release_http\",\"result\":$r,\"audit_dropped_total\":$audit}" | tee -a "$OUT"
done
