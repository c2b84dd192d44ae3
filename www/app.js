// The page: builds the cluster from the URL, runs the animation loop (all drawing and the
// simulation's pacing happen in wasm, in View.frame), and keeps the DOM panels up to date a
// few times a second. Every control has a keyboard shortcut (see the ? dialog).
//
// The panels cost style, layout and paint in the frame that changes them, so: each round of
// updates (every PANEL_MS) is split into jobs run one per animation frame (PANEL_JOBS), no
// frame doing all of them; text is written only when it changes (setText); nothing reads
// layout after writing (the log's "stuck to the bottom" comes from its scroll events); and
// the event log's lines go into the DOM only while the log is on screen (an
// IntersectionObserver), kept as data otherwise.
import init, { View, parseQuery, toQuery, scenarios, version, checkLesson } from './pkg/ringstore_web.js';
import { Cluster, DB_NAME, openCluster, persistCluster, resetCluster, persistent } from './cluster.js';
import { initLive, liveQuery, autoLive, liveFrame } from './live.js';
import { lessonQuery, fetchLesson, encodeLesson, decodeLesson, lessonName, LINK_CODE_MAX } from './authored.js';
import { initTimeline, render as renderTimeline, stepBackOne, jumpMarker, jumpToAnomaly, momentParams, readMoment, toLatest } from './timeline.js';

const $ = (id) => document.getElementById(id);
const KINDS = ['write', 'read', 'ack', 'gossip', 'hint', 'repair', 'stream', 'disk', 'client', 'protocol', 'node', 'fault'];
const PANEL_MS = 250;
const PERSIST_MS = 500;
const LOG_BATCH_MAX = 20; // lines added per update at most: a screenful (18 lines show)
const LOG_KEEP = 200;     // lines in the log (each added or moved line costs layout and paint)
const LOG_TRIM = 50;      // the oldest lines leave in chunks of this many, in their own frame

// Writes `text` into `el` only if it differs (an unchanged write still costs style and layout).
function setText(el, text) {
  const t = String(text);
  if (el.textContent !== t) el.textContent = t;
}

const state = {
  cluster: null,
  view: null,
  settings: null,
  selected: 0,
  sideA: new Set(),
  logSeq: 0,
  logFrozen: false,
  hidden: new Set(['gossip', 'disk']),
  logNode: 0,
  results: [],
  followed: -1,
  captionShown: 0,
  lastPanel: 0,
  panelJob: Infinity,
  building: false,
  logLines: [],      // log lines fetched but not yet in the DOM (bounded by LOG_KEEP)
  logVisible: true,  // the log list is on screen (IntersectionObserver)
  logStuck: true,    // the log is scrolled to its bottom (its scroll events)
  nodeShown: '',     // what the node panel shows, to rebuild it only when that changes
  authored: null,    // a teacher's lesson being played: {name, text, url, code}
};
window.ringstore = state; // for the browser test and for curious users

function fatal(msg) {
  const el = $('fatal');
  el.hidden = false;
  el.textContent = msg;
}

function warn(lines, title = 'Some settings in the link were not valid, so defaults are used:') {
  const el = $('warnings');
  if (!lines.length) { el.hidden = true; return; }
  el.hidden = false;
  el.innerHTML = '';
  const b = document.createElement('b');
  b.textContent = title;
  const ul = document.createElement('ul');
  for (const l of lines) { const li = document.createElement('li'); li.textContent = l; ul.append(li); }
  const close = document.createElement('button');
  close.className = 'linkish banner-close';
  close.textContent = '✕';
  close.title = 'Close';
  close.setAttribute('aria-label', 'Close this message');
  close.onclick = () => { el.hidden = true; };
  el.append(close, b, ul);
}

// The reader changed a lesson's run: its narration no longer applies (the page says so and
// offers to restart the lesson).
function inLesson() { return !!(state.settings?.scenario || state.authored); }

// ▶ / ❚❚. In a lesson's past (the timeline), ▶ goes back to where the lesson is: it goes on
// from there (replaying at the player's pace would run past the moment it waits at).
function togglePlay() {
  if (inLesson() && state.cluster?.inPast()) { toLatest(); return; }
  state.view.setPlaying(!state.view.playing());
}

function offScript(what) {
  if ((state.settings?.scenario || state.authored) && state.view) state.view.offScript(what);
}

function clusterOptions(s) {
  if (state.authored) return { lesson: state.authored.text };
  if (s.scenario) return { scenario: s.scenario };
  return { seed: s.seed, nodes: s.nodes, n: s.n, w: s.w, r: s.r, vnodes: s.vnodes,
    gossip: s.gossip, sync: s.sync };
}

async function build() {
  state.building = true;
  const s = state.settings;
  try {
    const options = clusterOptions(s);
    const lesson = s.scenario || state.authored;
    // A link to a moment replays the run from its start: a fresh cluster, not the saved one.
    const moment = !lesson && state.openMoment;
    state.openMoment = null;
    const cluster = lesson || moment ? new Cluster(options) : await openCluster(DB_NAME, options);
    if (state.cluster) state.cluster.free();
    state.cluster = cluster;
    if (moment?.inputs) {
      // The link's inputs hold the run's settings as they were given (the knobs among them).
      try { cluster.loadInputs(moment.inputs); } catch (e) { warn([`${e.message || e}`], 'The link\'s moment could not be reproduced:'); }
    } else if (!lesson) {
      cluster.setNetwork({ latencyMin: s.latency_min, latencyMax: s.latency_max, lossPct: s.loss });
      cluster.setWorkload({ rate: s.rate, readPct: s.reads, keys: s.keys });
    }
    if (moment) {
      try { cluster.playTo(moment.at); } catch (e) { warn([`${e.message || e}`], 'The link\'s moment could not be reproduced:'); }
    }
    state.view.attach(cluster);
    if (moment) state.view.setPlaying(false);
    if (lesson) {
      if (state.authored) state.view.startLesson(cluster, state.authored.name, state.authored.text);
      else state.view.startScenario(cluster, s.scenario);
      if (state.openStep > 1) state.view.lessonSkipTo(cluster, state.openStep);
      state.openStep = 0;
      state.captionShown = 0;
      $('caption-lines').innerHTML = '';
      renderCaption();
    } else {
      renderCaption();
    }
    state.results = [];
    $('results').innerHTML = '';
    state.logSeq = 0;
    state.logLines = [];
    $('log').innerHTML = '';
    follow(-1);
    state.sideA.clear();
    select(0);
    fillNodeLists();
    syncControls();
  } catch (e) {
    warn([`could not build the cluster (${e.message || e}); using the defaults`]);
    state.authored = null;
    state.settings = parseQuery('').settings;
    if (!state.cluster) state.cluster = new Cluster(clusterOptions(state.settings));
    state.view.attach(state.cluster);
  } finally {
    state.building = false;
  }
  updateUrl();
}

// After the timeline replaced the cluster on screen (web/src/timeline.rs): the picture and the
// panels start again from it, paused.
function afterTravel() {
  const key = state.view.key();
  state.view.reattach(state.cluster);
  state.view.setPlaying(false);
  state.view.follow(state.followed);
  if (key != null) state.view.setKey(key);
  state.logSeq = 0;
  state.logLines = [];
  $('log').innerHTML = '';
  fillNodeLists();
  renderNode();
  renderNodeFloat();
  renderChecker();
  state.lastPanel = 0;
}

// The link's lesson parameter for a teacher's lesson: its URL, else its text (small ones).
function authoredParam() {
  const a = state.authored;
  if (!a) return '';
  if (a.url) return `lesson=${encodeURIComponent(a.url)}`;
  return a.code && a.code.length <= LINK_CODE_MAX ? `lesson-text=${a.code}` : '';
}

function updateUrl() {
  const q = [toQuery(state.settings), authoredParam(), state.forceSim ? 'mode=sim' : ''].filter(Boolean).join('&');
  const url = location.pathname + (q ? `?${q}` : '');
  history.replaceState(null, '', url);
  $('open-full').href = url.replace(/([?&])embed=1&?/, '$1').replace(/[?&]$/, '');
  $('caption-open').href = $('open-full').href;
}

// ---- controls ---------------------------------------------------------------------------

function syncControls() {
  const s = state.settings;
  $('speed').textContent = fmtSpeed(state.view.speed());
  for (const [id, v] of [['cfg-nodes', s.nodes], ['cfg-n', s.n], ['cfg-w', s.w], ['cfg-r', s.r], ['cfg-vnodes', s.vnodes], ['cfg-seed', s.seed]]) $(id).value = v;
  const sync = $('cfg-sync');
  if (![...sync.options].some(o => o.value === s.sync)) sync.add(new Option(s.sync, s.sync));
  sync.value = s.sync;
  $('cfg-membership').value = s.gossip ? 'gossip' : 'oracle';
  $('loss').value = s.loss; $('loss-out').textContent = `${s.loss}%`;
  $('latency').value = s.latency_max; $('latency-out').textContent = `${s.latency_min}–${s.latency_max} ms`;
  $('wl-rate').value = s.rate; $('rate-out').textContent = `${s.rate} ops/s`;
  $('wl-reads').value = s.reads; $('reads-out').textContent = `${s.reads}%`;
  $('wl-keys').value = s.keys; $('keys-out').textContent = `${s.keys}`;
  $('scenario').value = state.authored ? '__own' : (s.scenario || '');
  const inScenario = !!s.scenario || !!state.authored;
  for (const id of ['workload-card', 'cluster-card']) $(id).classList.toggle('muted', inScenario);
}

function fmtSpeed(x) {
  return x >= 1 ? `${x}×` : `${x}×`;
}

function fillNodeLists() {
  const ids = state.cluster.nodeIds();
  const via = $('via');
  const prev = via.value;
  via.innerHTML = '';
  for (const id of ids) via.add(new Option(`n${id}`, id));
  via.value = ids.includes(Number(prev)) ? prev : String(ids[Math.min(1, ids.length - 1)]);
  const ln = $('log-node');
  const lprev = ln.value;
  ln.innerHTML = '';
  ln.add(new Option('all nodes', 0));
  for (const id of ids) ln.add(new Option(`n${id}`, id));
  ln.value = ids.includes(Number(lprev)) ? lprev : '0';
  const chips = $('side-a');
  chips.innerHTML = '';
  for (const id of ids) {
    const b = document.createElement('button');
    b.className = 'chip';
    b.textContent = `n${id}`;
    b.setAttribute('aria-pressed', state.sideA.has(id) ? 'true' : 'false');
    b.onclick = () => { toggleSideA(id); };
    chips.append(b);
  }
  $('node-count').textContent = `${ids.length} nodes`;
}

function toggleSideA(id) {
  if (state.sideA.has(id)) state.sideA.delete(id); else state.sideA.add(id);
  fillNodeLists();
}

function setSettings(patch, rebuild) {
  Object.assign(state.settings, patch);
  if (rebuild) build(); else updateUrl();
  syncControls();
}

function select(id) {
  state.selected = id;
  state.view.select(id);
  $('node-card').hidden = !id;
  if (id) { $('node-name').textContent = `n${id}`; renderNode(); }
  renderNodeFloat();
}

// A small card on the picture for the selected node: touch screens crash and restart here
// (no double-click needed).
function renderNodeFloat() {
  const id = state.selected;
  const box = $('node-float');
  box.hidden = !id || !!state.live || !state.cluster;
  if (box.hidden) return;
  $('node-float-name').textContent = `n${id}`;
  $('node-float-toggle').textContent = state.cluster.isUp(id) ? 'Crash' : 'Restart';
}

function follow(op) {
  state.followed = op;
  state.view.follow(op);
  state.live?.follow(op);
  for (const li of $('results').children) li.classList.toggle('followed', Number(li.dataset.op) === op);
  $('path').hidden = op < 0;
}

function send(ev) {
  ev?.preventDefault();
  const kind = $('op').value, node = Number($('via').value);
  const key = $('key').value.trim(), value = $('value').value;
  if (!key) { $('key').focus(); return; }
  offScript(`sent ${kind} ${key}`);
  try {
    const op = state.cluster.client(node, kind, key, value, $('consistency').value);
    const c = $('consistency').value;
    state.results.unshift({ op, text: `${kind} ${key}${kind === 'put' ? '=' + value : ''} via n${node}${c ? ' ' + c : ''}`, result: null });
    state.results.length = Math.min(state.results.length, 30);
    state.view.setKey(key);
    follow(op);
    renderResults();
  } catch (e) {
    state.results.unshift({ op: -1, text: `${kind} ${key}`, result: `error: ${e.message || e}` });
    renderResults();
  }
}

function renderResults() {
  const ol = $('results');
  ol.innerHTML = '';
  for (const r of state.results) {
    const li = document.createElement('li');
    li.dataset.op = r.op;
    const what = document.createElement('span'); what.className = 'what'; what.textContent = r.text;
    const res = document.createElement('span');
    res.className = 'res ' + (r.result == null ? 'pending' : r.result.startsWith('error') ? 'err' : 'ok');
    res.textContent = r.result == null ? 'waiting…' : r.result;
    li.append(what, res);
    li.title = 'Follow this operation';
    li.classList.toggle('followed', r.op === state.followed);
    li.onclick = () => r.op >= 0 && follow(r.op);
    ol.append(li);
  }
}

function crashOrRestart(id) {
  if (!id || state.live) return; // a real node is killed outside the page
  offScript(`${state.cluster.isUp(id) ? 'crashed' : 'restarted'} n${id}`);
  try { state.cluster.toggle(id); } catch (e) { warn([`n${id}: ${e.message || e}`]); }
  renderNode();
  renderNodeFloat();
}

function partition() {
  const a = [...state.sideA];
  if (!a.length) { warn(['choose side A first: click node chips under Faults, or open a node and press A'], 'A partition needs a side:'); return; }
  offScript('partitioned the network');
  const b = state.cluster.nodeIds().filter(id => !state.sideA.has(id));
  try { state.cluster.partition(a, b, $('one-way').checked); } catch (e) { warn([`partition: ${e.message || e}`], 'Could not do that:'); }
}

function heal() {
  offScript('healed the network');
  try { state.cluster.heal(); } catch (e) { warn([`heal: ${e.message || e}`], 'Could not do that:'); }
}

function studyKey() {
  const key = $('key').value.trim();
  state.view.setKey(key);
}

// ---- panels -----------------------------------------------------------------------------

function renderNode() {
  const id = state.selected;
  if (!id || !state.cluster) return;
  const d = state.cluster.nodeDetail(id);
  const body = $('node-body');
  const rows = [];
  const st = d.data;
  rows.push(['state', d.up ? 'running' : state.live ? 'unreachable from the page' : 'down']);
  rows.push(['tokens', d.tokens.join(' ')]);
  if (st) {
    rows.push(['WAL', `${fmtBytes(st.wal_bytes)} in ${st.wal_segments} segment(s), durable to LSN ${st.durable_lsn}/${st.last_lsn}, ${st.wal_syncs} syncs`]);
    rows.push(['memtable', `${st.memtable_entries} keys, ${fmtBytes(st.memtable_bytes)}${st.frozen_memtables ? `, ${st.frozen_memtables} frozen` : ''}`]);
    rows.push(['SSTables', st.levels.map((l, i) => `L${i}:${l.tables}`).join(' ') || 'none']);
    rows.push(['jobs', `${st.flushes} flushes, ${st.compactions} compactions, WA ${st.write_amplification.toFixed(2)}`]);
  }
  rows.push(['hints held', d.hints.length ? d.hints.map(([o, c]) => `${c} for n${o}`).join(', ') : 'none']);
  const shown = JSON.stringify([id, rows, d.opinions, st && st.levels, d.up, d.skewMs]);
  if (shown === state.nodeShown && body.childElementCount) return;
  state.nodeShown = shown;
  const t = document.createElement('table');
  t.className = 'node-table';
  for (const [k, v] of rows) {
    const tr = t.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = v;
  }
  const ops = document.createElement('table');
  ops.className = 'node-table';
  const head = ops.insertRow();
  head.insertCell().textContent = 'seen by';
  head.insertCell().textContent = 'verdict';
  head.insertCell().textContent = 'φ';
  for (const o of d.opinions) {
    const tr = ops.insertRow();
    tr.insertCell().textContent = `n${o.observer}`;
    const v = tr.insertCell(); v.textContent = o.verdict; v.className = `verdict-${o.verdict}`;
    tr.insertCell().textContent = o.phi == null ? '–' : o.phi.toFixed(2);
  }
  const levels = document.createElement('div');
  levels.className = 'levels';
  if (st) {
    const max = Math.max(1, ...st.levels.map(l => l.tables));
    st.levels.forEach((l, i) => {
      const bar = document.createElement('div');
      bar.style.height = `${(l.tables / max) * 30 + 2}px`;
      bar.title = `L${i}: ${l.tables} tables, ${fmtBytes(l.bytes)}`;
      const s = document.createElement('span'); s.textContent = `L${i}`;
      bar.append(s);
      levels.append(bar);
    });
  }
  body.replaceChildren(t, levels, ops);
  $('node-toggle').innerHTML = (d.up ? 'Crash' : 'Restart') + ' <kbd>X</kbd>';
  $('skew-out').textContent = `${d.skewMs > 0 ? '+' : ''}${d.skewMs} ms`;
  if (document.activeElement !== $('skew')) $('skew').value = d.skewMs;
}

function fmtBytes(b) {
  if (b < 1024) return `${b} B`;
  if (b < 1 << 20) return `${(b / 1024).toFixed(1)} KB`;
  return `${(b / 1048576).toFixed(1)} MB`;
}

function renderPath(panel) {
  const f = panel.followed;
  if (!f) return;
  $('path-title').textContent = `${f.kind} ${f.key} via n${f.coordinator}${f.result ? ' → ' + f.result : ''}`;
  const ol = $('path-steps');
  if (ol.childElementCount === f.steps.length && ol.dataset.op == f.op) return;
  ol.dataset.op = f.op;
  ol.innerHTML = '';
  for (const [t, text] of f.steps) {
    if (text.endsWith(' delivered')) continue;
    const li = document.createElement('li');
    const ts = document.createElement('span'); ts.className = 't'; ts.textContent = `${t}ms`;
    li.append(ts, text);
    ol.append(li);
  }
}

function renderChecker() {
  const c = state.cluster.checker();
  setText($('stale-n'), c.staleReads);
  setText($('lost-n'), c.lostUpdates);
  setText($('ok-n'), c.ok);
  setText($('failed-n'), c.failed);
  setText($('strict'), c.strictViolations
    ? `${c.strictViolations} stale read(s) broke the quorum invariant (W + R > N, no failure beyond tolerance)!`
    : c.staleReads ? 'Every stale read is expected: R + W ≤ N, a hinted write, or a crash under a lax sync policy (click the counter for why).'
    : c.lostUpdates ? 'Lost updates are last-write-wins at work (click the counter for why).' : '');
  const changed = !state.lastChecker || c.staleReads !== state.lastChecker.staleReads || c.lostUpdates !== state.lastChecker.lostUpdates;
  state.lastChecker = c;
  const list = $('anomalies');
  if (!list.hidden && changed) renderAnomalies(list.dataset.kind);
}

function renderAnomalies(kind) {
  const c = state.lastChecker;
  const list = $('anomalies');
  list.dataset.kind = kind;
  list.innerHTML = '';
  const items = kind === 'stale' ? c.stale : c.lost;
  if (!items.length) { const li = document.createElement('li'); li.textContent = 'none so far'; list.append(li); return; }
  for (const [w, o, verdict] of items) {
    if (!w || !o) continue;
    const li = document.createElement('li');
    li.textContent = kind === 'stale'
      ? `#${o.op} get ${o.key} via n${o.node} → ${o.result} missed #${w.op} ${w.kind} (${w.result})`
      : `#${o.op} ${o.kind} ${o.key} via n${o.node} (${o.result}) lost to #${w.op} (${w.result})`;
    const why = document.createElement('div'); why.className = 'why';
    why.textContent = verdict.why;
    if (verdict.violation) li.classList.add('violation');
    li.append(why);
    li.title = 'Go to the moment it happened (the run pauses there) and follow the later operation';
    li.onclick = () => { if (!jumpToAnomaly(o)) follow(o.op); };
    list.append(li);
  }
}

function renderLog() {
  if (state.logFrozen) return;
  const filter = { hide: [...state.hidden], node: state.logNode, deliveries: false, limit: LOG_BATCH_MAX };
  const out = state.cluster.logSince(state.logSeq, filter);
  state.logSeq = out.next;
  // At hundreds of operations per second nobody reads every line: keep the newest of each batch.
  const lines = state.logLines;
  for (const l of out.lines.slice(-LOG_BATCH_MAX)) lines.push(l);
  if (lines.length > LOG_KEEP) lines.splice(0, lines.length - LOG_KEEP);
  if (state.logVisible) flushLog();
}

// Moves the fetched log lines into the DOM (when the log is on screen). Writes only: whether
// to follow the bottom is known from the log's scroll events.
function flushLog() {
  const lines = state.logLines;
  if (!lines.length) return;
  state.logLines = [];
  const ol = $('log');
  const frag = document.createDocumentFragment();
  for (const l of lines) {
    const li = document.createElement('li');
    li.className = l.class;
    const t = document.createElement('span'); t.className = 't'; t.textContent = `${l.t}ms`;
    li.append(t, l.text);
    if (l.op != null) { li.dataset.op = l.op; li.title = 'Follow this operation'; }
    frag.append(li);
  }
  ol.append(frag);
  if (state.logStuck) ol.scrollTop = 1e9; // clamped to the bottom
}

// Removes the oldest log lines once there are LOG_KEEP of them, LOG_TRIM at a time: every line
// below moves, so all of them are painted again; appending alone repaints only the new ones.
function trimLog() {
  const ol = $('log');
  if (ol.childElementCount < LOG_KEEP) return;
  const range = document.createRange();
  range.setStartBefore(ol.firstElementChild);
  range.setEndAfter(ol.children[Math.min(LOG_TRIM, ol.childElementCount) - 1]);
  range.deleteContents();
}

function renderCaption() {
  const s = state.view.scenarioState(state.captionShown);
  const box = $('caption');
  if (!s) {
    if (!box.hidden) { box.hidden = true; document.body.classList.remove('lesson'); $('caption-lines').hidden = true; }
    return;
  }
  if (box.hidden) { box.hidden = false; document.body.classList.add('lesson'); }
  setText($('caption-section'), s.section);
  setText($('caption-title'), s.title);
  const progress = s.phase === 'done' ? `${s.total} of ${s.total} · done` : `step ${s.step} of ${s.total}`;
  setText($('caption-progress'), progress);
  const say = s.phase === 'running' && !s.say ? 'Watch…' : (s.say || '');
  setText($('caption-say'), say);
  $('caption-say').classList.toggle('stale', s.phase === 'running' || s.phase === 'asking');
  const ask = $('caption-ask');
  const q = s.ask ? s.ask.question : '';
  if (ask.dataset.q !== q) {
    ask.dataset.q = q;
    ask.hidden = !s.ask;
    setText($('ask-q'), q);
    setText($('ask-a'), s.ask ? s.ask.answer : '');
    $('ask-a').hidden = true;
    $('ask-show').hidden = !s.ask || !s.ask.answer;
    const box = $('ask-choices');
    box.innerHTML = '';
    box.hidden = !s.choices.length;
    s.choices.forEach((text, i) => {
      const b = document.createElement('button');
      b.className = 'choice';
      b.textContent = text;
      b.onclick = () => { if (state.view.chooseAnswer(i)) renderCaption(); };
      box.append(b);
    });
  }
  // The reader's answer, and why it is right or wrong, from the pick until the next step.
  const picked = s.picked;
  const why = $('ask-why');
  why.hidden = !picked;
  if (picked) {
    setText(why, `${picked.right ? 'Right.' : 'Not quite.'} ${picked.why}`);
    why.classList.toggle('right', picked.right);
    ask.hidden = false;
    for (const [i, b] of [...$('ask-choices').children].entries()) {
      b.disabled = true;
      b.classList.toggle('picked', i === picked.index);
    }
  } else if (!s.ask) {
    ask.hidden = true;
  }
  const score = $('caption-score');
  score.hidden = !(s.phase === 'done' && s.score.asked > 0);
  if (!score.hidden) setText(score, `You answered ${s.score.right} of ${s.score.asked} question${s.score.asked === 1 ? '' : 's'} right.`);
  $('caption-off').hidden = !s.offScript;
  if (s.offScript) setText($('off-why'), s.offScript);
  $('caption-back').disabled = s.step <= 1 && s.phase !== 'done';
  const next = $('caption-next');
  next.disabled = s.phase === 'running' || s.phase === 'done' || !!s.offScript || (s.choices.length > 0 && !picked);
  const label = s.phase === 'running' ? 'Playing…' : s.phase === 'asking' ? 'Play this step' : s.phase === 'done' ? 'The end' : 'Next';
  if (next.dataset.label !== label) { next.dataset.label = label; next.innerHTML = `${label}${s.phase === 'reading' || s.phase === 'asking' ? ' <kbd>→</kbd>' : ''}`; }
  $('caption-auto').checked = s.autoplay;
  box.dataset.phase = s.phase;
  const lines = $('caption-lines');
  for (const [cls, text] of s.script) {
    const li = document.createElement('li');
    li.className = `l-${cls}`;
    li.textContent = text;
    lines.append(li);
  }
  state.captionShown += s.script.length;
  if (s.script.length && !lines.hidden) lines.scrollTop = lines.scrollHeight;
}

// One round of panel updates, as jobs run one per animation frame (see the top of the file).
const PANEL_JOBS = [
  function transport() {
    const panel = state.view.panel();
    state.panel = panel;
    if (!state.live) setText($('clock'), `${(panel.now / 1000).toFixed(3)} s`);
    setText($('play'), panel.playing ? '❚❚' : '▶');
    setText($('speed'), fmtSpeed(panel.speed));
    setText($('rate'), panel.playing ? `${panel.rate.toFixed(panel.rate < 1 ? 3 : 1)} sim s/s` : 'paused');
    renderCaption();
  },
  function results() {
    let changed = false;
    for (const r of state.results) {
      if (r.result == null && r.op >= 0) {
        const res = state.cluster.resultOf(r.op);
        if (res != null) { r.result = res; changed = true; }
      }
    }
    if (changed) renderResults();
    if (state.followed >= 0 && state.panel) renderPath(state.panel);
    if (state.cluster.nodeIds().length !== $('via').options.length) fillNodeLists();
  },
  function checker() { if (!state.live) renderChecker(); },
  function timeline() { if (!state.live) renderTimeline(); },
  function log() { renderLog(); },
  function logTrim() { trimLog(); },
  function node() { renderNode(); renderNodeFloat(); },
];
state.panelJobs = PANEL_JOBS; // for the profiler (tests/browser)

// ---- the loop ---------------------------------------------------------------------------

function resize() {
  const c = $('canvas');
  const r = c.getBoundingClientRect();
  state.view.resize(r.width, r.height, window.devicePixelRatio || 1);
}

function loop(t) {
  if ((state.live || state.cluster) && !state.building) {
    try {
      if (state.live) liveFrame(t); else state.view.frame(state.cluster, t);
      if (t - state.lastPanel > PANEL_MS) { state.lastPanel = t; state.panelJob = 0; }
      if (state.panelJob < PANEL_JOBS.length) { console.timeStamp('job ' + PANEL_JOBS[state.panelJob].name); PANEL_JOBS[state.panelJob++](); }
    } catch (e) {
      console.error(e);
      fatal(`Something went wrong drawing the cluster: ${e.message || e}. Reload the page; the link keeps your settings.`);
      return;
    }
  }
  requestAnimationFrame(loop);
}

function showTooltip(hit, x, y) {
  const tip = $('tooltip');
  let text = '';
  if (hit.kind === 'node') {
    const n = state.view.panel().nodes.find(n => n.id === hit.id);
    if (n) {
      const seen = n.seen;
      text = `n${n.id} · ${n.status}\nseen: ${seen.alive} alive, ${seen.suspect} suspect, ${seen.dead} dead` +
        (seen.phi_max != null ? `\nmax φ ${seen.phi_max.toFixed(2)}` : '') +
        (n.storage ? `\nmem ${n.storage.memtable_entries} · wal ${fmtBytes(n.storage.wal_bytes)} · SST ${n.storage.tables.join('/')}` : '') +
        (n.hints ? `\nholds ${n.hints} hints` : '') + (n.skew_ms ? `\nclock ${n.skew_ms > 0 ? '+' : ''}${n.skew_ms} ms` : '') +
        '\nclick to open';
    }
  } else if (hit.kind === 'ring') {
    text = `token ${hit.token.slice(0, 6)}…\nowner n${hit.owner}\nreplicas [${hit.preference.map(p => 'n' + p).join(', ')}]`;
  } else if (hit.kind === 'message') {
    text = `${hit.message} n${hit.from} → n${hit.to}` + (hit.op != null ? `\nop #${hit.op} (click to follow)` : '');
  }
  tip.hidden = !text;
  if (text) {
    tip.textContent = text;
    tip.style.whiteSpace = 'pre';
    tip.style.left = `${x + 14}px`;
    tip.style.top = `${y + 14}px`;
  }
}

function wire() {
  const canvas = $('canvas');
  canvas.addEventListener('pointermove', (e) => {
    const r = canvas.getBoundingClientRect();
    const hit = state.view.pointer(e.clientX - r.left, e.clientY - r.top);
    state.hover = hit;
    canvas.style.cursor = hit.kind === 'none' ? 'crosshair' : 'pointer';
    showTooltip(hit, e.clientX - r.left, e.clientY - r.top);
  });
  canvas.addEventListener('pointerleave', () => { state.view.pointerLeft(); $('tooltip').hidden = true; });
  canvas.addEventListener('click', (e) => {
    const r = canvas.getBoundingClientRect();
    const hit = state.view.pointer(e.clientX - r.left, e.clientY - r.top);
    if (hit.kind === 'node') select(state.selected === hit.id ? 0 : hit.id);
    else if (hit.kind === 'message' && hit.op != null) follow(hit.op);
    else if (state.view.lessonWaiting()) nextStep();
    else if (hit.kind === 'none') select(0);
  });
  canvas.addEventListener('dblclick', (e) => {
    const r = canvas.getBoundingClientRect();
    const hit = state.view.pointer(e.clientX - r.left, e.clientY - r.top);
    if (hit.kind === 'node') { select(hit.id); crashOrRestart(hit.id); }
  });
  new ResizeObserver(resize).observe(canvas);
  $('console').addEventListener('submit', send);
  $('key').addEventListener('input', studyKey);
  $('op').addEventListener('change', () => { $('value').disabled = $('op').value !== 'put'; });
  $('play').onclick = togglePlay;
  // Forward one event; in a lesson's past that replays the lesson's own run, so it stays on.
  $('step').onclick = () => {
    if (!(inLesson() && state.cluster?.inPast())) offScript('stepped the simulation by hand');
    state.view.stepOne(state.cluster);
  };
  $('faster').onclick = () => { state.settings.speed = state.view.nudgeSpeed(true); updateUrl(); };
  $('slower').onclick = () => { state.settings.speed = state.view.nudgeSpeed(false); updateUrl(); };
  $('unfollow').onclick = () => follow(-1);
  $('node-toggle').onclick = () => crashOrRestart(state.selected);
  $('node-leave').onclick = () => { if (state.selected) { offScript(`n${state.selected} left`); state.cluster.leave(state.selected); } };
  $('skew').oninput = () => {
    offScript(`skewed n${state.selected}'s clock`);
    try { state.cluster.setSkew(state.selected, Number($('skew').value)); } catch (e) { warn([`clock skew: ${e.message || e}`], 'Could not do that:'); }
    renderNode();
  };
  $('add-node').onclick = () => { offScript('added a node'); try { state.cluster.addNode(); fillNodeLists(); } catch (e) { warn([e.message || String(e)]); } };
  $('partition').onclick = partition;
  $('heal').onclick = heal;
  $('loss').oninput = () => { offScript('changed message loss'); const v = Number($('loss').value); state.cluster.setNetwork({ lossPct: v }); setSettings({ loss: v }); };
  $('latency').oninput = () => { offScript('changed the latency');
    const hi = Number($('latency').value), lo = Math.max(1, Math.round(hi / 3));
    state.cluster.setNetwork({ latencyMin: lo, latencyMax: hi }); setSettings({ latency_min: lo, latency_max: hi });
  };
  $('wl-rate').oninput = () => { offScript('started a workload'); const v = Number($('wl-rate').value); state.cluster.setWorkload({ rate: v }); setSettings({ rate: v }); };
  $('wl-reads').oninput = () => { const v = Number($('wl-reads').value); state.cluster.setWorkload({ readPct: v }); setSettings({ reads: v }); };
  $('wl-keys').oninput = () => { const v = Number($('wl-keys').value); state.cluster.setWorkload({ keys: v }); setSettings({ keys: v }); };
  $('rebuild').onclick = () => {
    const num = (id) => Number($(id).value);
    const patch = { nodes: num('cfg-nodes'), n: num('cfg-n'), w: num('cfg-w'), r: num('cfg-r'), vnodes: num('cfg-vnodes'),
      seed: num('cfg-seed'), sync: $('cfg-sync').value, gossip: $('cfg-membership').value === 'gossip', scenario: '' };
    const q = toQuery({ ...state.settings, ...patch });
    const parsed = parseQuery(q);
    warn(parsed.warnings);
    state.settings = parsed.settings;
    build();
  };
  $('scenario').onchange = () => {
    const v = $('scenario').value;
    if (v === '__own') { openOwnLesson(); return; }
    startScenario(v);
  };
  wireOwnLesson();
  $('caption-next').onclick = nextStep;
  $('caption-stop').onclick = () => startScenario('');
  $('caption-again').onclick = restartLesson;
  $('caption-back').onclick = stepBack;
  $('caption-restart').onclick = restartLesson;
  $('caption-auto').onchange = () => { state.view.setAutoPlay($('caption-auto').checked); };
  $('caption-script').onclick = () => {
    const lines = $('caption-lines');
    lines.hidden = !lines.hidden;
    $('caption-script').setAttribute('aria-pressed', String(!lines.hidden));
    setText($('caption-script'), lines.hidden ? 'show script' : 'hide script');
    if (!lines.hidden) lines.scrollTop = lines.scrollHeight;
  };
  $('ask-show').onclick = () => { $('ask-a').hidden = false; $('ask-show').hidden = true; };
  $('node-float-toggle').onclick = () => crashOrRestart(state.selected);
  $('node-float-close').onclick = () => select(0);
  $('stale').onclick = () => toggleAnomalies('stale');
  $('lost').onclick = () => toggleAnomalies('lost');
  $('copy-link').onclick = copyLink;
  $('reset').onclick = async () => { await resetCluster(DB_NAME); state.settings.scenario = ''; build(); };
  $('help-btn').onclick = () => $('help').showModal();
  $('log-node').onchange = () => { state.logNode = Number($('log-node').value); };
  $('log-pause').onclick = () => { state.logFrozen = !state.logFrozen; $('log-pause').textContent = state.logFrozen ? 'resume' : 'freeze'; };
  $('log').addEventListener('click', (e) => { const li = e.target.closest('li[data-op]'); if (li) follow(Number(li.dataset.op)); });
  const log = $('log');
  // Read in the scroll event, where layout is clean, never in the panel update.
  log.addEventListener('scroll', () => { state.logStuck = log.scrollTop + log.clientHeight >= log.scrollHeight - 4; }, { passive: true });
  new IntersectionObserver((entries) => {
    state.logVisible = entries[entries.length - 1].isIntersecting;
    if (state.logVisible) flushLog();
  }).observe(log);
  const kinds = $('log-kinds');
  for (const k of KINDS) {
    const b = document.createElement('button');
    b.className = 'chip';
    b.innerHTML = `<i class="k-${k}"></i>${k}`;
    b.setAttribute('aria-pressed', state.hidden.has(k) ? 'false' : 'true');
    b.onclick = () => {
      if (state.hidden.has(k)) state.hidden.delete(k); else state.hidden.add(k);
      b.setAttribute('aria-pressed', state.hidden.has(k) ? 'false' : 'true');
    };
    kinds.append(b);
  }
  document.addEventListener('keydown', onKey);
  const save = () => { persistCluster(state.cluster).catch(() => {}); };
  setInterval(save, PERSIST_MS);
  addEventListener('pagehide', save);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') save(); });
}

function toggleAnomalies(kind) {
  const list = $('anomalies');
  if (!list.hidden && list.dataset.kind === kind) { list.hidden = true; return; }
  list.hidden = false;
  renderAnomalies(kind);
}

async function copyLink() {
  if (state.authored && !authoredParam()) {
    warn(['this lesson is too long to travel inside a link: put the file on a web host and share this page with ?lesson=URL'], 'The link does not carry your lesson:');
  }
  // In a lesson, the link opens at the step on screen; in free play, at the moment on screen.
  const s = state.view.scenarioState(0);
  const shown = !s ? 0 : s.phase === 'reading' || s.phase === 'done' ? s.step : s.step - 1;
  let extra = shown > 1 ? `step=${shown}` : '';
  if (!s) {
    const m = await momentParams();
    if (m.warning) warn([m.warning], 'The link does not open at this moment:');
    extra = m.params;
  }
  const url = location.href + (extra ? `${location.search ? '&' : '?'}${extra}` : '');
  try { await navigator.clipboard.writeText(url); flash($('copy-link'), 'Copied'); }
  catch { prompt('Copy this link:', url); }
}

function flash(btn, text) {
  const old = btn.innerHTML;
  btn.textContent = text;
  setTimeout(() => { btn.innerHTML = old; }, 1200);
}

function startScenario(name) {
  state.authored = null;
  state.settings.scenario = name;
  state.captionShown = 0;
  $('caption-lines').innerHTML = '';
  build();
}

// Back one page of the lesson (←): the cluster is rebuilt from the lesson and played at once
// to the prose before the one shown; the simulator is deterministic, so it is exactly as it
// was then.
function stepBack() {
  if (!state.view.scenarioState(0) || state.building) return;
  let fresh;
  try { fresh = new Cluster(clusterOptions(state.settings)); } catch (e) { warn([`${e.message || e}`], 'Could not go back:'); return; }
  if (!state.view.lessonBack(fresh)) { fresh.free(); return; }
  state.cluster?.free();
  state.cluster = fresh;
  state.captionShown = 0;
  $('caption-lines').innerHTML = '';
  state.results = [];
  $('results').innerHTML = '';
  state.logSeq = 0;
  state.logLines = [];
  $('log').innerHTML = '';
  follow(-1);
  select(0);
  fillNodeLists();
  renderCaption();
}

function restartLesson() {
  if (state.authored) {
    state.captionShown = 0;
    $('caption-lines').innerHTML = '';
    build();
  } else startScenario(state.settings.scenario);
}

// ---- lessons written by teachers (authored.js) ------------------------------------------

// Checks a lesson's text: its errors as lines (`line 4: unknown command "frobnicate"`).
function lessonErrors(text) {
  return checkLesson(text).map((e) => `line ${e.line}: ${e.message}`);
}

// Plays a teacher's lesson (already checked); `url` when it came from one.
async function playOwn(text, url) {
  let code = '';
  if (!url) {
    try { code = await encodeLesson(text); } catch { code = ''; }
  }
  state.authored = { name: lessonName(url, text), text, url, code };
  state.settings.scenario = '';
  state.captionShown = 0;
  $('caption-lines').innerHTML = '';
  await build();
  syncControls();
}

// `?lesson=URL` or `?lesson-text=CODE`: load, check, and play it, or say why not.
async function loadOwnFromLink(own) {
  const where = own.url ? `The lesson at ${own.url}` : 'The lesson in the link';
  let text;
  try {
    text = own.url ? await fetchLesson(own.url) : await decodeLesson(own.code);
  } catch (e) {
    warn([e.message || String(e)], `${where} could not be loaded:`);
    return;
  }
  const errors = lessonErrors(text);
  if (errors.length) { warn(errors, `${where} has errors:`); return; }
  state.authored = { name: lessonName(own.url, text), text, url: own.url, code: own.code };
  state.settings.scenario = '';
}

function openOwnLesson(text) {
  const d = $('own-lesson');
  if (text != null) $('own-text').value = text;
  $('own-errors').hidden = true;
  if (!d.open) d.showModal();
  syncControls();
}

async function tryOwn(text) {
  const errors = lessonErrors(text);
  const list = $('own-errors');
  list.innerHTML = '';
  list.hidden = !errors.length;
  for (const e of errors) { const li = document.createElement('li'); li.textContent = e; list.append(li); }
  if (errors.length) return;
  $('own-lesson').close();
  await playOwn(text, '');
}

async function readFile(file) {
  if (file.size > 64 * 1024) return null;
  return file.text();
}

function wireOwnLesson() {
  $('own-play').onclick = () => tryOwn($('own-text').value);
  $('own-close').onclick = () => { $('own-lesson').close(); syncControls(); };
  $('own-file').onchange = async () => {
    const f = $('own-file').files[0];
    if (!f) return;
    const text = await readFile(f);
    if (text == null) { openOwnLesson(''); $('own-errors').hidden = false; $('own-errors').innerHTML = '<li>the file is over 64 KiB: a lesson is smaller</li>'; return; }
    $('own-text').value = text;
    tryOwn(text);
  };
  // A lesson file dropped anywhere on the page.
  document.addEventListener('dragover', (e) => { if (e.dataTransfer?.types.includes('Files')) e.preventDefault(); });
  document.addEventListener('drop', async (e) => {
    const f = e.dataTransfer?.files?.[0];
    if (!f) return;
    e.preventDefault();
    const text = await readFile(f);
    openOwnLesson(text ?? '');
    if (text != null) tryOwn(text);
    else { $('own-errors').hidden = false; $('own-errors').innerHTML = '<li>the file is over 64 KiB: a lesson is smaller</li>'; }
  });
}

function nextStep() {
  // From the lesson's past (the timeline), back to where it waits first, then the next page.
  if (inLesson() && state.cluster?.inPast()) toLatest();
  state.view.nextStep();
  renderCaption();
}

function onKey(e) {
  const tag = e.target.tagName;
  if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA') {
    if (e.key === 'Escape') e.target.blur();
    return;
  }
  if (e.metaKey || e.ctrlKey || e.altKey) return;
  const k = e.key;
  if (state.live && [' ', '.', ',', '[', ']', '+', '=', '-', '_', 'x', 'l', 'n', 's'].includes(k.toLowerCase())) return; // no live meaning
  const act = {
    ' ': togglePlay,
    '.': () => $('step').click(),
    '+': () => $('faster').click(), '=': () => $('faster').click(),
    '-': () => $('slower').click(), '_': () => $('slower').click(),
    'x': () => crashOrRestart(state.selected),
    'l': () => $('node-leave').click(),
    'a': () => state.selected && toggleSideA(state.selected),
    'n': () => $('add-node').click(),
    'p': partition,
    'h': heal,
    'k': () => { $('console-card').open = true; $('key').focus(); $('key').select(); },
    'g': () => { state.showGossip = !(state.showGossip ?? true); state.view.setShowGossip(state.showGossip); },
    's': () => $('scenario').focus(),
    'c': copyLink,
    // In a lesson, a step of the lesson; in free play, one event.
    'ArrowRight': () => (state.view.scenarioState(0) ? nextStep() : $('step').click()),
    'ArrowLeft': () => (state.view.scenarioState(0) ? stepBack() : stepBackOne()),
    ',': stepBackOne,
    '[': () => jumpMarker(false),
    ']': () => jumpMarker(true),
    '?': () => $('help').showModal(),
    'Escape': () => {
      if ($('help').open) return;
      if (state.followed >= 0) follow(-1);
      else if (state.selected) select(0);
      else if (state.settings.scenario || state.authored) startScenario('');
    },
  }[k.length === 1 ? k.toLowerCase() : k];
  if (act) { e.preventDefault(); act(); return; }
  if (/^[1-9]$/.test(k)) {
    const id = Number(k);
    if (state.cluster.nodeIds().includes(id)) select(state.selected === id ? 0 : id);
  }
}

// What live.js needs of the page (a function at module level: main's locals shadow `select`).
function liveHooks() {
  return { state, warn, build, updateUrl, fillNodeLists, select, follow, resize };
}

async function main() {
  try {
    state.wasm = await init(); // its memory: the timeline's browser test measures snapshots by it
  } catch (e) {
    fatal(`This page needs WebAssembly, and the module did not load (${e.message || e}). Was it built? Run ./scripts/build-web.`);
    return;
  }
  const lq = liveQuery(location.search);
  const own = lessonQuery(lq.query);
  // `step=N`: a lesson opened at its step N (a link to a moment of a lesson).
  const stepParams = new URLSearchParams(own.query);
  state.openStep = Math.max(0, Math.min(200, Number(stepParams.get('step')) || 0));
  stepParams.delete('step');
  // `at=EVENTS` (and `in=CODE`, the run's inputs): a link to a moment of a free-play run.
  const moment = await readMoment(stepParams);
  state.openMoment = moment.at == null ? null : moment;
  const parsed = parseQuery(stepParams.toString());
  state.settings = parsed.settings;
  warn(moment.error ? [...parsed.warnings, moment.error] : parsed.warnings);
  if (state.settings.embed) { document.body.classList.add('embed'); $('embed-foot').hidden = false; $('caption-open').hidden = false; }
  const dark = !matchMedia('(prefers-color-scheme: light)').matches;
  state.view = new View($('canvas'));
  state.view.setDark(dark);
  state.view.setSpeed(state.settings.speed);
  matchMedia('(prefers-color-scheme: light)').addEventListener('change', (m) => state.view.setDark(!m.matches));
  const select = $('scenario');
  let group = null, section = '';
  for (const s of scenarios()) {
    const head = s.section.split(' ')[0];
    if (head !== section) { section = head; group = document.createElement('optgroup'); group.label = s.section; select.append(group); }
    group.append(new Option(s.title, s.name));
  }
  document.title = `ringstore ${version()} · a Dynamo-style cluster in your browser`;
  wire();
  initLive(liveHooks());
  initTimeline({ state, afterTravel, follow, warn });
  resize();
  if (own.url || own.code) await loadOwnFromLink(own);
  if (!(await autoLive(lq))) await build();
  state.ready = true;
  state.persistent = persistent;
  requestAnimationFrame(loop);
}

main();
