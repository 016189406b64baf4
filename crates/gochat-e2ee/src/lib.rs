//! # GoChat E2EE core
//!
//! End-to-end encryption for 1:1 chats: device identities (Ed25519 + X25519), signed,
//! one-time and ML-KEM-1024 prekeys, PQXDH session setup, the Double Ratchet, session
//! records with healing, and encrypted snapshots.
//!
//! The crate is pure protocol: it does no I/O and reads no clock. Time (`now`, seconds
//! since the Unix epoch) and randomness (`&mut impl CryptoRng`) are arguments, so every
//! run can be made deterministic for tests, vectors and fuzzing.
//!
//! The byte-level specification is `docs/protocol.md`; the test vectors in
//! `test-vectors/` show that this code follows it.
//!
//! ```
//! use gochat_e2ee::Device;
//! # fn rng() -> impl rand_core::CryptoRng { rand_chacha::ChaCha20Rng::from_seed([7; 32]) }
//! # use rand_core::SeedableRng;
//! let mut rng = rng();
//! let mut alice = Device::new("alice", 1_700_000_000, &mut rng);
//! let mut bob = Device::new("bob", 1_700_000_000, &mut rng);
//! bob.account_mut().generate_one_time_prekeys(10, &mut rng).unwrap();
//! bob.account_mut().generate_pq_prekeys(10, 1_700_000_000, &mut rng).unwrap();
//!
//! let bundle = bob.next_bundle().unwrap();
//! let _first_contact = alice.initiate("bob/1", &bundle, &mut rng).unwrap();
//! let m = alice.encrypt("bob/1", b"hello").unwrap();
//! let got = bob.decrypt("alice/1", &m, &mut rng).unwrap();
//! assert_eq!(got.plaintext, b"hello");
//! assert_eq!(got.identity, gochat_e2ee::IdentityEvent::New); // first contact: pinned
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod account;
pub mod attachment;
pub mod channel;
mod crypto;
pub mod device;
pub mod error;
pub mod group;
pub mod handshake;
pub mod keys;
pub mod labels;
pub mod ratchet;
pub mod records;
pub mod retry;
pub mod session;
pub mod snapshot;
pub mod trust;
pub mod wire;

pub use account::Account;
pub use crypto::CryptoError;
pub use device::{Decrypted, Device};
pub use error::{Error, ErrorCode};
pub use keys::{IdentityKey, PreKeyBundle};
pub use snapshot::SnapshotKey;
pub use trust::certificate::{verify_device, VerifiedDevice};
pub use trust::{ChangeReason, IdentityEvent, IdentityPolicy};

/// Every bound the protocol enforces, in one place (each is also listed in
/// `docs/protocol.md`, "Limits").
pub mod limits {
    pub use crate::account::MAX_ACCOUNT_STATE_BYTES;
    pub use crate::account::{
        ISSUED_PREKEY_LIFETIME_SECS, MAX_ISSUED_PREKEYS, MAX_LAST_RESORT_USES, MAX_ONE_TIME_PREKEYS,
        MAX_PQ_ONE_TIME_PREKEYS, MAX_RETIRED_PREKEYS, PREKEY_GRACE_SECS,
    };
    pub use crate::device::{MAX_NAME_BYTES, MAX_PEERS, MAX_STATE_BYTES, MAX_STATE_GROWTH_PER_INPUT};
    pub use crate::keys::MAX_BUNDLE_BYTES;
    pub use crate::ratchet::{
        MAX_ARCHIVED_FORWARD_JUMP, MAX_DROPPED_CHAINS, MAX_EVICTED_RANGES, MAX_FORWARD_JUMP, MAX_PADDED_BYTES,
        MAX_PLAINTEXT_BYTES, MAX_RECEIVER_CHAINS, MAX_SKIPPED_KEYS, PADDING_BLOCK,
    };
    pub use crate::retry::{MAX_RETRY_REQUEST_BYTES, RETRY_MAX_AGE_SECS, RETRY_MAX_FUTURE_SECS};
    pub use crate::session::{MAX_ARCHIVED_SESSIONS, MAX_MESSAGE_BYTES, RETRY_WINDOW};
    pub use crate::snapshot::MAX_SNAPSHOT_BYTES;
    pub use crate::trust::certificate::{
        MAX_AGENCY_CERTIFICATE_BYTES, MAX_AGENCY_DOMAINS, MAX_AGENCY_NAME_BYTES, MAX_CERTIFICATE_CHAIN_BYTES,
        MAX_DEVICE_CERTIFICATE_BYTES, MAX_REVOCATION_ISSUERS, MAX_REVOCATION_LIST_BYTES, MAX_REVOKED_SERIALS,
        MAX_TRUST_ROOTS,
    };
    pub use crate::trust::devices::{
        MAX_DEVICES_PER_USER, MAX_DEVICE_ENDORSEMENT_BYTES, MAX_DEVICE_LIST_BYTES, MAX_DEVICE_LIST_STATE_BYTES,
        MAX_DEVICE_LIST_USERS,
    };
    pub use crate::trust::provisioning::{
        MAX_LINK_DEVICE_LIST_BYTES, MAX_LINK_ENDORSEMENT_BYTES, MAX_LINK_PAYLOAD_BYTES, MAX_OFFER_AGE_SECS,
        MAX_OFFER_BYTES, MAX_OFFER_FUTURE_SECS, MAX_PROVISIONING_MESSAGE_BYTES,
    };
}

/// The library version (the crate version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
