//! What an open found and did: the recovery mode asked for and the report
//! every open yields ([`crate::Wal::recovery_report`]).

use alloc::string::String;
use alloc::vec::Vec;

/// How opening treats corruption (FORMAT.md, "Strict and salvage").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Corruption is an error naming block, offset and what; nothing is
    /// written. Bytes lost in a crash before their sync are still dropped.
    #[default]
    Strict,
    /// Opens the longest intact prefix, durably cuts off the rest before the
    /// open returns, and reports exactly what was dropped. Needs the
    /// `salvage` feature (default); without it the open returns
    /// [`crate::Error::Unsupported`].
    Salvage,
}

impl RecoveryMode {
    /// Salvage, in a build that has it: constant `false` without the
    /// feature, so the salvage paths of recovery are not compiled in.
    pub(crate) fn salvaging(self) -> bool {
        cfg!(feature = "salvage") && self == RecoveryMode::Salvage
    }
}

/// One piece of corruption that salvage cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Block where the corruption was found.
    pub block: u32,
    /// Byte offset inside the block.
    pub offset: u32,
    /// What was wrong.
    pub what: &'static str,
}

/// What an open found, dropped and (in salvage mode) cut off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The mode the log was opened in.
    pub mode: RecoveryMode,
    /// Blocks read record by record (the head, blocks without a trusted
    /// summary, metadata blocks).
    pub blocks_scanned: u32,
    /// Device reads the open issued.
    pub device_reads: u64,
    /// Bytes after the last valid record of the head and of the metadata
    /// block that were dropped as a write torn by a crash.
    pub torn_bytes: u64,
    /// Where the dropped torn bytes began: (block, offset).
    pub torn_at: Vec<(u32, u32)>,
    /// A newest log block holding only a header whose sync never completed
    /// was dropped.
    pub dropped_header: bool,
    /// Salvage: the corruption found and cut off (empty in strict mode).
    pub cuts: Vec<Cut>,
    /// Salvage: log index ranges `[from, to)` that were dropped.
    pub dropped_entries: Vec<(u64, u64)>,
    /// Salvage: metadata keys whose newest value was dropped.
    pub dropped_meta_keys: Vec<String>,
    /// Salvage: the newest metadata block's SNAPSHOT itself was damaged, so
    /// the map was taken from an older metadata block. Its keys are listed
    /// in `dropped_meta_keys` (each may hold an older value now), but a key
    /// that only the damaged snapshot held cannot be named: it is gone.
    pub meta_snapshot_lost: bool,
}

impl RecoveryReport {
    /// True when salvage cut something off.
    pub fn salvaged(&self) -> bool {
        !self.cuts.is_empty()
    }
}
