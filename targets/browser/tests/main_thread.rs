//! `OpfsDevice` opened on the main thread of a page: a clear, typed error.

use blockwal::devices::opfs::{check_dedicated_worker, OpfsDevice, OpfsError};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn main_thread_is_not_a_dedicated_worker() {
    let e = check_dedicated_worker().unwrap_err();
    assert_eq!(
        e,
        OpfsError::NotInDedicatedWorker {
            found: "Window".into()
        }
    );
}

#[wasm_bindgen_test]
async fn open_on_main_thread_says_use_a_dedicated_worker() {
    let e = OpfsDevice::open("main-thread", "log", 4096)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        OpfsError::NotInDedicatedWorker {
            found: "Window".into()
        }
    );
    let msg = e.to_string();
    assert!(
        msg.contains("must be opened in a dedicated worker"),
        "{msg}"
    );
    assert!(msg.contains("not in Window"), "{msg}");
}
