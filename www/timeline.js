// The timeline under the picture: a slider over the whole run so far, markers for what
// happened (a lesson's steps, crashes, restarts, partitions, heals, joins, leaves, client
// operations, setting changes, and the checker's anomalies), back and forward one event, the
// runs kept (the original and the what-ifs forked from it), and, in free play, links to a
// moment. In a lesson, the lesson waits while the screen shows its past and goes on from the
// latest moment; a change made in its past starts a what-if run outside the lesson.
//
// The mechanism is in wasm (web/src/timeline.rs): every input is logged with the event count
// at which it was given, snapshots of the simulator are kept, and `cluster.goTo(events)`
// replays from the nearest one exactly. This module only draws the strip and calls it.
// A change made while the screen shows the past starts a new run (wasm forks the branch); the
// old one stays in the "Runs" list.

import { LINK_CODE_MAX, packCode, unpackCode } from './authored.js';

const $ = (id) => document.getElementById(id);
// Markers drawn at most (a long run with many client operations thins them).
const MARKS_MAX = 160;
// The furthest moment a link may name (web/src/timeline.rs PLAY_TO_MAX).
export const AT_MAX = 50_000_000;

let hooks = null;     // what app.js gives: {state, afterTravel, follow}
let shownKey = '';    // what the markers show, to rebuild them only when that changes
let pending = null;   // a slider position waiting for the next animation frame
let lastBranch = 0;
let markers = [];
let markNote = null;  // the marker last jumped to: its label shows while the screen is there

// What each kind of marker is called in the legend under the strip.
const KIND_WORDS = [
  ['step', 'lesson step'], ['crash', 'crash'], ['restart', 'restart'], ['partition', 'partition'], ['heal', 'heal'],
  ['join', 'join or leave'], ['client', 'client operation'], ['setting', 'setting'],
  ['stale', 'stale read or lost update'],
];

export function initTimeline(h) {
  hooks = h;
  const range = $('tl-range');
  // Dragging (and the arrow keys) scrubs: the newest position is reached once per frame.
  range.addEventListener('input', () => {
    const first = pending == null;
    pending = Number(range.value);
    if (first) requestAnimationFrame(() => { const v = pending; pending = null; travel((c) => c.goTo(v)); });
  });
  $('tl-back').onclick = stepBackOne;
  $('tl-fwd').onclick = () => $('step').click();
  $('tl-end').onclick = toLatest;
  $('tl-branch').onchange = () => {
    const n = Number($('tl-branch').value);
    travel((c) => c.switchBranch(n));
  };
}

function usable() {
  const s = hooks.state;
  return s.cluster && !s.building && !s.live;
}

function inLesson() {
  const s = hooks.state;
  return !!(s.settings.scenario || s.authored);
}


// Replaces the cluster on screen with the moment `go` reaches (paused), and refreshes the
// panels; a failure is shown, never thrown.
export function travel(go) {
  if (!usable()) return false;
  const s = hooks.state;
  s.view.setPlaying(false);
  try {
    go(s.cluster);
  } catch (e) {
    hooks.warn([`${e.message || e}`], 'Could not go there:');
    return false;
  }
  hooks.afterTravel();
  render();
  return true;
}

// In a lesson's past, ▶ goes back to where the lesson is, which then goes on.
export function toLatest() {
  return travel((c) => c.goTo(c.timeline().end));
}

export function stepBackOne() {
  if (!usable()) return;
  travel((c) => c.stepBack());
}

// `[` and `]`: the previous or next marker.
export function jumpMarker(forward) {
  if (!usable() || !markers.length) return;
  const at = hooks.state.cluster.eventsRun();
  const m = forward ? markers.find((m) => m.events > at) : [...markers].reverse().find((m) => m.events < at);
  if (m) goToMarker(m);
}

function goToMarker(m) {
  markNote = m;
  if (m.kind === 'stale' || m.kind === 'lost') {
    const op = Number(/#(\d+)/.exec(m.label)?.[1] ?? -1);
    if (travel((c) => c.goToTime(m.ms)) && op >= 0) hooks.follow(op);
  } else if (m.kind === 'step' && m.input != null) {
    // Where the step began: the step before it read, before this one's commands ran.
    travel((c) => c.goToInput(m.input));
  } else {
    travel((c) => c.goTo(m.events));
  }
}

// A checker anomaly's moment: when its later operation completed, with that operation
// followed (its path drawn and listed) and its key's replicas marked on the ring.
export function jumpToAnomaly(op) {
  if (op.completed == null) return false;
  const ok = travel((c) => c.goToTime(op.completed));
  if (ok) {
    hooks.follow(op.op);
    if (op.key) hooks.state.view.setKey(op.key);
  }
  return ok;
}

function fmtMs(ms) { return `${(ms / 1000).toFixed(3)} s`; }

// Called with the panels (every 250 ms) and after every jump.
export function render() {
  const s = hooks.state;
  const box = $('timeline');
  if (!usable()) return;
  const tl = s.cluster.timeline();
  const range = $('tl-range');
  if (pending == null && document.activeElement !== range || Number(range.max) !== tl.end) {
    range.max = String(Math.max(tl.end, 1));
    if (pending == null) range.value = String(tl.at);
  }
  const past = tl.at < tl.end;
  const text = `${fmtMs(tl.at_ms)} · event ${tl.at.toLocaleString('en')} of ${tl.end.toLocaleString('en')}`;
  if ($('tl-at').textContent !== text) $('tl-at').textContent = text;
  range.setAttribute('aria-valuetext', `${fmtMs(tl.at_ms)}, event ${tl.at} of ${tl.end}${past ? ' (the past)' : ''}`);
  $('tl-end').hidden = !past;
  box.classList.toggle('past', past);
  // A lesson's narration belongs to its latest moment: dimmed while the screen shows the past.
  document.body.classList.toggle('tl-past', past);
  // The runs kept.
  const sel = $('tl-branch');
  sel.hidden = tl.branches.length < 2;
  const opts = tl.branches.map((b) => [b.number, b.forkedFrom ? `run ${b.number}: what-if from run ${b.forkedFrom[0]} at event ${b.forkedFrom[1]}` : `run ${b.number}: the original`]);
  const optKey = JSON.stringify(opts) + tl.branch;
  if (sel.dataset.key !== optKey) {
    sel.dataset.key = optKey;
    sel.innerHTML = '';
    for (const [n, label] of opts) sel.add(new Option(label, n));
    sel.value = String(tl.branch);
  }
  let note = '';
  if (lastBranch && tl.branch !== lastBranch && tl.branches.some((b) => b.number === lastBranch)) {
    const b = tl.branches.find((b) => b.number === tl.branch);
    if (b?.forkedFrom && b.forkedFrom[0] === lastBranch) note = `You changed the past: this is run ${tl.branch}. Run ${lastBranch} is kept (Runs list).`;
  }
  lastBranch = tl.branch;
  const here = markNote && markNote.events === tl.at ? `${markNote.label}. ` : '';
  if (!here) markNote = null;
  if (note) $('tl-note').textContent = note;
  else if (past && inLesson()) $('tl-note').textContent = `${here}The lesson's past, paused: ▶ goes on with the lesson; a change starts a what-if run outside it.`;
  else if (past) $('tl-note').textContent = `${here}The past, paused: ▶ replays this run; a change starts a what-if run.`;
  else if (here) $('tl-note').textContent = here.trim();
  else if (!$('tl-note').textContent.startsWith('You changed')) $('tl-note').textContent = '';
  // The markers, rebuilt when they change.
  const key = `${tl.branch}:${tl.end}:${tl.markers.length}`;
  if (key === shownKey) return;
  shownKey = key;
  markers = tl.markers;
  const holder = $('tl-marks');
  holder.innerHTML = '';
  const end = Math.max(tl.end, 1);
  // Faults and anomalies always; client operations and settings thinned to what fits.
  const major = tl.markers.filter((m) => m.kind !== 'client' && m.kind !== 'setting');
  const minor = tl.markers.filter((m) => m.kind === 'client' || m.kind === 'setting');
  const room = Math.max(0, MARKS_MAX - major.length);
  const every = Math.max(1, Math.ceil(minor.length / Math.max(room, 1)));
  const shown = [...minor.filter((_, i) => i % every === 0).slice(0, room), ...major.slice(-MARKS_MAX)];
  // The legend: the kinds this run has, in words (a phone has no hover).
  const kinds = new Set(tl.markers.map((m) => (m.kind === 'leave' ? 'join' : m.kind === 'lost' ? 'stale' : m.kind)));
  const legend = $('tl-legend');
  legend.innerHTML = '';
  for (const [kind, words] of KIND_WORDS) {
    if (!kinds.has(kind)) continue;
    const item = document.createElement('span');
    const key = document.createElement(kind === 'stale' ? 'b' : 'span');
    key.className = kind === 'stale' ? 'tl-bang' : `tl-key m-${kind}`;
    if (kind === 'stale') key.textContent = '!';
    item.append(key, ` ${words}`);
    legend.append(item);
  }
  for (const m of shown) {
    const b = document.createElement('button');
    b.className = `tl-mark m-${m.kind}`;
    b.style.left = `${(m.events / end) * 100}%`;
    b.title = `${m.label} (${fmtMs(m.ms)})`;
    b.setAttribute('aria-label', b.title);
    b.tabIndex = -1; // the keyboard has [ and ]
    b.onclick = () => goToMarker(m);
    holder.append(b);
  }
}

// ---- links to a moment ------------------------------------------------------------------

// The link parameters of the moment on screen: `at=EVENTS` and, when the run had inputs,
// `in=CODE` (the inputs up to that moment, versioned and checksummed in wasm, deflated and
// base64url here). `{params, warning}`; `params` empty when the moment cannot be linked.
export async function momentParams() {
  const s = hooks.state;
  // A lesson's link names its step instead (`&step=`).
  if (!usable() || inLesson()) return { params: '', warning: '' };
  const stats = s.cluster.persistStats?.();
  if (stats?.resumed) {
    return { params: '', warning: 'this run was resumed from the copy saved in the browser, so a link cannot replay it from its start: press Reset to start a run whose moments can be linked' };
  }
  const at = s.cluster.eventsRun();
  const bytes = s.cluster.inputsCode();
  let params = `at=${at}`;
  // Five header bytes and an empty list: no inputs.
  if (bytes.length > 6) {
    const code = await packCode(bytes);
    if (code.length > LINK_CODE_MAX) {
      return { params: '', warning: `this run has too many inputs to fit in a link (${code.length} characters, at most ${LINK_CODE_MAX}): the link opens the run from its start` };
    }
    params += `&in=${code}`;
  }
  return { params, warning: '' };
}

// Reads `at` and `in` from a link: `{at, inputs, error}` (`at` null when absent; `inputs` the
// bytes for `cluster.loadInputs`, or null).
export async function readMoment(params) {
  const rawAt = params.get('at');
  const rawIn = params.get('in');
  params.delete('at');
  params.delete('in');
  if (rawAt == null && rawIn == null) return { at: null, inputs: null, error: '' };
  if (rawAt == null || !/^\d{1,9}$/.test(rawAt) || Number(rawAt) > AT_MAX) {
    return { at: null, inputs: null, error: `the moment in the link (at=${String(rawAt ?? '').slice(0, 40)}) must be a number of events from 0 to ${AT_MAX}` };
  }
  const at = Number(rawAt);
  if (rawIn == null) return { at, inputs: null, error: '' };
  try {
    if (rawIn.length > 64 * 1024) throw new Error('too long');
    return { at, inputs: await unpackCode(rawIn, 256 * 1024), error: '' };
  } catch (e) {
    return { at: null, inputs: null, error: `the inputs in the link (in=…) are damaged (${e.message === 'too long' ? 'too long' : 'not deflated base64url'})` };
  }
}
