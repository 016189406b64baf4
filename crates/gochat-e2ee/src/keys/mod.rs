//! Keys: device identity, signed / one-time / post-quantum prekeys, and the bundle.

mod bundle;
mod identity;
mod prekeys;

pub use bundle::{PreKeyBundle, MAX_BUNDLE_BYTES};
pub(crate) use bundle::{OPK_BYTES, PQ_BYTES, SPK_BYTES};
pub(crate) use identity::is_non_canonical_field;
pub use identity::{IdentityKey, IdentityKeyPair, IDENTITY_KEY_BYTES};
pub use prekeys::{
    OneTimePreKey, OneTimePreKeyPublic, PqPreKey, PqPreKeyKind, PqPreKeyPublic, SignedPreKey, SignedPreKeyPublic,
    KEM_CIPHERTEXT_BYTES, KEM_PUBLIC_KEY_BYTES, KEM_SEED_BYTES,
};

use crate::wire::DecodeError;
use thiserror::Error;

/// Why a key, prekey or bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The bytes do not follow the documented layout.
    #[error("malformed key material: {0}")]
    Decode(#[from] DecodeError),
    /// The Ed25519 identity key is not a valid curve point.
    #[error("invalid identity key")]
    InvalidIdentityKey,
    /// A key is of low order (X25519) or weak (Ed25519); the named key is given.
    #[error("weak or low-order key: {0}")]
    WeakKey(&'static str),
    /// A signature does not verify under the identity key; the signed item is given.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// The ML-KEM-1024 encapsulation key fails the FIPS 203 input check.
    #[error("invalid ML-KEM-1024 encapsulation key")]
    InvalidPqKey,
    /// A stored secret does not match its stored public key.
    #[error("secret and public key do not match")]
    InconsistentKeyPair,
}
