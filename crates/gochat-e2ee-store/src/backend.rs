//! The storage seam: transactional storage of opaque rows, knowing nothing of
//! cryptography or protocol.
//!
//! A store holds two tables:
//! - `meta`: named values (the store id, the keyslot, counters), read and written by name;
//! - `records`: rows keyed by a 32-byte key hash, each stamped with the generation of the
//!   transaction that last wrote it. A deleted record stays as a tombstone (value `None`)
//!   so that another handle can learn of the deletion through
//!   [`Backend::changed_since`].
//!
//! Transactions: [`Backend::begin`] takes the store's exclusive write lock (waiting up to
//! the busy timeout for another handle, thread or process to release it, then
//! [`StoreError::Busy`]); writes are allowed only inside a transaction
//! ([`StoreError::NotInTransaction`]); [`Backend::commit`] makes them durable and visible
//! at once, [`Backend::rollback`] discards them. Dropping a handle in a transaction rolls
//! it back. Reads inside a transaction see its own writes; reads outside one see the
//! last committed state.

use core::time::Duration;

use thiserror::Error;

use crate::vault::VaultError;

/// The schema version of the stores this library writes (SQLite `PRAGMA user_version` and
/// the meta row [`SCHEMA_VERSION_META`], a u32 big-endian).
pub const SCHEMA_VERSION: u32 = 1;

/// How long [`Backend::begin`] waits for another handle's transaction by default.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest generation a row may carry (SQLite stores it as a signed 64-bit integer).
pub const MAX_GENERATION: u64 = i64::MAX as u64;

/// A meta name reserved by the backends (the schema version); [`Backend::put_meta`]
/// refuses it.
pub const SCHEMA_VERSION_META: &str = "schema_version";

/// A row as returned by [`Backend::changed_since`]: key hash and value (`None` = deleted).
pub type ChangedRow = ([u8; 32], Option<Vec<u8>>);

/// A live row as returned by [`Backend::all`]: key hash and value.
pub type Row = ([u8; 32], Vec<u8>);

/// Why the store (backend or vault) refused: the one error enum of this crate.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// SQLite reported an error (the message of the underlying library).
    #[error("sqlite: {0}")]
    Sqlite(String),
    /// The file could not be opened, read or written (I/O error, disk full, read-only or
    /// permission denied; the message of the underlying library).
    #[error("store I/O: {0}")]
    Io(String),
    /// The write lock was not obtained within the busy timeout: another handle holds a
    /// transaction open.
    #[error("the store is busy (another transaction holds the write lock)")]
    Busy,
    /// The file's schema is newer than this library reads.
    #[error("unsupported store schema version {0}")]
    UnsupportedSchema(u32),
    /// A write, commit or rollback outside a transaction.
    #[error("not in a transaction")]
    NotInTransaction,
    /// `begin` inside a transaction (transactions do not nest).
    #[error("already in a transaction")]
    AlreadyInTransaction,
    /// A generation over [`MAX_GENERATION`].
    #[error("generation {0} is out of range")]
    GenerationOutOfRange(u64),
    /// A write to a name the backend reserves ([`SCHEMA_VERSION_META`]).
    #[error("meta name {0:?} is reserved")]
    ReservedName(String),
    /// The file is not a store of this library, or its contents contradict its schema.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The vault refused (wrong key, a malformed keyslot or record, ...).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The protocol refused the operation (the core's error, with its code); the store
    /// is unchanged.
    #[error(transparent)]
    Protocol(#[from] gochat_e2ee::Error),
    /// `create` at a location that already holds a store.
    #[error("a store already exists here")]
    AlreadyExists,
    /// `open` at a location that holds no store.
    #[error("no store here")]
    NoStore,
    /// The store was exported to move the device: it refuses every operation.
    #[error("the store was retired (its device was exported to move it)")]
    Retired,
    /// Too many wrong passcodes: passcode attempts are refused until the app decides.
    #[error("{failures} wrong passcodes: the attempt limit is reached")]
    AttemptLimitReached {
        /// Wrong attempts counted in the store.
        failures: u32,
    },
    /// Too many decrypted results wait for `ack`.
    #[error("too many unacknowledged decrypted messages")]
    InboxFull,
    /// The store's generation is below the rollback anchor the app gave (or below what
    /// this handle already saw): an older copy of the store was put back.
    #[error("the store was rolled back: generation {found}, expected at least {expected}")]
    RolledBack {
        /// The generation the store holds.
        found: u64,
        /// The generation it should hold at least.
        expected: u64,
    },
    /// `export` while decrypted results wait for `ack`: the inbox does not move with
    /// the device, so the app must handle and acknowledge them first. Nothing was written.
    #[error("{pending} decrypted messages wait for ack: acknowledge them before moving the device")]
    InboxNotEmpty {
        /// Results waiting for `ack`.
        pending: u32,
    },
}

impl StoreError {
    /// The flat code shared by every binding and the interop driver.
    pub fn code(&self) -> gochat_e2ee::ErrorCode {
        use gochat_e2ee::ErrorCode as C;
        match self {
            StoreError::Sqlite(_) | StoreError::Io(_) => C::StoreIo,
            StoreError::Busy => C::StoreBusy,
            StoreError::RolledBack { .. } => C::StoreRolledBack,
            StoreError::UnsupportedSchema(_) => C::UnsupportedSchema,
            // A backend driven out of order (a host writing outside a transaction, a
            // reserved name, a generation out of range): the caller's misuse.
            StoreError::NotInTransaction
            | StoreError::AlreadyInTransaction
            | StoreError::GenerationOutOfRange(_)
            | StoreError::ReservedName(_) => C::InvalidStoreParameters,
            StoreError::Corrupt(_) | StoreError::NoStore => C::StoreCorrupt,
            StoreError::Vault(v) => match v {
                VaultError::WrongKey | VaultError::MethodMismatch { .. } => C::WrongKey,
                VaultError::Truncated
                | VaultError::Malformed(_)
                | VaultError::Undecryptable
                | VaultError::InvalidStoreIdLength(_) => C::StoreCorrupt,
                VaultError::RecordTooLarge(_) => C::TooLarge,
                VaultError::Argon2Memory(_)
                | VaultError::Argon2Iterations(_)
                | VaultError::Argon2Lanes(_)
                | VaultError::PasscodeLength(_) => C::InvalidStoreParameters,
                VaultError::InvalidKeyLength(_) => C::InvalidSnapshotKey,
                VaultError::OutOfMemory(_) => C::StoreIo,
                VaultError::Internal(_) => C::Internal,
            },
            StoreError::Protocol(e) => e.code(),
            StoreError::AlreadyExists => C::StoreExists,
            StoreError::Retired => C::StoreRetired,
            StoreError::AttemptLimitReached { .. } => C::AttemptLimitReached,
            StoreError::InboxFull => C::InboxFull,
            StoreError::InboxNotEmpty { .. } => C::InboxNotEmpty,
        }
    }
}

/// Transactional storage of opaque rows, driven by the stored device. Object-safe and
/// `Send`, so it can be boxed and moved to the thread that owns the device.
pub trait Backend: Send {
    /// Starts a write transaction holding the store's exclusive write lock; waits up to
    /// the busy timeout for other handles (threads, processes), then [`StoreError::Busy`].
    /// Refuses a nested `begin` ([`StoreError::AlreadyInTransaction`]).
    fn begin(&mut self) -> Result<(), StoreError>;

    /// Commits the transaction durably (per the backend's durability) and releases the
    /// lock. Outside a transaction: [`StoreError::NotInTransaction`].
    fn commit(&mut self) -> Result<(), StoreError>;

    /// Discards every write of the transaction and releases the lock. Outside a
    /// transaction: [`StoreError::NotInTransaction`].
    fn rollback(&mut self) -> Result<(), StoreError>;

    /// The meta value called `name`, if any.
    fn get_meta(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Writes the meta value `name` (in a transaction; [`SCHEMA_VERSION_META`] is refused).
    fn put_meta(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError>;

    /// The live value of the record `key_hash` (`None` if absent or deleted).
    fn get(&mut self, key_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Writes (or tombstones, with `None`) the row `key_hash`, stamped with `generation`
    /// (in a transaction; at most [`MAX_GENERATION`]).
    fn put(&mut self, key_hash: &[u8; 32], value: Option<&[u8]>, generation: u64) -> Result<(), StoreError>;

    /// Rows whose generation is greater than `generation`, tombstones included (value
    /// `None`), ordered by generation then key hash: for cache sync between handles.
    fn changed_since(&mut self, generation: u64) -> Result<Vec<ChangedRow>, StoreError>;

    /// Every live row (tombstones excluded), ordered by key hash.
    fn all(&mut self) -> Result<Vec<Row>, StoreError>;
}

pub(crate) fn check_generation(generation: u64) -> Result<(), StoreError> {
    if generation > MAX_GENERATION {
        return Err(StoreError::GenerationOutOfRange(generation));
    }
    Ok(())
}

pub(crate) fn check_meta_name(name: &str) -> Result<(), StoreError> {
    if name == SCHEMA_VERSION_META {
        return Err(StoreError::ReservedName(name.to_owned()));
    }
    Ok(())
}
