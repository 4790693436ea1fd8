#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod debug;
pub mod device;
pub mod devices;
mod error;
mod format;
mod index;
pub mod meta;
#[cfg(feature = "openraft")]
#[cfg_attr(docsrs, doc(cfg(feature = "openraft")))]
pub mod openraft;
#[cfg(feature = "raft-rs")]
pub mod raft_rs;
mod recovery;
#[cfg(feature = "std")]
pub mod shared;
pub mod verify;
mod wal;

#[cfg(feature = "std")]
mod raft_wal;

pub use device::{BlockDevice, Geometry};
#[cfg(feature = "flash")]
#[cfg_attr(docsrs, doc(cfg(feature = "flash")))]
pub use devices::flash::{FlashDevice, FlashError};
pub use devices::mem::{MemDevice, MemError};
#[cfg(all(feature = "opfs", target_arch = "wasm32"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "opfs", target_arch = "wasm32"))))]
pub use devices::opfs::{OpfsDevice, OpfsError};
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub use devices::sim::{SimDevice, SimOptions};
// The rest of the simulator lives at `blockwal::devices::sim`; these root
// paths stay for code written against them but are not advertised.
#[cfg(feature = "sim")]
#[doc(hidden)]
pub use devices::sim::{
    CutPlan, SimError, SimMonitor, SimOp, SimOpKind, SimStats, Survivors, TornFill, Violation,
};
pub use error::{Error, MetaLimit};
pub use recovery::{Cut, RecoveryMode, RecoveryReport};
pub use wal::{Entry, Iter, TryIter, Wal, WalOptions};

#[cfg(feature = "std")]
pub use devices::file::{FileDevice, FileError, FileOp};
#[cfg(feature = "std")]
pub use devices::image::ImageDevice;
#[cfg(feature = "std")]
pub use raft_wal::{RaftWal, RaftWalOptions};
