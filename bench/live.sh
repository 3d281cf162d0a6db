#!/usr/bin/env bash
# Live-path benchmarks against real peers (install them with ../shared/peers/install.sh):
#   CPU per WebRTC viewer at 1, 10 and 50 viewers of a 720p 2 Mbit/s camera (whep_load.py + cpu.sh),
#   glass-to-glass latency with the barcode source (whep_client.py --stamp and Chromium),
#   first-frame time for a running and for a cold channel (whep_client.py),
#   RSS and ingest CPU of 100 channels (examples/bench_channels.rs).
# Usage: bench/live.sh [out.json]   (prints figures; one JSON line per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=$(cd ../shared/peers && pwd)
PEERS_HOME=${PEERS_HOME:-$HOME/.cache/peers}
PY="$PEERS_HOME/venv/bin/python"
OUT=${1:-bench/out/live.jsonl}
mkdir -p "$(dirname "$OUT")"; : > "$OUT"
cargo build --release -p vantage --bin vantage --example bench_channels
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RTSP=$(free_port); HTTP=$(free_port); UDP=$(free_port)
TMP=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
record() { echo "$1" | tee -a "$OUT"; }

/usr/bin/python3 "$PEERS/gst_rtsp_server.py" --port "$RTSP" --copies 100 --latency > "$TMP/gst.log" 2>&1 &
PIDS+=($!); GST=$!
for _ in $(seq 100); do grep -q READY "$TMP/gst.log" && break; sleep 0.1; done

{
  echo "server: { listen: \"127.0.0.1:$HTTP\" }"
  echo "webrtc: { udp_port: $UDP, bind: 127.0.0.1, advertise: [127.0.0.1] }"
  echo "live: { idle_grace: 10s }"
  echo "agencies: [{ id: OTHER, max_streams: 1000 }]"
  echo "limits: { max_streams: 1000 }"
  echo "cameras:"
  echo "  - { id: cam-720, agency: OTHER, rtsp_url: \"rtsp://127.0.0.1:$RTSP/h264_720p\" }"
  echo "  - { id: cam-lat, agency: OTHER, rtsp_url: \"rtsp://127.0.0.1:$RTSP/latency_h264_720p\" }"
  for i in $(seq 1 10); do echo "  - { id: cold-$i, agency: OTHER, rtsp_url: \"rtsp://127.0.0.1:$RTSP/cam$i\" }"; done
} > "$TMP/vantage.yaml"
RUST_LOG=warn target/release/vantage serve --config "$TMP/vantage.yaml" > "$TMP/vantage.log" 2>&1 &
PIDS+=($!); V=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP/healthz" >/dev/null && break; sleep 0.1; done
BASE="http://127.0.0.1:$HTTP"

# CPU per viewer. whep_load.py ramps N viewers, settles 3 s, then measures 20 s; cpu.sh samples
# Vantage over 15 s inside that window.
for n in 1 10 50; do
  "$PY" "$PEERS/whep_load.py" "$BASE/whep/cameras/cam-720" "$n" --seconds 20 > "$TMP/load.json" &
  LP=$!
  sleep $(python3 -c "print(3 + 0.05*$n + 4)")
  cpu=$(bash "$PEERS/cpu.sh" 15 "$V")
  wait "$LP"
  pct=$(echo "$cpu" | sed -E 's/.*pids_cpu_pct=([0-9.]+).*/\1/')
  record "{\"bench\":\"cpu_per_viewer\",\"viewers\":$n,\"vantage_cpu_pct\":$pct,\"per_viewer_pct\":$(python3 -c "print(round($pct/$n,3))"),\"load\":$(cat "$TMP/load.json"),\"cpu_sh\":\"$cpu\"}"
  sleep 2
done

# Glass-to-glass latency: barcode source -> Vantage -> aiortc (decodes, reads the barcode).
record "{\"bench\":\"latency_aiortc\",\"result\":$("$PY" "$PEERS/whep_client.py" "$BASE/whep/cameras/cam-lat" --seconds 15 --stamp --no-audio)}"
# ... and -> Chromium.
record "{\"bench\":\"latency_chromium\",\"result\":$(node "$PEERS/whep_chromium.js" whep "$BASE/whep/cameras/cam-lat" 15 --stamp | tail -1)}"

# First frame: running channel (cam-720 kept warm by a background viewer) and cold channels.
"$PY" "$PEERS/whep_client.py" "$BASE/whep/cameras/cam-720" --seconds 40 --no-audio > /dev/null &
WARM=$!
sleep 3
for i in 1 2 3 4 5; do
  record "{\"bench\":\"first_frame_running\",\"result\":$("$PY" "$PEERS/whep_client.py" "$BASE/whep/cameras/cam-720" --seconds 2 --no-audio)}"
done
for i in 1 2 3 4 5; do
  record "{\"bench\":\"first_frame_cold\",\"result\":$("$PY" "$PEERS/whep_client.py" "$BASE/whep/cameras/cold-$i" --seconds 2 --no-audio)}"
done
for i in 6 7 8; do
  record "{\"bench\":\"first_frame_chromium_cold\",\"result\":$(node "$PEERS/whep_chromium.js" whep "$BASE/whep/cameras/cold-$i" 3 | tail -1)}"
done
wait "$WARM" || true
kill "$V"; wait "$V" 2>/dev/null || true

# RSS and ingest CPU of 100 channels without viewers (720p 2 Mbit/s each).
record "{\"bench\":\"channels_100\",\"result\":$(target/release/examples/bench_channels "rtsp://127.0.0.1:$RTSP/cam{n}" 100 15)}"
kill -0 "$GST" && echo "gst_rtsp_server still alive" >&2
