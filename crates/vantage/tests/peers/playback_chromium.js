// Headless Chromium (Debian) via playwright-core, launched as the shared peers' whep_chromium.js
// launches it, playing Vantage's recorded playback (issue 10, design 0008):
//   node playback_chromium.js src BASE PATH SEEK_S
//     a page on the node's own origin (BASE, served by playwright's router) with
//     <video src=PATH>: waits for the first frame (loadeddata, then a seek to 0) and reads its
//     barcode (the picture at time 0, before playing), plays ~1 s counting presented frames
//     (requestVideoFrameCallback), then pauses, seeks to SEEK_S (media seconds) and reads the
//     barcode of the frame shown.
//   node playback_chromium.js mse BASE INIT_PATH SEEK_UNIX_S MEDIA_PATH...
//     fetches init.mp4 and each media.m4s (fetched separately, appended in the order given) into
//     one SourceBuffer (codec from the avcC), then seeks to SEEK_UNIX_S (the fragments' tfdt is
//     the wall clock since the epoch) and reads the barcode of the frame shown.
//   node playback_chromium.js hls BASE M3U8_PATH SEEK_S
//     hls.js (crates/vantage/tests/peers/node_modules, installed by `npm ci` there, as .ci/run
//     does) plays the VOD playlist in <video>: the barcode of the first frame (time 0), then a
//     seek to SEEK_S (media seconds from the playlist's start) and the barcode shown there.
// One JSON line on stdout. Barcode layout: keep in sync with stamp.py (counter = row B).
const home = process.env.PEERS_HOME || (require('os').homedir() + '/.cache/peers');
const { chromium } = require(home + '/npm/node_modules/playwright-core');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required'];
const STAMP = { X0: 0.025, BW: 0.028, ROW_A: [0.80, 0.88], ROW_B: [0.66, 0.74], NA: 32, NB: 24 };

// Page-side helpers, installed with addInitScript.
function pageHelpers(S) {
  window.readRow = (d, w, h, n, rows) => {
    const yc = Math.floor((rows[0] + rows[1]) / 2 * h);
    let val = 0;
    const bits = [];
    for (let i = 0; i < n + 2; i++) {
      const xc = Math.floor((S.X0 + (i + 0.5) * S.BW) * w);
      let s = 0, k = 0;
      for (let y = yc - 2; y <= yc + 2; y++) for (let x = xc - 2; x <= xc + 2; x++) { s += d[(y * w + x) * 4 + 1]; k++; }
      bits.push(s / k > 128 ? 1 : 0);
    }
    if (bits[0] !== 1 || bits[n + 1] !== 0) return null;
    for (let i = 1; i <= n; i++) val = val * 2 + bits[i];
    return val;
  };
  // The counter (row B) of the frame the video element shows now, or null.
  window.stampNow = () => {
    const v = document.getElementById('v'), c = document.getElementById('c');
    const w = v.videoWidth, h = v.videoHeight;
    if (!w) return null;
    c.width = w; c.height = h;
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(v, 0, 0, w, h);
    const d = ctx.getImageData(0, 0, w, h).data;
    return window.readRow(d, w, h, S.NB, S.ROW_B);
  };
  window.frameShown = () => new Promise(r => {
    const v = document.getElementById('v');
    let done = false;
    const fin = () => { if (!done) { done = true; r(); } };
    v.requestVideoFrameCallback(() => fin());
    setTimeout(fin, 1500);
  });
  // Seeks to `t` and reads the stamp of the frame then shown into `r`.
  window.seekAndStamp = async (t, r) => {
    const v = document.getElementById('v');
    const shown = window.frameShown();
    await window.seekTo(t);
    await shown;
    r.seek_time = v.currentTime;
    r.seek_stamp = window.stampNow();
  };
  // Rejects naming `what` if `p` has not settled within `ms`: a stalled step fails the run
  // with its name instead of hanging until the outer timeout.
  window.within = (ms, p, what) => Promise.race([
    p, new Promise((_, rej) => setTimeout(() => rej(new Error('timed out: ' + what)), ms))]);
  // Plays for `s` media seconds (or to the end or an error; at most 20 s of wall time), then
  // pauses; returns the media seconds played.
  window.playFor = async s => {
    const v = document.getElementById('v');
    const t0 = v.currentTime;
    await window.within(20000, v.play(), 'play()');
    await new Promise(res => {
      const deadline = Date.now() + 20000;
      const check = () => (v.currentTime >= t0 + s || v.error || v.ended || Date.now() > deadline)
        ? res() : setTimeout(check, 20);
      check();
    });
    v.pause();
    return v.currentTime - t0;
  };
  window.seekTo = t => window.within(30000, new Promise(r => {
    const v = document.getElementById('v');
    v.addEventListener('seeked', () => r(), { once: true });
    v.currentTime = t;
  }), 'seek to ' + t);
}

async function main() {
  const [mode, base, ...rest] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
  const out = { mode, chromium: browser.version() };
  try {
    const page = await browser.newPage();
    page.on('console', m => { if (process.env.DEBUG) console.error('page:', m.text()); });
    await page.addInitScript(pageHelpers, STAMP);
    // A page on the node's origin: media requests are same-origin, no CORS involved.
    await page.route(base + '/__playback_test', route => route.fulfill({
      contentType: 'text/html',
      body: '<video id=v muted playsinline></video><canvas id=c></canvas>',
    }));
    await page.goto(base + '/__playback_test');
    if (mode === 'src') {
      const [path, seek] = rest;
      Object.assign(out, await page.evaluate(async ({ path, seek }) => {
        const v = document.getElementById('v');
        const r = { presented: 0 };
        const meta = new Promise((res, rej) => {
          v.addEventListener('loadeddata', res, { once: true });
          v.addEventListener('error', () => rej(new Error('video error ' + (v.error && v.error.code) + ' ' + (v.error && v.error.message))), { once: true });
        });
        v.src = path;
        await meta;
        r.duration = v.duration;
        r.width = v.videoWidth;
        // The picture at time 0, before playing (a busy machine may drop frames once playing).
        // (A seek to 0 and a presented frame first: right after loadeddata the element may not
        // have a picture to draw yet.)
        const shown0 = window.frameShown();
        await window.seekTo(0);
        await shown0;
        r.start_time = v.currentTime;
        r.first_stamp = window.stampNow();
        const first = new Promise(res => {
          const cb = () => { r.presented++; v.requestVideoFrameCallback(cb); res(); };
          v.requestVideoFrameCallback(cb);
        });
        await v.play();
        await first;
        await new Promise(res => {
          const check = () => (v.currentTime >= 1.0 || v.ended) ? res() : setTimeout(check, 20);
          check();
        });
        v.pause();
        r.played_s = v.currentTime;
        r.decoded = v.getVideoPlaybackQuality().totalVideoFrames;
        r.dropped = v.getVideoPlaybackQuality().droppedVideoFrames;
        await window.seekAndStamp(Number(seek), r);
        r.error = v.error ? v.error.code + ' ' + v.error.message : null;
        return r;
      }, { path, seek }));
    } else if (mode === 'mse') {
      const [initPath, seek, ...mediaPaths] = rest;
      Object.assign(out, await page.evaluate(async ({ initPath, mediaPaths, seek }) => {
        const v = document.getElementById('v');
        const r = {};
        const init = new Uint8Array(await (await fetch(initPath)).arrayBuffer());
        // avc1.PPCCLL from the avcC box.
        let codec = null;
        for (let i = 0; i + 8 < init.length; i++) {
          if (init[i] === 0x61 && init[i + 1] === 0x76 && init[i + 2] === 0x63 && init[i + 3] === 0x43) {
            const hex = b => b.toString(16).padStart(2, '0');
            codec = 'avc1.' + hex(init[i + 5]) + hex(init[i + 6]) + hex(init[i + 7]);
            break;
          }
        }
        r.mime = 'video/mp4; codecs="' + codec + '"';
        r.supported = MediaSource.isTypeSupported(r.mime);
        const ms = new MediaSource();
        v.src = URL.createObjectURL(ms);
        await new Promise(res => ms.addEventListener('sourceopen', res, { once: true }));
        const sb = ms.addSourceBuffer(r.mime);
        const append = b => new Promise((res, rej) => {
          sb.addEventListener('updateend', res, { once: true });
          sb.addEventListener('error', () => rej(new Error('SourceBuffer error')), { once: true });
          sb.appendBuffer(b);
        });
        await append(init);
        for (const p of mediaPaths) await append(new Uint8Array(await (await fetch(p)).arrayBuffer()));
        r.buffered = [];
        for (let i = 0; i < sb.buffered.length; i++) r.buffered.push([sb.buffered.start(i), sb.buffered.end(i)]);
        await window.seekAndStamp(Number(seek), r);
        // And it plays from there.
        await window.playFor(0.5);
        r.decoded = v.getVideoPlaybackQuality().totalVideoFrames;
        r.error = v.error ? v.error.code + ' ' + v.error.message : null;
        return r;
      }, { initPath, mediaPaths, seek }));
    } else if (mode === 'hls') {
      const [path, seek] = rest;
      const lib = require('path').join(__dirname, 'node_modules/hls.js/dist/hls.min.js');
      await page.addScriptTag({ content: require('fs').readFileSync(lib, 'utf8') });
      Object.assign(out, await page.evaluate(async ({ path, seek }) => {
        const v = document.getElementById('v');
        const r = { hls_js: Hls.version, supported: Hls.isSupported(), errors: [] };
        const hls = new Hls({ debug: false });
        hls.on(Hls.Events.ERROR, (_, d) => r.errors.push(d.type + '/' + d.details + (d.fatal ? ' fatal' : '')));
        const parsed = new Promise(res => hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => res(d)));
        const loaded = new Promise((res, rej) => {
          v.addEventListener('loadeddata', res, { once: true });
          hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) rej(new Error('hls.js: ' + d.details)); });
        });
        hls.loadSource(path);
        hls.attachMedia(v);
        // A failing step is reported with what hls.js said so far (`errors`).
        try {
        const m = await window.within(30000, parsed, 'manifest parsed');
        r.levels = m.levels.length;
        await window.within(30000, loaded, 'first frame loaded');
        r.duration = v.duration;
        r.width = v.videoWidth;
        const details = hls.levels[0].details;
        r.fragments = details.fragments.length;
        r.program_date_time = details.fragments[0].programDateTime;
        const shown0 = window.frameShown();
        await window.seekTo(0);
        await shown0;
        r.first_stamp = window.stampNow();
        await window.seekAndStamp(Number(seek), r);
        // And it plays from there (across a part boundary).
        r.played_s = await window.playFor(0.5);
        r.decoded = v.getVideoPlaybackQuality().totalVideoFrames;
        r.error = v.error ? v.error.code + ' ' + v.error.message : null;
        } catch (e) { r.exception = String(e); }
        hls.destroy();
        return r;
      }, { path, seek }));
    } else {
      out.exception = 'unknown mode ' + mode;
    }
  } catch (e) { out.exception = String(e); }
  console.log(JSON.stringify(out));
  await browser.close();
}
main();
