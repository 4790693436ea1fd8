//! blockwal: a write-ahead log for Raft over any block device.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod device;
pub mod devices;
mod error;

pub use device::{BlockDevice, Geometry};
pub use devices::mem::{MemDevice, MemError};
pub use error::Error;
