"""Writes an H.264 Annex B clip whose every frame carries the shared peers' barcode (stamp.py):
row B = the frame counter (0, 1, 2, ...), row A = the writer's wall-clock ms (unused by the tests).
25 fps, a key frame every 50 frames (2 s, closed GOP), no B-frames, like the peers' clips.

    /usr/bin/python3 stamped_clip.py OUT.h264 FRAMES [WIDTH HEIGHT]
"""
import os, subprocess, sys

sys.path.insert(0, os.environ["SHARED_PEERS"])
import stamp  # noqa: E402

out, frames = sys.argv[1], int(sys.argv[2])
w, h = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (640, 360)
enc = subprocess.Popen(
    ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}",
     "-r", "25", "-i", "-", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "20",
     "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-bf", "0", "-flags", "+cgop",
     "-f", "h264", out],
    stdin=subprocess.PIPE)
gen = stamp.FrameStamper(w, h)
for _ in range(frames):
    enc.stdin.write(gen.frame())
enc.stdin.close()
sys.exit(enc.wait())
