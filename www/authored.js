// Lessons written by teachers (docs/LESSONS.md): loaded from a URL (`?lesson=URL`), carried in
// the link itself (`?lesson-text=CODE`: the file deflated and base64url-encoded, for lessons
// small enough), dropped on the page, or pasted. This module only fetches, encodes and
// decodes; checking (checkLesson) and playing (View.startLesson) are in wasm.

// The longest lesson file accepted (bytes): the same bound as the parser's.
export const LESSON_BYTES_MAX = 64 * 1024;
// The longest `lesson-text` code put in a link (characters): links longer than a few
// thousand characters break in mail clients and course platforms.
export const LINK_CODE_MAX = 6000;

// Takes the lesson parameters out of a query string: `{query, url, code}` (the query without
// them, for parseQuery; `url` and `code` empty when absent).
export function lessonQuery(search) {
  const params = new URLSearchParams(search);
  const url = params.get('lesson') || '';
  const code = params.get('lesson-text') || '';
  params.delete('lesson');
  params.delete('lesson-text');
  return { query: params.toString(), url, code };
}

// Fetches a lesson file; throws an Error saying what went wrong (not found, too large, a
// host that does not allow it).
export async function fetchLesson(url) {
  let res;
  try {
    res = await fetch(new URL(url, location.href), { credentials: 'omit' });
  } catch (e) {
    throw new Error(`could not load ${url}: the host did not answer or does not allow this page to read it (CORS)`);
  }
  if (!res.ok) throw new Error(`could not load ${url}: the host answered ${res.status} ${res.statusText}`.trim());
  const declared = Number(res.headers.get('content-length') || 0);
  if (declared > LESSON_BYTES_MAX) throw new Error(`${url} has ${declared} bytes; a lesson is at most ${LESSON_BYTES_MAX / 1024} KiB`);
  const text = await res.text();
  if (text.length > LESSON_BYTES_MAX) throw new Error(`${url} has ${text.length} bytes; a lesson is at most ${LESSON_BYTES_MAX / 1024} KiB`);
  return text;
}

// Bytes as a link code: deflated, then base64url (a lesson's text, the timeline's inputs).
export async function packCode(bytes) {
  const out = new Blob([bytes]).stream().pipeThrough(new CompressionStream('deflate-raw'));
  const packed = new Uint8Array(await new Response(out).arrayBuffer());
  let bin = '';
  for (const b of packed) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// A link code back to its bytes, inflating at most `max` bytes (a small code could inflate
// to far more). Throws Error('not base64url'), Error('too long'), or the inflater's error.
export async function unpackCode(code, max) {
  let bytes;
  try {
    const bin = atob(code.replace(/-/g, '+').replace(/_/g, '/'));
    bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    throw new Error('not base64url');
  }
  const out = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  const reader = out.getReader();
  const parts = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) { reader.cancel(); throw new Error('too long'); }
    parts.push(value);
  }
  return new Uint8Array(await new Blob(parts).arrayBuffer());
}

// The lesson's text as a link code.
export async function encodeLesson(text) {
  return packCode(new TextEncoder().encode(text));
}

// A link code back to the lesson's text; throws an Error for a damaged code.
export async function decodeLesson(code) {
  if (code.length > LESSON_BYTES_MAX) throw new Error('the lesson in the link is too long');
  let text;
  try {
    const bytes = await unpackCode(code, LESSON_BYTES_MAX);
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    if (e.message === 'not base64url') throw new Error('the lesson in the link is damaged (not base64url)');
    throw new Error(e.message === 'too long' ? 'the lesson in the link is over 64 KiB' : 'the lesson in the link is damaged (it does not inflate to text)');
  }
  return text;
}

// The lesson's name on the page: the URL's file name without `.lesson`/`.txt`, else its title.
export function lessonName(url, text) {
  const file = url ? decodeURIComponent(new URL(url, location.href).pathname.split('/').pop() || '') : '';
  if (file) return file.replace(/\.(lesson|script|txt)$/i, '');
  const title = /^\s*title\s+(.+)$/m.exec(text);
  return title ? title[1].trim().slice(0, 80) : 'your lesson';
}
