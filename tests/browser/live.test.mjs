// The page connected to a real cluster, end to end: three native `ringstore node` processes
// with fault injection on free 127.0.0.1 ports and temporary data directories, the page served
// by one of them in headless Chromium (the system's, through playwright-core). It checks that
// the page connects by itself and draws 3 nodes (its own state through window.ringstore.liveInfo
// and the canvas's pixels), puts a key through the page's console and reads it back with an
// HTTP GET to another node, shows a node killed with SIGKILL as down, partitions and heals
// through the page (checked on the nodes' /cluster), sets a clock skew, and builds the what-if
// copy. Screenshots go to tests/artifacts/. The nodes are killed at the end, even on failure.
//
// Needs the `ringstore` binary (scripts/test builds it: cargo build -p ringstore-node --bin
// ringstore; or set RINGSTORE_BIN) and the built page (./scripts/build-web).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const www = path.join(root, 'www');
const artifacts = path.join(root, 'tests', 'artifacts');
const BIN = process.env.RINGSTORE_BIN || path.join(root, 'target', 'debug', 'ringstore');
const FLAGS = ['--allow-fault-injection', '--gossip-interval-ms', '200', '--dead-after-ms', '2000',
  '--anti-entropy-interval-ms', '2000', '--join-delay-ms', '400'];

const nodes = new Map(); // id -> {child, dir, address}
let browser, profile, scratch;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `probe` until it returns a truthy value; fails with `what` after `ms`.
async function until(what, probe, ms = 20_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await probe(); if (last) return last; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})\n${logs()}`);
}

function logs() {
  let out = '';
  for (const [id, n] of nodes) {
    const file = path.join(n.dir, 'node.log');
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').slice(-15).join('\n') : '';
    out += `---- n${id} ----\n${text}\n`;
  }
  return out;
}

async function startNode(id, join) {
  const dir = path.join(scratch, `n${id}`);
  fs.mkdirSync(dir, { recursive: true });
  const log = fs.openSync(path.join(dir, 'node.log'), 'a');
  const args = ['node', '--id', String(id), '--listen', '127.0.0.1:0', '--data-dir', dir, '--www', www, ...FLAGS];
  if (join) args.push('--join', join);
  const child = spawn(BIN, args, { stdio: ['ignore', log, log] });
  nodes.set(id, { child, dir, address: null });
  // The node writes the address it bound (port 0: a free one) to DIR/address.
  const address = await until(`n${id}'s address`, () => {
    if (child.exitCode != null) throw new Error(`n${id} exited with ${child.exitCode}`);
    const f = path.join(dir, 'address');
    return fs.existsSync(f) && fs.readFileSync(f, 'utf8').trim();
  });
  nodes.get(id).address = address;
  return address;
}

async function clusterOf(address) {
  const res = await fetch(`http://${address}/cluster`);
  assert.equal(res.status, 200);
  return res.json();
}

function kill(id) {
  const n = nodes.get(id);
  if (n && n.child.exitCode == null) n.child.kill('SIGKILL');
}

before(async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: cargo build -p ringstore-node --bin ringstore`);
  assert.ok(fs.existsSync(path.join(www, 'pkg', 'ringstore_web_bg.wasm')), 'www/pkg is missing: run ./scripts/build-web');
  fs.mkdirSync(artifacts, { recursive: true });
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ringstore-live-'));
  const seed = await startNode(1);
  await startNode(2, seed);
  await startNode(3, seed);
  await until('3 members alive at every node', async () => {
    for (const [, n] of nodes) {
      const c = await clusterOf(n.address);
      const alive = c.members.filter((m) => m.state === 'alive').length;
      if (alive < 3 || c.lifecycle !== 'normal' || c.ring.length === 0) return false;
    }
    return true;
  }, 30_000);
  ({ browser, profile } = await launchChromium());
});

after(async () => {
  for (const id of nodes.keys()) kill(id);
  await browser?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

async function shot(page, name) {
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({ path: file });
  console.log(`screenshot: ${file}`);
}

async function drawnPixels(page) {
  return page.evaluate(() => {
    const c = document.getElementById('canvas');
    const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    const [r0, g0, b0] = [data[0], data[1], data[2]];
    let drawn = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - r0) + Math.abs(data[i + 1] - g0) + Math.abs(data[i + 2] - b0) > 30) drawn++;
    }
    return { drawn, total: data.length / 4 };
  });
}

const info = (page) => page.evaluate(() => window.ringstore.liveInfo());

async function consoleOp(page, { op, via, key, value = '', consistency = '' }) {
  const before = await page.locator('#results li').count();
  await page.selectOption('#op', op);
  await page.selectOption('#via', String(via));
  await page.selectOption('#consistency', consistency);
  await page.fill('#key', key);
  if (op === 'put') await page.fill('#value', value);
  await page.click('#send');
  await page.waitForFunction((n) => {
    const items = document.querySelectorAll('#results li');
    const first = document.querySelector('#results li .res');
    return items.length > n && first && !first.classList.contains('pending');
  }, before, { timeout: 20_000 });
  return page.textContent('#results li .res');
}

test('the page served by a node watches and drives the real cluster', async () => {
  const a1 = nodes.get(1).address, a2 = nodes.get(2).address;
  const page = await browser.newPage();
  await page.emulateMedia({ colorScheme: 'dark' });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const opened = Date.now();
  await page.goto(`http://${a1}/`);
  await page.waitForFunction(() => window.ringstore && window.ringstore.ready, null, { timeout: 30_000 });

  // It connected by itself, to every member, and draws the three.
  const connected = await until('3 nodes up in the page', async () => {
    const i = await info(page);
    return i.mode === 'live' && i.nodes.length === 3 && i.nodes.every((n) => n.status === 'up' && n.hasStorage)
      && i.connections.filter((c) => c.fresh).length === 3 && i;
  });
  console.log(`live: 3 of 3 nodes connected and drawn ${Date.now() - opened} ms after the page was opened`);
  assert.equal(connected.seed, a1);
  // The badge refreshes twice a second (live.js STATUS_MS), so it may trail the view model.
  const badge = new RegExp(`Live · ${a1.replace(/\./g, '\\.')} · 3 of 3 nodes reachable`);
  await until('the badge says 3 of 3', async () => badge.test(await page.textContent('#mode')));
  assert.ok(await page.isHidden('#step'), 'no step button in live mode');
  assert.ok(await page.isHidden('#scenario'), 'no scenarios in live mode');
  assert.ok(await page.isHidden('#node-toggle'), 'no crash button in live mode');
  await until('every node seen alive by both others', async () =>
    (await info(page)).nodes.every((n) => n.seen.alive === 2));
  const px = await drawnPixels(page);
  console.log(`canvas: ${px.drawn} of ${px.total} pixels drawn`);
  assert.ok(px.drawn > px.total * 0.03, `the canvas looks empty: ${px.drawn}/${px.total}`);

  // A write through the page's console, read back over HTTP from another node.
  const key = `live-e2e-${process.pid}`;
  const put = await consoleOp(page, { op: 'put', via: 1, key, value: 'Alice', consistency: 'all' });
  assert.match(put, /^ok acks=3 ts=\d+ \(\d\d:\d\d:\d\d\.\d{3} UTC, n1\)$/, put);
  const res = await fetch(`http://${a2}/kv/${key}`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'Alice');
  const got = await consoleOp(page, { op: 'get', via: 2, key, consistency: 'quorum' });
  assert.match(got, /^Alice ts=\d+/, got);
  await page.waitForTimeout(600); // let the write's dots fly
  await shot(page, 'page-live-3-nodes');

  // kill -9 one node: the page shows it down within a few seconds.
  const killedAt = Date.now();
  kill(3);
  await until('n3 down in the page', async () => {
    const n3 = (await info(page)).nodes.find((n) => n.id === 3);
    return n3 && n3.status === 'down';
  }, 10_000);
  const downMs = Date.now() - killedAt;
  console.log(`kill -9 n3: shown down after ${downMs} ms`);
  assert.ok(downMs < 5_000, `n3 took ${downMs} ms to show down`);
  await until('the badge says 2 of 3', async () => /2 of 3 nodes reachable/.test(await page.textContent('#mode')));
  // Its peers' failure detectors follow: the page shows their verdicts and phi.
  await until('n3 suspected by its peers', async () => {
    const n3 = (await info(page)).nodes.find((n) => n.id === 3);
    return n3.seen.alive === 0 && n3.seen.phi_max > 1;
  }, 15_000);
  await page.keyboard.press('3');
  await page.waitForTimeout(300);
  assert.match(await page.textContent('#node-body'), /unreachable from the page/);
  await shot(page, 'page-live-node-down');
  await page.keyboard.press('Escape'); // stops following the read
  await page.keyboard.press('Escape'); // closes n3's panel

  // Partition n1 from the rest through the page; the nodes' /cluster shows it.
  await page.click('#faults-card summary');
  assert.ok(await page.isEnabled('#partition'));
  await page.click('#side-a button:has-text("n1")');
  await page.click('#partition');
  await until('n1 cuts n2 and n3, n2 cuts n1, in /cluster', async () => {
    const c1 = await clusterOf(a1), c2 = await clusterOf(a2);
    const cut = (c, id) => c.members.find((m) => m.id === id)?.partitioned;
    return cut(c1, 2) && cut(c1, 3) && cut(c2, 1) && !cut(c2, 3);
  });
  await until('the cut links in the page', async () => {
    const cut = (await info(page)).cut.map(([a, b]) => `${a}-${b}`);
    return cut.includes('1-2') && cut.includes('2-1');
  });
  await page.waitForTimeout(800);
  await shot(page, 'page-live-partition');
  await page.click('#heal');
  await until('healed in /cluster', async () => {
    const c1 = await clusterOf(a1);
    return c1.members.every((m) => !m.partitioned);
  });

  // Clock skew on n2 from its panel.
  await page.keyboard.press('2');
  await page.$eval('#skew', (el) => { el.value = '120'; el.dispatchEvent(new Event('input')); });
  await until('n2 skewed by 120 ms', async () => (await clusterOf(a2)).clock_skew_ms === 120);
  await page.keyboard.press('Escape');

  // The what-if copy: a simulation of the live cluster, its ring token for token.
  const liveRing = (await clusterOf(a1)).ring.length;
  await page.click('#whatif');
  await until('the what-if simulation', async () => (await info(page)).mode === 'whatif');
  assert.match(await page.textContent('#mode'), /What-if simulation of/);
  assert.match(await page.textContent('#whatif-banner'), /simulation of the live cluster at .*3 nodes, N=3 W=2 R=2/);
  const sim = await page.evaluate(() => {
    const c = window.ringstore.cluster;
    const ids = Array.from(c.nodeIds());
    return { nodes: ids, tokens: ids.map((id) => c.nodeDetail(id).tokens.length).reduce((a, b) => a + b, 0) };
  });
  assert.deepEqual(sim.nodes, [1, 2, 3]);
  assert.equal(sim.tokens, liveRing, 'the simulated ring has the live ring\'s tokens');
  await page.waitForTimeout(1_500);
  await shot(page, 'page-live-what-if');
  await page.click('#whatif-back');
  await until('back to live', async () => (await info(page)).mode === 'live');

  // The browser logs its failed reconnections to the killed node; nothing else may be logged.
  const n3 = nodes.get(3).address;
  assert.deepEqual(errors.filter((e) => !(e.includes(`ws://${n3}/ws/ui`) && /failed/.test(e))), []);
  await page.close();
});

test('the standalone page offers to connect, refuses a bad address clearly, and connects to a good one', async () => {
  // The page served by a node, told to stay simulated (what "Back to the simulation" does).
  const a2 = nodes.get(2).address;
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`http://${a2}/?mode=sim`);
  await page.waitForFunction(() => window.ringstore && window.ringstore.ready, null, { timeout: 30_000 });
  assert.equal((await info(page)).mode, 'sim');
  assert.equal(await page.textContent('#mode'), 'Simulation');
  await page.click('#live-connect');
  await page.fill('#connect-url', 'localhost');
  await page.click('#connect button[type=submit]');
  assert.match(await page.textContent('#connect-error'), /no port/);
  await page.fill('#connect-url', `http://${a2}/`);
  await page.click('#connect button[type=submit]');
  await until('connected from the form', async () => {
    const i = await info(page);
    // n3 is down if the first test ran to its end; either way every live node shows up.
    return i.mode === 'live' && i.nodes.filter((n) => n.status === 'up').length >= 2;
  });
  await page.click('#live-leave');
  await until('back in the simulation', async () => (await info(page)).mode === 'sim');
  assert.match(page.url(), /mode=sim/);
  assert.deepEqual(errors, []);
  await page.close();
});
