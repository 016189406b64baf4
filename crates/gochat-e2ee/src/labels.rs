//! Every domain-separation label used by the protocol, in one place.
//!
//! Each label is an ASCII string used exactly once, either as an HKDF `info`, as the
//! prefix of a signed message, or as the prefix of a hash. No two uses share a label, so
//! a value computed for one purpose can never be accepted for another. `docs/protocol.md`
//! lists them in the same order.

/// Hash prefix of an identity fingerprint.
pub const IDENTITY_FINGERPRINT: &[u8] = b"GoChat-E2EE v1 identity fingerprint";
/// Signature prefix of a signed X25519 prekey.
pub const SIG_SIGNED_PREKEY: &[u8] = b"GoChat-E2EE v1 signed prekey";
/// Signature prefix of a one-time X25519 prekey.
pub const SIG_ONE_TIME_PREKEY: &[u8] = b"GoChat-E2EE v1 one-time prekey";
/// Signature prefix of an ML-KEM-1024 prekey (one-time or last-resort).
pub const SIG_PQ_PREKEY: &[u8] = b"GoChat-E2EE v1 ML-KEM-1024 prekey";
/// Signature prefix of a retry request.
pub const SIG_RETRY_REQUEST: &[u8] = b"GoChat-E2EE v1 retry request";
/// HKDF info of the PQXDH session secret.
pub const PQXDH: &[u8] = b"GoChat-E2EE v1 PQXDH X25519 SHA-256 ML-KEM-1024";
/// HKDF info of a root-chain step of the Double Ratchet.
pub const RATCHET_ROOT: &[u8] = b"GoChat-E2EE v1 ratchet root";
/// HKDF info prefix (followed by the sender epoch, u32) that turns a 1:1 message key
/// into an AES-256-GCM-SIV key and nonce (message version 2).
pub const MESSAGE_KEYS: &[u8] = b"GoChat-E2EE v2 1:1 message keys";
/// Hash prefix of a last-resort prekey use record (replay detection).
pub const LAST_RESORT_USE: &[u8] = b"GoChat-E2EE v1 last-resort use";
/// Hash prefix of the digest that names a message in a retry request.
pub const MESSAGE_DIGEST: &[u8] = b"GoChat-E2EE v1 message digest";
/// HKDF info of a snapshot encryption key and nonce.
pub const SNAPSHOT: &[u8] = b"GoChat-E2EE v1 snapshot";

/// Hash prefix of a group membership state (12.2).
pub const GROUP_STATE: &[u8] = b"GoChat-E2EE v1 group state";
/// Signature prefix of a group commit (12.3).
pub const SIG_GROUP_COMMIT: &[u8] = b"GoChat-E2EE v1 group commit";
/// Signature prefix of a group welcome (12.3).
pub const SIG_GROUP_WELCOME: &[u8] = b"GoChat-E2EE v1 group welcome";
/// Signature prefix of a group message (12.5).
pub const SIG_GROUP_MESSAGE: &[u8] = b"GoChat-E2EE v1 group message";
/// HKDF info that turns a sender-chain message key into an AES-256-GCM key and nonce.
pub const GROUP_MESSAGE_KEYS: &[u8] = b"GoChat-E2EE v1 group message keys";
/// Appended to a pairwise session's AD for control messages (sender-key and channel-key
/// distributions), so a control message never decrypts as a chat message or back.
pub const PAIRWISE_CONTROL: &[u8] = b"GoChat-E2EE v1 pairwise control";
/// Signature prefix of a channel announcement (type 0x30).
pub const SIG_CHANNEL_ANNOUNCEMENT: &[u8] = b"GoChat-E2EE v1 channel announcement";
/// Signature prefix of a channel key rotation (type 0x31), for both signatures.
pub const SIG_CHANNEL_KEY_ROTATION: &[u8] = b"GoChat-E2EE v1 channel key rotation";
/// HKDF info that turns a restricted channel's message key into an AES-256-GCM-SIV key
/// and nonce (type 0x32).
pub const CHANNEL_MESSAGE_KEYS: &[u8] = b"GoChat-E2EE v1 channel message keys";
/// Signature prefix of a channel key distribution (type 0x33).
pub const SIG_CHANNEL_KEY_DISTRIBUTION: &[u8] = b"GoChat-E2EE v1 channel key distribution";
/// HKDF info that turns an attachment key into its AES-256-GCM key and its key
/// commitment (14.2).
pub const ATTACHMENT_KEYS: &[u8] = b"GoChat-E2EE v1 attachment keys";

/// Hash prefix of a user's safety-number fingerprint (15.1).
pub const SAFETY_NUMBER: &[u8] = b"GoChat-E2EE v1 safety number";
/// Signature prefix of a device list (type 0x55, 15.8).
pub const SIG_DEVICE_LIST: &[u8] = b"GoChat-E2EE v1 device list";
/// Signature prefix of a device endorsement (type 0x56, 15.8).
pub const SIG_DEVICE_ENDORSEMENT: &[u8] = b"GoChat-E2EE v1 device endorsement";
/// HKDF info of a provisioning message's AES-256-GCM key and nonce (15.9).
pub const PROVISIONING: &[u8] = b"GoChat-E2EE v1 provisioning";
/// Signature prefix of an agency certificate (type 0x51, 15.4).
pub const SIG_AGENCY_CERTIFICATE: &[u8] = b"GoChat-E2EE v1 agency certificate";
/// Signature prefix of a device certificate (type 0x52, 15.5).
pub const SIG_DEVICE_CERTIFICATE: &[u8] = b"GoChat-E2EE v1 device certificate";
/// Signature prefix of a revocation list (type 0x54, 15.7).
pub const SIG_REVOCATION_LIST: &[u8] = b"GoChat-E2EE v1 revocation list";

/// Symmetric-chain HMAC input that yields a message key (Signal: 0x01).
pub const CHAIN_MESSAGE_KEY_BYTE: u8 = 0x01;
/// Symmetric-chain HMAC input that yields the next chain key (Signal: 0x02).
pub const CHAIN_NEXT_KEY_BYTE: u8 = 0x02;
/// The 32-byte prefix of the PQXDH key material (as in X3DH/PQXDH, for X25519).
pub const PQXDH_PREFIX: [u8; 32] = [0xFF; 32];
