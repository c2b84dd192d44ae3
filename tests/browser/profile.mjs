// Profiles the page in headless Chromium: a CDP trace of a few seconds, summarised per thread
// (wall and CPU time per second, the events with the most self time), with the page's own
// frame statistics. Used for docs/benchmarks.md's page figures.
//
//   ./scripts/build-web && cd tests/browser && node profile.mjs '?nodes=16&rate=200&speed=1&seed=11' 5
//
// PKG=/some/dir serves the wasm-bindgen output from there instead of www/pkg, WWW=/some/dir the
// whole page (to compare two builds in interleaved runs on a noisy machine). TRACE=/tmp/trace.json keeps the raw trace
// (open it in chrome://tracing or Perfetto). CPU time (the trace's thread time) is what a
// busy shared machine disturbs least; wall time includes waiting for a core. The last lines
// give the main thread's CPU per frame (raster, script, style/layout/paint) with percentiles.
import { launchChromium } from './chromium.mjs';
import http from 'node:http'; import fs from 'node:fs'; import path from 'node:path';
const www = path.resolve(process.env.WWW || '../../www');
const query = process.argv[2] || '?nodes=16&rate=200&speed=1&seed=11';
const secs = Number(process.argv[3] || 5);
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const name = decodeURIComponent(url.pathname);
  let file = process.env.PKG && name.startsWith('/pkg/') ? path.join(process.env.PKG, name.slice(5)) : path.join(www, name); if (file.endsWith('/')) file += 'index.html';
  fs.readFile(file, (e, d) => { if (e) { res.writeHead(404).end(); return; }
    const t = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm' }[path.extname(file)] || 'application/octet-stream';
    res.writeHead(200, { 'content-type': t }).end(d); });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const { browser, profile } = await launchChromium();
const page = await browser.newPage();
await page.emulateMedia({ colorScheme: 'light' });
await page.goto(`http://127.0.0.1:${server.address().port}/${query}`);
await page.waitForFunction(() => window.ringstore && window.ringstore.ready, null, { timeout: 30000 });
await page.waitForTimeout(2000);
const cdp = await page.context().newCDPSession(page);
const events = [];
cdp.on('Tracing.dataCollected', (e) => events.push(...e.value));
const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
await cdp.send('Tracing.start', { transferMode: 'ReportEvents', traceConfig: { includedCategories: [
  'devtools.timeline', 'disabled-by-default-devtools.timeline', 'disabled-by-default-devtools.timeline.frame',
  'toplevel', 'blink', 'cc', 'viz', 'v8', 'gpu', 'skia', 'benchmark', 'blink.console', 'renderer.scheduler'] } });
await page.evaluate(() => window.ringstore.view.resetStats());
await page.waitForTimeout(secs * 1000);
const stats = await page.evaluate(() => window.ringstore.view.stats());
await cdp.send('Tracing.end');
await done;
const fmt = (p) => `p50 ${p.p50.toFixed(1)} p99 ${p.p99.toFixed(1)} max ${p.max.toFixed(1)} ms`;
console.log(`${query}: ${stats.intervals.count} frames in ${secs} s, ${stats.fps.toFixed(1)} fps; interval ${fmt(stats.intervals)}; ` +
  `wasm work ${fmt(stats.work)}; ${stats.simSecondsPerSecond.toFixed(2)} simulated s per real s`);
if (process.env.TRACE) fs.writeFileSync(process.env.TRACE, JSON.stringify(events));
// thread names
const names = new Map();
for (const e of events) if (e.ph === 'M' && e.name === 'thread_name') names.set(`${e.pid}:${e.tid}`, e.args.name);
// self time per thread per name, for X events
const byThread = new Map();
for (const e of events) { if (e.ph !== 'X' || e.dur == null) continue; const k = `${e.pid}:${e.tid}`; if (!byThread.has(k)) byThread.set(k, []); byThread.get(k).push(e); }
for (const [k, list] of byThread) {
  list.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const self = new Map(); const selfCpu = new Map(); const stack = [];
  let top = 0; let topCpu = 0;
  for (const e of list) {
    while (stack.length && stack[stack.length - 1].ts + stack[stack.length - 1].dur <= e.ts) stack.pop();
    const cpu = e.tdur || 0;
    if (stack.length) { const p = stack[stack.length - 1]; self.set(p.name, (self.get(p.name) || 0) - Math.min(e.dur, p.ts + p.dur - e.ts)); selfCpu.set(p.name, (selfCpu.get(p.name) || 0) - cpu); } else { top += e.dur; topCpu += cpu; }
    self.set(e.name, (self.get(e.name) || 0) + e.dur);
    selfCpu.set(e.name, (selfCpu.get(e.name) || 0) + cpu);
    stack.push(e);
  }
  if (top < 100_000) continue;
  console.log(`\n== ${names.get(k) || k}: busy ${(top / 1000 / secs).toFixed(0)} ms per s wall, ${(topCpu / 1000 / secs).toFixed(0)} ms per s cpu`);
  [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP || 10)).forEach(([n, v]) => console.log(`  ${(v / 1000 / secs).toFixed(1).padStart(7)} ms/s wall ${((selfCpu.get(n) || 0) / 1000 / secs).toFixed(1).padStart(7)} cpu  ${n}`));
}
// Per frame on the renderer's main thread: each task that ran a BeginMainFrame is a frame
// (the page's requestAnimationFrame callback, style, layout, paint, then the commit, where a
// software canvas is rasterised); its CPU split into those parts, with percentiles, so one
// frame that does too much shows in p99 and max.
const mainKey = [...names].find(([, v]) => v === 'CrRendererMain')?.[0];
if (mainKey) {
  const list = byThread.get(mainKey) || [];
  const frames = []; const stack = []; let task = null;
  const part = { raster: 'LayerTreeHost::DoUpdateLayers', script: 'FireAnimationFrame', lifecycle: 'WebFrameWidgetImpl::UpdateLifecycle' };
  let otherCpu = 0;
  for (const e of list) {
    while (stack.length && stack[stack.length - 1].ts + stack[stack.length - 1].dur <= e.ts) stack.pop();
    if (!stack.length) { if (task && !task.frame) otherCpu += task.cpu; task = { ts: e.ts, dur: e.dur, cpu: e.tdur || 0, frame: false, raster: 0, script: 0, lifecycle: 0 }; frames.push(task); }
    if (e.name === 'ProxyMain::BeginMainFrame') task.frame = true;
    for (const [k, n] of Object.entries(part)) if (e.name === n) task[k] += e.tdur || 0;
    stack.push(e);
  }
  if (task && !task.frame) otherCpu += task.cpu;
  const fr = frames.filter((f) => f.frame);
  const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] / 1000; };
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length / 1000;
  console.log(`\n== main thread per frame (CPU ms, ${fr.length} frames): ` +
    ['cpu', 'raster', 'script', 'lifecycle'].map((k) => { const xs = fr.map((f) => f[k]); return `${k} mean ${mean(xs).toFixed(2)} p50 ${pct(xs, 0.5).toFixed(2)} p99 ${pct(xs, 0.99).toFixed(2)} max ${pct(xs, 1).toFixed(2)}`; }).join('; ') +
    `; other tasks ${(otherCpu / 1000 / secs).toFixed(1)} ms per s`);
  // Frames by the panel job app.js ran in them (its console.timeStamp('job …') marks).
  const stamps = events.filter((e) => `${e.pid}:${e.tid}` === mainKey && e.name === 'TimeStamp' && /^job /.test(e.args?.data?.message || ''));
  const jobs = new Map();
  for (const f of fr) {
    const s = stamps.find((st) => st.ts >= f.ts && st.ts <= f.ts + f.dur);
    const name = s ? s.args.data.message.slice(4) : '(none)';
    if (!jobs.has(name)) jobs.set(name, []);
    jobs.get(name).push(f);
  }
  if (stamps.length) {
    console.log('\n== main thread per frame by panel job (mean CPU ms)');
    for (const [name, fs] of jobs) console.log(`  ${name.padEnd(10)} ${String(fs.length).padStart(4)} frames: ` +
      ['cpu', 'script', 'lifecycle', 'raster'].map((k) => `${k} ${mean(fs.map((f) => f[k])).toFixed(2)}`).join(', '));
  }
}
await browser.close(); server.close(); fs.rmSync(profile, { recursive: true, force: true });
