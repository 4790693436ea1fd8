//! Device adapters. Each knows the core's [`crate::BlockDevice`] trait and no other adapter.

pub mod mem;
