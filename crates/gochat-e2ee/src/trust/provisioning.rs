//! Linking a device from the phone (provisioning, `docs/protocol.md` §15.9), as WhatsApp
//! Web and Signal Desktop do it.
//!
//! 1. The new device makes a one-time X25519 *provisioning key* and shows a
//!    [`ProvisioningOffer`] as a QR code: that key, the new device's identity key, its
//!    device id and the time ([`ProvisioningSecret::new`]).
//! 2. The phone scans it, refuses an offer older than [`MAX_OFFER_AGE_SECS`] or dated more
//!    than [`MAX_OFFER_FUTURE_SECS`] ahead, and [`seal`]s a [`LinkPayload`] to the
//!    provisioning key: the user id, the master public key, the master key's endorsement
//!    of the new device, and the device list. The server carries the
//!    [`ProvisioningMessage`] back.
//! 3. The new device [`ProvisioningSecret::open`]s it.
//!
//! Security properties:
//! - **Confidential and authenticated to one offer.** The key and nonce come from
//!   `HKDF-SHA256(salt = SHA-256(offer), ikm = X25519(ephemeral, provisioning key))`, and
//!   the AAD holds the message header and the same offer hash: a message made for another
//!   offer (another key, identity, device id or time) never opens. The server, which never
//!   sees the QR code, cannot read or forge a message.
//! - **Single use.** After one successful open the provisioning secret is wiped; every
//!   later open is [`ProvisioningError::Used`].
//! - **Bad input changes nothing.** A failed open (garbage, a message for another offer, a
//!   tampered message, a low-order ephemeral key) is a typed error and leaves the secret
//!   exactly as it was, so an attacker who injects messages cannot burn the offer.
//! - **Bounded.** Every layout has a `pub const` size bound, checked before any crypto.
//!
//! What this layer does not decide: whether the endorsement and the device list are
//! genuine. They travel here as bounded byte strings; the device layer re-decodes them and
//! checks the master key's signatures and that they name this device.

use ed25519_dalek::VerifyingKey;
use thiserror::Error;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::crypto::{self, AeadKey, CryptoError, AEAD_TAG_BYTES};
use crate::keys::{IdentityKey, KeyError, IDENTITY_KEY_BYTES};
use crate::labels;
use crate::trust::address::{read_device_id, DeviceId, UserId, MAX_DEVICE_ID_BYTES, MAX_USER_ID_BYTES};
use crate::trust::devices::{MAX_DEVICE_ENDORSEMENT_BYTES, MAX_DEVICE_LIST_BYTES};
use crate::wire::{type_byte, DecodeError, Reader, Writer, WIRE_VERSION};

/// The version of offers, messages and payloads this library writes and reads.
pub const PROVISIONING_VERSION: u8 = WIRE_VERSION;
/// Type byte of a [`ProvisioningOffer`] (the QR payload).
pub const OFFER_TYPE: u8 = type_byte::PROVISIONING_OFFER;
/// Type byte of a [`ProvisioningMessage`].
pub const MESSAGE_TYPE: u8 = type_byte::PROVISIONING_MESSAGE;
/// How long the phone accepts an offer after its `created_at` (10 minutes).
pub const MAX_OFFER_AGE_SECS: u64 = 600;
/// How far ahead of the phone's clock an offer may be dated (clock skew).
pub const MAX_OFFER_FUTURE_SECS: u64 = 60;
/// Longest offer: type, version, key (32), identity (66), `u8` device id (<= 64),
/// `created_at` (8): 173 bytes, small enough for one QR code.
pub const MAX_OFFER_BYTES: usize = 2 + 32 + IDENTITY_KEY_BYTES + 1 + MAX_DEVICE_ID_BYTES + 8;
/// Longest master-key endorsement carried in a payload (the longest `DeviceEndorsement`).
pub const MAX_LINK_ENDORSEMENT_BYTES: usize = MAX_DEVICE_ENDORSEMENT_BYTES;
/// Longest device list carried in a payload (the longest `DeviceList`).
pub const MAX_LINK_DEVICE_LIST_BYTES: usize = MAX_DEVICE_LIST_BYTES;
/// Longest payload: version, `u8` user id, master key, `u16` endorsement, `u16` list.
pub const MAX_LINK_PAYLOAD_BYTES: usize =
    1 + 1 + MAX_USER_ID_BYTES + 32 + 2 + MAX_LINK_ENDORSEMENT_BYTES + 2 + MAX_LINK_DEVICE_LIST_BYTES;
/// Longest provisioning message: type, version, ephemeral key, sealed payload and tag.
pub const MAX_PROVISIONING_MESSAGE_BYTES: usize = 2 + 32 + MAX_LINK_PAYLOAD_BYTES + AEAD_TAG_BYTES;

const PAYLOAD_MIN_BYTES: usize = 1 + 1 + 3 + 32 + 2 + 1 + 2 + 1;

/// Why an offer, a payload or a provisioning message was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProvisioningError {
    /// The bytes do not follow the layout (or exceed its bound).
    #[error("malformed provisioning input: {0}")]
    Decode(#[from] DecodeError),
    /// The offer's identity key or provisioning key, or the payload's master key, is invalid.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The offer is older than `MAX_OFFER_AGE_SECS`: show a new QR code.
    #[error("provisioning offer expired (created {created_at}, now {now})")]
    OfferExpired {
        /// The offer's time.
        created_at: u64,
        /// The phone's time.
        now: u64,
    },
    /// The offer is dated more than `MAX_OFFER_FUTURE_SECS` ahead of the phone's clock.
    #[error("provisioning offer from the future (created {created_at}, now {now})")]
    OfferFromFuture {
        /// The offer's time.
        created_at: u64,
        /// The phone's time.
        now: u64,
    },
    /// The payload's master public key is not a canonical, non-weak Ed25519 point.
    #[error("invalid master public key")]
    InvalidMasterKey,
    /// The message's ephemeral key gives an all-zero X25519 output (low order).
    #[error("non-contributory ephemeral key")]
    NonContributory,
    /// The message does not open under this offer's key (tampered, or for another offer).
    #[error("provisioning message failed authentication")]
    AuthenticationFailed,
    /// This provisioning secret already opened a message: an offer links once.
    #[error("provisioning secret already used")]
    Used,
    /// The payload's endorsement or device list does not name this device (its identity
    /// or device id), or names another user or master key (code `DeviceListMismatch`).
    #[error("link payload does not name this device: {0}")]
    IdentityMismatch(&'static str),
    /// A primitive refused an internal length (a bug, never caused by input).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The QR payload the new device shows: its one-time provisioning key, identity key,
/// device id and creation time. Public: anyone who sees it learns nothing secret, but
/// whoever photographs it can race the phone (see the threat model, §15.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningOffer {
    provisioning_key: [u8; 32],
    identity: IdentityKey,
    device: DeviceId,
    created_at: u64,
}

impl ProvisioningOffer {
    /// Decodes an offer (one bounded parse): type 0x57, version 1, a canonical
    /// non-low-order X25519 key, a valid identity key, a valid device id, the time;
    /// trailing bytes refused. The age is checked by [`seal`], which knows `now`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProvisioningError> {
        let mut r = Reader::open(bytes, OFFER_TYPE, MAX_OFFER_BYTES)?;
        let provisioning_key: [u8; 32] = r.array()?;
        check_x25519(&provisioning_key, "provisioning key")?;
        let identity = IdentityKey::read(&mut r)?;
        let device = read_device_id(&mut r)?;
        let created_at = r.u64()?;
        r.finish()?;
        Ok(ProvisioningOffer { provisioning_key, identity, device, created_at })
    }

    /// The encoding (what the QR code shows).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_header(OFFER_TYPE, MAX_OFFER_BYTES);
        w.bytes(&self.provisioning_key);
        self.identity.write(&mut w);
        w.u8(self.device.as_str().len() as u8).bytes(self.device.as_str().as_bytes());
        w.u64(self.created_at);
        w.into_bytes()
    }

    /// The one-time X25519 provisioning key.
    pub fn provisioning_key(&self) -> &[u8; 32] {
        &self.provisioning_key
    }

    /// The new device's identity key (what the phone's endorsement signs).
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }

    /// The new device's id.
    pub fn device_id(&self) -> &DeviceId {
        &self.device
    }

    /// When the new device made the offer (Unix seconds, its clock).
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// `SHA-256(offer bytes)`: the HKDF salt and the tail of the AAD.
    fn digest(&self) -> [u8; 32] {
        crypto::sha256(&[&self.to_bytes()])
    }

    /// Refuses an offer older than `MAX_OFFER_AGE_SECS` or dated more than
    /// `MAX_OFFER_FUTURE_SECS` ahead of `now`.
    pub fn check_fresh(&self, now: u64) -> Result<(), ProvisioningError> {
        let (created_at, now_) = (self.created_at, now);
        if created_at > now.saturating_add(MAX_OFFER_FUTURE_SECS) {
            return Err(ProvisioningError::OfferFromFuture { created_at, now: now_ });
        }
        if now > created_at.saturating_add(MAX_OFFER_AGE_SECS) {
            return Err(ProvisioningError::OfferExpired { created_at, now: now_ });
        }
        Ok(())
    }
}

/// What the phone sends the new device: everything it needs to join the user's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPayload {
    /// The user the device joins.
    pub user: UserId,
    /// The user's master public key (Ed25519), which signs the endorsement and the list.
    pub master_public: [u8; 32],
    /// The master key's endorsement of the new device's identity (1 to
    /// `MAX_LINK_ENDORSEMENT_BYTES` bytes, decoded by the device layer).
    pub endorsement: Vec<u8>,
    /// The current device list, with the new device in it (1 to
    /// `MAX_LINK_DEVICE_LIST_BYTES` bytes, decoded by the device layer).
    pub device_list: Vec<u8>,
}

impl LinkPayload {
    /// The encoding sealed inside a message (headerless but for its version byte).
    /// Refuses an endorsement or list that is empty or over its bound, or a master key
    /// that is not a valid Ed25519 point.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, ProvisioningError> {
        check_master(&self.master_public)?;
        check_blob(&self.endorsement, MAX_LINK_ENDORSEMENT_BYTES, "endorsement length")?;
        check_blob(&self.device_list, MAX_LINK_DEVICE_LIST_BYTES, "device list length")?;
        let mut w = Writer::raw(
            MAX_LINK_PAYLOAD_BYTES
                .min(1 + 1 + self.user.as_str().len() + 32 + 4 + self.endorsement.len() + self.device_list.len()),
        );
        w.u8(PROVISIONING_VERSION);
        w.u8(self.user.as_str().len() as u8).bytes(self.user.as_str().as_bytes());
        w.bytes(&self.master_public);
        w.u16(self.endorsement.len() as u16).bytes(&self.endorsement);
        w.u16(self.device_list.len() as u16).bytes(&self.device_list);
        Ok(w.into_secret_bytes())
    }

    /// Decodes a payload (one bounded parse, every field checked, trailing bytes refused).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProvisioningError> {
        if bytes.len() > MAX_LINK_PAYLOAD_BYTES {
            return Err(DecodeError::TooLarge { len: bytes.len(), max: MAX_LINK_PAYLOAD_BYTES }.into());
        }
        let mut r = Reader::raw(bytes);
        let version = r.u8().map_err(|_| DecodeError::Empty)?;
        if version != PROVISIONING_VERSION {
            return Err(DecodeError::UnsupportedVersion(version).into());
        }
        let len = usize::from(r.u8()?);
        let user = core::str::from_utf8(r.bytes(len)?).map_err(|_| DecodeError::InvalidValue("user id"))?;
        let user = UserId::parse(user).map_err(|_| DecodeError::InvalidValue("user id"))?;
        let master_public: [u8; 32] = r.array()?;
        check_master(&master_public)?;
        let endorsement = read_blob(&mut r, MAX_LINK_ENDORSEMENT_BYTES, "endorsement length")?;
        let device_list = read_blob(&mut r, MAX_LINK_DEVICE_LIST_BYTES, "device list length")?;
        r.finish()?;
        Ok(LinkPayload { user, master_public, endorsement, device_list })
    }
}

/// What the phone sends back: an ephemeral X25519 key and the sealed [`LinkPayload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningMessage {
    ephemeral: [u8; 32],
    ciphertext: Vec<u8>,
}

impl ProvisioningMessage {
    /// Decodes a message: type 0x58, version 1, size at most
    /// `MAX_PROVISIONING_MESSAGE_BYTES` (checked first), a canonical ephemeral key, and
    /// a ciphertext of at least the smallest payload plus the tag.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProvisioningError> {
        let mut r = Reader::open(bytes, MESSAGE_TYPE, MAX_PROVISIONING_MESSAGE_BYTES)?;
        let ephemeral: [u8; 32] = r.array()?;
        if ephemeral[31] & 0x80 != 0 {
            return Err(DecodeError::InvalidValue("ephemeral key").into());
        }
        let ciphertext = r.rest();
        if ciphertext.len() < PAYLOAD_MIN_BYTES + AEAD_TAG_BYTES {
            return Err(DecodeError::Truncated.into());
        }
        Ok(ProvisioningMessage { ephemeral, ciphertext: ciphertext.to_vec() })
    }

    /// The encoding: `0x58 || 0x01 || ephemeral || ciphertext`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_header(MESSAGE_TYPE, 2 + 32 + self.ciphertext.len());
        w.bytes(&self.ephemeral).bytes(&self.ciphertext);
        w.into_bytes()
    }

    /// The ephemeral X25519 key.
    pub fn ephemeral(&self) -> &[u8; 32] {
        &self.ephemeral
    }
}

/// The AES-256-GCM key and nonce of a message for `offer_digest`, and its AAD.
fn keys(shared: &[u8; 32], ephemeral: &[u8; 32], offer_digest: &[u8; 32]) -> Result<(AeadKey, Vec<u8>), CryptoError> {
    let key = AeadKey::derive_salted(offer_digest, shared, labels::PROVISIONING)?;
    let mut aad = Vec::with_capacity(2 + 32 + 32);
    aad.extend_from_slice(&[MESSAGE_TYPE, PROVISIONING_VERSION]);
    aad.extend_from_slice(ephemeral);
    aad.extend_from_slice(offer_digest);
    Ok((key, aad))
}

/// The phone's side: seals `payload` to `offer` (checked fresh against `now`) under a
/// fresh ephemeral key. Refused: an offer older than `MAX_OFFER_AGE_SECS`
/// (`OfferExpired`) or dated more than `MAX_OFFER_FUTURE_SECS` ahead (`OfferFromFuture`),
/// a payload outside its bounds (`Decode`, `InvalidMasterKey`).
pub fn seal<R: rand_core::CryptoRng + ?Sized>(
    offer: &ProvisioningOffer,
    payload: &LinkPayload,
    now: u64,
    rng: &mut R,
) -> Result<ProvisioningMessage, ProvisioningError> {
    offer.check_fresh(now)?;
    let plaintext = payload.to_bytes()?;
    let eph = crypto::random_x25519(rng);
    let ephemeral = crypto::x25519_public(&eph);
    // The offer's key was checked not to be of low order when it was decoded or made.
    let shared = crypto::dh(&eph, &offer.provisioning_key).map_err(|_| ProvisioningError::NonContributory)?;
    let (key, aad) = keys(shared.as_bytes(), &ephemeral, &offer.digest())?;
    let ciphertext = key.seal(&aad, &plaintext)?;
    Ok(ProvisioningMessage { ephemeral, ciphertext })
}

/// The new device's side: the one-time provisioning secret behind an offer. Wiped on
/// drop and after its one successful [`open`](ProvisioningSecret::open); never printed.
pub struct ProvisioningSecret {
    /// `None` once spent.
    secret: Option<StaticSecret>,
    offer: ProvisioningOffer,
    offer_digest: [u8; 32],
}

impl core::fmt::Debug for ProvisioningSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProvisioningSecret")
            .field("secret", &"<redacted>")
            .field("device", &self.offer.device)
            .field("used", &self.is_used())
            .finish()
    }
}

impl ProvisioningSecret {
    /// Makes a fresh provisioning key for the device `identity` / `device`, dated `now`,
    /// and the offer to show as a QR code.
    pub fn new<R: rand_core::CryptoRng + ?Sized>(
        identity: &IdentityKey,
        device: DeviceId,
        now: u64,
        rng: &mut R,
    ) -> (Self, ProvisioningOffer) {
        let mut secret = crypto::random_x25519(rng);
        let mut provisioning_key = crypto::x25519_public(&secret);
        // A random scalar lands on a low-order public key with negligible probability;
        // draw again rather than ever offer one.
        while check_x25519(&provisioning_key, "provisioning key").is_err() {
            secret = crypto::random_x25519(rng);
            provisioning_key = crypto::x25519_public(&secret);
        }
        let offer = ProvisioningOffer { provisioning_key, identity: *identity, device, created_at: now };
        let offer_digest = offer.digest();
        (ProvisioningSecret { secret: Some(secret), offer: offer.clone(), offer_digest }, offer)
    }

    /// The offer this secret belongs to.
    pub fn offer(&self) -> &ProvisioningOffer {
        &self.offer
    }

    /// Whether this secret already opened a message (and is wiped).
    pub fn is_used(&self) -> bool {
        self.secret.is_none()
    }

    /// Opens a message sealed to this offer and decodes its payload (the payload's user
    /// id, master key and bounds are checked; the endorsement and list are the device
    /// layer's to verify). On success the secret is wiped: it opens one message only.
    ///
    /// Refused, leaving the secret exactly as it was: a malformed or oversized message
    /// (`Decode`), a low-order ephemeral key (`NonContributory`), a message for another
    /// offer or tampered (`AuthenticationFailed`), a payload that does not decode
    /// (`Decode`, `InvalidMasterKey`). After a success, every call is `Used`.
    pub fn open(&mut self, message: &[u8]) -> Result<LinkPayload, ProvisioningError> {
        let payload = self.peek(message)?;
        self.spend();
        Ok(payload)
    }

    /// Wipes the secret: it opens nothing more.
    pub(crate) fn spend(&mut self) {
        self.secret = None;
    }

    /// [`open`](ProvisioningSecret::open) without spending the secret: the device layer
    /// checks the payload against its own identity before it spends it.
    pub(crate) fn peek(&self, message: &[u8]) -> Result<LinkPayload, ProvisioningError> {
        let secret = self.secret.as_ref().ok_or(ProvisioningError::Used)?;
        let m = ProvisioningMessage::from_bytes(message)?;
        let shared = crypto::dh(secret, &m.ephemeral).map_err(|_| ProvisioningError::NonContributory)?;
        let (key, aad) = keys(shared.as_bytes(), &m.ephemeral, &self.offer_digest)?;
        let plaintext = Zeroizing::new(key.open(&aad, &m.ciphertext).ok_or(ProvisioningError::AuthenticationFailed)?);
        LinkPayload::from_bytes(&plaintext)
    }
}

fn check_x25519(key: &[u8; 32], what: &'static str) -> Result<(), KeyError> {
    if key[31] & 0x80 != 0 {
        return Err(KeyError::Decode(DecodeError::InvalidValue(what)));
    }
    if crypto::is_low_order_x25519(key) {
        return Err(KeyError::WeakKey(what));
    }
    Ok(())
}

fn check_master(key: &[u8; 32]) -> Result<(), ProvisioningError> {
    match VerifyingKey::from_bytes(key) {
        Ok(vk) if !vk.is_weak() && vk.to_bytes() == *key => Ok(()),
        _ => Err(ProvisioningError::InvalidMasterKey),
    }
}

fn check_blob(b: &[u8], max: usize, field: &'static str) -> Result<(), DecodeError> {
    if b.is_empty() || b.len() > max {
        return Err(DecodeError::InvalidValue(field));
    }
    Ok(())
}

fn read_blob(r: &mut Reader<'_>, max: usize, field: &'static str) -> Result<Vec<u8>, DecodeError> {
    let len = usize::from(r.u16()?);
    if len == 0 || len > max {
        return Err(DecodeError::InvalidValue(field));
    }
    Ok(r.bytes(len)?.to_vec())
}

#[cfg(test)]
mod tests;
