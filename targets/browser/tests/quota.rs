//! The origin's quota through the whole stack: the browser's
//! `QuotaExceededError` makes `OpfsDevice::grow` return `Ok(false)`, the
//! core reports `Error::Full`, and the log stays consistent, durable and
//! usable once growth succeeds again.
//!
//! Chromium's quota here is "current usage + the free disk space it allows"
//! and counts sparse file sizes, so filling it for real would mean writing
//! gigabytes. Instead a thin shim turns every growth the core asks for into
//! a real `grow` of 16 TiB on the `OpfsDevice`, which the browser refuses
//! with a real `QuotaExceededError`; "freeing space" switches the shim back
//! to plain growth.

use std::cell::Cell;
use std::rc::Rc;

use blockwal::devices::opfs::{OpfsDevice, OpfsError};
use blockwal::{BlockDevice, Error, Geometry, Wal};
use blockwal_browser::{remove_dir, unique_name, wal_options};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const BS: u32 = 4096;

/// While `full` is set, each `grow` asks OPFS for 16 TiB more instead.
struct QuotaShim {
    inner: OpfsDevice,
    full: Rc<Cell<bool>>,
    refused: Rc<Cell<u32>>,
}

impl BlockDevice for QuotaShim {
    type Error = OpfsError;
    fn geometry(&self) -> Geometry {
        self.inner.geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), OpfsError> {
        self.inner.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), OpfsError> {
        self.inner.program(offset, data)
    }
    fn erase(&mut self, block: u32) -> Result<(), OpfsError> {
        self.inner.erase(block)
    }
    fn sync(&mut self) -> Result<(), OpfsError> {
        self.inner.sync()
    }
    fn grow(&mut self, blocks: u32) -> Result<bool, OpfsError> {
        if !self.full.get() {
            return self.inner.grow(blocks);
        }
        let before = self.inner.file_size()?;
        let huge = u32::MAX - self.inner.geometry().block_count; // ~16 TiB of 4 KiB blocks
        let grown = self.inner.grow(huge)?;
        assert!(!grown, "the browser granted 16 TiB");
        assert_eq!(
            self.inner.file_size()?,
            before,
            "a refused grow changed the file"
        );
        self.refused.set(self.refused.get() + 1);
        Ok(false)
    }
}

#[wasm_bindgen_test]
async fn wal_reports_full_at_quota_and_recovers() {
    let dir = unique_name("quota");
    let full = Rc::new(Cell::new(false));
    let refused = Rc::new(Cell::new(0));
    let inner = OpfsDevice::open(&dir, "log", BS).await.unwrap();
    let dev = QuotaShim {
        inner,
        full: full.clone(),
        refused: refused.clone(),
    };
    let opts = wal_options().max_grow_blocks(4);
    let mut wal = Wal::open_with(dev, opts).unwrap();
    let entry = |i: u64| vec![(i % 251) as u8; 1000];

    // Grow normally for a while, then hit the quota.
    let mut i = 1u64;
    while i <= 100 {
        wal.append(i, &entry(i)).unwrap();
        i += 1;
    }
    wal.sync().unwrap();
    full.set(true);
    loop {
        match wal.append(i, &entry(i)) {
            Ok(()) => i += 1,
            Err(Error::Full) => break,
            Err(e) => panic!("append {i}: {e}"),
        }
        assert!(i < 10_000, "never full");
    }
    assert!(refused.get() > 0, "OPFS never refused a grow");
    let last = i - 1;
    let blocks = wal.geometry().block_count;

    // Consistent: the log is usable, durable and survives a reopen.
    assert_eq!(wal.last_index(), Some(last));
    wal.sync().unwrap();
    wal.set_meta("term", b"7").unwrap();
    let mut wal = Wal::open_with(wal.into_device(), opts).unwrap();
    assert_eq!(wal.last_index(), Some(last));
    assert_eq!(wal.first_index(), Some(1));
    for k in [1, last / 2, last] {
        assert_eq!(wal.get(k).as_deref(), Some(&entry(k)[..]), "entry {k}");
    }
    assert_eq!(wal.get_meta("term"), Some(&b"7"[..]));
    assert_eq!(wal.append(last + 1, &entry(last + 1)), Err(Error::Full));

    // Space again: the log grows and goes on.
    full.set(false);
    for k in last + 1..=last + 300 {
        wal.append(k, &entry(k)).unwrap();
    }
    wal.sync().unwrap();
    assert!(wal.geometry().block_count > blocks);
    let wal = Wal::open_with(wal.into_device(), opts).unwrap();
    assert_eq!(wal.last_index(), Some(last + 300));
    assert_eq!(wal.get(last + 300).as_deref(), Some(&entry(last + 300)[..]));
    drop(wal);
    remove_dir(&dir).await.unwrap();
}
