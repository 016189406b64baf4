//! The JNI fast path for the hot calls (`docs/kotlin.md`, "Fast path"; `FastDevice.kt`).
//!
//! Why it exists: through uniffi's JNA path every Kotlin call allocates several JNA
//! `Structure`s (the call status, each `RustBuffer`), and each one is a `malloc` plus an
//! entry in JNA's global `ConcurrentHashMap` of live `Memory` plus a `Cleaner`
//! registration, reclaimed only by the garbage collector. JFR put 45 % of the JVM's
//! samples there; an encrypt + decrypt took 0.12–0.7 ms from Kotlin against 3–8 µs from
//! Rust (`docs/benchmarks.md`, "Kotlin crossing").
//!
//! What it is: the *same* Rust methods uniffi exports (`Device::encrypt`, `decrypt`,
//! `group_encrypt`, `group_decrypt`, `receive_control`, `next_bundle`, `initiate`,
//! `AttachmentEncryptor::update`, `AttachmentDecryptor::update`), behind `extern "system"` functions the JVM binds by
//! name. Nothing is re-implemented here: arguments arrive as byte arrays, the object is
//! the uniffi handle (lifted with uniffi's own `Lift`, borrowed, never consumed), and
//! results and errors are written with uniffi's own serializers (`Lower::write`,
//! `LowerError`), which the generated Kotlin converters read back. So the fast path
//! cannot disagree with the uniffi API on behaviour, records or errors; a change of
//! either side's signature fails the Kotlin compile (`FastDevice` overrides the generated
//! methods) or the JUnit suite (`FastPathTest`).
//!
//! Responses: a `byte[]` per call. On success it is the payload itself (the raw bytes
//! for `encrypt` and `nextBundle`, a uniffi-serialized record or enum otherwise). On a
//! protocol error the call returns `null` and keeps the uniffi-serialized `GoChatError`
//! for this thread, which `takeError` hands over (so the success path copies nothing
//! twice). A panic or a JNI failure throws `IllegalStateException` in the JVM; nothing
//! unwinds across the boundary.
//!
//! Safety contract (upheld by `FastDevice`): the handle is a live uniffi `Device`
//! handle, and the Kotlin object keeps it alive (its own call counter) for the whole call.
// The JVM finds these functions by their unmangled names: `no_mangle` is the only
// `unsafe` construct here (an exported symbol), and it is confined to this module.
#![allow(unsafe_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use jni::objects::{JByteArray, JClass};
use jni::sys::{jbyteArray, jlong};
use jni::JNIEnv;
use uniffi::LowerError;
use zeroize::Zeroizing;

use crate::fastpath::{record, with_object, RECORD_SLACK};
use crate::{AttachmentDecryptor, AttachmentEncryptor, Device, GoChatError, UniFfiTag};

thread_local! {
    /// The serialized error of this thread's last failed call, until `takeError`.
    static LAST_ERROR: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

fn with_device<T>(handle: jlong, f: impl FnOnce(&Device) -> T) -> Result<T, String> {
    with_object(handle as u64, f)
}

/// A call's outcome: a payload (wiped on drop), or a protocol error for `takeError`.
type Outcome = crate::Result<Zeroizing<Vec<u8>>>;

/// A raw payload.
fn raw(bytes: Vec<u8>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(bytes)
}

fn text(env: &JNIEnv<'_>, bytes: &JByteArray<'_>) -> Result<String, String> {
    String::from_utf8(env.convert_byte_array(bytes).map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

fn bytes(env: &JNIEnv<'_>, b: &JByteArray<'_>) -> Result<Vec<u8>, String> {
    env.convert_byte_array(b).map_err(|e| e.to_string())
}

/// Runs one call: a payload becomes a new Java `byte[]`; a protocol error is kept for
/// `takeError` and returns null; a panic or a JNI failure throws
/// `IllegalStateException` (returning null).
fn call<'l>(env: &mut JNIEnv<'l>, f: impl FnOnce(&mut JNIEnv<'l>) -> Result<Outcome, String>) -> jbyteArray {
    let outcome =
        catch_unwind(AssertUnwindSafe(|| f(env))).unwrap_or_else(|_| Err("panic in the GoChat JNI layer".to_owned()));
    let thrown = match outcome {
        Ok(Ok(payload)) => match env.byte_array_from_slice(&payload) {
            Ok(array) => return array.into_raw(),
            Err(e) => e.to_string(),
        },
        Ok(Err(e)) => {
            let error = <GoChatError as LowerError<UniFfiTag>>::lower_error(e).destroy_into_vec();
            LAST_ERROR.with(|l| *l.borrow_mut() = Some(error));
            return std::ptr::null_mut();
        }
        Err(message) => message,
    };
    let _ = env.throw_new("java/lang/IllegalStateException", thrown);
    std::ptr::null_mut()
}

/// `Device.encrypt(peer, plaintext)`: the message.
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_encrypt<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    peer: JByteArray<'l>,
    plaintext: JByteArray<'l>,
) -> jbyteArray {
    call(&mut env, |env| {
        let (peer, plaintext) = (text(env, &peer)?, bytes(env, &plaintext)?);
        with_device(handle, |d| d.encrypt(peer, plaintext).map(raw))
    })
}

/// `Device.decrypt(peer, message)`: a serialized `DecryptResult`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_decrypt<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    peer: JByteArray<'l>,
    message: JByteArray<'l>,
) -> jbyteArray {
    call(&mut env, |env| {
        let (peer, message) = (text(env, &peer)?, bytes(env, &message)?);
        let hint = message.len() + RECORD_SLACK;
        with_device(handle, |d| d.decrypt(peer, message).map(|r| record(r, hint)))
    })
}

/// `Device.groupEncrypt(groupId, plaintext, now)`: a serialized `GroupSentRecord`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_groupEncrypt<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    group_id: JByteArray<'l>,
    plaintext: JByteArray<'l>,
    now: jlong,
) -> jbyteArray {
    call(&mut env, |env| {
        let (group_id, plaintext) = (bytes(env, &group_id)?, bytes(env, &plaintext)?);
        let hint = plaintext.len() + RECORD_SLACK;
        with_device(handle, |d| d.group_encrypt(group_id, plaintext, now as u64).map(|r| record(r, hint)))
    })
}

/// `Device.groupDecrypt(sender, message)`: a serialized `GroupPlaintextRecord`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_groupDecrypt<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    sender: JByteArray<'l>,
    message: JByteArray<'l>,
) -> jbyteArray {
    call(&mut env, |env| {
        let (sender, message) = (text(env, &sender)?, bytes(env, &message)?);
        let hint = message.len() + RECORD_SLACK;
        with_device(handle, |d| d.group_decrypt(sender, message).map(|r| record(r, hint)))
    })
}

/// `Device.nextBundle()`: the bundle.
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_nextBundle<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jbyteArray {
    call(&mut env, |_| with_device(handle, |d| d.next_bundle().map(raw)))
}

/// `Device.initiate(peer, bundle)`: a serialized `IdentityEvent`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_initiate<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    peer: JByteArray<'l>,
    bundle: JByteArray<'l>,
) -> jbyteArray {
    call(&mut env, |env| {
        let (peer, bundle) = (text(env, &peer)?, bytes(env, &bundle)?);
        with_device(handle, |d| d.initiate(peer, bundle).map(|e| record(e, RECORD_SLACK)))
    })
}

/// `Device.receiveControl(peer, message)`: a serialized `ControlReceived`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_receiveControl<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    peer: JByteArray<'l>,
    message: JByteArray<'l>,
) -> jbyteArray {
    call(&mut env, |env| {
        let (peer, message) = (text(env, &peer)?, bytes(env, &message)?);
        with_device(handle, |d| d.receive_control(peer, message).map(|r| record(r, RECORD_SLACK)))
    })
}

/// `AttachmentEncryptor.update(plaintext)`: the ciphertext of the completed segments.
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_attachmentEncryptUpdate<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    plaintext: JByteArray<'l>,
) -> jbyteArray {
    call(&mut env, |env| {
        let plaintext = bytes(env, &plaintext)?;
        with_object(handle as u64, |e: &AttachmentEncryptor| e.update(plaintext).map(raw))
    })
}

/// `AttachmentDecryptor.update(ciphertext)`: the plaintext of the verified segments.
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_attachmentDecryptUpdate<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    ciphertext: JByteArray<'l>,
) -> jbyteArray {
    call(&mut env, |env| {
        let ciphertext = bytes(env, &ciphertext)?;
        with_object(handle as u64, |d: &AttachmentDecryptor| d.update(ciphertext).map(raw))
    })
}

/// The serialized `GoChatError` of this thread's last call that returned null without
/// throwing (taken: a second call returns null).
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_takeError<'l>(env: JNIEnv<'l>, _class: JClass<'l>) -> jbyteArray {
    match LAST_ERROR.with(|l| l.borrow_mut().take()) {
        Some(e) => env.byte_array_from_slice(&e).map(|a| a.into_raw()).unwrap_or(std::ptr::null_mut()),
        None => std::ptr::null_mut(),
    }
}

/// The bare crossing, for the benchmark: borrows the device and returns the library
/// version's length.
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_noop<'l>(
    _env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jlong {
    with_device(handle, |_| crate::library_version().len() as jlong).unwrap_or(-1)
}

/// The library version, to check at load time that the JNI functions and the uniffi
/// functions come from the same library build.
#[unsafe(no_mangle)]
pub extern "system" fn Java_gov_gochat_e2ee_GoChatJni_version<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jbyteArray {
    call(&mut env, |_| Ok(Ok(raw(crate::library_version().into_bytes()))))
}
