//! Retry requests: "I could not decrypt your message, start a new session and re-send."
//!
//! ```text
//! RetryRequest = 0x05 || 0x02 || requester IdentityKey (66) || recipient IdentityKey (66)
//!             || failed message digest (32) || created_at (u64, requester's clock)
//!             || bundle length (u16) || PreKeyBundle
//!             || Ed25519 signature (64) by the requester over
//!                "GoChat-E2EE v1 retry request" || every preceding byte
//! digest = SHA-256("GoChat-E2EE v1 message digest" || failed message bytes)
//! ```
//! Bounds (no loops): the recipient honours a request only if it is signed by the
//! peer's pinned identity, names a message it sent *to that identity* among its last
//! `RETRY_WINDOW` messages, on a session it still holds, at most once per message, and
//! only while the request is fresh: `created_at` is at most `RETRY_MAX_AGE_SECS` old and
//! at most `RETRY_MAX_FUTURE_SECS` ahead of the recipient's clock. The requester refuses
//! to ask for a message it can tell is a replay (its header names a used counter).

use thiserror::Error;

use crate::keys::{IdentityKey, IdentityKeyPair, KeyError, PreKeyBundle, MAX_BUNDLE_BYTES};
use crate::labels;
use crate::wire::{type_byte, DecodeError, Reader, Writer};

/// Largest encoded retry request.
pub const MAX_RETRY_REQUEST_BYTES: usize = 2 + 66 + 66 + 32 + 8 + 2 + MAX_BUNDLE_BYTES + 64;
/// Oldest retry request honoured, by its `created_at`: one day.
pub const RETRY_MAX_AGE_SECS: u64 = 24 * 60 * 60;
/// How far a retry request's `created_at` may be ahead of the recipient's clock.
pub const RETRY_MAX_FUTURE_SECS: u64 = 5 * 60;

/// Why a retry request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RetryError {
    /// The request does not follow the layout, or its bundle is invalid.
    #[error("malformed retry request: {0}")]
    Malformed(#[from] KeyError),
    /// The signature by the requester does not verify.
    #[error("bad signature on retry request")]
    BadSignature,
    /// The request is addressed to another identity.
    #[error("retry request is for another recipient")]
    WrongRecipient,
    /// The requester's identity is not the one we have a session with (a new identity
    /// must go through the app's trust decision first).
    #[error("retry request from an untrusted identity")]
    UntrustedIdentity,
    /// The digest names no message we sent to this identity recently on a session we
    /// still hold, or it was already retried.
    #[error("retry request names no recent message (or was already handled)")]
    UnknownMessage,
    /// The request's time is outside the window the recipient accepts.
    #[error("retry request is stale or from the future")]
    Expired,
}

/// A parsed, signature-checked retry request.
#[derive(Debug, Clone)]
pub(crate) struct RetryRequest {
    pub(crate) requester: IdentityKey,
    pub(crate) recipient: IdentityKey,
    pub(crate) digest: [u8; 32],
    pub(crate) created_at: u64,
    pub(crate) bundle: PreKeyBundle,
}

pub(crate) fn encode(
    requester: &IdentityKeyPair,
    recipient: &IdentityKey,
    digest: &[u8; 32],
    created_at: u64,
    bundle: &PreKeyBundle,
) -> Vec<u8> {
    let b = bundle.to_bytes();
    let mut w = Writer::with_header(type_byte::RETRY_REQUEST, MAX_RETRY_REQUEST_BYTES);
    requester.public().write(&mut w);
    recipient.write(&mut w);
    // The bundle is at most MAX_BUNDLE_BYTES < u16::MAX.
    w.bytes(digest).u64(created_at).u16(b.len() as u16).bytes(&b);
    let mut out = w.into_bytes();
    let sig = requester.sign(labels::SIG_RETRY_REQUEST, &out);
    out.extend_from_slice(&sig);
    out
}

pub(crate) fn decode(bytes: &[u8]) -> Result<RetryRequest, RetryError> {
    let mut r = Reader::open(bytes, type_byte::RETRY_REQUEST, MAX_RETRY_REQUEST_BYTES).map_err(KeyError::from)?;
    let requester = IdentityKey::read(&mut r)?;
    let recipient = IdentityKey::read(&mut r)?;
    let digest = r.array().map_err(KeyError::from)?;
    let created_at = r.u64().map_err(KeyError::from)?;
    let len = r.u16().map_err(KeyError::from)? as usize;
    if len > MAX_BUNDLE_BYTES {
        return Err(KeyError::Decode(DecodeError::InvalidValue("bundle length")).into());
    }
    let bundle_bytes = r.bytes(len).map_err(KeyError::from)?;
    let signed_len = r.position();
    let signature: [u8; 64] = r.array().map_err(KeyError::from)?;
    r.finish().map_err(KeyError::from)?;
    let signed = bytes.get(..signed_len).ok_or(KeyError::Decode(DecodeError::Truncated))?;
    if !requester.verify(labels::SIG_RETRY_REQUEST, signed, &signature) {
        return Err(RetryError::BadSignature);
    }
    let bundle = PreKeyBundle::from_bytes(bundle_bytes)?;
    if bundle.identity() != &requester {
        return Err(RetryError::UntrustedIdentity);
    }
    Ok(RetryRequest { requester, recipient, digest, created_at, bundle })
}

/// Whether a request made at `created_at` is fresh at `now`.
pub(crate) fn is_fresh(created_at: u64, now: u64) -> bool {
    created_at <= now.saturating_add(RETRY_MAX_FUTURE_SECS) && now.saturating_sub(created_at) <= RETRY_MAX_AGE_SECS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Account;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn a_bundle_of_exactly_max_bundle_bytes_is_accepted_and_one_more_is_not() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let mut alice = Account::new(1_700_000_000, &mut rng);
        let bob = Account::new(1_700_000_000, &mut rng);
        alice.generate_one_time_prekeys(1, &mut rng).unwrap();
        let full = alice.next_bundle().unwrap();
        assert_eq!(full.to_bytes().len(), MAX_BUNDLE_BYTES, "a bundle with a one-time prekey is the largest");
        let req = encode(alice.identity_pair(), bob.identity(), &[7; 32], 1_700_000_000, &full);
        let got = decode(&req).unwrap();
        assert_eq!(got.bundle.to_bytes(), full.to_bytes());
        // The same request claiming one byte more of bundle is refused by the length check.
        let at = 2 + 66 + 66 + 32 + 8;
        let mut longer = req.clone();
        longer[at..at + 2].copy_from_slice(&((MAX_BUNDLE_BYTES + 1) as u16).to_be_bytes());
        assert_eq!(
            decode(&longer).err(),
            Some(RetryError::Malformed(KeyError::Decode(DecodeError::InvalidValue("bundle length"))))
        );
    }
}
