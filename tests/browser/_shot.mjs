import http from 'node:http'; import fs from 'node:fs'; import path from 'node:path';
import { launchChromium } from '/work/wt/lessons/tests/browser/chromium.mjs';
const www = '/work/wt/lessons/www';
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm' };
const s = http.createServer((req, res) => { const u = new URL(req.url, 'http://x'); let f = path.join(www, decodeURIComponent(u.pathname)); if (f.endsWith('/')) f += 'index.html';
  fs.readFile(f, (e, d) => { if (e) { res.writeHead(404).end(); return; } res.writeHead(200, { 'content-type': TYPES[path.extname(f)] || 'application/octet-stream' }); res.end(d); }); });
await new Promise(r => s.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${s.address().port}/`;
const { browser, profile } = await launchChromium();
const [q, w, h, steps, out] = process.argv.slice(2);
const page = await browser.newPage();
await page.setViewportSize({ width: Number(w), height: Number(h) });
page.on('pageerror', e => console.log('ERR', String(e)));
page.on('console', m => { if (m.type() === 'error') console.log('CONSOLE', m.text()); });
await page.goto(base + q);
await page.waitForFunction(() => window.ringstore && window.ringstore.ready, null, { timeout: 30000 });
await page.evaluate(() => window.ringstore.view.setLessonPace(10));
for (let i = 0; i < Number(steps); i++) {
  await page.waitForFunction(() => window.ringstore.view.lessonWaiting(), null, { timeout: 60000 });
  await page.keyboard.press('ArrowRight');
}
await page.waitForFunction(() => !window.ringstore.view.scenarioState(0) || window.ringstore.view.lessonWaiting() || window.ringstore.view.scenarioState(0).phase==='done', null, { timeout: 60000 });
await page.waitForTimeout(400);
await page.screenshot({ path: out });
console.log(JSON.stringify(await page.evaluate(() => { const s = window.ringstore.view.scenarioState(0); return s && { step: s.step, phase: s.phase, say: s.say, sw: document.scrollingElement.scrollWidth }; })));
await browser.close(); s.close(); fs.rmSync(profile, { recursive: true, force: true });
