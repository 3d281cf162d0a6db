#!/usr/bin/env python3
"""Test viewer on aiortc: POSTs a WHEP offer, decodes video, and prints one JSON line with what a
person would see: frames decoded, their arrival times (Unix seconds), and a small
grayscale thumbnail plus mean RGB of one decoded frame. Loopback only.

  $PEERS_HOME/venv/bin/python whep_probe.py URL [--seconds 10] [--thumb-at 50] [--no-delete]

Prints `CONNECTED` on stdout once the WHEP answer is applied, then the JSON line at the end.
"""
import argparse, asyncio, json, sys, time
import aiohttp
import aioice.ice
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
from aiortc import RTCPeerConnection, RTCSessionDescription, RTCConfiguration


async def run(a):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    t0 = time.time()
    res = {"frames": 0, "arrivals": []}

    async def consume(track):
        import numpy as np
        while True:
            try:
                fr = await track.recv()
            except Exception:
                break
            now = time.time()
            res["frames"] += 1
            res["arrivals"].append(round(now, 3))
            if res["frames"] == a.thumb_at:
                rgb = fr.to_ndarray(format="rgb24").astype("float32")
                h, w, _ = rgb.shape
                res["size"] = f"{w}x{h}"
                res["mean_rgb"] = [round(float(x), 1) for x in rgb.reshape(-1, 3).mean(axis=0)]
                gray = rgb.mean(axis=2)
                th, tw = 9, 16
                gray = gray[: h - h % th, : w - w % tw]
                small = gray.reshape(th, gray.shape[0] // th, tw, gray.shape[1] // tw).mean(axis=(1, 3))
                res["thumb"] = [round(float(v), 1) for v in small.flatten()]

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":
            asyncio.ensure_future(consume(track))

    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as s:
        async with s.post(a.url, data=pc.localDescription.sdp,
                          headers={"Content-Type": "application/sdp"}) as r:
            body = await r.text()
            res["http_status"] = r.status
            loc = r.headers.get("Location")
            if r.status != 201:
                res["error"] = body[:500]
                print(json.dumps(res), flush=True)
                await pc.close()
                return 1
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        print("CONNECTED", flush=True)
        await asyncio.sleep(a.seconds)
        await pc.close()
        if loc and not a.no_delete:
            from urllib.parse import urljoin
            try:
                async with s.delete(urljoin(a.url, loc)) as r:
                    res["delete_status"] = r.status
            except Exception as e:
                res["delete_error"] = str(e)
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--thumb-at", type=int, default=50)
    ap.add_argument("--no-delete", action="store_true")
    sys.exit(asyncio.run(run(ap.parse_args())))
