// One raft-rs node of the demo (www/demo.html), in a dedicated worker: only
// here does OPFS hand out the synchronous access handle its log needs.
// The page routes messages between workers; this worker ticks the node,
// steps what arrives and runs the Ready loop (DemoNode.pump: persist and
// sync first, then the messages go out).
import init, { DemoNode } from './pkg/blockwal_browser.js';

const params = new URL(self.location.href).searchParams;
const id = Number(params.get('id'));
const nodes = Number(params.get('nodes'));
const dir = params.get('dir') || 'raft-demo';
const tickMs = Number(params.get('tick') || '100');

let node = null;
let failed = false;
const early = [];  // messages that arrive while the log is being opened

function fail(e) {
  failed = true;
  self.postMessage({ type: 'error', id, message: String(e && e.message ? e.message : e) });
}

function pump() {
  const out = node.pump();
  for (const [to, bytes] of out.messages) self.postMessage({ type: 'raft', from: id, to, bytes }, [bytes.buffer]);
  for (const [req, index] of out.acks) self.postMessage({ type: 'ack', id, req, index });
}

function handle(m) {
  if (failed) return;
  try {
    if (m.type === 'raft') {
      node.step(m.bytes);
    } else if (m.type === 'put') {
      const leader = node.propose(m.req, m.key, m.value);
      if (leader !== 0) self.postMessage({ type: 'redirect', id, req: m.req, leader });
    } else if (m.type === 'dump') {
      self.postMessage({ type: 'dump', id, req: m.req, map: node.dump(), status: node.status() });
      return;
    }
    pump();
  } catch (e) {
    fail(e);
  }
}

self.onmessage = (e) => (node ? handle(e.data) : early.push(e.data));

async function open() {
  // A worker just terminated (a kill, or the previous page) releases its
  // handle a moment later: retry Locked for a while.
  const t0 = performance.now();
  for (let wait = 20; ; wait = Math.min(wait * 2, 500)) {
    try {
      return await DemoNode.open(id, nodes, dir);
    } catch (e) {
      if (!String(e && e.message).startsWith('Locked') || performance.now() - t0 > 15000) throw e;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

try {
  await init();
  const t0 = performance.now();
  node = await open();
  self.postMessage({ type: 'open', id, ms: performance.now() - t0, status: node.status() });
  for (const m of early.splice(0)) handle(m);
  setInterval(() => {
    if (failed) return;
    try {
      node.tick();
      pump();
      self.postMessage({ type: 'status', id, status: node.status() });
    } catch (e) {
      fail(e);
    }
  }, tickMs);
} catch (e) {
  fail(e);
}
