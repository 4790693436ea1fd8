//! The worker side of the kill/restart test (`driver/run.py persist`).
//!
//! Every browser start opens the same log, checks that every entry the
//! previous starts reported as synced is there, intact and contiguous, then
//! (unless told to only check) appends batches, syncing after each and
//! reporting the last synced index to the driver, until the driver kills
//! the browser with SIGKILL.
//!
//! Two kinds of log: `wal` (blockwal's [`Wal`] over an [`OpfsDevice`]: the
//! real thing) and `device` (fixed-size entries written straight to the
//! device: checks the adapter alone).

use blockwal::devices::opfs::{OpfsDevice, OpfsError};
use blockwal::{BlockDevice, Error, Wal};
use wasm_bindgen::prelude::*;

use crate::js_error;

/// Block size of the persistence log.
pub const BLOCK_SIZE: u32 = 4096;
/// Size of one entry.
pub const ENTRY: usize = 128;

/// The payload of entry `index`: a pure function of the index.
pub fn payload(index: u64, len: usize) -> Vec<u8> {
    let mut x = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = Vec::with_capacity(len + 8);
    out.extend_from_slice(&index.to_le_bytes());
    while out.len() < len {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The length of entry `index` in a `wal` log: varies, sometimes larger
/// than a block (split into fragments by the core).
pub fn wal_len(index: u64) -> usize {
    match index % 97 {
        0 => 9000,
        n if n % 10 == 0 => 1000,
        _ => ENTRY,
    }
}

fn wal_error(e: &Error<OpfsError>) -> JsValue {
    js_sys::Error::new(&format!("blockwal: {e}")).into()
}

enum Log {
    Wal(Box<Wal<OpfsDevice>>),
    Device(OpfsDevice),
}

/// The log the driver exercises.
#[wasm_bindgen]
pub struct Persist {
    log: Log,
    /// Index the next append gets.
    next: u64,
}

#[wasm_bindgen]
impl Persist {
    /// Opens the log in OPFS directory `dir`; `kind` is `"wal"` or `"device"`.
    pub async fn open(dir: String, kind: String) -> Result<Persist, JsValue> {
        let dev = OpfsDevice::open(&dir, "log", BLOCK_SIZE)
            .await
            .map_err(|e| js_error(&e))?;
        let log = match kind.as_str() {
            "wal" => Log::Wal(Box::new(
                Wal::open_with(dev, crate::wal_options()).map_err(|e| wal_error(&e))?,
            )),
            "device" => Log::Device(dev),
            _ => return Err(JsValue::from_str("kind must be \"wal\" or \"device\"")),
        };
        Ok(Persist { log, next: 1 })
    }

    /// Checks the log holds entries `1..=n` for some `n >= expect`, each
    /// intact, and nothing else; returns `n`. Appends continue after it.
    pub fn check(&mut self, expect: f64) -> Result<f64, JsValue> {
        let expect = expect as u64;
        let last = match &mut self.log {
            Log::Wal(wal) => {
                let last = wal.last_index().unwrap_or(0);
                if last > 0 && wal.first_index() != Some(1) {
                    return Err(JsValue::from_str(&format!(
                        "log starts at {:?}, not 1",
                        wal.first_index()
                    )));
                }
                for i in 1..=last {
                    let got = wal.try_get(i).map_err(|e| wal_error(&e))?;
                    let want = payload(i, wal_len(i));
                    match got {
                        Some(d) if *d == want[..] => {}
                        Some(d) => {
                            return Err(JsValue::from_str(&format!(
                                "entry {i} is wrong: {} bytes, expected {}",
                                d.len(),
                                want.len()
                            )))
                        }
                        None => return Err(JsValue::from_str(&format!("entry {i} is missing"))),
                    }
                }
                last
            }
            Log::Device(dev) => {
                let cap = dev.geometry().capacity();
                let mut buf = vec![0u8; ENTRY];
                let mut last = 0u64;
                while (last + 1) * ENTRY as u64 <= cap {
                    dev.read(last * ENTRY as u64, &mut buf)
                        .map_err(|e| js_error(&e))?;
                    if buf != payload(last + 1, ENTRY) {
                        break;
                    }
                    last += 1;
                }
                last
            }
        };
        if last < expect {
            return Err(JsValue::from_str(&format!(
                "LOST SYNCED ENTRIES: the log holds entries 1..={last}, but 1..={expect} were synced"
            )));
        }
        self.next = last + 1;
        Ok(last as f64)
    }

    /// Appends `n` entries, syncs once, and returns the last synced index.
    pub fn write_batch(&mut self, n: u32) -> Result<f64, JsValue> {
        for _ in 0..n {
            let i = self.next;
            match &mut self.log {
                Log::Wal(wal) => wal
                    .append(i, &payload(i, wal_len(i)))
                    .map_err(|e| wal_error(&e))?,
                Log::Device(dev) => {
                    let at = (i - 1) * ENTRY as u64;
                    while at + ENTRY as u64 > dev.geometry().capacity() {
                        if !dev.grow(16).map_err(|e| js_error(&e))? {
                            return Err(JsValue::from_str("device full"));
                        }
                    }
                    dev.program(at, &payload(i, ENTRY))
                        .map_err(|e| js_error(&e))?;
                }
            }
            self.next += 1;
        }
        match &mut self.log {
            Log::Wal(wal) => wal.sync().map_err(|e| wal_error(&e))?,
            Log::Device(dev) => dev.sync().map_err(|e| js_error(&e))?,
        }
        Ok((self.next - 1) as f64)
    }

    /// Syncs, flushes and releases the log.
    pub fn close(self) -> Result<(), JsValue> {
        let dev = match self.log {
            Log::Wal(mut wal) => {
                wal.sync().map_err(|e| wal_error(&e))?;
                wal.into_device()
            }
            Log::Device(dev) => dev,
        };
        dev.close().map_err(|e| js_error(&e))
    }
}
