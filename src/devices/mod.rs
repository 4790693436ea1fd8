//! Device adapters. Each knows the core's [`crate::BlockDevice`] trait and no other adapter.

#[cfg(feature = "std")]
pub mod file;
#[cfg(feature = "flash")]
#[cfg_attr(docsrs, doc(cfg(feature = "flash")))]
pub mod flash;
#[cfg(feature = "std")]
pub mod image;
pub mod mem;
#[cfg(all(feature = "opfs", target_arch = "wasm32"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "opfs", target_arch = "wasm32"))))]
pub mod opfs;
#[cfg(feature = "flash")]
#[cfg_attr(docsrs, doc(cfg(feature = "flash")))]
pub mod ram_flash;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim;
#[cfg(feature = "sim")]
mod sim_errors;
