#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod device;
pub mod devices;
mod error;
mod format;
mod index;
pub mod meta;
#[cfg(feature = "openraft")]
pub mod openraft;
mod recovery;
pub mod verify;
mod wal;

#[cfg(all(feature = "std", unix))]
mod raft_wal;

pub use device::{BlockDevice, Geometry};
#[cfg(feature = "flash")]
pub use devices::flash::{FlashDevice, FlashError};
pub use devices::mem::{MemDevice, MemError};
#[cfg(all(feature = "opfs", target_arch = "wasm32"))]
pub use devices::opfs::{OpfsDevice, OpfsError};
#[cfg(feature = "sim")]
pub use devices::sim::{
    CutPlan, SimConfig, SimDevice, SimError, SimMonitor, SimOp, SimOpKind, SimStats, Survivors,
    TornFill, Violation,
};
pub use error::{Error, MetaLimit};
pub use wal::{Entry, Iter, TryIter, Wal, WalOptions};

#[cfg(all(feature = "std", unix))]
pub use devices::file::FileDevice;
#[cfg(all(feature = "std", unix))]
pub use devices::image::ImageDevice;
#[cfg(all(feature = "std", unix))]
pub use raft_wal::{Options, RaftWal};
