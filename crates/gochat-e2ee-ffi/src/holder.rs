//! What a binding `Device` holds, and the only two ways to reach it: a read guard
//! (`Device::lock`, shared access) and `Device::with` (an operation that changes state).
//!
//! Every change goes through `with`, so a store-backed device can run it as one
//! transaction and release its result (an encrypt's ciphertext) only after the commit.

use std::ops::Deref;
use std::sync::MutexGuard;

use gochat_e2ee as core;

use crate::{Device, Result};

/// The device state behind a binding `Device`.
#[derive(Debug)]
pub(crate) enum Holder {
    /// In memory only: the app persists it with `export`.
    Memory(core::Device),
}

impl Holder {
    fn device(&self) -> &core::Device {
        match self {
            Holder::Memory(d) => d,
        }
    }
}

/// Shared access to the device (no changes possible through it).
pub(crate) struct ReadGuard<'a>(MutexGuard<'a, Holder>);

impl Deref for ReadGuard<'_> {
    type Target = core::Device;
    fn deref(&self) -> &core::Device {
        self.0.device()
    }
}

impl Device {
    fn guard(&self) -> MutexGuard<'_, Holder> {
        // Every core call is failure-atomic, so state behind a poisoned lock is consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the device.
    pub(crate) fn lock(&self) -> ReadGuard<'_> {
        ReadGuard(self.guard())
    }

    /// Runs one operation that may change the device; its result is returned only once
    /// its effects are kept (for a store-backed device: committed).
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut core::Device) -> std::result::Result<T, core::Error>,
    ) -> Result<T> {
        match &mut *self.guard() {
            Holder::Memory(d) => Ok(f(d)?),
        }
    }
}
