// Live mode: the page watching and driving a real ringstore cluster.
//
// This file owns the WebSockets (one per member, `ws://ADDRESS/ws/ui`, reconnecting with
// backoff) and the live mode's own controls; everything else is in wasm (LiveCluster,
// web/src/live/): it decodes the nodes' frames, merges their views into the same view model
// the simulator fills, and encodes the commands this file sends. In live mode
// `state.cluster` is the LiveCluster: it answers the panels' calls (nodeIds, nodeDetail,
// logSince, client, resultOf, partition, heal, setSkew) as the simulated Cluster does.
//
// Modes: `?live=HOST:PORT` connects to that node; a page served by a node (its responses
// carry `x-ringstore-node`) connects to it by itself; `?mode=sim` (what "Back to the simulation" sets) stays
// simulated. The what-if copy is a simulation built from the live cluster, labelled as such,
// with the sockets kept open so "Back to the live cluster" is instant.
import { LiveCluster, parseNodeAddress } from './pkg/ringstore_web.js';

const $ = (id) => document.getElementById(id);
const SYNC_MS = 200;
const STATUS_MS = 500;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 5_000;
const DETECT_MS = 1_500;

let app = null;           // {state, warn, build, updateUrl, fillNodeLists, select, follow, resize}
let live = null;          // the LiveCluster, while live or parked behind a what-if copy
let whatIf = false;       // a what-if simulation is on screen
const sockets = new Map(); // address -> {ws, retryAt, failures}
let timers = [];

// Splits the live parameters off the query: {query, live, forceSim}.
export function liveQuery(search) {
  const p = new URLSearchParams(search);
  const addr = p.get('live');
  const forceSim = p.get('mode') === 'sim';
  p.delete('live');
  p.delete('mode');
  const query = p.toString();
  return { query: query ? `?${query}` : '', live: addr, forceSim };
}

// Whether this page was served by a ringstore node: the node marks every response with an
// `x-ringstore-node` header (a static server does not), so asking for the page itself again
// tells, without a request that fails elsewhere.
async function servedByNode() {
  if (!location.protocol.startsWith('http')) return false;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), DETECT_MS);
  try {
    const res = await fetch(location.pathname, { method: 'HEAD', cache: 'no-store', signal: ctl.signal });
    return res.ok && res.headers.get('x-ringstore-node') != null;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

export function initLive(hooks) {
  app = hooks;
  const form = $('connect');
  $('live-connect').onclick = () => {
    form.hidden = false;
    $('connect-error').textContent = '';
    const url = $('connect-url');
    if (!url.value) url.value = location.host && location.protocol.startsWith('http') ? location.host : '127.0.0.1:7001';
    url.focus();
    url.select();
  };
  $('connect-cancel').onclick = () => { form.hidden = true; };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    let addr;
    try {
      addr = parseNodeAddress($('connect-url').value);
    } catch (err) {
      $('connect-error').textContent = err.message || String(err);
      $('connect-url').focus();
      return;
    }
    form.hidden = true;
    history.replaceState(null, '', `${location.pathname}?live=${encodeURIComponent(addr)}`);
    enterLive(addr);
  });
  $('live-leave').onclick = () => leaveLive();
  $('whatif').onclick = () => startWhatIf();
  $('whatif-back').onclick = () => backToLive();
  document.addEventListener('keydown', (e) => {
    const tag = e.target.tagName;
    if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || e.metaKey || e.ctrlKey || e.altKey) return;
    if (e.key.toLowerCase() === 'w' && app.state.live) { e.preventDefault(); startWhatIf(); }
  });
  app.state.liveInfo = liveInfo;
}

// Decides the mode at startup; returns true when it went live.
export async function autoLive(q) {
  if (q.live) {
    try {
      enterLive(parseNodeAddress(q.live));
      return true;
    } catch (e) {
      app.warn([`live=${q.live}: ${e.message || e}; showing the simulation`], 'Could not connect:');
      return false;
    }
  }
  if (q.forceSim) { app.state.forceSim = true; return false; }
  if (await servedByNode()) {
    enterLive(location.host);
    return true;
  }
  return false;
}

function enterLive(addr) {
  const { state } = app;
  live = new LiveCluster(addr);
  whatIf = false;
  state.forceSim = false;
  if (state.cluster) state.cluster.free();
  state.cluster = live;
  state.live = live;
  state.view.showLive(`live · ${live.seed()}`);
  document.body.classList.add('live');
  document.body.classList.remove('whatif');
  $('whatif-banner').hidden = true;
  $('live-connect').hidden = true;
  $('live-leave').hidden = false;
  $('tagline').textContent = 'a real Dynamo-style cluster, live';
  $('caption').hidden = true;
  resetPanels();
  timers.forEach(clearInterval);
  timers = [setInterval(syncSockets, SYNC_MS), setInterval(renderStatus, STATUS_MS)];
  syncSockets();
  renderStatus();
  app.resize();
}

function resetPanels() {
  const { state } = app;
  state.results = [];
  $('results').innerHTML = '';
  state.logSeq = 0;
  $('log').innerHTML = '';
  app.follow(-1);
  state.sideA.clear();
  app.select(0);
  app.fillNodeLists();
}

function closeSockets() {
  for (const [, s] of sockets) {
    s.closing = true;
    try { s.ws?.close(); } catch { /* already closed */ }
  }
  sockets.clear();
}

async function leaveLive() {
  const { state } = app;
  timers.forEach(clearInterval);
  timers = [];
  closeSockets();
  // The LiveCluster is freed below; a what-if cluster is freed by build().
  if (!whatIf) state.cluster = null;
  if (live) live.free();
  live = null;
  state.live = null;
  whatIf = false;
  state.forceSim = true;
  document.body.classList.remove('live', 'whatif');
  $('whatif-banner').hidden = true;
  $('live-connect').hidden = false;
  $('live-leave').hidden = true;
  $('tagline').textContent = 'a Dynamo-style cluster, simulated in your browser';
  renderMode();
  state.settings.scenario = '';
  // The address bar says "simulation" at once, not only once the cluster is built (which waits on
  // IndexedDB): a reload in between must not reconnect.
  app.updateUrl();
  await app.build();
}

// Called by the animation loop in live mode: draw, then send what the commands queued.
export function liveFrame(t) {
  live.frame(app.state.view, t);
  flushOutbox();
}

function flushOutbox() {
  if (!live) return;
  for (const [addr, bytes] of live.takeOutbox()) {
    const s = sockets.get(addr);
    if (s?.ws?.readyState === WebSocket.OPEN) s.ws.send(bytes);
    else live.closed(addr, 'not connected when a command was sent');
  }
  const notices = live.takeNotices();
  if (notices.length) app.warn(notices, 'The cluster refused:');
}

function wsUrl(addr) {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${addr}/ws/ui`;
}

function openSocket(addr) {
  const entry = sockets.get(addr) || { ws: null, retryAt: 0, failures: 0 };
  sockets.set(addr, entry);
  let ws;
  try {
    ws = new WebSocket(wsUrl(addr));
  } catch (e) {
    entry.failures += 1;
    entry.retryAt = performance.now() + RETRY_MAX_MS;
    live.closed(addr, `cannot open ${wsUrl(addr)}: ${e.message || e}`);
    return;
  }
  ws.binaryType = 'arraybuffer';
  entry.ws = ws;
  ws.onopen = () => { entry.failures = 0; live?.opened(addr); };
  ws.onmessage = (e) => {
    if (!live || typeof e.data === 'string') return;
    live.feed(addr, new Uint8Array(e.data));
  };
  ws.onclose = (e) => {
    if (entry.closing || !live) return;
    entry.ws = null;
    entry.failures += 1;
    entry.retryAt = performance.now() + Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (entry.failures - 1));
    const why = e.code === 1006 ? 'connection lost or refused' : `closed (${e.code}${e.reason ? ': ' + e.reason : ''})`;
    live.closed(addr, why);
  };
}

function syncSockets() {
  if (!live) return;
  const wanted = new Set(live.wanted());
  const now = performance.now();
  for (const addr of wanted) {
    const s = sockets.get(addr);
    if (!s || (!s.ws && now >= s.retryAt)) openSocket(addr);
  }
  for (const [addr, s] of sockets) {
    if (!wanted.has(addr)) { s.closing = true; s.ws?.close(); sockets.delete(addr); }
  }
  flushOutbox();
}

function renderMode() {
  const el = $('mode');
  if (live && !whatIf) {
    const conns = live.connections();
    const up = conns.filter(c => c.fresh).length;
    el.className = 'mode mode-live';
    el.textContent = `Live · ${live.seed()} · ${up} of ${conns.length} node${conns.length === 1 ? '' : 's'} reachable`;
    el.title = `Connected over WebSocket to: ${conns.map(c => `${c.node ? 'n' + c.node : '?'} ${c.address}`).join(', ')}`;
  } else if (whatIf) {
    el.className = 'mode mode-whatif';
    el.textContent = `What-if simulation of ${live?.seed() ?? 'the live cluster'}`;
    el.title = 'A simulation built from the live cluster: the real nodes are not touched';
  } else {
    el.className = 'mode mode-sim';
    el.textContent = 'Simulation';
    el.title = 'A whole cluster simulated in this page';
  }
}

function renderStatus() {
  renderMode();
  if (!live || whatIf) return;
  const conns = live.connections().sort((a, b) => (a.node ?? 1e9) - (b.node ?? 1e9));
  const t = $('live-conns');
  t.innerHTML = '';
  const head = t.insertRow();
  for (const h of ['node', 'address', 'socket', 'lost']) head.insertCell().textContent = h;
  for (const c of conns) {
    const tr = t.insertRow();
    tr.insertCell().textContent = c.node ? `n${c.node}` : '?';
    tr.insertCell().textContent = c.address;
    const st = tr.insertCell();
    if (c.fresh) { st.textContent = 'live'; st.className = 'verdict-alive'; }
    else if (c.open && c.node) { st.textContent = `silent ${(c.silentMs / 1000).toFixed(1)} s`; st.className = 'verdict-suspect'; }
    else if (c.node || c.error) { st.textContent = 'unreachable'; st.className = 'verdict-dead'; st.title = c.error || ''; }
    else { st.textContent = 'connecting…'; }
    const lost = c.lostEvents + c.lostMessages + c.lostUpdates;
    const l = tr.insertCell();
    l.textContent = lost ? `${lost}` : '0';
    l.title = `not sent to this page: ${c.lostEvents} events, ${c.lostMessages} individual messages (still counted), ${c.lostUpdates} updates; ${c.badFrames} bad frames`;
  }
  const off = live.faultsOff();
  $('live-faults').textContent = off ? `Fault injection is off: ${off}.` : 'Fault injection is on: partition, heal and clock skew act on the real nodes.';
  const fo = $('faults-off');
  fo.hidden = !off;
  fo.textContent = off ? `Partition, heal and clock skew are off: ${off}. Restart the nodes with --allow-fault-injection to use them.` : '';
  for (const id of ['partition', 'heal', 'skew']) {
    $(id).disabled = !!off;
    $(id).title = off ? `Off: ${off}` : '';
  }
  const tr = $('live-traffic');
  tr.innerHTML = '';
  const links = live.traffic(6);
  if (!links.length) { tr.insertRow().insertCell().textContent = 'no traffic yet'; }
  for (const [from, to, kind, rate, total] of links) {
    const row = tr.insertRow();
    row.insertCell().textContent = `n${from} → n${to}`;
    const k = row.insertCell(); k.innerHTML = `<i class="k-${kind}"></i>${kind}`;
    row.insertCell().textContent = `${rate.toFixed(1)}/s`;
    row.insertCell().textContent = `${total} total`;
  }
  const clock = $('clock');
  clock.textContent = new Date().toISOString().slice(11, 19) + ' UTC';
  clock.title = 'Live: the page shows the cluster about 0.4 s behind real time';
}

function startWhatIf() {
  if (!live || whatIf) return;
  const { state } = app;
  let cluster, description;
  try {
    description = live.whatIfDescription();
    cluster = live.whatIf();
  } catch (e) {
    app.warn([`no what-if copy yet: ${e.message || e}`], 'Could not do that:');
    return;
  }
  whatIf = true;
  state.live = null;
  state.cluster = cluster;
  state.view.attach(cluster);
  state.view.setSubtitle('what-if · a simulation of the live cluster');
  document.body.classList.remove('live');
  document.body.classList.add('whatif');
  $('whatif-text').textContent = description.replace(/^what-if: /, '') + '.';
  $('whatif-banner').hidden = false;
  $('tagline').textContent = 'a simulation of a live cluster';
  resetPanels();
  renderMode();
  app.resize();
}

function backToLive() {
  if (!live || !whatIf) return;
  const { state } = app;
  state.cluster?.free();
  whatIf = false;
  state.cluster = live;
  state.live = live;
  state.view.showLive(`live · ${live.seed()}`);
  document.body.classList.add('live');
  document.body.classList.remove('whatif');
  $('whatif-banner').hidden = true;
  $('tagline').textContent = 'a real Dynamo-style cluster, live';
  resetPanels();
  renderStatus();
  app.resize();
}

// For the browser test and curious users: what the page holds in live mode.
function liveInfo() {
  const { state } = app;
  const mode = live ? (whatIf ? 'whatif' : 'live') : 'sim';
  const panel = state.view.panel();
  return {
    mode,
    seed: live?.seed() ?? null,
    nodes: panel.nodes.map(n => ({ id: n.id, status: n.status, seen: n.seen, hasStorage: !!n.storage })),
    connections: live && !whatIf ? live.connections() : [],
    faultsOff: live && !whatIf ? (live.faultsOff() ?? null) : null,
    cut: live && !whatIf ? live.cutLinks() : [],
  };
}
