//! Log index -> location, kept per block (never per entry, except for the
//! head block and blocks still without a summary), and the bounded tail cache.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Where the entry offsets of a block live.
#[derive(Clone, Debug)]
pub(crate) enum Loc {
    /// Sealed with a valid summary holding `disk_n` entries: offsets are read
    /// from its table at the block's end.
    Summary { disk_n: u32 },
    /// Offsets held in memory: the head, and sealed blocks whose summary is
    /// not written yet. This is the block's own replay (FORMAT.md).
    Mem(MemBlock),
}

/// A block's own replay state, as written or as scanned.
#[derive(Clone, Debug, Default)]
pub(crate) struct MemBlock {
    /// Offset of the first record of each entry starting in the block.
    pub offsets: Vec<u32>,
    /// Offset where records end.
    pub end: u32,
    /// Index after the block's last entry.
    pub next: u64,
    /// min(base, TRUNCATE indices in the block).
    pub low: u64,
    /// max(header floor, COMPACT indices in the block).
    pub floor: u64,
    /// The last entry continues in the next block.
    pub tail_open: bool,
}

/// One log block of the live chain.
#[derive(Clone, Debug)]
pub(crate) struct LogBlock {
    pub block: u32,
    pub seq: u64,
    /// First surviving entry starting here (for an empty block: where it sits
    /// in index order, so the list stays sorted).
    pub first: u64,
    /// Surviving entries starting here.
    pub n: u32,
    pub loc: Loc,
}

impl LogBlock {
    /// Index after the last surviving entry that starts here.
    pub fn end(&self) -> u64 {
        self.first + u64::from(self.n)
    }

    /// Drops surviving entries `>= limit`.
    pub fn clip(&mut self, limit: u64) {
        if self.end() > limit {
            self.n = limit.saturating_sub(self.first) as u32;
            if self.n == 0 {
                self.first = self.first.min(limit);
            }
        }
    }
}

/// Position of the block holding the start of `index` in `blocks` (sorted
/// by index), if any.
pub(crate) fn find(blocks: &VecDeque<LogBlock>, index: u64) -> Option<usize> {
    let pos = blocks.partition_point(|b| b.end() <= index);
    let b = blocks.get(pos)?;
    (b.first <= index && index < b.end()).then_some(pos)
}

/// Recently appended entries, contiguous, bounded by bytes and by count.
#[derive(Debug, Default)]
pub(crate) struct TailCache {
    entries: VecDeque<Vec<u8>>,
    first: u64,
    bytes: usize,
    pub max_bytes: usize,
    pub max_entries: usize,
}

impl TailCache {
    pub fn new(max_bytes: usize, max_entries: usize) -> Self {
        TailCache {
            max_bytes,
            max_entries,
            ..Default::default()
        }
    }

    pub fn get(&self, index: u64) -> Option<&[u8]> {
        let k = usize::try_from(index.checked_sub(self.first)?).ok()?;
        self.entries.get(k).map(|v| v.as_slice())
    }

    /// Adds the entry after the last one (a gap empties the cache first).
    pub fn push(&mut self, index: u64, data: &[u8]) {
        if self.entries.is_empty() || self.first + self.entries.len() as u64 != index {
            self.clear();
            self.first = index;
        }
        if data.len() > self.max_bytes || self.max_entries == 0 {
            self.clear();
            self.first = index + 1;
            return;
        }
        self.bytes += data.len();
        self.entries.push_back(data.to_vec());
        self.shrink();
    }

    fn shrink(&mut self) {
        while self.bytes > self.max_bytes || self.entries.len() > self.max_entries {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= e.len();
            self.first += 1;
        }
    }

    /// Drops entries `>= from`.
    pub fn truncate(&mut self, from: u64) {
        while self.first + self.entries.len() as u64 > from {
            let Some(e) = self.entries.pop_back() else {
                break;
            };
            self.bytes -= e.len();
        }
    }

    /// Drops entries `< to`.
    pub fn compact(&mut self, to: u64) {
        while self.first < to {
            let Some(e) = self.entries.pop_front() else {
                self.first = to;
                break;
            };
            self.bytes -= e.len();
            self.first += 1;
        }
    }

    pub fn set_limits(&mut self, max_bytes: usize, max_entries: usize) {
        self.max_bytes = max_bytes;
        self.max_entries = max_entries;
        self.shrink();
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Bytes held (payloads plus per-entry bookkeeping).
    pub fn memory(&self) -> usize {
        self.bytes + self.entries.capacity() * core::mem::size_of::<Vec<u8>>()
    }
}
