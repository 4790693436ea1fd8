//! A copy-on-write view of a device: writes land in memory and reads see
//! them over the device's own bytes. `salvage` opens the log through it
//! first, to learn exactly what a salvage would cut off (the library's own
//! report) before asking, without changing a byte of the log.

use blockwal::{BlockDevice, Geometry};

/// `inner` as it would be after the writes made through this view. Memory is
/// what the writes hold (a salvage writes a block header and, when meta was
/// cut, one metadata snapshot).
pub struct Preview<D> {
    inner: D,
    geo: Geometry,
    /// Blocks the device had: reads past them see a grown, blank file.
    had: u32,
    /// Programs in the order made.
    writes: Vec<(u64, Vec<u8>)>,
}

impl<D: BlockDevice> Preview<D> {
    pub fn new(inner: D) -> Self {
        let geo = inner.geometry();
        Preview {
            inner,
            geo,
            had: geo.block_count,
            writes: Vec::new(),
        }
    }
}

impl<D: BlockDevice> BlockDevice for Preview<D> {
    type Error = D::Error;

    fn geometry(&self) -> Geometry {
        self.geo
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), D::Error> {
        let bs = u64::from(self.geo.block_size);
        let end = offset + buf.len() as u64;
        // Block by block: from the device, or zeros (what a grown file reads).
        let mut at = offset;
        while at < end {
            let block = at / bs;
            let stop = end.min((block + 1) * bs);
            let part = &mut buf[(at - offset) as usize..(stop - offset) as usize];
            if block >= u64::from(self.had) {
                part.fill(0);
            } else {
                self.inner.read(at, part)?;
            }
            at = stop;
        }
        for (w, data) in &self.writes {
            let (lo, hi) = (offset.max(*w), end.min(w + data.len() as u64));
            if lo < hi {
                buf[(lo - offset) as usize..(hi - offset) as usize]
                    .copy_from_slice(&data[(lo - w) as usize..(hi - w) as usize]);
            }
        }
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), D::Error> {
        self.writes.push((offset, data.to_vec()));
        Ok(())
    }

    /// Salvage runs on the file device only, whose erase leaves the bytes
    /// as they are (program size 1 writes over them).
    fn erase(&mut self, _block: u32) -> Result<(), D::Error> {
        Ok(())
    }

    fn sync(&mut self) -> Result<(), D::Error> {
        Ok(())
    }

    fn grow(&mut self, blocks: u32) -> Result<bool, D::Error> {
        match self.geo.block_count.checked_add(blocks) {
            Some(c) => {
                self.geo.block_count = c;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn prefetch(&mut self, offset: u64, len: u64) {
        self.inner.prefetch(offset, len);
    }
}
