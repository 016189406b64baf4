//! PQXDH session setup: X25519 triple/quadruple DH plus ML-KEM-1024, through HKDF.
//!
//! This module is the seam between prekeys and the ratchet: it turns a verified bundle
//! (initiator) or a received prekey header (responder) into a [`SessionSecret`] and the
//! session's associated data, and nothing else. The ratchet never sees a prekey.
//!
//! ```text
//! DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)
//! DH4 = DH(EK_A, OPK_B)   (only if a one-time prekey was used)
//! (CT, SS) = ML-KEM-1024.Encaps(PQPK_B)
//! SK = HKDF-SHA256(salt = 0^32, ikm = 0xFF^32 || DH1 || DH2 || DH3 [|| DH4] || SS,
//!                  info = "GoChat-E2EE v1 PQXDH X25519 SHA-256 ML-KEM-1024", L = 32)
//! AD = Encode(IK_A) || Encode(IK_B)
//! ```

use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::crypto::{dh, hkdf, random_x25519, x25519_public, Secret32};
use crate::keys::{
    IdentityKey, IdentityKeyPair, KeyError, OneTimePreKey, PqPreKey, PreKeyBundle, SignedPreKey, KEM_CIPHERTEXT_BYTES,
};
use crate::labels;
use crate::wire::{Reader, Writer};

/// Length of a session's associated data: both encoded identity keys.
pub const SESSION_AD_BYTES: usize = 2 * crate::keys::IDENTITY_KEY_BYTES;
/// DH terms of PQXDH at most (DH1..DH3, and DH4 with a one-time prekey).
const MAX_DH_TERMS: usize = 4;

/// Why a session could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// The bundle failed verification.
    #[error("invalid bundle: {0}")]
    InvalidBundle(#[from] KeyError),
    /// A Diffie-Hellman output was all zeros (a low-order key was used).
    #[error("non-contributory X25519 output")]
    NonContributory,
    /// The signed prekey named by the message is not (or no longer) held.
    #[error("unknown signed prekey {0}")]
    UnknownSignedPreKey(u32),
    /// The one-time prekey named by the message was never issued.
    #[error("unknown one-time prekey {0}")]
    UnknownOneTimePreKey(u32),
    /// The one-time prekey named by the message was already consumed by another session.
    #[error("one-time prekey {0} was already used")]
    OneTimePreKeyReused(u32),
    /// The ML-KEM prekey named by the message was never issued or has expired.
    #[error("unknown ML-KEM prekey {0}")]
    UnknownPqPreKey(u32),
    /// The one-time ML-KEM prekey named by the message was already consumed.
    #[error("ML-KEM one-time prekey {0} was already used")]
    PqPreKeyReused(u32),
    /// This exact last-resort combination (prekeys and base key) was already accepted.
    #[error("replayed last-resort prekey message")]
    LastResortReplay,
    /// The last-resort ML-KEM prekey named by the message is retired and its use records
    /// are full (`MAX_LAST_RESORT_USES`): it accepts no further session starts.
    #[error("last-resort ML-KEM prekey {0} is retired and has reached its use limit")]
    LastResortExhausted(u32),
    /// The message is for a session with ourselves.
    #[error("a session with our own identity is refused")]
    SelfSession,
    /// A primitive refused an internal length (a bug, never peer input).
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

/// The 32-byte secret produced by PQXDH, consumed by the Double Ratchet.
#[derive(Debug, Clone)]
pub struct SessionSecret(pub(crate) Secret32);

/// Everything the initiator sends, in every message, until the responder replies.
#[derive(Clone, PartialEq, Eq)]
pub struct PreKeyHeader {
    /// The initiator's identity.
    pub initiator: IdentityKey,
    /// Id of the responder's signed prekey used.
    pub signed_prekey_id: u32,
    /// Id of the responder's one-time prekey used, if any.
    pub one_time_prekey_id: Option<u32>,
    /// Id of the responder's ML-KEM prekey used.
    pub pq_prekey_id: u32,
    /// The initiator's ephemeral X25519 key `EK_A` (the session's base key).
    pub base_key: [u8; 32],
    /// The ML-KEM-1024 ciphertext.
    pub kem_ciphertext: Box<[u8; KEM_CIPHERTEXT_BYTES]>,
}

impl core::fmt::Debug for PreKeyHeader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreKeyHeader")
            .field("initiator", &self.initiator)
            .field("signed_prekey_id", &self.signed_prekey_id)
            .field("one_time_prekey_id", &self.one_time_prekey_id)
            .field("pq_prekey_id", &self.pq_prekey_id)
            .finish_non_exhaustive()
    }
}

impl PreKeyHeader {
    /// Size of the encoded header: identity, ids, base key and KEM ciphertext.
    pub const MAX_BYTES: usize = crate::keys::IDENTITY_KEY_BYTES + 4 + 1 + 4 + 4 + 32 + KEM_CIPHERTEXT_BYTES;

    /// The exact length of [`PreKeyHeader::write`]'s output.
    pub(crate) fn encoded_len(&self) -> usize {
        Self::MAX_BYTES - if self.one_time_prekey_id.is_some() { 0 } else { 4 }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.initiator.write(w);
        w.u32(self.signed_prekey_id);
        w.flag(self.one_time_prekey_id.is_some());
        if let Some(id) = self.one_time_prekey_id {
            w.u32(id);
        }
        w.u32(self.pq_prekey_id).bytes(&self.base_key).bytes(&self.kem_ciphertext[..]);
    }

    /// Reads a header from the wire: the initiator's identity is fully validated.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let initiator = IdentityKey::read(r)?;
        Self::read_rest(r, initiator)
    }

    /// Reads a header kept in authenticated state (the pending header of an initiated
    /// session), whose identity was validated when the session was made: the Ed25519
    /// decompression is skipped (`IdentityKey::read_trusted`), as for every identity in
    /// state. This is what keeps loading 1,000 stored sessions cheap.
    pub(crate) fn read_trusted(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let initiator = IdentityKey::read_trusted(r)?;
        Self::read_rest(r, initiator)
    }

    fn read_rest(r: &mut Reader<'_>, initiator: IdentityKey) -> Result<Self, KeyError> {
        let signed_prekey_id = r.u32()?;
        let one_time_prekey_id = if r.flag("one-time prekey flag")? { Some(r.u32()?) } else { None };
        let pq_prekey_id = r.u32()?;
        let base_key = r.array()?;
        if crate::crypto::is_low_order_x25519(&base_key) {
            return Err(KeyError::WeakKey("base key"));
        }
        let kem_ciphertext = Box::new(r.array()?);
        Ok(PreKeyHeader { initiator, signed_prekey_id, one_time_prekey_id, pq_prekey_id, base_key, kem_ciphertext })
    }
}

/// The values of the PQXDH key schedule, for test vectors and audits.
#[derive(Clone)]
pub struct KeyScheduleTrace {
    /// DH1..DH3 and, if used, DH4.
    pub dh: Vec<[u8; 32]>,
    /// The ML-KEM shared secret.
    pub kem_secret: [u8; 32],
    /// The HKDF input keying material (0xFF^32 || DH... || SS).
    pub ikm: Vec<u8>,
    /// The session secret SK.
    pub secret: [u8; 32],
}

impl core::fmt::Debug for KeyScheduleTrace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyScheduleTrace(<redacted>)")
    }
}

fn derive_secret(
    dhs: &[Secret32],
    kem: &Secret32,
    trace: Option<&mut KeyScheduleTrace>,
) -> Result<SessionSecret, HandshakeError> {
    // Sized exactly (no growth), wiped on every return path.
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 * (dhs.len() + 2)));
    ikm.extend_from_slice(&labels::PQXDH_PREFIX);
    for d in dhs {
        ikm.extend_from_slice(d.as_bytes());
    }
    ikm.extend_from_slice(kem.as_bytes());
    let mut sk = Secret32([0; 32]);
    hkdf(&[0u8; 32], &ikm, labels::PQXDH, &mut sk.0)?;
    if let Some(t) = trace {
        t.dh = dhs.iter().map(|d| *d.as_bytes()).collect();
        t.kem_secret = *kem.as_bytes();
        t.ikm = ikm.to_vec();
        t.secret = *sk.as_bytes();
    }
    Ok(SessionSecret(sk))
}

/// The session AD: `Encode(IK_initiator) || Encode(IK_responder)`.
pub(crate) fn session_ad(initiator: &IdentityKey, responder: &IdentityKey) -> Vec<u8> {
    let mut ad = Vec::with_capacity(SESSION_AD_BYTES);
    ad.extend_from_slice(&initiator.to_bytes());
    ad.extend_from_slice(&responder.to_bytes());
    ad
}

/// What the initiator gets from [`initiate`].
pub(crate) struct Initiated {
    pub(crate) secret: SessionSecret,
    pub(crate) header: PreKeyHeader,
    pub(crate) ad: Vec<u8>,
}

/// Initiator side: runs PQXDH against a verified bundle.
pub(crate) fn initiate<R: CryptoRng + ?Sized>(
    ours: &IdentityKeyPair,
    bundle: &PreKeyBundle,
    rng: &mut R,
    trace: Option<&mut KeyScheduleTrace>,
) -> Result<Initiated, HandshakeError> {
    if bundle.identity() == ours.public() {
        return Err(HandshakeError::SelfSession);
    }
    let ek = random_x25519(rng);
    let spk = &bundle.signed_prekey().key;
    let nc = |_| HandshakeError::NonContributory;
    // Sized for every term up front: growing would free a block holding DH1..DH3 unwiped.
    let mut dhs = Vec::with_capacity(MAX_DH_TERMS);
    dhs.push(dh(ours.agreement(), spk).map_err(nc)?);
    dhs.push(dh(&ek, bundle.identity().agreement_key_bytes()).map_err(nc)?);
    dhs.push(dh(&ek, spk).map_err(nc)?);
    if let Some(opk) = bundle.one_time_prekey() {
        dhs.push(dh(&ek, &opk.key).map_err(nc)?);
    }
    let (kem_ciphertext, kem_secret) = bundle.encapsulate(rng);
    let secret = derive_secret(&dhs, &kem_secret, trace)?;
    let header = PreKeyHeader {
        initiator: *ours.public(),
        signed_prekey_id: bundle.signed_prekey().id,
        one_time_prekey_id: bundle.one_time_prekey().map(|k| k.id),
        pq_prekey_id: bundle.pq_prekey().id,
        base_key: x25519_public(&ek),
        kem_ciphertext,
    };
    Ok(Initiated { secret, header, ad: session_ad(ours.public(), bundle.identity()) })
}

/// The responder's prekeys named by a [`PreKeyHeader`], looked up by the caller.
pub(crate) struct ResponderKeys<'a> {
    pub(crate) identity: &'a IdentityKeyPair,
    pub(crate) signed_prekey: &'a SignedPreKey,
    pub(crate) one_time_prekey: Option<&'a OneTimePreKey>,
    pub(crate) pq_prekey: &'a PqPreKey,
}

/// Responder side: recomputes the session secret from a received header.
pub(crate) fn accept(
    keys: &ResponderKeys<'_>,
    header: &PreKeyHeader,
    trace: Option<&mut KeyScheduleTrace>,
) -> Result<(SessionSecret, Vec<u8>), HandshakeError> {
    if header.initiator == *keys.identity.public() {
        return Err(HandshakeError::SelfSession);
    }
    let nc = |_| HandshakeError::NonContributory;
    let spk = &keys.signed_prekey.secret;
    // Sized for every term up front, as in `initiate`.
    let mut dhs = Vec::with_capacity(MAX_DH_TERMS);
    dhs.push(dh(spk, header.initiator.agreement_key_bytes()).map_err(nc)?);
    dhs.push(dh(keys.identity.agreement(), &header.base_key).map_err(nc)?);
    dhs.push(dh(spk, &header.base_key).map_err(nc)?);
    if let Some(opk) = keys.one_time_prekey {
        dhs.push(dh(&opk.secret, &header.base_key).map_err(nc)?);
    }
    let kem_secret = keys.pq_prekey.decapsulate(&header.kem_ciphertext);
    let secret = derive_secret(&dhs, &kem_secret, trace)?;
    Ok((secret, session_ad(&header.initiator, keys.identity.public())))
}
