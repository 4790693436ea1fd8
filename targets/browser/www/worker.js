// Dedicated worker run by driver/run.py. Reports go back to the driver as
// POST /report; a report is sent only after what it claims has happened
// (for `synced`: after the sync returned).
import init, * as wasm from './pkg/blockwal_browser.js';

const params = new URL(self.location.href).searchParams;
const report = (obj) => fetch('/report', { method: 'POST', body: JSON.stringify(obj) });

async function persist() {
  const dir = params.get('dir');
  const expect = Number(params.get('expect'));
  const append = params.get('append') === '1';
  const batch = Number(params.get('batch') || '1');
  const log = await wasm.Persist.open(dir, params.get('kind') || 'wal');
  const found = log.check(expect);
  await report({ event: 'checked', found });
  if (!append) {
    log.close();
    await report({ event: 'done' });
    return;
  }
  // Append and sync until the driver kills the browser.
  for (;;) {
    const last = log.write_batch(batch);
    await report({ event: 'synced', last });
  }
}

async function bench() {
  const n = (k, d) => Number(params.get(k) || d);
  const text = await wasm.bench(n('rounds', 150), n('singles', 10), n('batches', 8));
  const iso = self.crossOriginIsolated ? 'cross-origin isolated (5 us timer)' : 'not cross-origin isolated (100 us timer)';
  await report({ event: 'bench', text: `worker: ${iso}\n${text}` });
}

async function hold() {
  const log = await wasm.Persist.open(params.get('dir'), 'device');
  self.onmessage = async (e) => {
    if (e.data !== 'release') return;
    log.close();
    self.postMessage('released');
  };
  self.postMessage('holding');
}

async function tryOpen() {
  const result = await wasm.try_open_here(params.get('dir'), 'log');
  await report({ event: 'try', tag: params.get('tag'), result });
  self.postMessage('tried');
}

try {
  await init();
  const mode = params.get('mode');
  if (mode === 'persist') await persist();
  else if (mode === 'bench') await bench();
  else if (mode === 'hold') await hold();
  else if (mode === 'try') await tryOpen();
  else await report({ event: 'error', message: 'unknown mode ' + mode });
} catch (e) {
  await report({ event: 'error', message: String(e && e.message ? e.message : e) });
}
