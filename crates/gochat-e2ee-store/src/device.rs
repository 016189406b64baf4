//! [`StoredDevice`]: a [`Device`] whose every operation is one store transaction.
//!
//! - **All or nothing.** An operation runs under the store's write lock; its change set
//!   (`Device::take_changes`: every record it may have changed) is sealed and written in
//!   the same transaction as the new generation, or nothing is. A refused operation
//!   writes nothing (the core is failure-atomic).
//! - **Persist before send.** The operation's result (an encrypt's ciphertext, a
//!   decrypt's plaintext) is returned only after the commit, so no message key is ever
//!   released by a ratchet step that a crash could undo.
//! - **One writer, every handle in step.** Before it runs anything, a handle compares the
//!   store's generation with its own and applies the rows other handles (threads,
//!   processes: the iOS notification extension beside the app) committed since. Two
//!   handles never run an operation on the same state, so a session never forks.
//! - **The decrypt result is part of the transaction** ([`StoredDevice::decrypt`],
//!   [`StoredDevice::group_decrypt`], [`StoredDevice::channel_receive`]): the result
//!   waits in an inbox, sealed like every record, until the app calls
//!   [`StoredDevice::ack`]; the same message delivered again (after a crash) returns the
//!   same result instead of `Duplicate` / `StaleSequence`, and advances nothing.
//!
//! Row plaintext (what the record cipher seals) = `u32 BE key length || RecordKey ||
//! record`. Store-private record kinds start at 0x80: `0x80 || digest (32)` is an inbox
//! entry ([`crate::inbox`]; `docs/protocol.md` §16).

use std::collections::HashMap;

use gochat_e2ee::channel::{ChannelId, Received as ChannelReceived};
use gochat_e2ee::group::GroupPlaintext;
use gochat_e2ee::records::RecordKey;
use gochat_e2ee::{Decrypted, Device, SnapshotKey};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::backend::{Backend, StoreError};
use crate::inbox::{channel_digest, direct_digest, group_digest, inbox_key, InboxEntry};
use crate::vault::{Argon2Params, DataKey, Keyslot, Passcode, RecordCipher, StoreId, Unlock, VaultError};

/// At most this many decrypted results wait for [`StoredDevice::ack`]; a decrypt beyond
/// it is refused (`InboxFull`) before anything is processed. Only messages that
/// decrypted enter the inbox, so a server cannot fill it with forgeries.
pub const MAX_INBOX: u32 = 1_000;
/// Wrong passcodes tolerated before [`StoreError::AttemptLimitReached`] (the default of
/// [`StoredDevice::set_attempt_limit`]).
pub const DEFAULT_ATTEMPT_LIMIT: u32 = 10;
pub use crate::export::{EXPORT_TYPE, EXPORT_VERSION};
pub use crate::inbox::INBOX_KIND;

/// Meta names (the `meta` table; `docs/store.md`).
mod meta {
    pub const STORE_ID: &str = "store_id";
    pub const KEYSLOT: &str = "keyslot";
    pub const GENERATION: &str = "generation";
    pub const FAILED_ATTEMPTS: &str = "failed_attempts";
    pub const ATTEMPT_LIMIT: &str = "attempt_limit";
    pub const RETIRED: &str = "retired";
    pub const INBOX: &str = "inbox_count";
}

/// Most messages one batch call takes (`StoredDevice::decrypt_batch`, and the bindings'
/// `decrypt_batch` on any device): it bounds the work and the result of one call.
pub const MAX_BATCH_MESSAGES: usize = 1_000;

/// Refuses a batch over [`MAX_BATCH_MESSAGES`] (`TooLarge`, before any work).
pub fn check_batch_len(len: usize) -> Result<(), StoreError> {
    if len > MAX_BATCH_MESSAGES {
        let e = gochat_e2ee::wire::DecodeError::TooLarge { len, max: MAX_BATCH_MESSAGES };
        return Err(StoreError::Protocol(e.into()));
    }
    Ok(())
}

/// A decrypted message as the store kept it.
#[must_use = "the identity event must be checked, and the message acknowledged once handled"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Plaintext, sender identity and identity event (the event is kept with the result,
    /// so a redelivery reports it again).
    pub decrypted: Decrypted,
    /// The message digest: pass it to [`StoredDevice::ack`] once the app has handled it.
    pub digest: [u8; 32],
    /// True if this result was decrypted before (and not yet acknowledged): the app may
    /// have handled it already, and must deduplicate by `digest`.
    pub redelivered: bool,
}

/// A decrypted group message as the store kept it (see [`Received`]).
#[must_use = "the message must be acknowledged once handled"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReceived {
    /// Plaintext, sender name and identity, sender key generation and iteration.
    pub plaintext: GroupPlaintext,
    /// The message's inbox digest ([`crate::inbox::group_digest`]): pass it to
    /// [`StoredDevice::ack`] once the app has handled it.
    pub digest: [u8; 32],
    /// True if this result was decrypted before (and not yet acknowledged).
    pub redelivered: bool,
}

/// An accepted channel post as the store kept it (see [`Received`]).
#[must_use = "the post must be acknowledged once handled"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPost {
    /// The channel the post names.
    pub channel_id: ChannelId,
    /// The announcement or key rotation.
    pub received: ChannelReceived,
    /// The post's inbox digest ([`crate::inbox::channel_digest`]): pass it to
    /// [`StoredDevice::ack`] once the app has handled it.
    pub digest: [u8; 32],
    /// True if this result was accepted before (and not yet acknowledged).
    pub redelivered: bool,
}

/// A device kept in a store. See the module documentation.
pub struct StoredDevice {
    device: Device,
    backend: Box<dyn Backend>,
    cipher: RecordCipher,
    /// The store generation this handle's device reflects.
    generation: u64,
    /// Key hash to record key, for every record this handle knows (to apply another
    /// handle's deletions, which carry only the hash).
    keys: HashMap<[u8; 32], RecordKey>,
    /// The in-memory device may differ from the store (a commit failed): reload all
    /// before the next operation.
    stale: bool,
}

impl core::fmt::Debug for StoredDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StoredDevice").field("generation", &self.generation).finish_non_exhaustive()
    }
}

fn meta_bytes<const N: usize>(b: Vec<u8>) -> Result<[u8; N], StoreError> {
    b.as_slice().try_into().map_err(|_| StoreError::Corrupt("meta integer".into()))
}

fn u64_meta(v: Option<Vec<u8>>) -> Result<u64, StoreError> {
    v.map_or(Ok(0), |b| meta_bytes(b).map(u64::from_be_bytes))
}

fn u32_meta(v: Option<Vec<u8>>, default: u32) -> Result<u32, StoreError> {
    v.map_or(Ok(default), |b| meta_bytes(b).map(u32::from_be_bytes))
}

/// `u32 BE length || key || value`, in a buffer sized exactly and wiped on drop.
fn row_plaintext(key: &[u8], value: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(4 + key.len() + value.len()));
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// Splits a row plaintext into key bytes and value, checking the key hashes to `hash`.
fn split_row<'a>(cipher: &RecordCipher, hash: &[u8; 32], plain: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), StoreError> {
    let corrupt = || StoreError::Corrupt("row framing".into());
    let (len, rest) = plain.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(corrupt());
    }
    let (key, value) = rest.split_at(len);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&cipher.key_hash(key)[..], &hash[..])) {
        return Err(StoreError::Corrupt("row filed under another key".into()));
    }
    Ok((key, value))
}

/// Reads and opens every row: the device from its records, and the key of each (inbox
/// entries are skipped: they are read by key when needed).
fn load_all(
    backend: &mut dyn Backend,
    cipher: &RecordCipher,
) -> Result<(Device, HashMap<[u8; 32], RecordKey>), StoreError> {
    let mut records = Vec::new();
    let mut keys = HashMap::new();
    for (hash, value) in backend.all()? {
        if let Some((key, record)) = open_device_row(cipher, &hash, &value)? {
            keys.insert(hash, key.clone());
            records.push((key, record));
        }
    }
    Ok((Device::from_records(records)?, keys))
}

/// One of the device's records: its key and its bytes.
type DeviceRow = (RecordKey, Zeroizing<Vec<u8>>);

/// Opens a row of the device's records: its key and record, or `None` for a
/// store-private row (the inbox), which is read by key when needed.
fn open_device_row(cipher: &RecordCipher, hash: &[u8; 32], value: &[u8]) -> Result<Option<DeviceRow>, StoreError> {
    let plain = cipher.open(hash, value)?;
    let (key, record) = split_row(cipher, hash, &plain)?;
    if key.first().is_some_and(|k| *k >= INBOX_KIND) {
        return Ok(None);
    }
    let key = RecordKey::decode(key).map_err(|_| StoreError::Corrupt("record key".into()))?;
    Ok(Some((key, Zeroizing::new(record.to_vec()))))
}

impl StoredDevice {
    /// Puts `device` into a new store in `backend`, protected by `unlock` (`params` set
    /// the Argon2id cost of a passcode). Refused (`AlreadyExists`, nothing written) if the
    /// backend already holds a store. A fresh random data key encrypts every record; the
    /// keyslot wraps it.
    pub fn create<R: CryptoRng + ?Sized>(
        mut backend: Box<dyn Backend>,
        unlock: &Unlock,
        params: Argon2Params,
        mut device: Device,
        rng: &mut R,
    ) -> Result<StoredDevice, StoreError> {
        let data_key = DataKey::generate(rng);
        let store_id = StoreId::generate(rng);
        let keyslot = Keyslot::wrap(&data_key, unlock, params, store_id, rng)?;
        let cipher = RecordCipher::new(&data_key, store_id)?;
        backend.begin()?;
        let result = (|| {
            if backend.get_meta(meta::KEYSLOT)?.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            backend.put_meta(meta::STORE_ID, store_id.as_bytes())?;
            backend.put_meta(meta::KEYSLOT, &keyslot.encode())?;
            backend.put_meta(meta::FAILED_ATTEMPTS, &0u32.to_be_bytes())?;
            backend.put_meta(meta::ATTEMPT_LIMIT, &DEFAULT_ATTEMPT_LIMIT.to_be_bytes())?;
            backend.put_meta(meta::INBOX, &0u32.to_be_bytes())?;
            backend.put_meta(meta::GENERATION, &1u64.to_be_bytes())?;
            let _ = device.take_changes();
            let mut keys = HashMap::new();
            for (key, value) in device.records() {
                let k = key.encode();
                let hash = cipher.key_hash(&k);
                backend.put(&hash, Some(&cipher.seal(&hash, &row_plaintext(&k, &value), rng)?), 1)?;
                keys.insert(hash, key);
            }
            backend.commit()?;
            Ok(keys)
        })();
        match result {
            Ok(keys) => Ok(StoredDevice { device, backend, cipher, generation: 1, keys, stale: false }),
            Err(e) => {
                let _ = backend.rollback();
                Err(e)
            }
        }
    }

    /// Opens the store in `backend` with `unlock`. A wrong key or passcode is `WrongKey`
    /// (and the store's failed-attempt counter is incremented and committed, whatever
    /// happens next); once the counter reaches the attempt limit, passcode attempts are
    /// refused with `AttemptLimitReached` before any hashing. A retired store is
    /// `Retired`. Loads every record (a record that does not open is `StoreCorrupt`).
    pub fn open(backend: Box<dyn Backend>, unlock: &Unlock) -> Result<StoredDevice, StoreError> {
        Self::open_at_least(backend, unlock, 0)
    }

    /// Opens the store as [`StoredDevice::open`] does, and refuses it
    /// (`RolledBack`, nothing loaded or written) if its generation is below
    /// `min_generation`: the rollback anchor. The store cannot tell on its own that a
    /// consistent older copy of its file was put back (a backup, a disk or VM snapshot);
    /// an app that records [`StoredDevice::generation`] somewhere the attacker cannot
    /// roll back (the platform keystore, its server) and passes it here can. See
    /// `docs/store.md`, "Rollback".
    pub fn open_at_least(
        mut backend: Box<dyn Backend>,
        unlock: &Unlock,
        min_generation: u64,
    ) -> Result<StoredDevice, StoreError> {
        backend.begin()?;
        let result = Self::unlock(&mut *backend, unlock);
        let cipher = match result {
            Ok(c) => c,
            Err((e, count)) => {
                let committed = if count { backend.commit() } else { backend.rollback() };
                if let (Err(c), true) = (committed, count) {
                    return Err(c);
                }
                return Err(e);
            }
        };
        let loaded = (|| {
            if backend.get_meta(meta::RETIRED)?.is_some() {
                return Err(StoreError::Retired);
            }
            let generation = u64_meta(backend.get_meta(meta::GENERATION)?)?;
            if generation < min_generation {
                return Err(StoreError::RolledBack { found: generation, expected: min_generation });
            }
            let (device, keys) = load_all(&mut *backend, &cipher)?;
            Ok((generation, device, keys))
        })();
        let done = match &loaded {
            Ok(_) => backend.commit(),
            Err(_) => backend.rollback(),
        };
        let (generation, device, keys) = loaded?;
        done?;
        Ok(StoredDevice { device, backend, cipher, generation, keys, stale: false })
    }

    /// Inside a transaction: checks the attempt counter, unwraps the data key, counts a
    /// failure (`(error, true)`: commit the count) or resets the counter.
    fn unlock(backend: &mut dyn Backend, unlock: &Unlock) -> Result<RecordCipher, (StoreError, bool)> {
        let plain = |e: StoreError| (e, false);
        let slot = backend.get_meta(meta::KEYSLOT).map_err(plain)?.ok_or((StoreError::NoStore, false))?;
        let keyslot = Keyslot::decode(&slot).map_err(|e| plain(e.into()))?;
        let failures = u32_meta(backend.get_meta(meta::FAILED_ATTEMPTS).map_err(plain)?, 0).map_err(plain)?;
        let limit =
            u32_meta(backend.get_meta(meta::ATTEMPT_LIMIT).map_err(plain)?, DEFAULT_ATTEMPT_LIMIT).map_err(plain)?;
        if matches!(unlock, Unlock::Passcode(_)) && failures >= limit {
            return Err((StoreError::AttemptLimitReached { failures }, false));
        }
        let data_key = match keyslot.unwrap(unlock) {
            Ok(k) => k,
            Err(VaultError::WrongKey) => {
                let failures = failures.saturating_add(1);
                backend.put_meta(meta::FAILED_ATTEMPTS, &failures.to_be_bytes()).map_err(plain)?;
                let e = if matches!(unlock, Unlock::Passcode(_)) && failures >= limit {
                    StoreError::AttemptLimitReached { failures }
                } else {
                    StoreError::Vault(VaultError::WrongKey)
                };
                return Err((e, true));
            }
            Err(e) => return Err(plain(e.into())),
        };
        if failures != 0 {
            backend.put_meta(meta::FAILED_ATTEMPTS, &0u32.to_be_bytes()).map_err(plain)?;
        }
        RecordCipher::new(&data_key, keyslot.store_id()).map_err(|e| plain(e.into()))
    }

    /// Wrong passcodes (or keys) counted since the last successful unlock; readable
    /// before unlocking, so the app can warn before the limit.
    pub fn failed_attempts(backend: &mut dyn Backend) -> Result<u32, StoreError> {
        u32_meta(backend.get_meta(meta::FAILED_ATTEMPTS)?, 0)
    }

    /// Sets how many wrong passcodes are tolerated (at least 1).
    pub fn set_attempt_limit(&mut self, limit: u32) -> Result<(), StoreError> {
        self.begin_synced()?;
        let r = self.backend.put_meta(meta::ATTEMPT_LIMIT, &limit.max(1).to_be_bytes());
        self.finish(r)
    }

    /// Commits on `Ok`, rolls back on `Err`.
    fn finish<T>(&mut self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        match r {
            Ok(t) => {
                self.backend.commit()?;
                Ok(t)
            }
            Err(e) => {
                let _ = self.backend.rollback();
                Err(e)
            }
        }
    }

    /// The device, as of this handle's last operation (another handle's later commits
    /// are applied at the start of this handle's next operation or [`StoredDevice::sync_now`]).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The store generation this handle's device reflects: the number of the last write
    /// transaction it committed or applied. It grows by one with every committed
    /// operation and never decreases, so it is the value to record as a rollback anchor
    /// (see [`StoredDevice::open_at_least`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    // --- for hosts that store the journal themselves (the web's IndexedDB) ---------

    /// The host failed to store this handle's last commits and has put the disk's rows
    /// back under the backend (`JournalBackend::replace_with`): every record is reloaded
    /// at the start of the next operation, so state the disk never got is never used.
    /// `stored_generation` is this handle's [`StoredDevice::generation`] as of the last
    /// commit the host did store: the generation falls back to it (not lower), so a disk
    /// below it is still refused as rolled back (`RolledBack`).
    pub fn reload_before_next(&mut self, stored_generation: u64) {
        self.generation = self.generation.min(stored_generation);
        self.stale = true;
    }

    /// Applies what other handles committed, now.
    pub fn sync_now(&mut self) -> Result<(), StoreError> {
        self.begin_synced()?;
        self.finish(Ok(()))
    }

    /// Begins a transaction and brings the device up to the store's generation.
    fn begin_synced(&mut self) -> Result<(), StoreError> {
        self.backend.begin()?;
        match self.sync() {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = self.backend.rollback();
                Err(e)
            }
        }
    }

    /// Inside a transaction: refuses a retired store, and applies the rows written since
    /// this handle's generation (or reloads everything if the handle is stale).
    fn sync(&mut self) -> Result<(), StoreError> {
        if self.backend.get_meta(meta::RETIRED)?.is_some() {
            return Err(StoreError::Retired);
        }
        let generation = u64_meta(self.backend.get_meta(meta::GENERATION)?)?;
        if generation < self.generation {
            // Generations only grow: the file was replaced by an older copy while this
            // handle was open. Refuse rather than run (and re-send) from old state.
            return Err(StoreError::RolledBack { found: generation, expected: self.generation });
        }
        if self.stale {
            let (device, keys) = load_all(&mut *self.backend, &self.cipher)?;
            self.device = device;
            self.keys = keys;
            self.stale = false;
        } else if generation != self.generation {
            for (hash, value) in self.backend.changed_since(self.generation)? {
                let applied = match value {
                    Some(value) => {
                        let Some((key, record)) = open_device_row(&self.cipher, &hash, &value)? else { continue };
                        let r = self.device.apply_record(&key, Some(&record));
                        self.keys.insert(hash, key);
                        r
                    }
                    None => match self.keys.get(&hash) {
                        Some(key) => self.device.apply_record(key, None),
                        None => Ok(()),
                    },
                };
                if let Err(e) = applied {
                    self.stale = true;
                    return Err(e.into());
                }
            }
        }
        self.generation = generation;
        Ok(())
    }

    /// Inside a transaction: seals and writes the device's change set and `extra` rows,
    /// bumps the generation and commits. On any failure the transaction is rolled back
    /// and the handle reloads everything before its next operation.
    fn commit_changes<R: CryptoRng + ?Sized>(
        &mut self,
        extra: &[([u8; 32], Option<Vec<u8>>)],
        rng: &mut R,
    ) -> Result<(), StoreError> {
        let generation = self.generation + 1;
        let changes = self.device.take_changes();
        let result = (|| {
            for key in changes {
                let k = key.encode();
                let hash = self.cipher.key_hash(&k);
                match self.device.encode_record(&key) {
                    Some(value) => {
                        let sealed = self.cipher.seal(&hash, &row_plaintext(&k, &value), rng)?;
                        self.backend.put(&hash, Some(&sealed), generation)?;
                    }
                    None => self.backend.put(&hash, None, generation)?,
                }
                self.keys.insert(hash, key);
            }
            for (hash, value) in extra {
                self.backend.put(hash, value.as_deref(), generation)?;
            }
            self.backend.put_meta(meta::GENERATION, &generation.to_be_bytes())?;
            self.backend.commit()
        })();
        match result {
            Ok(()) => {
                self.generation = generation;
                Ok(())
            }
            Err(e) => {
                let _ = self.backend.rollback();
                self.stale = true;
                Err(e)
            }
        }
    }

    /// Runs one operation on the device as one transaction: `f`'s effects are committed
    /// with it, and its result is returned only after the commit. If `f` fails nothing
    /// is written (`Protocol(e)`); if the commit fails the result is dropped, never
    /// returned, and the handle reloads from the store before its next operation.
    pub fn transact<T, R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        f: impl FnOnce(&mut Device, &mut R) -> Result<T, gochat_e2ee::Error>,
    ) -> Result<T, StoreError> {
        self.begin_synced()?;
        match f(&mut self.device, rng) {
            Ok(t) => {
                self.commit_changes(&[], rng)?;
                Ok(t)
            }
            Err(e) => {
                let _ = self.device.take_changes();
                let _ = self.backend.rollback();
                Err(StoreError::Protocol(e))
            }
        }
    }

    /// Decrypts a 1:1 message from `peer` and keeps the result in the inbox, in the same
    /// transaction as the ratchet step (see the module documentation). A message whose
    /// result is still in the inbox returns it again (`redelivered: true`) and touches no
    /// session. Refused with `InboxFull` (nothing processed) once [`MAX_INBOX`] results
    /// wait for `ack`.
    pub fn decrypt<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        message: &[u8],
        rng: &mut R,
    ) -> Result<Received, StoreError> {
        let digest = direct_digest(message);
        let (entry, redelivered) = self.receive(&digest, rng, |d, rng| {
            let decrypted = d.decrypt(peer, message, rng)?;
            Ok(InboxEntry::Direct { peer: peer.to_owned(), decrypted })
        })?;
        match entry {
            InboxEntry::Direct { decrypted, .. } => Ok(Received { decrypted, digest, redelivered }),
            _ => Err(StoreError::Corrupt("inbox entry of another kind".into())),
        }
    }

    /// Decrypts a group message from member `sender` ([`Device::group_decrypt`]) and
    /// keeps the result in the inbox, in the same transaction as the chain step, under
    /// [`crate::inbox::group_digest`]. The same message delivered again before `ack`
    /// returns the same result (`redelivered: true`) and advances nothing. Refused with
    /// `InboxFull` (nothing processed) once [`MAX_INBOX`] results wait; a message the
    /// group refuses writes nothing.
    pub fn group_decrypt<R: CryptoRng + ?Sized>(
        &mut self,
        sender: &str,
        message: &[u8],
        rng: &mut R,
    ) -> Result<GroupReceived, StoreError> {
        let digest = group_digest(message);
        let (entry, redelivered) =
            self.receive(&digest, rng, |d, _| Ok(InboxEntry::Group(d.group_decrypt(sender, message)?)))?;
        match entry {
            InboxEntry::Group(plaintext) => Ok(GroupReceived { plaintext, digest, redelivered }),
            _ => Err(StoreError::Corrupt("inbox entry of another kind".into())),
        }
    }

    /// Receives a channel post ([`Device::channel_receive`], checked against `now`) and
    /// keeps the result in the inbox, in the same transaction as the sequence and chain
    /// step, under [`crate::inbox::channel_digest`]. The same post delivered again
    /// before `ack` returns the same result (`redelivered: true`, not `StaleSequence`)
    /// and advances nothing. Refused with `InboxFull` (nothing processed) once
    /// [`MAX_INBOX`] results wait; a post the subscription refuses writes nothing.
    pub fn channel_receive<R: CryptoRng + ?Sized>(
        &mut self,
        post: &[u8],
        now: u64,
        rng: &mut R,
    ) -> Result<ChannelPost, StoreError> {
        let digest = channel_digest(post);
        let (entry, redelivered) = self.receive(&digest, rng, |d, _| {
            let received = d.channel_receive(post, now)?;
            let channel_id = match &received {
                ChannelReceived::Announcement(a) => a.channel_id,
                ChannelReceived::KeyRotated { .. } => post_channel_id(post)?,
            };
            Ok(InboxEntry::Channel { channel_id, received })
        })?;
        match entry {
            InboxEntry::Channel { channel_id, received } => {
                Ok(ChannelPost { channel_id, received, digest, redelivered })
            }
            _ => Err(StoreError::Corrupt("inbox entry of another kind".into())),
        }
    }

    /// The inbox transaction shared by every receive: returns the held entry for
    /// `digest` (redelivered), or checks the bound, runs `process` and commits its
    /// change set with the new entry. A refusal by `process` writes nothing.
    fn receive<R: CryptoRng + ?Sized>(
        &mut self,
        digest: &[u8; 32],
        rng: &mut R,
        process: impl FnOnce(&mut Device, &mut R) -> Result<InboxEntry, gochat_e2ee::Error>,
    ) -> Result<(InboxEntry, bool), StoreError> {
        let key = inbox_key(digest);
        let hash = self.cipher.key_hash(&key);
        self.begin_synced()?;
        let held = match self.backend.get(&hash) {
            Ok(h) => h,
            Err(e) => return self.finish(Err(e)),
        };
        if let Some(sealed) = held {
            let r = self.open_inbox_row(&hash, &sealed);
            let entry = self.finish(r)?;
            return Ok((entry, true));
        }
        let count = match self.backend.get_meta(meta::INBOX).and_then(|v| u32_meta(v, 0)) {
            Ok(c) => c,
            Err(e) => return self.finish(Err(e)),
        };
        if count >= MAX_INBOX {
            return self.finish(Err(StoreError::InboxFull));
        }
        let entry = match process(&mut self.device, rng) {
            Ok(e) => e,
            Err(e) => {
                let _ = self.device.take_changes();
                let _ = self.backend.rollback();
                return Err(StoreError::Protocol(e));
            }
        };
        let sealed = self.cipher.seal(&hash, &row_plaintext(&key, &entry.encode()), rng);
        let written = sealed
            .map_err(StoreError::from)
            .and_then(|sealed| self.backend.put_meta(meta::INBOX, &(count + 1).to_be_bytes()).map(|()| sealed));
        match written {
            Ok(sealed) => self.commit_changes(&[(hash, Some(sealed))], rng)?,
            Err(e) => {
                let _ = self.device.take_changes();
                let _ = self.backend.rollback();
                self.stale = true;
                return Err(e);
            }
        }
        Ok((entry, false))
    }

    /// Decrypts a backlog of 1:1 messages (`(peer, message)` pairs) in **one**
    /// transaction: every message as [`StoredDevice::decrypt`] would (a result kept in
    /// the inbox, redelivered until `ack`; a refused message changes nothing and does
    /// not stop the others; `InboxFull` for the messages beyond [`MAX_INBOX`]), with one
    /// commit (one fsync under `Durability::Full`) for the whole batch. The results are
    /// released only after that commit: if it fails, none is returned (`Err`), nothing
    /// of the batch was kept, and the handle reloads before its next operation. A
    /// message that appears twice in the batch is processed once; its second result is
    /// the first one, `redelivered`. More than [`MAX_BATCH_MESSAGES`] is refused whole
    /// (`TooLarge`, nothing done).
    pub fn decrypt_batch<R: CryptoRng + ?Sized>(
        &mut self,
        messages: &[(&str, &[u8])],
        rng: &mut R,
    ) -> Result<Vec<Result<Received, StoreError>>, StoreError> {
        check_batch_len(messages.len())?;
        self.begin_synced()?;
        let staged = self.stage_batch(messages, rng);
        let (out, rows, count, before) = match staged {
            Ok(s) => s,
            Err(e) => {
                // Decrypts may have advanced the in-memory device: reload it.
                let _ = self.device.take_changes();
                let _ = self.backend.rollback();
                self.stale = true;
                return Err(e);
            }
        };
        if count != before {
            if let Err(e) = self.backend.put_meta(meta::INBOX, &count.to_be_bytes()) {
                let _ = self.device.take_changes();
                let _ = self.backend.rollback();
                self.stale = true;
                return Err(e);
            }
        }
        self.commit_changes(&rows, rng)?;
        Ok(out)
    }

    /// Inside a batch's transaction: every message's outcome, the inbox rows to write,
    /// and the inbox count after and before.
    #[allow(clippy::type_complexity)]
    fn stage_batch<R: CryptoRng + ?Sized>(
        &mut self,
        messages: &[(&str, &[u8])],
        rng: &mut R,
    ) -> Result<(Vec<Result<Received, StoreError>>, Vec<([u8; 32], Option<Vec<u8>>)>, u32, u32), StoreError> {
        let before = u32_meta(self.backend.get_meta(meta::INBOX)?, 0)?;
        let mut count = before;
        let mut out: Vec<Result<Received, StoreError>> = Vec::with_capacity(messages.len());
        let mut rows = Vec::new();
        let mut first: HashMap<[u8; 32], usize> = HashMap::new();
        for (peer, message) in messages {
            let digest = direct_digest(message);
            // A message decrypted earlier in this batch: its result again (one that was
            // refused is simply processed again, and refused again: no state changed).
            if let Some(Ok(r)) = first.get(&digest).map(|&i| &out[i]) {
                let again = Received { redelivered: true, ..r.clone() };
                out.push(Ok(again));
                continue;
            }
            let key = inbox_key(&digest);
            let hash = self.cipher.key_hash(&key);
            if let Some(sealed) = self.backend.get(&hash)? {
                out.push(match self.open_inbox_row(&hash, &sealed)? {
                    InboxEntry::Direct { decrypted, .. } => Ok(Received { decrypted, digest, redelivered: true }),
                    _ => Err(StoreError::Corrupt("inbox entry of another kind".into())),
                });
                continue;
            }
            if count >= MAX_INBOX {
                out.push(Err(StoreError::InboxFull));
                continue;
            }
            match self.device.decrypt(peer, message, rng) {
                Ok(decrypted) => {
                    let entry = InboxEntry::Direct { peer: (*peer).to_owned(), decrypted };
                    let sealed = self.cipher.seal(&hash, &row_plaintext(&key, &entry.encode()), rng)?;
                    rows.push((hash, Some(sealed)));
                    count += 1;
                    if let InboxEntry::Direct { decrypted, .. } = entry {
                        first.insert(digest, out.len());
                        out.push(Ok(Received { decrypted, digest, redelivered: false }));
                    }
                }
                Err(e) => out.push(Err(StoreError::Protocol(e))),
            }
        }
        Ok((out, rows, count, before))
    }

    /// Opens a kept inbox row: the entry it holds.
    fn open_inbox_row(&self, hash: &[u8; 32], sealed: &[u8]) -> Result<InboxEntry, StoreError> {
        let plain = self.cipher.open(hash, sealed)?;
        let (_, body) = split_row(&self.cipher, hash, &plain)?;
        InboxEntry::decode(body)
    }

    /// How many decrypted results wait for [`StoredDevice::ack`] (1:1, group and
    /// channel together).
    pub fn inbox_len(&mut self) -> Result<u32, StoreError> {
        self.begin_synced()?;
        let r = self.backend.get_meta(meta::INBOX).and_then(|v| u32_meta(v, 0));
        self.finish(r)
    }

    /// Deletes the inbox entry of the message with `digest` (a 1:1, group or channel
    /// result) once the app has durably handled it; whether there was one.
    pub fn ack(&mut self, digest: &[u8; 32]) -> Result<bool, StoreError> {
        self.ack_many(std::slice::from_ref(digest)).map(|n| n == 1)
    }

    /// Deletes the inbox entries of `digests` in **one** transaction (one commit for a
    /// whole backlog, as [`StoredDevice::decrypt_batch`]); how many there were. Digests
    /// with no entry (or repeated) are skipped.
    pub fn ack_many(&mut self, digests: &[[u8; 32]]) -> Result<u32, StoreError> {
        self.begin_synced()?;
        let mut hashes: Vec<[u8; 32]> = Vec::with_capacity(digests.len());
        let r = (|| {
            for digest in digests {
                let hash = self.cipher.key_hash(&inbox_key(digest));
                if !hashes.contains(&hash) && self.backend.get(&hash)?.is_some() {
                    hashes.push(hash);
                }
            }
            if hashes.is_empty() {
                return Ok(0);
            }
            let count = u32_meta(self.backend.get_meta(meta::INBOX)?, 0)?;
            let acked = hashes.len() as u32;
            self.backend.put_meta(meta::INBOX, &count.saturating_sub(acked).to_be_bytes())?;
            Ok(acked)
        })();
        match r {
            Ok(0) => self.finish(Ok(0)),
            Ok(acked) => {
                // The device is unchanged: only the inbox rows and the generation move.
                let generation = self.generation + 1;
                let written = hashes
                    .iter()
                    .try_for_each(|hash| self.backend.put(hash, None, generation))
                    .and_then(|()| self.backend.put_meta(meta::GENERATION, &generation.to_be_bytes()));
                self.finish(written)?;
                self.generation = generation;
                Ok(acked)
            }
            Err(e) => self.finish(Err(e)),
        }
    }

    /// Re-wraps the data key under `new` (after unwrapping it with `old`); no record is
    /// re-encrypted. A wrong `old` is `WrongKey` and is counted as a failed attempt.
    pub fn change_passcode<R: CryptoRng + ?Sized>(
        &mut self,
        old: &Unlock,
        new: &Unlock,
        params: Argon2Params,
        rng: &mut R,
    ) -> Result<(), StoreError> {
        self.begin_synced()?;
        let r = (|| {
            let slot = self.backend.get_meta(meta::KEYSLOT)?.ok_or(StoreError::NoStore)?;
            let keyslot = Keyslot::decode(&slot)?;
            let data_key = match keyslot.unwrap(old) {
                Ok(k) => k,
                Err(VaultError::WrongKey) => {
                    let failures = u32_meta(self.backend.get_meta(meta::FAILED_ATTEMPTS)?, 0)?.saturating_add(1);
                    self.backend.put_meta(meta::FAILED_ATTEMPTS, &failures.to_be_bytes())?;
                    return Ok(Err(StoreError::Vault(VaultError::WrongKey)));
                }
                Err(e) => return Err(e.into()),
            };
            let new_slot = Keyslot::wrap(&data_key, new, params, keyslot.store_id(), rng)?;
            self.backend.put_meta(meta::KEYSLOT, &new_slot.encode())?;
            Ok(Ok(()))
        })();
        self.finish(r)?
    }

    /// Exports the whole device for a new installation, encrypted under `passcode`
    /// (Argon2id with `params`), and **retires this store in the same transaction**:
    /// every later operation on it, by any handle in any process, is `Retired`. The
    /// imported device ([`StoredDevice::import`]) starts a new sender epoch. Live ratchet
    /// state must never run in two places: both would send with the same message keys.
    ///
    /// Refused with `InboxNotEmpty` (nothing written, the store stays live) while any
    /// decrypted result waits for [`StoredDevice::ack`]: the inbox is not part of the
    /// export, and the chains that produced those results have already advanced, so a
    /// move would lose them for good. The app handles and acknowledges every pending
    /// result, then exports.
    ///
    /// Container ([`crate::export`]): `0x62 || 0x01 || u32 BE keyslot length || keyslot (a
    /// fresh export key wrapped under the passcode) || device snapshot (under the export
    /// key)`.
    pub fn export<R: CryptoRng + ?Sized>(
        &mut self,
        passcode: &Passcode,
        params: Argon2Params,
        rng: &mut R,
    ) -> Result<Vec<u8>, StoreError> {
        let export_key = DataKey::generate(rng);
        let keyslot =
            Keyslot::wrap(&export_key, &Unlock::Passcode(passcode.clone()), params, StoreId::generate(rng), rng)?;
        self.begin_synced()?;
        let r = (|| {
            let pending = u32_meta(self.backend.get_meta(meta::INBOX)?, 0)?;
            if pending > 0 {
                return Err(StoreError::InboxNotEmpty { pending });
            }
            let snapshot = self.device.export(&SnapshotKey::new(*export_key.expose()), rng)?;
            self.backend.put_meta(meta::RETIRED, &[1])?;
            Ok(crate::export::encode_container(&keyslot.encode(), &snapshot))
        })();
        self.finish(r)
    }

    /// Imports an [`StoredDevice::export`] container (opened with `passcode`) into a new
    /// store in `backend`, protected by `unlock`. The device starts a new sender epoch.
    pub fn import<R: CryptoRng + ?Sized>(
        backend: Box<dyn Backend>,
        unlock: &Unlock,
        params: Argon2Params,
        container: &[u8],
        passcode: &Passcode,
        rng: &mut R,
    ) -> Result<StoredDevice, StoreError> {
        let (keyslot, snapshot) = crate::export::decode_container(container)?;
        let export_key = keyslot.unwrap(&Unlock::Passcode(passcode.clone()))?;
        let device = Device::import(&SnapshotKey::new(*export_key.expose()), snapshot)?;
        StoredDevice::create(backend, unlock, params, device, rng)
    }
}

/// The channel a post names (bytes 2..34, after type and version; the core has accepted
/// the post, so they are there).
fn post_channel_id(post: &[u8]) -> Result<ChannelId, gochat_e2ee::Error> {
    let id: [u8; 32] = post
        .get(2..34)
        .and_then(|b| b.try_into().ok())
        .ok_or(gochat_e2ee::Error::from(gochat_e2ee::wire::DecodeError::Truncated))?;
    Ok(ChannelId(id))
}
