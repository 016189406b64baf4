//! The C-ABI fast path for the hot calls from Python (`bindings/python/gochat_e2ee_fast.py`,
//! `docs/python.md`, "Fast path"), the ctypes counterpart of the JNI one (`jni.rs`).
//!
//! Through the generated ctypes code a method call costs about five crossings (a handle
//! clone, a `RustBuffer` allocation per argument, the call, the result's free), each with
//! a status structure and Python-side checks: 25 µs per `encrypt` from Python against
//! 2 µs from Rust (`docs/benchmarks.md`, "Kotlin crossing"). Here one call takes the
//! uniffi handle (borrowed, never consumed), the arguments as uniffi `ForeignBytes`
//! (pointers into the Python `bytes`, no copy, no allocation crossing) and returns one
//! `RustBuffer`, which the caller releases with [`gochat_e2ee_fast_free`].
//!
//! As in `jni.rs`, nothing is re-implemented: the functions call the Rust methods uniffi
//! exports, and write results and errors with uniffi's own serializers, which the
//! generated Python converters read. Return code: 0 = the buffer holds the payload (raw
//! bytes for `encrypt`, a uniffi-serialized record otherwise), 1 = it holds a
//! uniffi-serialized `GoChatError`, 2 = it holds a UTF-8 message (a panic, a bad handle
//! or a name that is not UTF-8).
//!
//! Safety contract (upheld by `gochat_e2ee_fast.py`): the handle is a live uniffi handle
//! of the right type, kept alive by the Python object for the whole call, and each
//! `ForeignBytes` points at `len` readable bytes for the duration of the call.
// The only `unsafe` construct here is `no_mangle` (exported symbols); the pointer reads
// are uniffi's `ForeignBytes::as_slice`.
#![allow(unsafe_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use uniffi::{ForeignBytes, LowerError, RustBuffer};

use crate::fastpath::{record, with_object, RECORD_SLACK};
use crate::{Device, GoChatError, UniFfiTag};

const OK: i8 = 0;
const ERROR: i8 = 1;
const INTERNAL: i8 = 2;

fn with_device<T>(handle: u64, f: impl FnOnce(&Device) -> T) -> Result<T, String> {
    with_object(handle, f)
}

fn text(b: &ForeignBytes) -> Result<String, String> {
    String::from_utf8(b.as_slice().to_vec()).map_err(|e| e.to_string())
}

/// A serialized record, moved out of its wiping buffer into the one the caller frees
/// with [`gochat_e2ee_fast_free`] (which wipes it).
fn record_vec<T: uniffi::Lower<UniFfiTag>>(value: T, hint: usize) -> Vec<u8> {
    std::mem::take(&mut *record(value, hint))
}

/// Runs one call and writes its outcome into `out`.
fn call(out: &mut RustBuffer, f: impl FnOnce() -> Result<crate::Result<Vec<u8>>, String>) -> i8 {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err("panic in the GoChat fast path".into()));
    let (code, bytes) = match outcome {
        Ok(Ok(payload)) => (OK, payload),
        Ok(Err(e)) => (ERROR, <GoChatError as LowerError<UniFfiTag>>::lower_error(e).destroy_into_vec()),
        Err(message) => (INTERNAL, message.into_bytes()),
    };
    *out = RustBuffer::from_vec(bytes);
    code
}

/// Releases a buffer a fast-path call wrote (wiping it first: it may hold a plaintext).
#[unsafe(no_mangle)]
pub extern "C" fn gochat_e2ee_fast_free(buf: RustBuffer) {
    let mut v = buf.destroy_into_vec();
    zeroize::Zeroize::zeroize(&mut v);
}

/// `Device.encrypt(peer, plaintext)`.
#[unsafe(no_mangle)]
pub extern "C" fn gochat_e2ee_fast_encrypt(
    handle: u64,
    peer: ForeignBytes,
    plaintext: ForeignBytes,
    out: &mut RustBuffer,
) -> i8 {
    call(out, || {
        let (peer, plaintext) = (text(&peer)?, plaintext.as_slice().to_vec());
        with_device(handle, |d| d.encrypt(peer, plaintext))
    })
}

/// `Device.decrypt(peer, message)`: a serialized `DecryptResult`.
#[unsafe(no_mangle)]
pub extern "C" fn gochat_e2ee_fast_decrypt(
    handle: u64,
    peer: ForeignBytes,
    message: ForeignBytes,
    out: &mut RustBuffer,
) -> i8 {
    call(out, || {
        let (peer, message) = (text(&peer)?, message.as_slice().to_vec());
        let hint = message.len() + RECORD_SLACK;
        with_device(handle, |d| d.decrypt(peer, message).map(|r| record_vec(r, hint)))
    })
}

/// `Device.group_encrypt(group_id, plaintext, now)`: a serialized `GroupSentRecord`.
#[unsafe(no_mangle)]
pub extern "C" fn gochat_e2ee_fast_group_encrypt(
    handle: u64,
    group_id: ForeignBytes,
    plaintext: ForeignBytes,
    now: u64,
    out: &mut RustBuffer,
) -> i8 {
    call(out, || {
        let (group_id, plaintext) = (group_id.as_slice().to_vec(), plaintext.as_slice().to_vec());
        let hint = plaintext.len() + RECORD_SLACK;
        with_device(handle, |d| d.group_encrypt(group_id, plaintext, now).map(|r| record_vec(r, hint)))
    })
}

/// `Device.group_decrypt(sender, message)`: a serialized `GroupPlaintextRecord`.
#[unsafe(no_mangle)]
pub extern "C" fn gochat_e2ee_fast_group_decrypt(
    handle: u64,
    sender: ForeignBytes,
    message: ForeignBytes,
    out: &mut RustBuffer,
) -> i8 {
    call(out, || {
        let (sender, message) = (text(&sender)?, message.as_slice().to_vec());
        let hint = message.len() + RECORD_SLACK;
        with_device(handle, |d| d.group_decrypt(sender, message).map(|r| record_vec(r, hint)))
    })
}
