//! `Debug` for the log types: a summary of what the log holds, read through
//! their public accessors, instead of a dump of caches and buffers.

use core::fmt;

use crate::device::BlockDevice;
use crate::wal::{Iter, Wal};

impl<D: BlockDevice> fmt::Debug for Wal<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("geometry", &self.geometry())
            .field("first_index", &self.first_index())
            .field("last_index", &self.last_index())
            .field("next_index", &self.next_index())
            .field("meta_keys", &self.meta_keys().count())
            .finish_non_exhaustive()
    }
}

impl<D: BlockDevice> fmt::Debug for Iter<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

#[cfg(all(feature = "std", unix))]
impl fmt::Debug for crate::RaftWal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RaftWal").field(&**self).finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{MemDevice, Wal};
    use alloc::format;

    #[test]
    fn a_wal_shows_its_range_not_its_buffers() {
        let mut wal = Wal::open(MemDevice::new(4096, 8, 8)).unwrap();
        wal.append(7, b"seven").unwrap();
        wal.set_meta("vote", b"1").unwrap();
        let shown = format!("{wal:?}");
        assert!(shown.starts_with("Wal { geometry: Geometry {"), "{shown}");
        assert!(
            shown.contains("first_index: Some(7), last_index: Some(7)"),
            "{shown}"
        );
        assert!(shown.contains("meta_keys: 1"), "{shown}");
        assert_eq!(format!("{:?}", wal.iter()), "Iter { .. }");
    }
}
