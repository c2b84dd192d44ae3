// Lessons written by teachers, in headless Chromium: a lesson file loaded by URL from another
// host (CORS) plays, its question with choices waits for an answer and explains it, both ways,
// and the end gives the score; a pasted lesson travels inside the link it copies; a broken
// lesson names its bad lines and leaves the page working. Screenshot:
// tests/artifacts/lesson-authored-question.png (a question answered).
//
// Serves www/ itself on 127.0.0.1 (build it first: ./scripts/build-web).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './chromium.mjs';
import { serveStatic } from './static.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const www = path.join(root, 'www');
const artifacts = path.join(root, 'tests', 'artifacts');

// The design notes' R = 1 example as a teacher would write it.
const LESSON = `title A GET at R = 1 may miss the newest write
section §4 Quorums
cluster nodes=5 n=3 w=2 r=1 seed=1 layout=notes latency=2..4 tail=0
names A B C D E
put n2 user123=Alice
say Alice is stored on C, D and E.
partition n4 | n1 n2 n3 n5
put n2 user123=Bob
heal
say D was cut off during the second write: it still holds Alice.
ask A GET at R = 1 goes through D. What does it return?
choice Bob, the newest value | No: R = 1 waits for one answer, and D answers itself first.
choice* Alice, the old value | Yes: R + W = 3 is not over N = 3, so one answer may be stale.
get n4 user123 r=1
say D answered with what it had: Alice. You can now say: R + W <= N allows stale reads.
`;

let server, base, other, browser, profile;

before(async () => {
  assert.ok(fs.existsSync(path.join(www, 'pkg', 'ringstore_web_bg.wasm')), 'www/pkg is missing: run ./scripts/build-web');
  fs.mkdirSync(artifacts, { recursive: true });
  server = await serveStatic(www);
  base = `http://127.0.0.1:${server.address().port}/`;
  // Another origin, as a teacher's web host: it allows any page to read its lessons.
  other = http.createServer((req, res) => {
    const files = { '/r1.lesson': LESSON, '/broken.lesson': LESSON.replace('heal', 'frobnicate n4').replace('get n4', 'get n9') };
    const body = files[new URL(req.url, 'http://x').pathname];
    res.writeHead(body ? 200 : 404, { 'content-type': 'text/plain', 'access-control-allow-origin': '*' });
    res.end(body ?? 'not found');
  });
  await new Promise((r) => other.listen(0, '127.0.0.1', r));
  ({ browser, profile } = await launchChromium());
});

after(async () => {
  await browser?.close();
  server?.close();
  other?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

async function open(query, width = 900, height = 600) {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height });
  await page.emulateMedia({ colorScheme: 'light' });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(base + query);
  await page.waitForFunction(() => window.ringstore && window.ringstore.ready, null, { timeout: 30_000 });
  await page.evaluate(() => window.ringstore.view.setLessonPace(5));
  page.errors = errors;
  return page;
}

const lessonState = (p) => p.evaluate(() => window.ringstore.view.scenarioState(0));
const waiting = (p) => p.waitForFunction(() => window.ringstore.view.lessonWaiting() || window.ringstore.view.scenarioState(0)?.phase === 'done', null, { timeout: 60_000 });

// Turns pages until the question shows.
async function toQuestion(p) {
  await waiting(p);
  let s = await lessonState(p);
  while (s.phase !== 'asking') {
    assert.notEqual(s.phase, 'done', 'the question never came');
    await p.keyboard.press('ArrowRight');
    await waiting(p);
    s = await lessonState(p);
  }
  return s;
}

async function toEnd(p) {
  let s = await lessonState(p);
  while (s.phase !== 'done') {
    await p.click('#caption-next');
    await waiting(p);
    s = await lessonState(p);
  }
  await p.waitForTimeout(400); // the caption refreshes a few times a second
  return s;
}

test('a lesson loaded by URL asks its question, waits for an answer, explains it both ways, and scores it', async () => {
  const url = `http://127.0.0.1:${other.address().port}/r1.lesson`;
  for (const [pick, right] of [[0, false], [1, true]]) {
    const p = await open(`?embed=1&lesson=${encodeURIComponent(url)}`);
    let s = await toQuestion(p);
    assert.equal(s.name, 'r1');
    assert.equal(s.title, 'A GET at R = 1 may miss the newest write');
    assert.deepEqual(s.choices, ['Bob, the newest value', 'Alice, the old value']);
    await p.waitForTimeout(400);
    assert.ok(await p.isDisabled('#caption-next'), 'Next waits for an answer');
    await p.keyboard.press('ArrowRight');
    assert.equal((await lessonState(p)).phase, 'asking', 'so does →');
    await p.click(`#ask-choices button:nth-child(${pick + 1})`);
    s = await lessonState(p);
    assert.equal(s.picked.index, pick);
    assert.equal(s.picked.right, right);
    const why = await p.textContent('#ask-why');
    assert.ok(why.startsWith(right ? 'Right. Yes: R + W = 3' : 'Not quite. No: R = 1'), why);
    if (right) await p.screenshot({ path: path.join(artifacts, 'lesson-authored-question.png') });
    s = await toEnd(p);
    assert.deepEqual(s.score, { right: right ? 1 : 0, asked: 1 });
    assert.equal(await p.textContent('#caption-score'), `You answered ${right ? 1 : 0} of 1 question right.`);
    // The GET really returned what D held: the narration is true.
    const log = s.script.map((l) => l[1]).join('\n');
    assert.match(log, /=> .*Alice/, log);
    assert.ok(new URL(p.url()).searchParams.get('lesson') === url, `the link keeps the lesson: ${p.url()}`);
    assert.deepEqual(p.errors, []);
    await p.close();
  }
});

test('a pasted lesson travels inside the link it copies', async () => {
  const p = await open('');
  await p.selectOption('#scenario', '__own');
  await p.fill('#own-text', LESSON);
  await p.click('#own-play');
  await waiting(p);
  const s = await lessonState(p);
  assert.equal(s.title, 'A GET at R = 1 may miss the newest write');
  const link = new URL(p.url());
  const code = link.searchParams.get('lesson-text');
  assert.ok(code && code.length < LESSON.length, `a compressed lesson in the link: ${link.search.length} characters`);
  await p.close();
  const q = await open(link.search);
  await toQuestion(q);
  assert.equal((await lessonState(q)).title, 'A GET at R = 1 may miss the newest write');
  assert.deepEqual(q.errors, []);
  await q.close();
});

test('a broken lesson names its bad lines, and the page stays in free play', async () => {
  const url = `http://127.0.0.1:${other.address().port}/broken.lesson`;
  const p = await open(`?lesson=${encodeURIComponent(url)}`);
  const banner = await p.textContent('#warnings');
  assert.ok(banner.includes('has errors'), banner);
  assert.ok(banner.includes('line 9: unknown command "frobnicate"'), banner);
  assert.equal(await lessonState(p), undefined, 'no lesson plays');
  assert.ok((await p.evaluate(() => window.ringstore.cluster.nodeIds())).length > 0, 'the page works');
  // Pasted, the node that does not exist is named at its line.
  await p.selectOption('#scenario', '__own');
  await p.fill('#own-text', LESSON.replace('get n4', 'get n9'));
  await p.click('#own-play');
  const errors = await p.textContent('#own-errors');
  assert.ok(errors.includes('line 14: there is no node n9 here'), errors);
  const missing = await open(`?lesson=${encodeURIComponent(`http://127.0.0.1:${other.address().port}/nope.lesson`)}`);
  assert.ok((await missing.textContent('#warnings')).includes('answered 404'));
  assert.deepEqual(p.errors, []);
  await p.close();
  await missing.close();
});
