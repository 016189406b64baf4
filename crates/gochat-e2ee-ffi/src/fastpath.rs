//! What the two hand-written fast paths share (`jni.rs` for Kotlin, `cabi.rs` for
//! Python): borrowing the object behind a uniffi handle, and writing a result in uniffi's
//! own serialization (which the generated converters read back).

use std::mem::ManuallyDrop;
use std::sync::Arc;

use uniffi::{Lift, Lower};
use zeroize::Zeroizing;

use crate::UniFfiTag;

/// Room for a record's fixed fields beside its variable-length bytes.
pub(crate) const RECORD_SLACK: usize = 512;

/// Runs `f` on the object behind a uniffi handle without taking the reference the handle
/// stands for (the foreign object still owns it; it keeps the handle alive for the call).
pub(crate) fn with_object<O, T>(handle: u64, f: impl FnOnce(&O) -> T) -> Result<T, String>
where
    Arc<O>: Lift<UniFfiTag, FfiType = uniffi::ffi::Handle>,
{
    let handle = uniffi::ffi::Handle::from_raw_unchecked(handle);
    let object = <Arc<O> as Lift<UniFfiTag>>::try_lift(handle).map_err(|e| e.to_string())?;
    let object = ManuallyDrop::new(object);
    Ok(f(&object))
}

/// A uniffi-serialized value, in a buffer sized up front (so the plaintext a record may
/// hold is never left behind by a reallocation) and wiped on drop.
pub(crate) fn record<T: Lower<UniFfiTag>>(value: T, hint: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(hint));
    T::write(value, &mut out);
    out
}
