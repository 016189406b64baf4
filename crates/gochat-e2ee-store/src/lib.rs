//! GoChat E2EE encrypted state store: the pieces a stored device is built from.
//!
//! - [`vault`]: a random [`DataKey`] per store, wrapped in a [`Keyslot`] under a platform
//!   key or a passcode (Argon2id), and the [`RecordCipher`] that seals record values and
//!   hashes record keys under keys derived from it;
//! - [`backend`]: the [`Backend`] trait, transactional storage of opaque rows, with
//!   [`MemoryBackend`], [`JournalBackend`] (rows fed and drained by an asynchronous host:
//!   IndexedDB in the npm package) and (feature `sqlite`, on by default) [`SqliteBackend`].
//!
//! The backends know nothing of cryptography: they store the key hashes and sealed values
//! they are given. The formats are specified in `docs/protocol.md` ("Store"), with test
//! vectors in `test-vectors/store_records.json`, `test-vectors/store_keyslot.json`,
//! `test-vectors/store_export.json` ([`export`]) and `test-vectors/store_inbox.json` ([`inbox`]).

#![forbid(unsafe_code)]

pub mod backend;
pub mod device;
pub mod export;
pub mod inbox;
pub mod journal;
pub mod labels;
pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod vault;

pub use backend::{Backend, StoreError};
pub use device::{check_batch_len, ChannelPost, GroupReceived, Received, StoredDevice, MAX_BATCH_MESSAGES, MAX_INBOX};
pub use inbox::InboxEntry;
pub use journal::{Journal, JournalBackend};
pub use memory::MemoryBackend;
#[cfg(feature = "sqlite")]
pub use sqlite::{Durability, SqliteBackend};
pub use vault::{
    Argon2Params, DataKey, Keyslot, KeyslotMethod, Passcode, PlatformKey, RecordCipher, StoreId, Unlock, VaultError,
};

/// Every limit of the store, in one place (`docs/protocol.md` lists them).
pub mod limits {
    pub use crate::backend::{BUSY_TIMEOUT, MAX_GENERATION, SCHEMA_VERSION};
    pub use crate::device::{MAX_BATCH_MESSAGES, MAX_INBOX};
    pub use crate::journal::MAX_JOURNAL_ROWS;
    pub use crate::vault::{
        MAX_ARGON2_ITERATIONS, MAX_ARGON2_LANES, MAX_ARGON2_MEMORY_KIB, MAX_PASSCODE_BYTES, MAX_RECORD_BYTES,
        MIN_ARGON2_MEMORY_KIB,
    };
}
