//! `OpfsDevice` in a dedicated worker, in headless Chromium.

use blockwal::devices::opfs::{
    check_dedicated_worker, DomErrorKind, OpfsDevice, OpfsError, OpfsOp, INITIAL_BLOCKS, MAX_OFFSET,
};
use blockwal::{BlockDevice, Error};
use blockwal_browser::{make_dir, raw_handle, remove_dir, unique_name};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const BS: u32 = 4096;

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn open(dir: &str) -> OpfsDevice {
    match OpfsDevice::open(dir, "log", BS).await {
        Ok(d) => d,
        Err(e) => panic!("open {dir}: {e}"),
    }
}

#[wasm_bindgen_test]
fn detects_dedicated_worker() {
    assert!(check_dedicated_worker().is_ok());
}

#[wasm_bindgen_test]
async fn new_file_geometry() {
    let dir = unique_name("geom");
    let mut d = open(&dir).await;
    let g = d.geometry();
    assert_eq!(g.block_size, BS);
    assert_eq!(g.program_size, 1);
    assert_eq!(g.erase_value, None);
    assert_eq!(g.block_count, INITIAL_BLOCKS);
    assert_eq!(d.file_size().unwrap(), u64::from(INITIAL_BLOCKS * BS));
    d.close().unwrap();
    remove_dir(&dir).await.unwrap();
}

#[wasm_bindgen_test]
async fn program_read_sync_round_trip() {
    let dir = unique_name("rt");
    let mut d = open(&dir).await;
    // Unaligned, crossing a block boundary (the device allows it; the core
    // never crosses blocks in `program`, but `read` may).
    let a = pattern(7, 5000);
    d.program(100, &a).unwrap();
    let b = pattern(9, 128);
    d.program(3 * u64::from(BS) + 17, &b).unwrap();
    d.sync().unwrap();
    let mut got = vec![0u8; a.len()];
    d.read(100, &mut got).unwrap();
    assert_eq!(got, a);
    let mut part = vec![0u8; 10];
    d.read(100 + 4090, &mut part).unwrap();
    assert_eq!(part, a[4090..4100]);
    // Erase is a no-op on OPFS: the bytes stay.
    d.erase(0).unwrap();
    d.erase(1).unwrap();
    d.read(100, &mut got).unwrap();
    assert_eq!(got, a);
    // Untouched bytes of a new file read as zeros.
    let mut z = vec![1u8; 100];
    d.read(0, &mut z).unwrap();
    assert!(z.iter().all(|&x| x == 0));
    // Empty accesses are fine, even at the very end.
    let end = d.geometry().capacity();
    d.read(end, &mut []).unwrap();
    d.program(end, &[]).unwrap();
    d.close().unwrap();

    // Reopen: same size, same bytes.
    let mut d = open(&dir).await;
    assert_eq!(d.geometry().block_count, INITIAL_BLOCKS);
    let mut got2 = vec![0u8; b.len()];
    d.read(3 * u64::from(BS) + 17, &mut got2).unwrap();
    assert_eq!(got2, b);
    d.close().unwrap();
    remove_dir(&dir).await.unwrap();
}

#[wasm_bindgen_test]
async fn grow_adds_whole_blocks_and_persists() {
    let dir = unique_name("grow");
    let mut d = open(&dir).await;
    assert!(d.grow(3).unwrap());
    assert_eq!(d.geometry().block_count, INITIAL_BLOCKS + 3);
    assert_eq!(d.file_size().unwrap(), u64::from((INITIAL_BLOCKS + 3) * BS));
    let last = d.geometry().block_offset(INITIAL_BLOCKS + 2);
    let data = pattern(3, BS as usize);
    d.program(last, &data).unwrap();
    d.sync().unwrap();
    assert!(d.grow(0).unwrap());
    drop(d); // Drop flushes and closes.

    let mut d = open(&dir).await;
    assert_eq!(d.geometry().block_count, INITIAL_BLOCKS + 3);
    let mut got = vec![0u8; data.len()];
    d.read(last, &mut got).unwrap();
    assert_eq!(got, data);
    d.close().unwrap();
    remove_dir(&dir).await.unwrap();
}

#[wasm_bindgen_test]
async fn partial_tail_is_ignored_then_dropped_by_grow() {
    let dir = unique_name("tail");
    {
        let h = raw_handle(&dir, "log").await.unwrap();
        h.truncate_with_f64(f64::from(6 * BS + 100)).unwrap();
        h.flush().unwrap();
        h.close();
    }
    let mut d = open(&dir).await;
    assert_eq!(d.geometry().block_count, 6);
    assert!(matches!(
        d.read(6 * u64::from(BS), &mut [0u8; 1]),
        Err(OpfsError::OutOfBounds { .. })
    ));
    assert!(d.grow(1).unwrap());
    assert_eq!(d.file_size().unwrap(), u64::from(7 * BS));
    d.close().unwrap();
    remove_dir(&dir).await.unwrap();
}

#[wasm_bindgen_test]
async fn out_of_range_is_a_typed_error() {
    let dir = unique_name("oob");
    let mut d = open(&dir).await;
    let cap = d.geometry().capacity();
    let mut buf = [0u8; 16];
    assert_eq!(
        d.read(cap - 8, &mut buf),
        Err(OpfsError::OutOfBounds {
            offset: cap - 8,
            len: 16,
            capacity: cap
        })
    );
    assert!(matches!(
        d.program(cap, &[1]),
        Err(OpfsError::OutOfBounds { .. })
    ));
    assert!(matches!(
        d.erase(INITIAL_BLOCKS),
        Err(OpfsError::OutOfBounds { .. })
    ));
    assert!(matches!(
        d.erase(u32::MAX),
        Err(OpfsError::OutOfBounds { .. })
    ));
    assert_eq!(
        d.read(MAX_OFFSET - 8, &mut buf),
        Err(OpfsError::OffsetTooLarge {
            offset: MAX_OFFSET - 8,
            len: 16
        })
    );
    assert!(matches!(
        d.program(u64::MAX, &[1]),
        Err(OpfsError::OffsetTooLarge { .. })
    ));
    assert!(matches!(
        d.read(u64::MAX - 1, &mut buf),
        Err(OpfsError::OffsetTooLarge { .. })
    ));
    // Nothing changed: the device still works.
    d.program(0, &[1, 2, 3]).unwrap();
    d.read(0, &mut buf[..3]).unwrap();
    assert_eq!(&buf[..3], &[1, 2, 3]);
    d.close().unwrap();
    remove_dir(&dir).await.unwrap();
}

#[wasm_bindgen_test]
async fn grow_past_quota_returns_false_and_keeps_the_file() {
    let dir = unique_name("quota");
    let mut d = open(&dir).await;
    d.program(10, b"still here").unwrap();
    d.sync().unwrap();
    let before = d.file_size().unwrap();
    // 2^32 - 1 - 4 blocks of 4 KiB: about 16 TiB, past any quota.
    let grew = d.grow(u32::MAX - INITIAL_BLOCKS).unwrap();
    assert!(!grew, "grew to 16 TiB?");
    assert_eq!(d.geometry().block_count, INITIAL_BLOCKS);
    assert_eq!(d.file_size().unwrap(), before);
    // u32 overflow of the block count: cannot grow, no error.
    assert!(!d.grow(u32::MAX).unwrap());
    let mut buf = [0u8; 10];
    d.read(10, &mut buf).unwrap();
    assert_eq!(&buf, b"still here");
    // And it can still grow by a sane amount afterwards.
    assert!(d.grow(1).unwrap());
    d.close().unwrap();
    remove_dir(&dir).await.unwrap();
}

#[wasm_bindgen_test]
async fn second_open_is_locked() {
    let dir = unique_name("lock");
    let first = open(&dir).await;
    let second = OpfsDevice::open(&dir, "log", BS).await;
    let err = second.expect_err("second open of the same file must fail");
    let named = format!("the OPFS file \"{dir}/log\"");
    assert_eq!(
        err,
        OpfsError::Locked {
            what: named.clone()
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("another tab or worker"), "{msg}");
    assert!(msg.starts_with(&named), "{msg}");
    let core = Error::from(err);
    assert_eq!(
        core,
        Error::<OpfsError>::Locked {
            what: named.clone()
        }
    );
    assert!(core.to_string().starts_with(&named), "{core}");
    // A different file in the same directory is not locked.
    let other = OpfsDevice::open(&dir, "other", BS).await.unwrap();
    other.close().unwrap();
    // Closing releases the lock; so does dropping.
    first.close().unwrap();
    let again = open(&dir).await;
    drop(again);
    let third = open(&dir).await;
    third.close().unwrap();
    remove_dir(&dir).await.unwrap();
}

#[wasm_bindgen_test]
async fn bad_arguments_are_typed_errors() {
    let e = OpfsDevice::open("x", "log", 100).await.unwrap_err();
    assert!(
        matches!(
            e,
            OpfsError::InvalidBlockSize {
                block_size: 100,
                ..
            }
        ),
        "{e:?}"
    );
    for bs in [0, 127, (1 << 30) + 1, u32::MAX] {
        let e = OpfsDevice::open("x", "log", bs).await.unwrap_err();
        assert!(matches!(e, OpfsError::InvalidBlockSize { .. }), "{e:?}");
        assert!(e.to_string().contains("unusable"), "{e}");
    }
    for (dir, file) in [("a/b", "log"), ("", "log"), ("ok", ".."), ("ok", "a/b")] {
        let e = OpfsDevice::open(dir, file, BS).await.unwrap_err();
        match &e {
            OpfsError::Dom {
                kind: DomErrorKind::TypeError,
                op,
                ..
            } => {
                assert!(
                    matches!(op, OpfsOp::OpenDirectory | OpfsOp::OpenFile),
                    "{e:?}"
                )
            }
            _ => panic!("{dir:?}/{file:?}: {e:?}"),
        }
        assert!(e.to_string().contains("invalid argument"), "{e}");
    }
    remove_dir("ok").await.unwrap();
}

#[wasm_bindgen_test]
async fn directory_where_file_expected() {
    let dir = unique_name("mismatch");
    // Make `dir/log` a directory: opening it as the log file is a typed error.
    make_dir(&dir, "log").await.unwrap();
    let e = OpfsDevice::open(&dir, "log", BS).await.unwrap_err();
    assert!(
        matches!(
            e,
            OpfsError::Dom {
                kind: DomErrorKind::TypeMismatch,
                op: OpfsOp::OpenFile,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("a directory where a file was"),
        "{e}"
    );
    remove_dir(&dir).await.unwrap();
}

#[wasm_bindgen_test]
fn dom_error_names_map_to_kinds() {
    use DomErrorKind::*;
    for (name, kind) in [
        ("NoModificationAllowedError", NoModificationAllowed),
        ("QuotaExceededError", QuotaExceeded),
        ("NotFoundError", NotFound),
        ("TypeMismatchError", TypeMismatch),
        ("InvalidStateError", InvalidState),
        ("InvalidModificationError", InvalidModification),
        ("SecurityError", Security),
        ("NotAllowedError", NotAllowed),
        ("AbortError", Abort),
        ("NotReadableError", NotReadable),
        ("UnknownError", Backend),
        ("OperationError", Backend),
        ("TypeError", TypeError),
        ("SomethingNew", Other),
        ("", Other),
    ] {
        assert_eq!(DomErrorKind::from_name(name), kind);
        assert!(!kind.meaning().is_empty());
    }
    assert_eq!(
        OpfsError::from_dom(
            OpfsOp::CreateSyncAccessHandle,
            "NoModificationAllowedError",
            "x".into()
        ),
        OpfsError::Locked {
            what: "the OPFS file".into()
        }
    );
    assert_eq!(
        OpfsError::from_dom(OpfsOp::Truncate, "QuotaExceededError", "x".into()),
        OpfsError::QuotaExceeded
    );
    assert_eq!(
        Error::from(OpfsError::QuotaExceeded),
        Error::<OpfsError>::Full
    );
    let e = OpfsError::from_dom(OpfsOp::Flush, "InvalidStateError", "closed".into());
    assert_eq!(
        e.to_string(),
        "FileSystemSyncAccessHandle.flush() failed: the handle is closed or no longer valid \
         (InvalidStateError: closed)"
    );
    // Real DOMException and Error values, and things that are not errors.
    let dom =
        web_sys::DomException::new_with_message_and_name("held", "NoModificationAllowedError")
            .unwrap();
    assert_eq!(
        OpfsError::from_js(OpfsOp::CreateSyncAccessHandle, &dom.into()),
        OpfsError::Locked {
            what: "the OPFS file".into()
        }
    );
    let te: wasm_bindgen::JsValue = js_sys::TypeError::new("bad name").into();
    assert!(matches!(
        OpfsError::from_js(OpfsOp::OpenFile, &te),
        OpfsError::Dom {
            kind: DomErrorKind::TypeError,
            ..
        }
    ));
    for v in [
        wasm_bindgen::JsValue::NULL,
        wasm_bindgen::JsValue::UNDEFINED,
        42.into(),
        "oops".into(),
    ] {
        assert!(matches!(
            OpfsError::from_js(OpfsOp::Read, &v),
            OpfsError::Dom {
                kind: DomErrorKind::Other,
                ..
            }
        ));
    }
}

#[wasm_bindgen_test]
fn global_scope_names() {
    assert_eq!(
        OpfsError::for_global_scope("DedicatedWorkerGlobalScope"),
        None
    );
    for name in [
        "Window",
        "SharedWorkerGlobalScope",
        "ServiceWorkerGlobalScope",
        "Object",
        "",
    ] {
        let e = OpfsError::for_global_scope(name).unwrap();
        assert!(
            e.to_string()
                .contains("must be opened in a dedicated worker"),
            "{e}"
        );
    }
}
