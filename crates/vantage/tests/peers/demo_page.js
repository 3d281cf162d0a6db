// Headless Chromium (Debian) via playwright-core opens the Vantage web page, clicks a camera, waits
// until the browser has decoded frames, and checks the picture is not black.
//   node demo_page.js BASE_URL CAMERA_ID SCREENSHOT_PNG [timeout_s]
// Prints one JSON line: { framesDecoded, mean_luma, screenshot, status }.
const home = process.env.PEERS_HOME || (require('os').homedir() + '/.cache/peers');
const { chromium } = require(home + '/npm/node_modules/playwright-core');

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns'];

(async () => {
  const [base, camera, shot, timeoutArg] = process.argv.slice(2);
  const timeout = 1000 * Number(timeoutArg || 30);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
  const out = { camera };
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('console', m => { if (process.env.DEBUG) console.error('page:', m.text()); });
    await page.goto(base + '/');
    await page.waitForSelector(`.cam[data-camera="${camera}"]`, { timeout: 10000 });
    await page.click(`.cam[data-camera="${camera}"]`);
    const t0 = Date.now();
    let stats = null;
    while (Date.now() - t0 < timeout) {
      stats = await page.evaluate(() => window.vantageStats());
      if (stats && stats.framesDecoded > 100) break;
      await page.waitForTimeout(250);
    }
    out.framesDecoded = stats ? stats.framesDecoded : 0;
    out.info = await page.evaluate(() => document.getElementById('info').textContent);
    out.mean_luma = await page.evaluate(() => {
      const v = document.getElementById('video');
      if (!v.videoWidth) return 0;
      const c = document.createElement('canvas');
      c.width = v.videoWidth; c.height = v.videoHeight;
      const g = c.getContext('2d');
      g.drawImage(v, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let s = 0;
      for (let i = 0; i < d.length; i += 4) s += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      return s / (d.length / 4);
    });
    await page.locator('#video').screenshot({ path: shot });
    out.screenshot = shot;
    out.status = 'ok';
  } catch (e) {
    out.status = 'error';
    out.error = String(e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})();
