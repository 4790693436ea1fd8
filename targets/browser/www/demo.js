// The demo page: starts one worker per node (www/demo-worker.js), routes
// Raft messages between them (dropping those of killed or partitioned
// nodes), sends puts to the leader and draws every node's state.
// `window.demo` is the API the Chromium driver (driver/demo.py) uses.
//
// URL parameters: nodes (3, at most 5), dir (OPFS directory, "raft-demo"),
// tick (ms, 100), expect (an index a leader must have applied for the
// cluster to count as recovered; default: the highest commit any node
// recovered from OPFS), report=1 (also POST errors and acks to /report).
const params = new URLSearchParams(location.search);
const N = Math.max(1, Math.min(5, Number(params.get('nodes') || '3')));
const DIR = params.get('dir') || 'raft-demo';
const TICK = Number(params.get('tick') || '100');
const EXPECT = params.has('expect') ? Number(params.get('expect')) : null;
const REPORT = params.get('report') === '1';

const report = (obj) => REPORT ? fetch('/report', { method: 'POST', body: JSON.stringify(obj) }).catch(() => {}) : Promise.resolve();
const $ = (id) => document.getElementById(id);
const nodes = new Map();      // id -> { worker, alive, partitioned, opened, status, el }
const waiting = new Map();    // request id -> { resolve, node, sentAt }
const dumps = new Map();      // request id -> resolve
let nextReq = Math.floor(Math.random() * 1e9) * 1000;
const metrics = {
  electedAt: null,       // ms since navigation: first leader seen
  openedAt: null,        // every node has opened its log
  recoveredAt: null,     // a leader has applied the expected index
  recoverTarget: null,
  elections: [],         // { after: 'kill N', ms }
  errors: [],
};
let killedLeaderAt = null;

function logLine(text) {
  const t = (performance.now() / 1000).toFixed(2).padStart(7);
  const el = $('log');
  el.textContent += `${t}s  ${text}\n`;
  el.scrollTop = el.scrollHeight;
}

function start(id) {
  const w = new Worker(`demo-worker.js?id=${id}&nodes=${N}&dir=${encodeURIComponent(DIR)}&tick=${TICK}`, { type: 'module' });
  const n = nodes.get(id) || { partitioned: false, el: card(id) };
  Object.assign(n, { worker: w, alive: true, opened: false, status: null });
  nodes.set(id, n);
  w.onmessage = (e) => onWorker(n, e.data);
  w.onerror = (e) => error(id, 'worker: ' + (e.message || e));
  return n;
}

function error(id, message) {
  metrics.errors.push(`node ${id}: ${message}`);
  logLine(`ERROR node ${id}: ${message}`);
  report({ event: 'error', message: `node ${id}: ${message}` });
}

function onWorker(n, m) {
  if (!n.alive) return;
  switch (m.type) {
    case 'raft': {
      const to = nodes.get(m.to);
      // A partitioned node neither sends nor receives; a killed one receives nothing.
      if (!to || !to.alive || !to.opened || to.partitioned || n.partitioned) return;
      to.worker.postMessage({ type: 'raft', bytes: m.bytes }, [m.bytes.buffer]);
      return;
    }
    case 'open':
      n.opened = true;
      logLine(`node ${m.id} opened its log in ${m.ms.toFixed(0)} ms: last index ${m.status.recoveredLast}, commit ${m.status.recoveredCommit}`);
      onStatus(n, m.status);
      if (metrics.openedAt === null && [...nodes.values()].every((x) => x.opened)) metrics.openedAt = performance.now();
      return;
    case 'status':
      onStatus(n, m.status);
      return;
    case 'ack': {
      const w = waiting.get(m.req);
      if (w) { waiting.delete(m.req); w.resolve({ index: m.index, node: m.id }); }
      return;
    }
    case 'redirect': {
      const w = waiting.get(m.req);
      if (w) w.redirect = m.leader;
      return;
    }
    case 'dump': {
      const r = dumps.get(m.req);
      if (r) { dumps.delete(m.req); r(m.map); }
      return;
    }
    case 'error':
      error(m.id, m.message);
      return;
  }
}

function leader() {
  let best = null;
  for (const n of nodes.values()) {
    const s = n.status;
    if (n.alive && s && s.role === 'leader' && !n.partitioned && (!best || s.term > best.status.term)) best = n;
  }
  return best ? best.status.id : 0;
}

function onStatus(n, s) {
  n.status = s;
  const now = performance.now();
  const lead = leader();
  if (lead && metrics.electedAt === null) {
    metrics.electedAt = now;
    logLine(`node ${lead} is the leader (term ${s.term}), ${now.toFixed(0)} ms after the page started`);
  }
  if (lead && killedLeaderAt !== null) {
    metrics.elections.push({ after: killedLeaderAt.what, ms: now - killedLeaderAt.t, leader: lead });
    const text = `node ${lead} elected ${(now - killedLeaderAt.t).toFixed(0)} ms after ${killedLeaderAt.what}`;
    $('banner').textContent = text;
    logLine(text);
    killedLeaderAt = null;
  }
  if (metrics.recoveredAt === null && metrics.openedAt !== null && lead) {
    const target = EXPECT !== null ? EXPECT
      : Math.max(...[...nodes.values()].map((x) => (x.status ? x.status.recoveredCommit : 0)));
    if (nodes.get(lead).status.applied >= target) {
      metrics.recoveredAt = now;
      metrics.recoverTarget = target;
      const text = target === 0
        ? `a new cluster (nothing in OPFS yet): node ${lead} elected ${now.toFixed(0)} ms after the page started`
        : `cluster recovered from OPFS: leader ${lead} has applied up to index ${target} (every write committed before the reload), ${now.toFixed(0)} ms after the page started`;
      $('banner').textContent = text;
      logLine(text);
    }
  }
  dirty = true;
}

// ---- the cluster API (also used by the driver) ------------------------

async function put(key, value, timeoutMs = 20000) {
  const t0 = performance.now();
  let target = leader();
  while (performance.now() - t0 < timeoutMs) {
    const t = nodes.get(target);
    if (!t || !t.alive || t.partitioned) {
      await sleep(50);
      target = leader();
      continue;
    }
    const req = ++nextReq;
    const sent = performance.now();
    const acked = new Promise((resolve) => waiting.set(req, { resolve, node: target, redirect: 0 }));
    nodes.get(target).worker.postMessage({ type: 'put', req, key, value });
    // Wait for the ack, a redirect, or 3 s; then try again (a put is
    // idempotent, so a retry that also commits does no harm).
    let res = null;
    while (!res && performance.now() - sent < 3000) {
      res = await Promise.race([acked, sleep(10).then(() => null)]);
      const w = waiting.get(req);
      if (!res && w && w.redirect) break;
    }
    const w = waiting.get(req);
    waiting.delete(req);
    if (res) {
      const ms = performance.now() - t0;
      report({ event: 'ack', key, value, index: res.index, ms });
      return { key, value, index: res.index, node: res.node, ms };
    }
    target = w && w.redirect && w.redirect < 100 ? w.redirect : leader();
    if (!w || !w.redirect) await sleep(50);
  }
  throw new Error(`put ${key}: no leader acknowledged it within ${timeoutMs} ms`);
}

function kill(id) {
  const n = nodes.get(id);
  if (!n || !n.alive) return false;
  if (n.status && n.status.role === 'leader') killedLeaderAt = { t: performance.now(), what: `killing leader ${id}` };
  n.worker.terminate();
  n.alive = false;
  n.opened = false;
  logLine(`node ${id} killed (worker terminated)`);
  dirty = true;
  return true;
}

function restart(id) {
  const n = nodes.get(id);
  if (!n || n.alive) return false;
  start(id);
  logLine(`node ${id} restarting: a new worker recovers its log from OPFS`);
  return true;
}

function partition(id) {
  const n = nodes.get(id);
  n.partitioned = true;
  if (n.status && n.status.role === 'leader') killedLeaderAt = { t: performance.now(), what: `partitioning leader ${id}` };
  logLine(`node ${id} partitioned: its messages are dropped`);
  dirty = true;
}

function heal(id) {
  nodes.get(id).partitioned = false;
  logLine(`node ${id} healed`);
  dirty = true;
}

function dump(id) {
  const n = nodes.get(id);
  if (!n || !n.alive) return Promise.reject(new Error(`node ${id} is not running`));
  const req = ++nextReq;
  const p = new Promise((resolve) => dumps.set(req, resolve));
  n.worker.postMessage({ type: 'dump', req });
  return Promise.race([p, sleep(10000).then(() => { throw new Error(`node ${id} did not answer`); })]);
}

function statuses() {
  return [...nodes.entries()].map(([id, n]) => ({ id, alive: n.alive, opened: n.opened, partitioned: n.partitioned, ...(n.status || {}) }));
}

async function wipe() {
  for (const n of nodes.values()) { n.worker.terminate(); n.alive = false; }
  const root = await navigator.storage.getDirectory();
  for (let i = 0; ; i++) {
    try { await root.removeEntry(DIR, { recursive: true }); break; } catch (e) {
      if (e.name === 'NotFoundError') break;
      if (i > 50) throw e;
      await sleep(100);  // the terminated workers release their files a moment later
    }
  }
  location.reload();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
window.demo = { N, put, kill, restart, partition, heal, leader, dump, statuses, metrics, wipe };

// ---- drawing ----------------------------------------------------------

let dirty = true;
const TERM_COLOURS = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#e15759', '#9c755f'];

function card(id) {
  const el = document.createElement('div');
  el.className = 'node';
  el.innerHTML = `<h2><span>node ${id}</span><span class="role">…</span></h2>
    <table class="f"><tr><td>term</td><td class="term"></td><td>vote</td><td class="vote"></td><td>leader</td><td class="lead"></td></tr>
    <tr><td>commit</td><td class="commit"></td><td>applied</td><td class="applied"></td><td>keys</td><td class="keys"></td></tr>
    <tr><td>log</td><td class="range" colspan="3"></td><td>durable</td><td class="durable"></td></tr></table>
    <div class="strip"></div>
    <div class="ctl"><button class="kill">kill</button><button class="restart">restart</button>
    <button class="part">partition</button><button class="heal">heal</button></div>`;
  el.querySelector('.kill').onclick = () => kill(id);
  el.querySelector('.restart').onclick = () => restart(id);
  el.querySelector('.part').onclick = () => partition(id);
  el.querySelector('.heal').onclick = () => heal(id);
  $('nodes').appendChild(el);
  return el;
}

function draw() {
  if (dirty) {
    dirty = false;
    for (const n of nodes.values()) {
      const s = n.status, el = n.el;
      const role = !n.alive ? 'killed · last state seen' : !s ? 'opening…' : s.role;
      el.className = `node ${n.alive ? (s ? s.role : '') : 'dead'} ${n.partitioned ? 'partitioned' : ''}`;
      el.querySelector('.role').textContent = role + (n.partitioned ? ' · partitioned' : '');
      const f = (c, v) => { el.querySelector('.' + c).textContent = v; };
      if (!s) continue;
      f('term', s.term); f('vote', s.vote || '–'); f('lead', s.leader || '–');
      f('commit', s.commit); f('applied', s.applied); f('keys', s.keys);
      f('range', s.last >= s.first ? `${s.first} … ${s.last}` : 'empty'); f('durable', s.durable);
      const strip = el.querySelector('.strip');
      strip.replaceChildren(...s.strip.map(([i, t, label]) => {
        const b = document.createElement('div');
        b.className = 'e' + (i > s.durable ? ' unsynced' : '') + (i > s.commit ? ' uncommitted' : '');
        b.style.background = TERM_COLOURS[t % TERM_COLOURS.length];
        b.textContent = `${i}\n${t}`;
        b.style.whiteSpace = 'pre';
        b.title = `index ${i}, term ${t}: ${label}`;
        return b;
      }));
    }
  }
  requestAnimationFrame(draw);
}

$('put').onclick = async () => {
  const k = $('key').value, v = $('value').value;
  $('putres').textContent = '…';
  try {
    const r = await put(k, v);
    $('putres').textContent = `${k}=${v} committed at index ${r.index} in ${r.ms.toFixed(1)} ms`;
  } catch (e) { $('putres').textContent = String(e.message); }
};
$('put10').onclick = async () => {
  const base = Date.now().toString(36);
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) await put(`k-${base}-${i}`, String(i));
  $('putres').textContent = `10 puts committed in ${(performance.now() - t0).toFixed(0)} ms`;
};
$('reload').onclick = () => location.reload();
$('wipe').onclick = () => wipe();

for (let id = 1; id <= N; id++) start(id);
$('banner').textContent = `${N} nodes starting; OPFS directory "${DIR}"`;
requestAnimationFrame(draw);
