//! blockwal's generic conformance suite (`blockwal::conformance::run_all`)
//! on `OpfsDevice`, in a dedicated worker.
//!
//! `run_all` asks for fresh devices synchronously, while opening an OPFS
//! file is asynchronous: every device is opened beforehand (one file each)
//! and handed out in turn.

use std::collections::VecDeque;

use blockwal::conformance::run_all;
use blockwal::devices::opfs::OpfsDevice;
use blockwal_browser::{remove_dir, unique_name};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// Devices opened per run; `run_all` uses one per test (12 today).
const DEVICES: usize = 24;

async fn conformance(block_size: u32, big: usize) {
    let dir = unique_name(&format!("conformance-{block_size}"));
    let mut devices = VecDeque::new();
    for i in 0..DEVICES {
        match OpfsDevice::open(&dir, &format!("log{i}"), block_size).await {
            Ok(d) => devices.push_back(d),
            Err(e) => panic!("open device {i}: {e}"),
        }
    }
    let mut make = || match devices.pop_front() {
        Some(d) => d,
        None => panic!("run_all wants more than {DEVICES} devices: raise DEVICES"),
    };
    let n = run_all(&mut make, big)
        .unwrap_or_else(|f| panic!("block size {block_size}: {}: {}", f.test, f.what));
    assert!(n >= 12, "{n} tests run");
    drop(devices); // closes the devices left over
    remove_dir(&dir).await.unwrap();
}

#[wasm_bindgen_test]
async fn conformance_4k_blocks() {
    conformance(4096, 1 << 20).await;
}

#[wasm_bindgen_test]
async fn conformance_64k_blocks() {
    conformance(64 << 10, 1 << 20).await;
}

#[wasm_bindgen_test]
async fn conformance_1m_blocks() {
    conformance(1 << 20, 1 << 20).await;
}
