//! Store-backed devices: a `Device` whose state lives in an encrypted SQLite store
//! (`docs/store.md`). Every method of `Device` then commits its effects in one
//! transaction before it returns.

use std::sync::{Arc, Mutex};

use gochat_e2ee as core;
use gochat_e2ee::ErrorCode;
use gochat_e2ee_store::{
    Argon2Params, Durability, Passcode, PlatformKey, SqliteBackend, StoreError, StoredDevice, Unlock,
};

use crate::holder::Holder;
use crate::{rng, Device, GoChatError, Result};

/// What unlocks a store.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum StoreUnlock {
    /// A 32-byte key from the platform keystore (Android Keystore, iOS Keychain).
    PlatformKey {
        /// The key (32 bytes).
        key: Vec<u8>,
    },
    /// A user passcode, stretched with Argon2id.
    Passcode {
        /// The passcode (1 to 1024 bytes of UTF-8).
        passcode: String,
    },
}

/// The Argon2id cost of a passcode (`docs/store.md`): memory in KiB (8 MiB to 1 GiB),
/// iterations (1 to 16), lanes (1 to 8).
#[derive(Debug, Clone, Copy, uniffi::Record)]
pub struct PasscodeCost {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub lanes: u32,
}

/// The default passcode cost: 64 MiB, 3 iterations, 1 lane (about 0.5 s on a mid-range
/// phone).
#[uniffi::export]
pub fn default_passcode_cost() -> PasscodeCost {
    let p = Argon2Params::DEFAULT;
    PasscodeCost { memory_kib: p.memory_kib, iterations: p.iterations, lanes: p.lanes }
}

/// Wrong passcodes (or keys) counted in the store at `path` since its last successful
/// unlock; readable before unlocking.
#[uniffi::export]
pub fn store_failed_attempts(path: String) -> Result<u32> {
    let mut backend = SqliteBackend::open(&path, Durability::Full)?;
    Ok(StoredDevice::failed_attempts(&mut backend)?)
}

pub(crate) fn not_supported(detail: &str) -> GoChatError {
    GoChatError::from_code(ErrorCode::NotSupported, detail.to_owned(), false)
}

fn unlock_arg(u: StoreUnlock) -> Result<Unlock> {
    Ok(match u {
        StoreUnlock::PlatformKey { key } => Unlock::Key(PlatformKey::from_slice(&key).map_err(StoreError::from)?),
        StoreUnlock::Passcode { passcode } => {
            Unlock::Passcode(Passcode::from_text(&passcode).map_err(StoreError::from)?)
        }
    })
}

fn cost_arg(c: Option<PasscodeCost>) -> Argon2Params {
    c.map_or(Argon2Params::DEFAULT, |c| Argon2Params {
        memory_kib: c.memory_kib,
        iterations: c.iterations,
        lanes: c.lanes,
    })
}

fn backend(path: &str) -> Result<Box<SqliteBackend>> {
    Ok(Box::new(SqliteBackend::open(path, Durability::Full)?))
}

fn stored(s: StoredDevice) -> Arc<Device> {
    Arc::new(Device { inner: Mutex::new(Holder::Stored(Box::new(s))) })
}

#[uniffi::export]
impl Device {
    /// Creates a device (as `Device(userId, now)`) kept in a new encrypted store at `path`
    /// (SQLite, WAL, durable commits). Refused with `StoreExists` if a store is there.
    #[uniffi::constructor]
    pub fn create_stored(
        path: String,
        unlock: StoreUnlock,
        user_id: String,
        now: u64,
        cost: Option<PasscodeCost>,
    ) -> Result<Arc<Self>> {
        let device = core::Device::new(&user_id, now, &mut rng());
        Ok(stored(StoredDevice::create(backend(&path)?, &unlock_arg(unlock)?, cost_arg(cost), device, &mut rng())?))
    }

    /// Opens the store at `path`. A wrong key or passcode is `WrongKey` and is counted;
    /// at the attempt limit passcodes are refused with `AttemptLimitReached`; a moved
    /// device's store is `StoreRetired`. `min_generation` is the rollback anchor: the
    /// `store_generation` the app recorded outside the file (keystore, server); a store
    /// below it is an older copy put back and is refused with `StoreRolledBack`, nothing
    /// loaded. Omitted (null), no check is made.
    #[uniffi::constructor(default(min_generation = None))]
    pub fn open_stored(path: String, unlock: StoreUnlock, min_generation: Option<u64>) -> Result<Arc<Self>> {
        let (backend, unlock) = (backend(&path)?, unlock_arg(unlock)?);
        Ok(stored(StoredDevice::open_at_least(backend, &unlock, min_generation.unwrap_or(0))?))
    }

    /// Creates a store at `path` from a `move_out` container (opened with the transfer
    /// passcode). The device starts a new sender epoch.
    #[uniffi::constructor]
    pub fn import_stored(
        path: String,
        unlock: StoreUnlock,
        container: Vec<u8>,
        transfer_passcode: String,
        cost: Option<PasscodeCost>,
    ) -> Result<Arc<Self>> {
        let transfer = Passcode::from_text(&transfer_passcode).map_err(StoreError::from)?;
        let s = StoredDevice::import(
            backend(&path)?,
            &unlock_arg(unlock)?,
            cost_arg(cost),
            &container,
            &transfer,
            &mut rng(),
        )?;
        Ok(stored(s))
    }

    /// Whether this device is kept in a store.
    pub fn is_stored(&self) -> bool {
        self.with_holder(|h| Ok(matches!(h, Holder::Stored(_)))).unwrap_or(false)
    }

    /// Deletes the kept result of the message with `digest` (from `decrypt`,
    /// `group_decrypt` or `channel_receive`) once the app has handled it durably; whether
    /// one was kept. Always false in memory.
    pub fn ack(&self, digest: Vec<u8>) -> Result<bool> {
        let digest: [u8; 32] = digest
            .as_slice()
            .try_into()
            .map_err(|_| core::Error::from(core::wire::DecodeError::InvalidValue("digest")))?;
        self.with_holder(|h| match h {
            Holder::Memory(_) => Ok(false),
            Holder::Stored(s) => Ok(s.ack(&digest)?),
        })
    }

    /// Deletes the kept results of many messages in one transaction (one commit, as
    /// `decrypt_batch` decrypts a backlog in one); how many were kept. Always 0 in
    /// memory. A digest that is not 32 bytes is `Malformed` (nothing acknowledged).
    pub fn ack_batch(&self, digests: Vec<Vec<u8>>) -> Result<u32> {
        let digests = digests
            .iter()
            .map(|d| {
                <[u8; 32]>::try_from(d.as_slice())
                    .map_err(|_| core::Error::from(core::wire::DecodeError::InvalidValue("digest")).into())
            })
            .collect::<Result<Vec<[u8; 32]>>>()?;
        self.with_holder(|h| match h {
            Holder::Memory(_) => Ok(0),
            Holder::Stored(s) => Ok(s.ack_many(&digests)?),
        })
    }

    /// Re-wraps the store's data key under `new` (unlocked with `old`, counted if wrong);
    /// no record is re-encrypted.
    pub fn change_passcode(&self, old: StoreUnlock, new: StoreUnlock, cost: Option<PasscodeCost>) -> Result<()> {
        let (old, new) = (unlock_arg(old)?, unlock_arg(new)?);
        self.with_holder(|h| match h {
            Holder::Memory(_) => Err(not_supported("an in-memory device has no passcode")),
            Holder::Stored(s) => Ok(s.change_passcode(&old, &new, cost_arg(cost), &mut rng())?),
        })
    }

    /// Sets how many wrong passcodes the store tolerates before `AttemptLimitReached`.
    pub fn set_attempt_limit(&self, limit: u32) -> Result<()> {
        self.with_holder(|h| match h {
            Holder::Memory(_) => Err(not_supported("an in-memory device has no store")),
            Holder::Stored(s) => Ok(s.set_attempt_limit(limit)?),
        })
    }

    /// Moves the device to a new installation: the whole device encrypted under
    /// `transfer_passcode` (for `import_stored`), and this store retired in the same
    /// transaction (every later call on it is `StoreRetired`), so live ratchet state
    /// never runs in two places. Refused with `InboxNotEmpty` (nothing written, the store
    /// stays live) while any decrypted result waits for `ack`: acknowledge them first.
    pub fn move_out(&self, transfer_passcode: String, cost: Option<PasscodeCost>) -> Result<Vec<u8>> {
        let transfer = Passcode::from_text(&transfer_passcode).map_err(StoreError::from)?;
        self.with_holder(|h| match h {
            Holder::Memory(_) => Err(not_supported("an in-memory device moves with export")),
            Holder::Stored(s) => Ok(s.export(&transfer, cost_arg(cost), &mut rng())?),
        })
    }

    /// The store generation: it grows by one with every committed operation and never
    /// decreases. Record it somewhere an attacker cannot roll back (the keystore, your
    /// server) and pass it to `open_stored` to detect a store file put back from a
    /// backup. `NotSupported` in memory.
    pub fn store_generation(&self) -> Result<u64> {
        self.with_holder(|h| match h {
            Holder::Memory(_) => Err(not_supported("an in-memory device has no store")),
            Holder::Stored(s) => Ok(s.generation()),
        })
    }

    /// Applies what other handles of the store (another process, the notification
    /// extension) committed, now; every operation also does this first.
    pub fn sync_store(&self) -> Result<()> {
        self.with_holder(|h| match h {
            Holder::Memory(_) => Ok(()),
            Holder::Stored(s) => Ok(s.sync_now()?),
        })
    }
}
