//! Retry requests: "I could not decrypt your message, start a new session and re-send."
//!
//! ```text
//! RetryRequest = 0x05 || 0x01 || requester IdentityKey (66) || recipient IdentityKey (66)
//!             || failed message digest (32) || bundle length (u16) || PreKeyBundle
//!             || Ed25519 signature (64) by the requester over
//!                "GoChat-E2EE v1 retry request" || every preceding byte
//! digest = SHA-256("GoChat-E2EE v1 message digest" || failed message bytes)
//! ```
//! Bounds (no loops): the recipient honours a request only for a message it sent to
//! that peer among its last `RETRY_WINDOW` messages, and at most once per message; the
//! request must be signed by the identity the recipient already has a session with.

use thiserror::Error;

use crate::keys::{IdentityKey, IdentityKeyPair, KeyError, PreKeyBundle, MAX_BUNDLE_BYTES};
use crate::labels;
use crate::wire::{type_byte, DecodeError, Reader, Writer};

/// Largest encoded retry request.
pub const MAX_RETRY_REQUEST_BYTES: usize = 2 + 66 + 66 + 32 + 2 + MAX_BUNDLE_BYTES + 64;

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
    /// The digest names no message we sent to this peer recently, or it was already retried.
    #[error("retry request names no recent message (or was already handled)")]
    UnknownMessage,
}

/// A parsed, signature-checked retry request.
#[derive(Debug, Clone)]
pub(crate) struct RetryRequest {
    pub(crate) requester: IdentityKey,
    pub(crate) recipient: IdentityKey,
    pub(crate) digest: [u8; 32],
    pub(crate) bundle: PreKeyBundle,
}

pub(crate) fn encode(
    requester: &IdentityKeyPair,
    recipient: &IdentityKey,
    digest: &[u8; 32],
    bundle: &PreKeyBundle,
) -> Vec<u8> {
    let b = bundle.to_bytes();
    let mut w = Writer::with_header(type_byte::RETRY_REQUEST, MAX_RETRY_REQUEST_BYTES);
    requester.public().write(&mut w);
    recipient.write(&mut w);
    // The bundle is at most MAX_BUNDLE_BYTES < u16::MAX.
    w.bytes(digest).u16(b.len() as u16).bytes(&b);
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
    Ok(RetryRequest { requester, recipient, digest, bundle })
}
