//! What a JS `Device` holds, and the only two ways to reach it: [`Device::dev`] (shared
//! access, for reads) and [`Device::with`] (an operation that changes state).
//!
//! Every change goes through `with`, so a store-backed device runs it as one
//! `StoredDevice::transact` (one transaction in the store's journal) and releases its
//! result (an encrypt's ciphertext) only after that commit. The JS layer (`store.js`)
//! then writes the drained journal to IndexedDB and resolves only after `complete`.

use gochat_e2ee as core;
use gochat_e2ee_store::StoredDevice;

use crate::store::device_error;
use crate::{js_error, rng, Device, JsResult};

/// The device state behind a JS `Device`.
// One holder per JS `Device`: the size difference of the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Holder {
    /// In memory only: the app persists it with `export`.
    Memory(core::Device),
    /// In an IndexedDB store: every change is one committed transaction.
    Stored(Box<StoredDevice>),
}

impl Device {
    /// Reads the device (for a stored device: as of this handle's last operation).
    pub(crate) fn dev(&self) -> &core::Device {
        match &self.inner {
            Holder::Memory(d) => d,
            Holder::Stored(s) => s.device(),
        }
    }

    /// Runs one operation that may change the device; its result is returned only once
    /// its effects are kept (for a stored device: committed into the journal). A refused
    /// operation changes nothing and writes nothing.
    pub(crate) fn with<T>(&mut self, f: impl FnOnce(&mut core::Device) -> Result<T, core::Error>) -> JsResult<T> {
        match &mut self.inner {
            Holder::Memory(d) => f(d).map_err(js_error),
            Holder::Stored(s) => s.transact(&mut rng(), |d, _| f(d)).map_err(device_error),
        }
    }
}
