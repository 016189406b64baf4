//! The store's domain-separation labels (HKDF `info` strings), one use each.
//!
//! They extend the core's label list (`gochat_e2ee::labels`); no label here equals or
//! prefixes another label of the protocol, so a key derived for the store can never be
//! accepted for another purpose. `docs/protocol.md` (sections 9 and 16) lists them.

/// HKDF info prefix of a keyslot's key-encryption key; the method byte follows
/// (0x01 platform key, 0x02 passcode/Argon2id).
pub const STORE_KEYSLOT: &[u8] = b"GoChat-E2EE v1 store keyslot";
/// HKDF info of the record-encryption key derived from the data key.
pub const STORE_ENCRYPTION_KEY: &[u8] = b"GoChat-E2EE v1 store encryption key";
/// HKDF info of the naming key (the HMAC key of record-key hashes) derived from the data key.
pub const STORE_NAMING_KEY: &[u8] = b"GoChat-E2EE v1 store naming key";
/// HKDF info that turns the record-encryption key and a record's salt into its
/// AES-256-GCM key and nonce.
pub const STORE_RECORD: &[u8] = b"GoChat-E2EE v1 store record";
/// SHA-256 prefix of the digest that names a group message in the inbox.
pub const STORE_INBOX_GROUP: &[u8] = b"GoChat-E2EE v1 store inbox group";
/// SHA-256 prefix of the digest that names a channel post in the inbox.
pub const STORE_INBOX_CHANNEL: &[u8] = b"GoChat-E2EE v1 store inbox channel";
