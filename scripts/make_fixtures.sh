#!/usr/bin/env bash
# Regenerates the committed fixture clips in fixtures/clips/ (see fixtures/clips/README.md).
#
# Video clips: raw Annex B elementary streams, 25 fps, 10 s, closed GOP of 50 frames (2 s), no
# B-frames, scenecut off, parameter sets (VPS/SPS/PPS) repeated before every key frame.
# Audio clip: 10 s of AAC-LC in ADTS, 16 kHz mono, 32 kbit/s (ffmpeg's native aac encoder).
# Requires ffmpeg with libx264 and libx265. Usage: scripts/make_fixtures.sh [output-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../fixtures/clips}"
mkdir -p "$out"

command -v ffmpeg >/dev/null || { echo "ffmpeg not found" >&2; exit 1; }

FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
FPS=25
DUR=10
GOP=50
SIZE=640x360

# label TEXT -> a drawtext filter chain (label + frame number), or "null" when the font is missing.
label() {
  if [[ -f "$FONT" ]]; then
    printf "drawtext=fontfile=%s:text='%s':x=16:y=16:fontsize=32:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=6,drawtext=fontfile=%s:text='frame %%{frame_num}':x=16:y=h-52:fontsize=28:fontcolor=yellow:box=1:boxcolor=black@0.6:boxborderw=6" "$FONT" "$1" "$FONT"
  else
    echo "null"
  fi
}

X264_COMMON=(-c:v libx264 -preset medium -tune zerolatency -bf 0 -g $GOP -keyint_min $GOP
  -sc_threshold 0 -pix_fmt yuv420p -r $FPS -t $DUR)
x264() { # name profile bitrate filtergraph-input filter
  local name=$1 profile=$2 rate=$3 src=$4 vf=$5
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "$src" -vf "$vf" "${X264_COMMON[@]}" \
    -profile:v "$profile" -b:v "$rate" -maxrate "$rate" -bufsize "$rate" \
    -x264-params "repeat-headers=1:scenecut=0:open-gop=0:aud=1" \
    -f h264 "$out/$name"
}

x264 h264_a.h264 high 400k "testsrc2=size=$SIZE:rate=$FPS" "$(label 'CAM A testsrc2 H.264 High')"
x264 h264_b.h264 main 400k "color=c=0xb01010:size=$SIZE:rate=$FPS" \
  "drawbox=x='mod(t*120,560)':y=140:w=80:h=80:color=blue:t=fill,noise=alls=12:allf=t,$(label 'CAM B red Main')"
x264 h264_c.h264 baseline 400k "mandelbrot=size=$SIZE:rate=$FPS" "$(label 'CAM C mandelbrot Baseline')"
x264 h264_d.h264 high 400k "smptebars=size=$SIZE:rate=$FPS" \
  "drawbox=x=280:y='mod(t*60,300)':w=80:h=60:color=white:t=fill,$(label 'CAM D smptebars High')"

ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$SIZE:rate=$FPS" \
  -vf "hue=H=2*PI*t/10,$(label 'CAM H265 testsrc2 Main')" \
  -c:v libx265 -preset fast -profile:v main -pix_fmt yuv420p -r $FPS -t $DUR -b:v 400k \
  -x265-params "log-level=error:keyint=$GOP:min-keyint=$GOP:bframes=0:scenecut=0:open-gop=0:repeat-headers=1:aud=1" \
  -f hevc "$out/h265_a.h265"

# An 880 Hz tone with a 40 ms 1760 Hz beep at the start of every second (marks whole seconds, so
# audio/video sync can be checked by ear against the frame counter).
ffmpeg -hide_banner -loglevel error -y -f lavfi \
  -i "sine=frequency=880:beep_factor=2:sample_rate=16000:duration=$DUR" \
  -c:a aac -profile:a aac_low -b:a 32k -ar 16000 -ac 1 -f adts "$out/aac_16k_mono.adts"

ls -l "$out"
