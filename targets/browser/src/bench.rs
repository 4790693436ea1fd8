//! Appends + flush per second in a dedicated worker, A/B alternated in one
//! run: blockwal against a raw `FileSystemSyncAccessHandle` doing the same
//! writes (`driver/run.py bench` prints the result).

use std::cell::Cell;
use std::rc::Rc;

use blockwal::devices::opfs::OpfsDevice;
use blockwal::{BlockDevice, Wal};
use wasm_bindgen::prelude::*;
use web_sys::{FileSystemReadWriteOptions, FileSystemSyncAccessHandle, WorkerGlobalScope};

use crate::{js_error, raw_handle, remove_dir, unique_name};

/// Block size of the benchmarked logs: 1 MiB, as `RaftWal` uses on desktops.
pub const BLOCK: u32 = 1 << 20;

/// Something entries are appended to and flushed.
trait Sink {
    fn append(&mut self, data: &[u8]) -> Result<(), JsValue>;
    fn flush(&mut self) -> Result<(), JsValue>;
}

/// The baseline: the entries since the last flush go out in one
/// `write(bytes, { at: end })`, then `flush()` (a raw single write + flush
/// of the same bytes).
struct Raw {
    h: FileSystemSyncAccessHandle,
    opts: FileSystemReadWriteOptions,
    end: u64,
    buf: Vec<u8>,
}

impl Sink for Raw {
    fn append(&mut self, data: &[u8]) -> Result<(), JsValue> {
        self.buf.extend_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), JsValue> {
        crate::raw_write(&self.h, &self.opts, self.end, &self.buf)?;
        self.end += self.buf.len() as u64;
        self.buf.clear();
        self.h.flush()
    }
}

/// The device alone, used like the raw handle: one `program` of the
/// entries since the last flush (growing the device when needed), `sync`.
struct Device {
    dev: OpfsDevice,
    end: u64,
    buf: Vec<u8>,
}

impl Sink for Device {
    fn append(&mut self, data: &[u8]) -> Result<(), JsValue> {
        self.buf.extend_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), JsValue> {
        while self.end + self.buf.len() as u64 > self.dev.geometry().capacity() {
            if !self.dev.grow(4).map_err(|e| js_error(&e))? {
                return Err(JsValue::from_str("device full"));
            }
        }
        self.dev
            .program(self.end, &self.buf)
            .map_err(|e| js_error(&e))?;
        self.end += self.buf.len() as u64;
        self.buf.clear();
        self.dev.sync().map_err(|e| js_error(&e))
    }
}

fn now() -> Result<f64, JsValue> {
    let scope: WorkerGlobalScope = js_sys::global().dyn_into()?;
    let perf = scope
        .performance()
        .ok_or_else(|| JsValue::from_str("no performance clock"))?;
    Ok(perf.now())
}

/// Runs `batches` batches of `batch` entries, one flush per batch; returns
/// entries per second.
fn run(sink: &mut dyn Sink, entry: &[u8], batch: u32, batches: u32) -> Result<f64, JsValue> {
    let t0 = now()?;
    for _ in 0..batches {
        for _ in 0..batch {
            sink.append(entry)?;
        }
        sink.flush()?;
    }
    let dt = (now()? - t0).max(1e-3);
    Ok(f64::from(batch) * f64::from(batches) * 1000.0 / dt)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Device calls made through a [`Counted`] device.
#[derive(Clone, Copy, Default, Debug)]
struct Calls {
    reads: u64,
    programs: u64,
    programmed: u64,
    syncs: u64,
    grows: u64,
    /// Milliseconds spent in `program`, `sync`, `grow`.
    program_ms: f64,
    sync_ms: f64,
    grow_ms: f64,
}

/// A device that counts the calls the core makes (to explain the figures).
/// The counters are shared, so they can be read while `Wal` owns the device.
struct Counted<D> {
    inner: D,
    calls: Rc<Cell<Calls>>,
}

impl<D> Counted<D> {
    fn count(&self, f: impl FnOnce(&mut Calls)) {
        let mut c = self.calls.get();
        f(&mut c);
        self.calls.set(c);
    }
}

impl<D: BlockDevice> BlockDevice for Counted<D> {
    type Error = D::Error;
    fn geometry(&self) -> blockwal::Geometry {
        self.inner.geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), D::Error> {
        self.count(|c| c.reads += 1);
        self.inner.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), D::Error> {
        let t = now().unwrap_or(0.0);
        let r = self.inner.program(offset, data);
        let dt = now().unwrap_or(0.0) - t;
        self.count(|c| {
            c.programs += 1;
            c.programmed += data.len() as u64;
            c.program_ms += dt;
        });
        r
    }
    fn erase(&mut self, block: u32) -> Result<(), D::Error> {
        self.inner.erase(block)
    }
    fn sync(&mut self) -> Result<(), D::Error> {
        let t = now().unwrap_or(0.0);
        let r = self.inner.sync();
        let dt = now().unwrap_or(0.0) - t;
        self.count(|c| {
            c.syncs += 1;
            c.sync_ms += dt;
        });
        r
    }
    fn grow(&mut self, blocks: u32) -> Result<bool, D::Error> {
        let t = now().unwrap_or(0.0);
        let r = self.inner.grow(blocks);
        let dt = now().unwrap_or(0.0) - t;
        self.count(|c| {
            c.grows += 1;
            c.grow_ms += dt;
        });
        r
    }
}

/// blockwal's log: `append(index, entry)`, `sync()` as the flush.
struct Log {
    wal: Wal<Counted<OpfsDevice>>,
    calls: Rc<Cell<Calls>>,
    next: u64,
    flushes: u64,
    appended: u64,
}

/// A snapshot of a [`Log`]'s counters.
type Snapshot = (Calls, u64, u64);

impl Log {
    fn snapshot(&self) -> Snapshot {
        (self.calls.get(), self.flushes, self.appended)
    }

    /// Device calls per `sync` since `before`, as a report line.
    fn calls_since(&self, before: Snapshot) -> String {
        let (now, (c0, f0, a0)) = (self.calls.get(), before);
        let f = (self.flushes - f0).max(1) as f64;
        let payload = (self.appended - a0).max(1) as f64;
        format!(
            "{:<24} Wal device calls per sync: {:.2} program ({:.0} B, {:.2} x payload), \
             {:.2} sync, {:.3} grow, {:.2} read; time in program {:.0} ms, sync {:.0} ms, grow {:.0} ms\n",
            "",
            (now.programs - c0.programs) as f64 / f,
            (now.programmed - c0.programmed) as f64 / f,
            (now.programmed - c0.programmed) as f64 / payload,
            (now.syncs - c0.syncs) as f64 / f,
            (now.grows - c0.grows) as f64 / f,
            (now.reads - c0.reads) as f64 / f,
            now.program_ms - c0.program_ms,
            now.sync_ms - c0.sync_ms,
            now.grow_ms - c0.grow_ms,
        )
    }
}

impl Sink for Log {
    fn append(&mut self, data: &[u8]) -> Result<(), JsValue> {
        self.wal
            .append(self.next, data)
            .map_err(|e| wal_error(&e))?;
        self.next += 1;
        self.appended += data.len() as u64;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), JsValue> {
        self.flushes += 1;
        self.wal.sync().map_err(|e| wal_error(&e))
    }
}

fn wal_error(e: &blockwal::Error<blockwal::OpfsError>) -> JsValue {
    js_sys::Error::new(&format!("blockwal: {e}")).into()
}

/// One scenario, A/B alternated in ABBA order over `rounds` short rounds
/// (so both sides see the same machine load). Returns one report line:
/// entries per second of each side over all rounds, their ratio, and the
/// median and spread of the per-round ratios.
fn scenario(
    name: &str,
    a_name: &str,
    a: &mut dyn Sink,
    b: &mut dyn Sink,
    batch: u32,
    batches: u32,
    rounds: u32,
) -> Result<String, JsValue> {
    let entry = vec![0xA5u8; 128];
    // Warm up both (file growth, JIT, caches).
    run(a, &entry, batch, batches)?;
    run(b, &entry, batch, batches)?;
    let per_side = f64::from(batch) * f64::from(batches);
    let (mut ta, mut tb, mut ratios) = (0.0, 0.0, vec![]);
    for r in 0..rounds {
        let (x, y) = if r % 2 == 0 {
            let x = run(a, &entry, batch, batches)?;
            (x, run(b, &entry, batch, batches)?)
        } else {
            let y = run(b, &entry, batch, batches)?;
            (run(a, &entry, batch, batches)?, y)
        };
        ta += per_side / x;
        tb += per_side / y;
        ratios.push(x / y);
    }
    let total = per_side * f64::from(rounds);
    let (ra, rb) = (total / ta, total / tb);
    let med = median(&mut ratios);
    let n = ratios.len();
    let (q1, q3) = if n == 0 {
        (0.0, 0.0)
    } else {
        (ratios[n / 4], ratios[(3 * n) / 4])
    };
    Ok(format!(
        "{name:<24} {a_name:<11} {ra:>8.0}/s  raw handle {rb:>8.0}/s  ratio {med:.3} \
         (median of {rounds} A/B rounds, middle half {q1:.2}..{q3:.2}; ratio of totals {:.3})\n",
        ra / rb
    ))
}

/// The benchmark: 128 B entries, (1) a flush per entry, (2) batches of 64
/// entries and one flush; blockwal's `Wal` and the bare `OpfsDevice`, each
/// against a raw sync access handle appending the same bytes at the end of
/// its file (one `write` of the entries since the last flush, `flush`),
/// A/B alternated for `rounds` rounds of `singles` flushes or `batches`
/// batches per side. Returns the report.
#[wasm_bindgen]
pub async fn bench(rounds: u32, singles: u32, batches: u32) -> Result<String, JsValue> {
    let dir = unique_name("bench");
    let mut out = format!("block size {} KiB, 128 B entries\n", BLOCK >> 10);
    {
        let dev = OpfsDevice::open(&dir, "wal", BLOCK)
            .await
            .map_err(|e| js_error(&e))?;
        let calls = Rc::new(Cell::new(Calls::default()));
        let dev = Counted {
            inner: dev,
            calls: calls.clone(),
        };
        let wal = Wal::open_with(dev, crate::wal_options()).map_err(|e| wal_error(&e))?;
        let mut wal = Log {
            wal,
            calls,
            next: 1,
            flushes: 0,
            appended: 0,
        };
        let dev = OpfsDevice::open(&dir, "device", BLOCK)
            .await
            .map_err(|e| js_error(&e))?;
        let mut dev = Device {
            dev,
            end: 0,
            buf: Vec::new(),
        };
        let mut raw = Raw {
            h: raw_handle(&dir, "raw").await?,
            opts: FileSystemReadWriteOptions::new(),
            end: 0,
            buf: Vec::new(),
        };
        let one = "128 B, flush each";
        let batch = "128 B x 64, one flush";
        let before = wal.snapshot();
        out += &scenario(one, "Wal", &mut wal, &mut raw, 1, singles, rounds)?;
        out += &wal.calls_since(before);
        let before = wal.snapshot();
        out += &scenario(batch, "Wal", &mut wal, &mut raw, 64, batches, rounds)?;
        out += &wal.calls_since(before);
        out += &scenario(one, "OpfsDevice", &mut dev, &mut raw, 1, singles, rounds)?;
        out += &scenario(batch, "OpfsDevice", &mut dev, &mut raw, 64, batches, rounds)?;
        wal.wal.sync().map_err(|e| wal_error(&e))?;
        wal.wal
            .into_device()
            .inner
            .close()
            .map_err(|e| js_error(&e))?;
        dev.dev.close().map_err(|e| js_error(&e))?;
        raw.h.close();
    }
    remove_dir(&dir).await?;
    Ok(out)
}
