// Headless Chromium (Debian) via playwright-core as a WHEP viewer that samples its receive stats
// once a second, so a test can look at a window (e.g. after a camera restart) rather than at the
// whole session. Signalling is done from Node; the page holds the RTCPeerConnection (video and
// audio recvonly, as a browser player offers).
//   node whep_chromium_series.js WHEP_URL SECONDS
// Prints one JSON line: { http_status, samples: [{ at (unix s), framesReceived, framesDecoded,
// framesDropped, jbDelay (s, cumulative), jbCount, keyFramesDecoded, packetsLost }] }.
const home = process.env.PEERS_HOME || (require('os').homedir() + '/.cache/peers');
const { chromium } = require(home + '/npm/node_modules/playwright-core');

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns'];

(async () => {
  const [url, secsArg] = process.argv.slice(2);
  const secs = Number(secsArg || 30);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
  const out = { samples: [] };
  try {
    const page = await browser.newPage();
    await page.setContent('<video id=v muted autoplay playsinline></video>');
    const offer = await page.evaluate(async () => {
      const pc = new RTCPeerConnection({ iceServers: [] });
      window.pc = pc;
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.ontrack = e => { if (e.track.kind === 'video') { const v = document.getElementById('v'); v.srcObject = new MediaStream([e.track]); v.play().catch(() => {}); } };
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); setTimeout(r, 2000); });
      return pc.localDescription.sdp;
    });
    const resp = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
    const answer = await resp.text();
    out.http_status = resp.status;
    if (resp.status !== 201) { out.error = answer.slice(0, 300); throw new Error('WHEP POST ' + resp.status); }
    await page.evaluate(async a => window.pc.setRemoteDescription({ type: 'answer', sdp: a }), answer);
    const end = Date.now() + secs * 1000;
    while (Date.now() < end) {
      await page.waitForTimeout(1000);
      const s = await page.evaluate(async () => {
        const st = await window.pc.getStats(); let inb = null;
        st.forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video') inb = r; });
        return inb && { framesReceived: inb.framesReceived || 0, framesDecoded: inb.framesDecoded || 0,
          framesDropped: inb.framesDropped || 0, jbDelay: inb.jitterBufferDelay || 0, jbCount: inb.jitterBufferEmittedCount || 0,
          keyFramesDecoded: inb.keyFramesDecoded || 0, packetsLost: inb.packetsLost || 0 };
      });
      if (s) out.samples.push({ at: Date.now() / 1000, ...s });
    }
    out.connection_state = await page.evaluate(() => window.pc.connectionState);
  } catch (e) {
    out.error = out.error || String(e);
  }
  console.log(JSON.stringify(out));
  await browser.close();
})();
