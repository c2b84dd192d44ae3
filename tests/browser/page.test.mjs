// End-to-end tests of the page in a real headless Chromium (the system's, through
// playwright-core): the canvas is drawn, the client console writes and reads back, a node
// crashed through the UI shows as down while a quorum read still succeeds, a reload keeps the
// key (IndexedDB; a build without Cluster.open says so and skips that step), and screenshots. Then the performance figures: frame times
// over 10 s with 16 nodes and 200 client operations per second, and simulated seconds per real
// second with 64 nodes while drawing. Figures are printed, not asserted beyond sanity bounds.
//
// Serves www/ itself on 127.0.0.1 (build it first: ./scripts/build-web).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './chromium.mjs';
import { serveStatic } from './static.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const www = path.join(root, 'www');
const artifacts = path.join(root, 'tests', 'artifacts');
const PERF_MS = Number(process.env.PERF_MS || 10_000);

let server, base, browser, profile;

before(async () => {
  assert.ok(fs.existsSync(path.join(www, 'pkg', 'ringstore_web_bg.wasm')), 'www/pkg is missing: run ./scripts/build-web');
  fs.mkdirSync(artifacts, { recursive: true });
  server = await serveStatic(www);
  base = `http://127.0.0.1:${server.address().port}/`;
  ({ browser, profile } = await launchChromium());
});

after(async () => {
  await browser?.close();
  server?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

async function open(query = '', { dark = false } = {}) {
  const page = await browser.newPage();
  await page.emulateMedia({ colorScheme: dark ? 'dark' : 'light' });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(base + query);
  await page.waitForFunction(() => window.ringstore && window.ringstore.ready, null, { timeout: 30_000 });
  page.errors = errors;
  return page;
}

async function shot(page, name) {
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({ path: file });
  console.log(`screenshot: ${file}`);
  return file;
}

// Non-background pixels of the canvas: the ring, nodes and text drawn.
async function drawnPixels(page) {
  return page.evaluate(() => {
    const c = document.getElementById('canvas');
    const ctx = c.getContext('2d');
    const { data } = ctx.getImageData(0, 0, c.width, c.height);
    const [r0, g0, b0] = [data[0], data[1], data[2]];
    let drawn = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - r0) + Math.abs(data[i + 1] - g0) + Math.abs(data[i + 2] - b0) > 30) drawn++;
    }
    return { drawn, total: data.length / 4 };
  });
}

// Sends an operation through the console form and waits for its result line.
async function consoleOp(page, { op, via, key, value = '', consistency = '' }) {
  await page.selectOption('#op', op);
  await page.selectOption('#via', String(via));
  await page.selectOption('#consistency', consistency);
  await page.fill('#key', key);
  if (op === 'put') await page.fill('#value', value);
  await page.click('#send');
  await page.waitForFunction(() => {
    const first = document.querySelector('#results li .res');
    return first && !first.classList.contains('pending');
  }, null, { timeout: 20_000 });
  return page.textContent('#results li .res');
}

test('the page draws the cluster, writes and reads through the console, survives a crash', async () => {
  const page = await open('?seed=7&speed=1');
  await page.waitForTimeout(500);
  const px = await drawnPixels(page);
  console.log(`canvas: ${px.drawn} of ${px.total} pixels drawn`);
  assert.ok(px.drawn > px.total * 0.03, `the canvas looks empty: ${px.drawn}/${px.total}`);
  const nodes = await page.evaluate(() => window.ringstore.view.panel().nodes.length);
  assert.equal(nodes, 5);

  const put = await consoleOp(page, { op: 'put', via: 2, key: 'e2e-user', value: 'Alice' });
  assert.match(put, /^ok ts=\d+/, put);
  const got = await consoleOp(page, { op: 'get', via: 4, key: 'e2e-user' });
  assert.match(got, /^Alice ts=\d+/, got);

  // Crash a replica of the key through the UI: open it with its number key, press X.
  const replicas = await page.evaluate(() => window.ringstore.view.keyInfo('e2e-user').preference);
  const victim = replicas[0];
  await page.click('#canvas', { position: { x: 5, y: 5 } });
  await page.keyboard.press(String(victim));
  await page.keyboard.press('x');
  await page.waitForFunction((id) => window.ringstore.view.panel().nodes.find(n => n.id === id).status === 'down', victim);
  assert.match(await page.textContent('#node-toggle'), /Restart/);
  assert.match(await page.textContent('#node-body'), /down/);
  const quorum = await consoleOp(page, { op: 'get', via: replicas[1], key: 'e2e-user', consistency: 'quorum' });
  assert.match(quorum, /^Alice ts=\d+/, `quorum read with n${victim} down: ${quorum}`);
  await shot(page, 'page-crash-and-quorum-read');

  const persistent = await page.evaluate(() => window.ringstore.persistent);
  await page.reload();
  await page.waitForFunction(() => window.ringstore && window.ringstore.ready);
  if (persistent) {
    const back = await consoleOp(page, { op: 'get', via: 1, key: 'e2e-user', consistency: 'quorum' });
    assert.match(back, /^Alice ts=\d+/, `after reload: ${back}`);
    console.log('reload: the key is still there');
  } else {
    console.log('reload: SKIPPED, this build has no Cluster.open (the IndexedDB-backed disk is not merged yet)');
  }
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('bad settings in the URL give a visible message, not a blank page', async () => {
  const page = await open('?nodes=banana&w=9&frobnicate=1');
  const banner = await page.textContent('#warnings');
  assert.match(banner, /nodes="banana"/);
  assert.match(banner, /frobnicate/);
  const px = await drawnPixels(page);
  assert.ok(px.drawn > px.total * 0.03);
  await page.close();
});

test('screenshots at 5, 16 and 64 nodes, embedded, and in a scenario', async () => {
  for (const [name, q] of [['page-5-nodes', '?seed=3&speed=0.2'], ['page-16-nodes', '?nodes=16&rate=100&speed=0.2&seed=4'],
    ['page-64-nodes', '?nodes=64&rate=200&speed=0.5&seed=5'], ['page-embed', '?embed=1&scenario=hinted_handoff&speed=0.05']]) {
    const page = await open(q);
    if (name === 'page-16-nodes') {
      // Follow one operation: its path is drawn over the traffic.
      await consoleOp(page, { op: 'put', via: 2, key: 'user123', value: 'Alice' });
    }
    await page.waitForTimeout(name === 'page-embed' ? 5_000 : 2_500);
    await shot(page, name);
    assert.deepEqual(page.errors, []);
    await page.close();
  }
  const dark = await open('?nodes=16&rate=100&speed=0.2&seed=4&loss=5', { dark: true });
  await dark.waitForTimeout(2_500);
  await dark.keyboard.press('3');
  await dark.keyboard.press('x');
  await dark.waitForTimeout(1_500);
  await shot(dark, 'page-16-nodes-dark-crash-and-loss');
  assert.deepEqual(dark.errors, []);
  await dark.close();
  // A lesson, turned page by page (Next) at a shortened message pace, with its script shown.
  const page = await open('?scenario=put_get_design_notes');
  await page.evaluate(() => window.ringstore.view.setLessonPace(5));
  await page.click('#caption-script');
  for (let i = 0; i < 30 && !/=> ok ts=100 acks=2/.test(await page.textContent('#caption-lines')); i++) {
    await page.waitForFunction(() => window.ringstore.view.lessonWaiting(), null, { timeout: 60_000 });
    await page.keyboard.press('ArrowRight');
    await page.waitForTimeout(300);
  }
  await shot(page, 'page-scenario-design-notes');
  const text = await page.textContent('#caption-lines');
  assert.match(text, /=> ok ts=100 acks=2/);
  await page.close();
});

async function measure(page, ms) {
  await page.evaluate(() => window.ringstore.view.resetStats());
  // Frame intervals measured by the page itself too, independently of the wasm's own count.
  const intervals = await page.evaluate((ms) => new Promise((resolve) => {
    const out = [];
    let last = null;
    const end = performance.now() + ms;
    function tick(t) {
      if (last != null) out.push(t - last);
      last = t;
      if (t < end) requestAnimationFrame(tick); else resolve(out);
    }
    requestAnimationFrame(tick);
  }), ms);
  const stats = await page.evaluate(() => window.ringstore.view.stats());
  intervals.sort((a, b) => a - b);
  const q = (p) => intervals[Math.min(intervals.length - 1, Math.ceil(p * intervals.length) - 1)];
  const mean = intervals.reduce((a, b) => a + b, 0) / intervals.length;
  return { frames: intervals.length, p50: q(0.5), p99: q(0.99), max: intervals[intervals.length - 1], fps: 1000 / mean, stats };
}

test('performance: frame times at 16 nodes and 200 ops/s; simulation speed at 64 nodes', async () => {
  const page = await open('?nodes=16&rate=200&speed=1&seed=11');
  await page.waitForTimeout(2_000);
  const f = await measure(page, PERF_MS);
  console.log(`perf 16 nodes, 200 ops/s, 1x: ${f.frames} frames in ${PERF_MS / 1000} s, ` +
    `frame interval p50 ${f.p50.toFixed(2)} ms, p99 ${f.p99.toFixed(2)} ms, max ${f.max.toFixed(2)} ms, ${f.fps.toFixed(1)} fps; ` +
    `wasm work per frame p50 ${f.stats.work.p50.toFixed(2)} ms, p99 ${f.stats.work.p99.toFixed(2)} ms, max ${f.stats.work.max.toFixed(2)} ms`);
  // The speed goal is a figure printed above (docs/benchmarks.md), never a timed assertion: a
  // loaded machine must not fail the test. What is asserted is that the page kept drawing.
  assert.ok(f.frames >= 10, `the page stopped drawing: ${f.frames} frames in ${PERF_MS} ms`);
  await page.close();

  for (const membership of ['oracle', 'gossip']) {
    const big = await open(`?nodes=64&rate=200&speed=200&seed=12&membership=${membership}`);
    await big.waitForTimeout(2_000);
    const g = await measure(big, PERF_MS);
    console.log(`perf 64 nodes, ${membership}, 200 ops/s, as fast as it goes while drawing: ` +
      `${g.stats.simSecondsPerSecond.toFixed(2)} simulated s per real s, ${g.fps.toFixed(1)} fps, ` +
      `frame p50 ${g.p50.toFixed(2)} ms, p99 ${g.p99.toFixed(2)} ms, wasm work p50 ${g.stats.work.p50.toFixed(2)} ms`);
    assert.ok(g.frames >= 10, `the page stopped drawing: ${g.frames} frames`);
    assert.ok(g.stats.simSecondsPerSecond > 0, `the simulation stood still while drawing`);
    if (membership === 'oracle') await shot(big, 'page-64-nodes-fast');
    await big.close();
  }
});
