//! blockwal in the browser.
//!
//! - `tests/`: `wasm-bindgen-test` suites run by `wasm-bindgen-test-runner`
//!   in headless Chromium: `worker.rs` (`OpfsDevice` in a dedicated
//!   worker), `conformance.rs` (blockwal's generic suite on OPFS),
//!   `quota.rs` (a refused growth up to `Error::Full` and back),
//!   `main_thread.rs` (the error a page's main thread gets).
//! - This library: helpers for those tests, and the functions the
//!   kill/restart driver (`driver/run.py`) and the benchmark call from a
//!   worker (`www/worker.js`, built with `wasm-bindgen --target web`).
//! - [`demo`]: the Raft demo's node (`www/demo.html`, `driver/demo.py`).

#![deny(missing_docs)]

use blockwal::devices::opfs::{OpfsDevice, OpfsError};
use blockwal::WalOptions;
use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DedicatedWorkerGlobalScope, FileSystemDirectoryHandle, FileSystemFileHandle,
    FileSystemGetDirectoryOptions, FileSystemGetFileOptions, FileSystemReadWriteOptions,
    FileSystemRemoveOptions, FileSystemSyncAccessHandle,
};

pub mod bench;
pub mod demo;
pub mod persist;

/// Options for a log in the browser: the crate is built without `std` here
/// (see Cargo.toml), whose defaults are sized for microcontrollers; a
/// browser has the memory of a desktop.
pub fn wal_options() -> WalOptions {
    WalOptions::large()
}

/// A directory name no other test uses: `prefix` plus time and randomness.
pub fn unique_name(prefix: &str) -> String {
    let now = js_sys::Date::now() as u64;
    let rnd = (js_sys::Math::random() * 1e9) as u64;
    format!("{prefix}-{now:x}-{rnd:x}")
}

async fn root() -> Result<FileSystemDirectoryHandle, JsValue> {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().dyn_into()?;
    let root = JsFuture::from(scope.navigator().storage().get_directory()).await?;
    root.dyn_into()
}

/// Removes `dir` (and everything in it) from the OPFS root; absent is fine.
pub async fn remove_dir(dir: &str) -> Result<(), JsValue> {
    let root = root().await?;
    let options = FileSystemRemoveOptions::new();
    options.set_recursive(true);
    match JsFuture::from(root.remove_entry_with_options(dir, &options)).await {
        Ok(_) => Ok(()),
        Err(e) if error_name(&e) == "NotFoundError" => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates directory `dir/sub` (and `dir`) in the OPFS root.
pub async fn make_dir(dir: &str, sub: &str) -> Result<(), JsValue> {
    let o = FileSystemGetDirectoryOptions::new();
    o.set_create(true);
    let d: FileSystemDirectoryHandle =
        JsFuture::from(root().await?.get_directory_handle_with_options(dir, &o))
            .await?
            .dyn_into()?;
    JsFuture::from(d.get_directory_handle_with_options(sub, &o)).await?;
    Ok(())
}

/// The `name` of a thrown JavaScript value (`""` if it has none).
pub fn error_name(e: &JsValue) -> String {
    Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default()
}

/// A raw sync access handle on `dir/file` (both created if needed): the
/// baseline the benchmark compares against, and a way for tests to look at
/// the file behind the device's back.
pub async fn raw_handle(dir: &str, file: &str) -> Result<FileSystemSyncAccessHandle, JsValue> {
    let root = root().await?;
    let o = FileSystemGetDirectoryOptions::new();
    o.set_create(true);
    let d: FileSystemDirectoryHandle =
        JsFuture::from(root.get_directory_handle_with_options(dir, &o))
            .await?
            .dyn_into()?;
    let o = FileSystemGetFileOptions::new();
    o.set_create(true);
    let f: FileSystemFileHandle = JsFuture::from(d.get_file_handle_with_options(file, &o))
        .await?
        .dyn_into()?;
    JsFuture::from(f.create_sync_access_handle())
        .await?
        .dyn_into()
}

/// Writes `data` at `at` through a raw handle, all of it.
pub fn raw_write(
    h: &FileSystemSyncAccessHandle,
    opts: &FileSystemReadWriteOptions,
    at: u64,
    data: &[u8],
) -> Result<(), JsValue> {
    let mut done = 0usize;
    while done < data.len() {
        opts.set_at((at + done as u64) as f64);
        let n = h.write_with_u8_array_and_options(&data[done..], opts)? as usize;
        if n == 0 {
            return Err(JsValue::from_str("raw write stored nothing"));
        }
        done += n;
    }
    Ok(())
}

/// An [`OpfsError`] as a JavaScript `Error` carrying its sentence.
pub fn js_error(e: &OpfsError) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

/// Tries to open an OPFS device wherever this runs and returns the outcome
/// as text: the driver calls it on the main thread to see the error a page
/// gets there.
#[wasm_bindgen]
pub async fn try_open_here(dir: String, file: String) -> String {
    match OpfsDevice::open(&dir, &file, 4096).await {
        Ok(d) => {
            let _ = d.close();
            "opened".into()
        }
        Err(e) => format!("{e:?} / {e}"),
    }
}
