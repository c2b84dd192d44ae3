// The timeline in headless Chromium (free play): back one event then forward returns to the
// identical picture and event log; a marker on the timeline takes the run to its moment, and
// Copy link's link to that moment reproduces it; a change in the past forks a new run and the
// original is kept; a checker anomaly jumps to its moment. Screenshots: tests/artifacts/
// timeline-markers.png, timeline-fork.png, timeline-anomaly.png, timeline-phone-390.png,
// timeline-embed-640x480.png. With TIMELINE_FIGURES=1, the scrub
// latency and snapshot memory of a 10-minute run at 16 nodes and 200 ops/s are measured and
// printed (docs/benchmarks.md); that run takes about a minute, so the suite skips it.
//
// Runs open with `at=0` (a link to the start of a run): a fresh cluster, never the copy saved
// in the browser by an earlier test. Serves www/ itself (build it first: ./scripts/build-web).
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

let server, base, browser, profile;

before(async () => {
  assert.ok(fs.existsSync(path.join(www, 'pkg', 'ringstore_web_bg.wasm')), 'www/pkg is missing: run ./scripts/build-web');
  fs.mkdirSync(artifacts, { recursive: true });
  server = await serveStatic(www);
  base = `http://127.0.0.1:${server.address().port}/`;
  ({ browser, profile } = await launchChromium());
  await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
});

after(async () => {
  await browser?.close();
  server?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

async function open(query, width = 1200, height = 800) {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height });
  await page.emulateMedia({ colorScheme: 'light' });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(base + query);
  await page.waitForFunction(() => window.ringstore && window.ringstore.ready, null, { timeout: 30_000 });
  page.errors = errors;
  return page;
}

// Runs the paused page's cluster `ms` of simulated time in 20 ms frames, as playing does.
const run = (p, ms) => p.evaluate((ms) => {
  const c = window.ringstore.cluster;
  for (let t = 0; t < ms; t += 20) c.runFor(20);
}, ms);

// The picture once its short animations (flashes) are over, and the run's state.
async function picture(p) {
  await p.waitForTimeout(1_200);
  return p.evaluate(() => ({
    canvas: document.getElementById('canvas').toDataURL(),
    log: window.ringstore.cluster.logHash(),
    now: window.ringstore.cluster.now(),
    at: window.ringstore.cluster.eventsRun(),
  }));
}

// Presses a key with the picture focused (the page's shortcuts ignore text fields).
async function key(p, k, times = 1) {
  await p.focus('#canvas');
  for (let i = 0; i < times; i++) await p.keyboard.press(k);
}

// A run with a crash and a restart of n2 and a partition, paused.
async function startRun(p) {
  await p.evaluate(() => window.ringstore.view.setPlaying(false));
  await run(p, 600);
  await key(p, '2');
  await key(p, 'x');
  await run(p, 500);
  await key(p, 'x');
  await run(p, 400);
  await key(p, 'a');
  await key(p, 'p');
  await run(p, 500);
  await key(p, 'h');
  await run(p, 300);
  await key(p, 'Escape');
  await p.evaluate(() => { window.ringstore.lastPanel = 0; });
  await p.waitForTimeout(400);
}

test('back one event, then forward, returns to the identical picture and event log', async () => {
  const p = await open('?seed=5&at=0');
  await startRun(p);
  await key(p, '.', 10);
  const ahead = await picture(p);
  await key(p, ',', 8);
  const back = await picture(p);
  assert.equal(back.at, ahead.at - 8, 'eight events back');
  assert.notEqual(back.log, ahead.log);
  await key(p, '.', 8);
  const again = await picture(p);
  assert.deepEqual([again.at, again.log, again.now], [ahead.at, ahead.log, ahead.now], 'the same moment, event log and clock');
  assert.ok(again.canvas === ahead.canvas, 'the same picture');
  // The arrow keys do the same in free play.
  await key(p, 'ArrowLeft', 3);
  await key(p, 'ArrowRight', 3);
  assert.equal((await picture(p)).log, ahead.log);
  assert.deepEqual(p.errors, []);
  await p.close();
});

test('a marker takes the run to its moment, and the link to that moment reproduces it', async () => {
  const p = await open('?seed=7&at=0');
  await startRun(p);
  const marks = await p.$$eval('.tl-mark', (ms) => ms.map((m) => [m.className, m.title]));
  for (const kind of ['crash', 'restart', 'partition', 'heal']) {
    assert.ok(marks.some(([c]) => c.includes(`m-${kind}`)), `a ${kind} marker: ${JSON.stringify(marks)}`);
  }
  // The legend names the kinds of marks this run has, in words.
  const legend = await p.textContent('#tl-legend');
  for (const words of ['crash', 'restart', 'partition', 'heal']) assert.ok(legend.includes(words), legend);
  const end = await picture(p);
  await p.click('.tl-mark.m-crash');
  const there = await picture(p);
  // The mark's meaning shows where the run went (no hover on a phone).
  assert.match(await p.textContent('#tl-note'), /n2 crashed\. The past, paused/);
  await p.screenshot({ path: path.join(artifacts, 'timeline-markers.png') });
  assert.ok(there.at < end.at, `back in time: ${there.at} < ${end.at}`);
  const down = await p.evaluate(() => !window.ringstore.cluster.isUp(2));
  assert.ok(down, 'n2 is down at the crash marker');
  // [ and ] walk the markers.
  await key(p, ']');
  const next = await picture(p);
  assert.ok(next.at > there.at);
  await key(p, '[');
  assert.equal((await picture(p)).at, there.at);
  await p.click('#copy-link');
  await p.waitForFunction(async () => (await navigator.clipboard.readText()).includes('at='), null, { timeout: 5_000 });
  const link = await p.evaluate(() => navigator.clipboard.readText());
  assert.match(link, /[?&]at=\d+/);
  assert.match(link, /[?&]in=[-\w]+/);
  const q = await open(link.slice(base.length));
  const linked = await picture(q);
  assert.deepEqual([linked.at, linked.log, linked.now], [there.at, there.log, there.now], 'the link opens at the same moment');
  assert.ok(linked.canvas === there.canvas, 'with the same picture');
  assert.equal(await q.evaluate(() => window.ringstore.view.playing()), false, 'paused');
  assert.deepEqual([p.errors, q.errors], [[], []]);
  await p.close();
  await q.close();
  // Bad values in a link say what is wrong, and the page still runs.
  for (const bad of ['at=-4', 'at=banana', 'at=12&in=%%%%', 'at=12&in=AAAA']) {
    const r = await open(`?seed=7&${bad}`);
    const text = await r.textContent('#warnings');
    assert.match(text, /moment|inputs/, `${bad}: ${text}`);
    assert.equal(await r.isHidden('#fatal'), true);
    await r.close();
  }
});

test('a change in the past starts a new run and the original is kept', async () => {
  const p = await open('?seed=9&at=0');
  await startRun(p);
  const original = await picture(p);
  // Back to just before the crash, and crash n3 instead.
  const crashAt = await p.evaluate(() => window.ringstore.cluster.timeline().markers.find((m) => m.kind === 'crash').events);
  await p.evaluate((e) => { window.ringstore.cluster.goTo(e - 1); }, crashAt);
  await p.click('#tl-back'); // through the page: it refreshes the panels
  await key(p, '3');
  await key(p, 'x');
  await key(p, 'Escape');
  await run(p, 800);
  await p.evaluate(() => { window.ringstore.lastPanel = 0; });
  await p.waitForTimeout(400);
  const tl = await p.evaluate(() => window.ringstore.cluster.timeline());
  assert.equal(tl.branch, 2);
  assert.deepEqual(tl.branches.map((b) => b.number), [1, 2]);
  assert.equal(await p.isVisible('#tl-branch'), true, 'the runs are listed');
  assert.match(await p.textContent('#tl-note'), /run 1 is kept/i);
  assert.equal(await p.evaluate(() => window.ringstore.cluster.isUp(3)), false);
  await p.screenshot({ path: path.join(artifacts, 'timeline-fork.png') });
  await p.selectOption('#tl-branch', '1');
  const back = await picture(p);
  assert.deepEqual([back.at, back.log], [original.at, original.log], 'run 1 as it was');
  assert.equal(await p.evaluate(() => window.ringstore.cluster.isUp(3)), true);
  assert.deepEqual(p.errors, []);
  await p.close();
});

test('an anomaly in the checker jumps to its moment, with its operation followed', async () => {
  // R = W = 1 and lossy links: stale reads come quickly.
  const p = await open('?seed=3&n=3&w=1&r=1&loss=20&rate=300&at=0');
  await p.evaluate(() => window.ringstore.view.setPlaying(false));
  await run(p, 4_000);
  await p.evaluate(() => { window.ringstore.lastPanel = 0; });
  await p.waitForFunction(() => Number(document.getElementById('stale-n').textContent) > 0, null, { timeout: 10_000 });
  await p.waitForSelector('.tl-mark.m-stale', { state: 'attached', timeout: 5_000 });
  await p.click('#stale');
  const item = await p.evaluate(() => {
    const c = window.ringstore.lastChecker;
    const [w, o] = c.stale.find(([w, o]) => w && o && o.completed != null);
    return { op: o.op, completed: o.completed };
  });
  const end = await p.evaluate(() => window.ringstore.cluster.eventsRun());
  await p.click('#anomalies li');
  const at = await p.evaluate(() => ({ now: window.ringstore.cluster.now(), events: window.ringstore.cluster.eventsRun(), followed: window.ringstore.followed }));
  assert.ok(at.events < end, 'back in time');
  assert.ok(at.now >= item.completed && at.now <= item.completed + 1, `at the read's completion: ${at.now} ~ ${item.completed}`);
  assert.equal(at.followed, item.op, 'the stale read is followed');
  await p.waitForTimeout(600);
  await p.screenshot({ path: path.join(artifacts, 'timeline-anomaly.png') });
  assert.deepEqual(p.errors, []);
  await p.close();
});

test('the timeline fits a phone (390 px) and the embed (640×480)', async () => {
  for (const [w, h, query, name] of [[390, 844, '?seed=5&at=0', 'timeline-phone-390'], [640, 480, '?seed=5&embed=1&at=0', 'timeline-embed-640x480']]) {
    const p = await open(query, w, h);
    await startRun(p);
    await key(p, ',', 3);
    await p.evaluate(() => { window.ringstore.lastPanel = 0; });
    await p.waitForTimeout(500);
    const box = await p.evaluate(() => {
      const r = (id) => document.getElementById(id).getBoundingClientRect();
      return { range: r('tl-range'), back: r('tl-back'), canvas: r('canvas'), width: document.documentElement.scrollWidth };
    });
    assert.ok(box.width <= w, `${name}: no sideways scrolling (${box.width})`);
    assert.ok(box.range.width >= 150, `${name}: a usable slider (${box.range.width} px)`);
    assert.ok(box.range.bottom <= h && box.range.top >= box.canvas.bottom - 1, `${name}: the slider is under the picture, on screen`);
    await p.screenshot({ path: path.join(artifacts, `${name}.png`) });
    assert.deepEqual(p.errors, []);
    await p.close();
  }
});

test('figures: scrubbing a 10-minute run at 16 nodes and 200 ops/s', { skip: !process.env.TIMELINE_FIGURES }, async () => {
  const measure = async (keep) => {
    const p = await open('?nodes=16&rate=200&seed=1&at=0', 1200, 800);
    const out = await p.evaluate(async (keep) => {
      const s = window.ringstore;
      const c = s.cluster;
      s.view.setPlaying(false);
      c.keepSnapshots(keep);
      const mem0 = s.wasm.memory.buffer.byteLength;
      const t0 = performance.now();
      // 10 simulated minutes in 50 ms frames (the page's slices are of that order).
      for (let t = 0; t < 600_000; t += 50) c.runFor(50);
      const runMs = performance.now() - t0;
      const end = c.eventsRun();
      const stats = c.timelineStats();
      const mem1 = s.wasm.memory.buffer.byteLength;
      if (!keep) return { end, runMs, mem0, mem1, stats };
      // 20 moments drawn from a fixed generator; the picture drawn for each.
      let x = 12345;
      const scrub = [];
      for (let i = 0; i < 20; i++) {
        x = (x * 1103515245 + 12345) % 2147483648;
        const e = Math.floor((x / 2147483648) * end);
        const a = performance.now();
        c.goTo(e);
        s.view.attach(c);
        s.view.frame(c, performance.now());
        scrub.push(performance.now() - a);
      }
      // Back one event, ten times, from the last moment (the first replays from a snapshot
      // and keeps one 2,000 events back; the others replay from that).
      const back = [];
      for (let i = 0; i < 10; i++) {
        const a = performance.now();
        c.stepBack();
        s.view.attach(c);
        s.view.frame(c, performance.now());
        back.push(performance.now() - a);
      }
      return { end, runMs, mem0, mem1, stats, scrub, back, memAfter: s.wasm.memory.buffer.byteLength };
    }, keep);
    await p.close();
    return out;
  };
  const on = await measure(true);
  const off = await measure(false);
  const sorted = [...on.scrub].sort((a, b) => a - b);
  const median = (sorted[9] + sorted[10]) / 2;
  const mb = (b) => (b / 1048576).toFixed(1);
  console.log(`# timeline figures: ${on.end} events in 10 simulated minutes (run in ${(on.runMs / 1000).toFixed(1)} s with snapshots, ${(off.runMs / 1000).toFixed(1)} s without)`);
  console.log(`# scrub to 20 moments (goTo + attach + one frame drawn): median ${median.toFixed(1)} ms, max ${sorted[19].toFixed(1)} ms, min ${sorted[0].toFixed(1)} ms`);
  const backs = on.back.slice(1).sort((a, b) => a - b);
  console.log(`# back one event: the first ${on.back[0].toFixed(1)} ms, the next nine median ${backs[4].toFixed(1)} ms, max ${backs[8].toFixed(1)} ms`);
  console.log(`# snapshots: ${on.stats.snapshots}, every ${on.stats.every} events, file bytes of their own ${mb(on.stats.fileBytes)} MiB, log ${mb(on.stats.logBytes)} MiB`);
  console.log(`# heap in use after the run: ${mb(on.stats.heapBytes)} MiB with snapshots, ${mb(off.stats.heapBytes)} MiB without (difference ${mb(on.stats.heapBytes - off.stats.heapBytes)} MiB)`);
  console.log(`# wasm memory after the run: ${mb(on.mem1)} MiB with snapshots, ${mb(off.mem1)} MiB without (difference ${mb(on.mem1 - off.mem1)} MiB); after scrubbing ${mb(on.memAfter)} MiB`);
  // SNAPSHOTS_MAX and HEAP_BUDGET_BYTES (web/src/timeline.rs).
  assert.ok(on.stats.snapshots <= 192);
  assert.ok(on.stats.heapBytes <= 256 * 1048576 + 32 * 1048576);
});
