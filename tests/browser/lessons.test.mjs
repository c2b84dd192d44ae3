// The lessons in headless Chromium: each one waits for the reader, shows each step's
// narration on screen, draws what its step is about, and fits the embed (900×600 and
// 640×480) and a phone (390 px wide, no sideways scrolling). Lessons are driven by pressing
// Next quickly: the message pace is shortened with view.setLessonPace (a hop takes 5 ms of
// real time instead of 700), which changes no step's order. One screenshot per lesson, at
// the step named in KEY_STEPS, goes to tests/artifacts/lesson-NAME.png. A lesson's timeline:
// a mark per step, its past shown exactly while it waits (tests/artifacts/
// lesson-timeline-past.png), and ▶ going on with it.
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
// The step (1-based) each lesson's screenshot shows: where its point is drawn.
const KEY_STEPS = {
  put_get_design_notes: 4, hinted_handoff: 5, stale_read_r1: 4, read_repair: 5, lww_clock_skew: 5,
  partition_heal_anti_entropy: 5, delete_repaired_by_anti_entropy: 5, sloppy_quorum_vs_strict: 4,
  lsm_write_path: 5, consistent_hashing_vnodes: 4, deletes_tombstones: 7, merkle_tree_repair: 5,
  gossip_spreading: 6,
};

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

async function open(query, width, height) {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height });
  await page.emulateMedia({ colorScheme: 'light' });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(base + query);
  await page.waitForFunction(() => window.ringstore && window.ringstore.ready, null, { timeout: 30_000 });
  await page.evaluate(() => window.ringstore.view.setLessonPace(5));
  page.errors = errors;
  return page;
}

const lessonState = (page) => page.evaluate(() => window.ringstore.view.scenarioState(0));
test('a lesson\'s timeline: a mark per step, its past shown exactly while the lesson waits, and ▶ goes on with it', async () => {
  const p = await open('?scenario=hinted_handoff', 1200, 800);
  // Notes each step's picture as the reader turns the pages.
  const seen = [];
  for (let step = 1; step <= 3; step++) {
    const s = await readStep(p, step);
    assert.equal(s.step, step);
    await p.waitForTimeout(1_500);
    seen.push(await p.evaluate(() => ({ at: window.ringstore.cluster.eventsRun(), log: window.ringstore.cluster.logHash(), canvas: document.getElementById('canvas').toDataURL() })));
  }
  const marks = await p.$$eval('.tl-mark.m-step', (ms) => ms.map((m) => m.getAttribute('aria-label')));
  assert.ok(marks.length >= 3 && marks[0].startsWith('lesson step 1 begins'), JSON.stringify(marks));
  assert.match(await p.textContent('#tl-legend'), /lesson step/);
  // Step 3's mark: where step 3 began, that is step 2 read. The same event log and picture
  // as when the reader was there, and the lesson waits (nothing runs in its past).
  await p.click('.tl-mark.m-step >> nth=2');
  await p.waitForTimeout(1_500);
  const past = await p.evaluate(() => ({ at: window.ringstore.cluster.eventsRun(), log: window.ringstore.cluster.logHash(), past: window.ringstore.cluster.inPast(), canvas: document.getElementById('canvas').toDataURL() }));
  assert.deepEqual([past.at, past.log, past.past], [seen[1].at, seen[1].log, true], 'step 2 read, exactly');
  assert.ok(past.canvas === seen[1].canvas, 'the same picture');
  assert.match(await p.textContent('#tl-note'), /lesson step 3 begins\. The lesson's past, paused/);
  await p.screenshot({ path: path.join(artifacts, 'lesson-timeline-past.png') });
  await p.waitForTimeout(1_000);
  assert.equal(await p.evaluate(() => window.ringstore.cluster.eventsRun()), past.at, 'the lesson waits in its past');
  // ▶ goes back to where the lesson is; the next page follows as before.
  await p.click('#play');
  await p.waitForTimeout(1_500);
  const latest = await p.evaluate(() => ({ at: window.ringstore.cluster.eventsRun(), log: window.ringstore.cluster.logHash(), past: window.ringstore.cluster.inPast() }));
  assert.deepEqual([latest.at, latest.log, latest.past], [seen[2].at, seen[2].log, false]);
  // → from the past goes back to where the lesson waits, then turns the page.
  await p.click('.tl-mark.m-step >> nth=2');
  assert.equal(await p.evaluate(() => window.ringstore.cluster.inPast()), true);
  const s = await readStep(p, 4);
  assert.equal(s.step, 4, 'the lesson goes on');
  assert.equal(await p.evaluate(() => window.ringstore.cluster.inPast()), false);
  assert.deepEqual(p.errors, []);
  await p.close();
});

const waiting = (page) => page.waitForFunction(() => window.ringstore.view.lessonWaiting() || window.ringstore.view.scenarioState(0)?.phase === 'done', null, { timeout: 60_000 });

// The reader's → : a question with choices is answered first (with its first choice: any
// answer lets the lesson go on; authored.test.mjs checks the answers themselves).
async function turnPage(p) {
  await p.evaluate(() => {
    const s = window.ringstore.view.scenarioState(0);
    if (s?.phase === 'asking' && s.choices.length && !s.picked) window.ringstore.view.chooseAnswer(0);
  });
  await p.keyboard.press('ArrowRight');
}

// Turns pages until step `step`'s prose is shown (or the lesson is over); its state.
async function readStep(p, step) {
  let s = await lessonState(p);
  while (s.phase !== 'done' && !(s.phase === 'reading' && s.step === step)) {
    await turnPage(p);
    await waiting(p);
    s = await lessonState(p);
  }
  return s;
}

// Whether the element is wholly inside the viewport.
async function onScreen(page, selector) {
  return page.evaluate((sel) => {
    const r = document.querySelector(sel).getBoundingClientRect();
    return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight + 0.5 && r.right <= innerWidth + 0.5;
  }, selector);
}

test('every lesson waits for the reader and shows each step\'s narration on screen (embed 900×600)', async () => {
  const page = await open('', 900, 600);
  const names = await page.evaluate(async () => (await import('./pkg/ringstore_web.js')).scenarios().map((s) => s.name));
  await page.close();
  assert.ok(names.length >= 16, `${names.length} lessons`);
  for (const name of names) {
    const p = await open(`?embed=1&scenario=${name}`, 900, 600);
    await waiting(p);
    // It waits: a second later nothing has moved, not the clock, not the step.
    const before = await p.evaluate(() => [window.ringstore.view.panel().now, window.ringstore.view.scenarioState(0).step]);
    await p.waitForTimeout(1_000);
    const after = await p.evaluate(() => [window.ringstore.view.panel().now, window.ringstore.view.scenarioState(0).step]);
    assert.deepEqual(after, before, `${name} moved without the reader`);
    let s = await lessonState(p);
    for (let guard = 0; s.phase !== 'done' && guard < 40; guard++) {
      if (s.phase === 'reading') {
        await p.waitForFunction((say) => document.getElementById('caption-say').textContent.trim() === say, s.say, { timeout: 5_000 });
        const shown = (await p.textContent('#caption-say')).trim();
        assert.equal(shown, s.say, `${name} step ${s.step}: the narration shown`);
        assert.ok(shown.length > 10, `${name} step ${s.step} has prose`);
        assert.ok(await onScreen(p, '#caption-say'), `${name} step ${s.step}: the narration is on screen`);
        assert.ok(await onScreen(p, '#caption-next'), `${name}: the Next button is on screen`);
        if (KEY_STEPS[name] === s.step || (!KEY_STEPS[name] && s.step === s.total - 1)) {
          await p.waitForTimeout(150);
          await p.screenshot({ path: path.join(artifacts, `lesson-${name}.png`) });
        }
      }
      if (s.phase === 'asking') assert.ok(await onScreen(p, '#caption-ask'), `${name}: the question is on screen`);
      await turnPage(p);
      await waiting(p);
      s = await lessonState(p);
    }
    assert.equal(s.phase, 'done', `${name} played to its end`);
    assert.ok(s.missed == null, `${name}: every awaited event came (${s.missed})`);
    assert.deepEqual(p.errors, [], `${name}: page errors`);
    await p.close();
  }
});

test('the LSM lesson draws n1\'s storage: WAL, memtable, levels, a compaction, a purged tombstone', async () => {
  const p = await open('?embed=1&scenario=lsm_write_path', 900, 600);
  const at = async (step) => {
    await readStep(p, step);
    // The panel refreshes a few times a second.
    await p.waitForTimeout(300);
    return (await p.evaluate(() => window.ringstore.view.panel())).lsm;
  };
  let lsm = await at(1);
  assert.equal(lsm?.node, 1, 'the panel is open on n1 from the first step');
  lsm = await at(2);
  assert.deepEqual(lsm.wal, ['user123'], 'the PUT is in the WAL');
  assert.deepEqual(lsm.memtable, ['user123'], 'and in the memtable');
  lsm = await at(3);
  assert.ok(lsm.flushes >= 1 && lsm.levels[0][0] >= 1, `a flush made an L0 table: ${JSON.stringify(lsm)}`);
  assert.deepEqual([...lsm.memtable].sort(), lsm.memtable, 'the memtable is drawn sorted');
  lsm = await at(5);
  assert.ok(lsm.compactions >= 1 && lsm.levels[1][0] >= 1, `a compaction filled L1: ${JSON.stringify(lsm)}`);
  lsm = await at(7);
  assert.equal(lsm.tombstones_purged, 1, 'the tombstone was purged');
  assert.equal(lsm.memtable_keys, 0);
  // n1 holds nothing now, which a read answers as the others' tombstones do: not stale.
  const cells = (await p.evaluate(() => window.ringstore.view.panel())).keyCells;
  const n1 = cells.find((c) => c.node === 1);
  assert.ok(n1 && n1.ts == null && !n1.stale, `n1 after the purge: ${JSON.stringify(cells)}`);
  assert.ok(cells.filter((c) => c.node !== 1).every((c) => c.value == null && c.ts != null), 'the others hold the tombstone');
  await p.screenshot({ path: path.join(artifacts, 'lesson-lsm_write_path-purged.png') });
  assert.deepEqual(p.errors, []);
  await p.close();
});

test('the Merkle lesson draws both trees down to the one leaf that differs', async () => {
  const p = await open('?embed=1&scenario=merkle_tree_repair', 900, 600);
  // Step 5: D's session with a replica reached the leaf and D received the key it missed.
  let s = await readStep(p, 5);
  await p.waitForTimeout(300);
  const m = (await p.evaluate(() => window.ringstore.view.panel())).merkle;
  assert.ok(m, 'a session is drawn');
  assert.ok(m.from === 4 || m.with === 4, `between D and a replica: ${JSON.stringify(m)}`);
  assert.equal(m.level, m.depth, 'it went down to the leaves');
  assert.equal(m.leaves.length, 1, 'one leaf differed');
  assert.equal(m.keys_sent, 1, 'one key travelled');
  assert.ok(m.keys_compared > m.keys_sent, 'more keys were compared than sent');
  assert.deepEqual(p.errors, []);
  await p.close();
});

test('the gossip lesson draws who has heard whom: news fills the grid in rounds, a silent node turns red', async () => {
  const p = await open('?embed=1&scenario=gossip_spreading', 900, 600);
  const grid = async () => (await p.evaluate(() => window.ringstore.view.panel())).gossip;
  const known = (g) => g.cells.filter((c) => c.heard !== 'unknown' && c.heard !== 'down').length;
  const column = (g, id) => {
    const c = g.nodes.indexOf(id);
    return g.nodes.map((_, r) => g.cells[r * g.nodes.length + c]);
  };
  const toStep = async (step) => {
    await readStep(p, step);
    await p.waitForTimeout(300);
    return grid();
  };
  let g = await toStep(1);
  assert.ok(g, 'the grid is drawn');
  assert.equal(g.nodes.length, 8);
  assert.ok(g.cells.filter((c) => c.heard === 'me').length === 8, 'the diagonal is each node itself');
  assert.ok(known(g) < 64 / 2, `at the start few know each other: ${known(g)} of 64`);
  g = await toStep(4);
  assert.equal(known(g), 64, 'four rounds later everyone has heard of everyone');
  assert.ok(g.round >= 4, `round ${g.round}`);
  g = await toStep(6);
  const n5 = column(g, 5);
  assert.ok(n5.some((c) => c.heard === 'suspect'), `someone suspects n5: ${JSON.stringify(n5)}`);
  assert.ok(n5.filter((c) => c.heard !== 'down').every((c) => c.age_rounds >= 10), 'n5 has been silent for rounds');
  assert.ok(g.cells.slice(4 * 8, 5 * 8).every((c) => c.heard === 'down'), "n5's own row is down");
  assert.deepEqual(p.errors, []);
  await p.close();
});

test('a join is drawn with the ranges it pulls and the keys it moved, then the ring shares with 1 and 16 vnodes', async () => {
  const p = await open('?embed=1&scenario=consistent_hashing_vnodes', 900, 600);
  // Step 4: n6 joined and pulled its ranges.
  let s = await readStep(p, 4);
  await p.waitForTimeout(300);
  const m = (await p.evaluate(() => window.ringstore.view.panel())).moving;
  assert.ok(m, 'the join is drawn');
  assert.equal(m.node, 6);
  assert.equal(m.kind, 'join');
  assert.equal(m.keys, 45, 'the 45 copies the narration names');
  assert.deepEqual(m.streams, [true, true, true], 'three ranges, every one done');
  // Step 5: the ring shares with 1 and 16 vnodes per node, drawn as bars.
  s = await readStep(p, 5);
  await p.waitForTimeout(300);
  const shares = (await p.evaluate(() => window.ringstore.view.panel())).shares;
  assert.deepEqual(shares.map((x) => x.vnodes), [1, 16]);
  const spread = (x) => Math.max(...x.shares.map((v) => v[1])) / Math.min(...x.shares.map((v) => v[1]));
  assert.ok(spread(shares[0]) > 10 && spread(shares[1]) < 2, `uneven with 1 vnode, even with 16: ${JSON.stringify(shares)}`);
  await p.screenshot({ path: path.join(artifacts, 'lesson-consistent_hashing_vnodes-shares.png') });
  assert.deepEqual(p.errors, []);
  await p.close();
});

test('the picture marks the stale replica', async () => {
  const p = await open('?embed=1&scenario=stale_read_r1', 900, 600);
  // Step 4: the partition healed, and nothing has repaired D or E yet.
  let s = await readStep(p, 4);
  // The picture's per-node state refreshes ten times a second.
  await p.waitForFunction(() => window.ringstore.view.panel().keyCells.some((c) => c.value === 'Bob'));
  const cells = await p.evaluate(() => window.ringstore.view.panel().keyCells);
  const d = cells.find((c) => c.node === 4);
  assert.ok(d && d.stale && d.value === 'Alice', `D is drawn stale with Alice: ${JSON.stringify(cells)}`);
  assert.ok(cells.some((c) => c.node === 3 && !c.stale && c.value === 'Bob'), JSON.stringify(cells));
  // Played to its end, the checker lists D's read as a stale read that R + W ≤ N allows.
  while (s.phase !== 'done') {
    await turnPage(p);
    await waiting(p);
    s = await lessonState(p);
  }
  const c = await p.evaluate(() => window.ringstore.cluster.checker());
  assert.equal(c.staleReads, 1, JSON.stringify(c));
  assert.equal(c.strictViolations, 0, JSON.stringify(c));
  const [, read, verdict] = c.stale[0];
  assert.equal(read.kind, 'get');
  assert.equal(verdict.violation, false);
  assert.match(verdict.why, /R \+ W ≤ N \(W = 1, R = 1, N = 3\) allows this read to miss the write/);
  await p.close();
});

test('a hint is drawn while held, and the lesson goes off script when the reader crashes a node', async () => {
  const p = await open('?scenario=hinted_handoff', 1400, 860);
  let s = await lessonState(p);
  while (!(s.phase === 'reading' && s.step === 5)) {
    await turnPage(p);
    await waiting(p);
    s = await lessonState(p);
  }
  await p.waitForFunction(() => window.ringstore.view.panel().nodes.find((n) => n.id === 1).hints === 1, null, { timeout: 5_000 });
  assert.equal(await p.isHidden('#caption-off'), true);
  await p.keyboard.press('3');
  await p.keyboard.press('x');
  await p.waitForSelector('#caption-off', { state: 'visible' });
  assert.match(await p.textContent('#caption-off'), /crashed n3.*no longer applies/s);
  await p.click('#caption-restart');
  await waiting(p);
  s = await lessonState(p);
  assert.equal(s.step, 1);
  assert.ok(s.offScript == null);
  await p.close();
});

test('back one step, then forward, returns to the identical picture and event log; a link to the step opens it', async () => {
  const p = await open('?embed=1&scenario=put_get_design_notes', 900, 600);
  const toStep = async (step) => {
    const s = await readStep(p, step);
    assert.deepEqual([s.phase, s.step], ['reading', step]);
  };
  // The picture once its short animations (flashes) are over.
  const picture = async () => {
    await p.waitForTimeout(1_500);
    return p.evaluate(() => ({
      canvas: document.getElementById('canvas').toDataURL(),
      log: window.ringstore.cluster.logHash(),
      now: window.ringstore.cluster.now(),
    }));
  };
  await toStep(5);
  const ahead = await picture();
  await p.keyboard.press('ArrowLeft');
  let s = await lessonState(p);
  assert.equal(s.phase, 'reading');
  assert.equal(s.step, 4, 'back to step 4');
  const back = await picture();
  assert.ok(back.now < ahead.now, `the clock went back: ${back.now} < ${ahead.now}`);
  assert.notEqual(back.log, ahead.log);
  await turnPage(p);
  await waiting(p);
  s = await lessonState(p);
  assert.equal(s.step, 5);
  const again = await picture();
  assert.equal(again.log, ahead.log, 'the same event log');
  assert.equal(again.now, ahead.now);
  assert.ok(again.canvas === ahead.canvas, 'the same picture');
  assert.deepEqual(p.errors, []);
  await p.close();
  // A link to that step (what Copy link gives there) opens on the same picture.
  const q = await open('?embed=1&scenario=put_get_design_notes&step=5', 900, 600);
  await waiting(q);
  s = await q.evaluate(() => window.ringstore.view.scenarioState(0));
  assert.deepEqual([s.phase, s.step], ['reading', 5]);
  await q.waitForTimeout(1_500);
  const linked = await q.evaluate(() => ({ canvas: document.getElementById('canvas').toDataURL(), log: window.ringstore.cluster.logHash() }));
  assert.equal(linked.log, ahead.log, 'the linked step has the same event log');
  assert.ok(linked.canvas === ahead.canvas, 'and the same picture');
  await q.close();
});

test('the embed fits at 900×600 and 640×480, and a phone does not scroll sideways', async () => {
  for (const [w, h] of [[900, 600], [640, 480]]) {
    const p = await open('?embed=1&scenario=put_get_design_notes', w, h);
    await waiting(p);
    const box = await p.evaluate(() => {
      const c = document.getElementById('canvas').getBoundingClientRect();
      const cap = document.getElementById('caption').getBoundingClientRect();
      return { canvas: c.height, captionBottom: cap.bottom, scroll: document.scrollingElement.scrollWidth, scrollH: document.scrollingElement.scrollHeight };
    });
    assert.ok(box.canvas >= h * 0.6, `${w}×${h}: the picture is ${box.canvas}px tall`);
    assert.ok(box.captionBottom <= h + 0.5, `${w}×${h}: the narration ends at ${box.captionBottom}`);
    assert.ok(box.scroll <= w && box.scrollH <= h, `${w}×${h}: no scrolling (${box.scroll}×${box.scrollH})`);
    assert.ok(await onScreen(p, '#caption-say') && await onScreen(p, '#caption-next'));
    await p.waitForTimeout(300); // a frame at this size is drawn
    await p.screenshot({ path: path.join(artifacts, `lesson-embed-${w}x${h}.png`) });
    await p.close();
  }
  const phone = await open('?scenario=read_repair', 390, 800);
  await waiting(phone);
  const width = await phone.evaluate(() => document.scrollingElement.scrollWidth);
  assert.ok(width <= 390, `the phone layout is ${width}px wide`);
  // Touch: a tap on a node opens its card on the picture, whose button crashes it.
  await phone.evaluate(() => window.ringstore.view.stopScenario());
  await phone.screenshot({ path: path.join(artifacts, 'lesson-phone-390.png') });
  await phone.close();
});
