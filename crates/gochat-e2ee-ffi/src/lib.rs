//! uniffi bindings for the GoChat E2EE core: Kotlin (Android/JVM), Swift (iOS), Python.
//!
//! Thin by design: every method converts types, takes the object's lock, calls the core
//! and maps errors. No protocol logic lives here.
//! - Objects are `Send + Sync` (state behind a `Mutex`), so any thread may call them.
//! - The API is synchronous: every operation is short and CPU-bound; apps call it from
//!   their own background threads.
//! - Randomness comes from the operating system (`getrandom`); time is an argument.
//! - Secrets never leave Rust except inside an encrypted snapshot, and an attachment's
//!   key inside its encoded pointer, which the app sends only inside an end-to-end
//!   encrypted message (`attachments`).
//! - The snapshot keys and plaintexts this layer receives are wiped when it is done with
//!   them (`Zeroizing`). What it hands back (a decrypted plaintext) and the buffers uniffi
//!   uses to carry values across the boundary are not: see `docs/api.md`, "Memory
//!   hygiene".
//! - Panics are caught by uniffi's scaffolding and surface as an internal error; the
//!   release profile keeps `panic = "unwind"` for that reason. A poisoned lock is
//!   recovered, since every core call is failure-atomic.

// `unsafe` is refused everywhere but in `jni` and `cabi` (their exported `no_mangle` symbols).
#![deny(unsafe_code)]

use std::sync::{Arc, Mutex};

use gochat_e2ee as core;
use gochat_e2ee::{ErrorCode, SnapshotKey};
use zeroize::Zeroizing;

uniffi::setup_scaffolding!();

mod attachments;
mod batch;
mod cabi;
mod certificates;
mod channels;
mod devices;
mod fastpath;
mod groups;
mod holder;
#[cfg(feature = "jni")]
mod jni;
mod link;
mod provisioning;
mod store;
mod trust;

pub use trust::{SafetyNumber, ScanResult};

pub use batch::{BatchOutcome, IncomingMessage, MAX_BATCH_MESSAGES};

pub use attachments::{
    AttachmentDecryptor, AttachmentEncryptor, AttachmentHeaderInfo, AttachmentPointerInfo, AttachmentStep,
    EncryptedAttachment, SegmentRange,
};

pub use channels::{
    AnnouncementRecord, ChannelKeyReceivedRecord, ChannelKind, ChannelReceivedRecord, ChannelRekeyRecord, ContentType,
    ControlReceived,
};

pub use groups::{
    FanOutRecord, GroupChangeRecord, GroupInfo, GroupMemberRecord, GroupPlaintextRecord, GroupSentRecord,
    OutgoingRecord, SenderKeyReceivedRecord, WithheldReason, WithheldRecord,
};

fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

macro_rules! error_enum {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Every error of the library, one variant per core `ErrorCode`, each with a
        /// human-readable `detail` and whether asking the sender to retry can help.
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
        pub enum GoChatError {
            $(
                $(#[doc = $doc])*
                #[error("{detail}")]
                $name {
                    /// What exactly was refused.
                    detail: String,
                    /// Whether asking the sender to retry can help.
                    retry_may_help: bool,
                },
            )*
        }

        impl From<core::Error> for GoChatError {
            fn from(e: core::Error) -> Self {
                Self::from_code(e.code(), e.to_string(), e.retry_may_help())
            }
        }

        impl GoChatError {
            pub(crate) fn from_code(code: ErrorCode, detail: String, retry_may_help: bool) -> Self {
                match code {
                    $(ErrorCode::$name => GoChatError::$name { detail, retry_may_help },)*
                }
            }

            /// The stable error code name (as in `docs/protocol.md`, section 11).
            pub fn code(&self) -> &'static str {
                match self {
                    $(GoChatError::$name { .. } => stringify!($name),)*
                }
            }

            /// Whether asking the sender to retry can help.
            pub fn retry_may_help(&self) -> bool {
                match self {
                    $(GoChatError::$name { retry_may_help, .. } => *retry_may_help,)*
                }
            }
        }
    };
}

// One variant per core `ErrorCode`, from the core's single list.
gochat_e2ee::for_each_error_code!(error_enum);

type Result<T> = std::result::Result<T, GoChatError>;

/// The caller's snapshot key; the `Vec` uniffi lifted it into is wiped on return.
fn snapshot_key(key: Vec<u8>) -> Result<SnapshotKey> {
    let key = Zeroizing::new(key);
    SnapshotKey::from_slice(&key).map_err(|e| core::Error::from(e).into())
}

/// What a verified bundle contains (for backends that validate bundles).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BundleInfo {
    /// The owner's encoded identity key (66 bytes).
    pub identity_key: Vec<u8>,
    /// The identity fingerprint, 64 hex digits.
    pub fingerprint: String,
    /// Id of the signed prekey.
    pub signed_prekey_id: u32,
    /// Creation time of the signed prekey (seconds since the Unix epoch).
    pub signed_prekey_created_at: u64,
    /// Id of the one-time prekey, if the bundle has one.
    pub one_time_prekey_id: Option<u32>,
    /// Id of the ML-KEM-1024 prekey.
    pub pq_prekey_id: u32,
    /// Whether the ML-KEM prekey is the last-resort one.
    pub pq_prekey_is_last_resort: bool,
}

/// The protocol limits, as enforced (see `docs/protocol.md`, section 10).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Limits {
    /// `MAX_FORWARD_JUMP`.
    pub max_forward_jump: u32,
    /// `MAX_SKIPPED_KEYS`.
    pub max_skipped_keys: u32,
    /// `MAX_RECEIVER_CHAINS`.
    pub max_receiver_chains: u32,
    /// `MAX_ARCHIVED_SESSIONS`.
    pub max_archived_sessions: u32,
    /// `MAX_MESSAGE_BYTES`.
    pub max_message_bytes: u32,
    /// `MAX_PLAINTEXT_BYTES`.
    pub max_plaintext_bytes: u32,
    /// `MAX_BUNDLE_BYTES`.
    pub max_bundle_bytes: u32,
    /// `PADDING_BLOCK`.
    pub padding_block: u32,
    /// `MAX_GROUP_MEMBERS`: member devices in one group.
    pub max_group_members: u32,
    /// Groups' `MAX_FORWARD_JUMP`: how far one group message may skip ahead on its
    /// sender's chain.
    pub group_max_forward_jump: u32,
    /// Groups' `MAX_SKIPPED_KEYS`: skipped message keys held per sender key.
    pub group_max_skipped_keys: u32,
    /// `MAX_GROUP_SKIPPED_KEYS`: skipped message keys held in one group, all senders.
    pub max_group_skipped_keys: u32,
    /// `MAX_SENDER_GENERATIONS`: sender key generations kept per member.
    pub max_sender_generations: u32,
    /// `MAX_GROUPS`: groups one device holds.
    pub max_groups: u32,
    /// `MAX_GROUP_MESSAGE_BYTES`.
    pub max_group_message_bytes: u32,
    /// `MAX_ANNOUNCEMENT_BODY_BYTES`.
    pub max_announcement_body_bytes: u32,
    /// `MAX_ANNOUNCEMENT_FUTURE_SECS`: how far after `now` a post may be dated.
    pub max_announcement_future_secs: u64,
    /// `MAX_CHANNELS`: channels one device publishes or subscribes to.
    pub max_channels: u32,
    /// Attachments' `HEADER_BYTES`: the blob header's length.
    pub header_bytes: u32,
    /// Attachments' `DEFAULT_SEGMENT_SIZE`: plaintext bytes per segment unless chosen.
    pub default_segment_size: u32,
    /// Attachments' `MIN_SEGMENT_SIZE`.
    pub min_segment_size: u32,
    /// Attachments' `MAX_SEGMENT_SIZE`: a decryptor buffers at most one segment.
    pub max_segment_size: u32,
    /// `MAX_ATTACHMENT_BYTES`: the largest attachment plaintext.
    pub max_attachment_bytes: u64,
    /// `MAX_POINTER_BYTES`: the longest encoded attachment pointer.
    pub max_pointer_bytes: u32,
}

/// How a peer's identity relates to the one pinned for it (see `docs/api.md`,
/// "Identity changes"). An app must show `Changed` to the user.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum IdentityEvent {
    /// First contact: this identity is now pinned (trust on first use).
    New,
    /// The pinned identity.
    Same,
    /// Another identity than the pinned one.
    Changed {
        /// The identity pinned before (66 bytes).
        previous: Vec<u8>,
        /// True if the new identity is now pinned (policy `Notify`, or `Certified` with a
        /// verified certificate); false if it waits for `approve_identity` and sending to
        /// the peer fails with `IdentityChanged`.
        approved: bool,
        /// Which rule decided `approved`.
        reason: ChangeReason,
    },
}

/// Why an identity change was, or was not, accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeReason {
    /// Accepted by the `Notify` policy.
    Notify,
    /// Accepted on a verified device certificate (policy `Certified`).
    Certified,
    /// Policy `RequireApproval`: waits for `approve_identity`.
    AwaitingApproval,
    /// Policy `Certified` without a verified certificate: blocked as under
    /// `RequireApproval`.
    Uncertified,
}

impl From<core::ChangeReason> for ChangeReason {
    fn from(r: core::ChangeReason) -> Self {
        match r {
            core::ChangeReason::Notify => ChangeReason::Notify,
            core::ChangeReason::Certified => ChangeReason::Certified,
            core::ChangeReason::AwaitingApproval => ChangeReason::AwaitingApproval,
            core::ChangeReason::Uncertified => ChangeReason::Uncertified,
        }
    }
}

impl From<core::IdentityEvent> for IdentityEvent {
    fn from(e: core::IdentityEvent) -> Self {
        match e {
            core::IdentityEvent::New => IdentityEvent::New,
            core::IdentityEvent::Same => IdentityEvent::Same,
            core::IdentityEvent::Changed { previous, approved, reason } => {
                IdentityEvent::Changed { previous: previous.to_bytes().to_vec(), approved, reason: reason.into() }
            }
        }
    }
}

/// What the device does when a peer shows a changed identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum IdentityPolicy {
    /// The default: the change waits for `approve_identity`; sending is blocked meanwhile.
    RequireApproval,
    /// Accept the new identity at once (the change is still reported).
    Notify,
    /// Accept a change at once if it comes with a verified device certificate;
    /// otherwise as `RequireApproval`.
    Certified,
}

/// A decrypted message, its sender's identity, and the identity event.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DecryptResult {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The sender's identity key (66 bytes).
    pub sender_identity: Vec<u8>,
    /// New, same, or changed: must be checked.
    pub identity_event: IdentityEvent,
    /// The message digest (32 bytes): on a store-backed device, pass it to `ack` once the
    /// message is handled durably; the app deduplicates by it.
    pub digest: Vec<u8>,
    /// True if a store-backed device decrypted this message before (and it was not yet
    /// acknowledged): the app may have handled it already.
    pub redelivered: bool,
}

impl DecryptResult {
    pub(crate) fn new(d: core::Decrypted, digest: &[u8; 32], redelivered: bool) -> Self {
        DecryptResult {
            plaintext: d.plaintext,
            sender_identity: d.sender.to_bytes().to_vec(),
            identity_event: d.identity.into(),
            digest: digest.to_vec(),
            redelivered,
        }
    }
}

fn identity_key_arg(bytes: &[u8]) -> Result<core::IdentityKey> {
    core::IdentityKey::from_bytes(bytes).map_err(|e| core::Error::from(e).into())
}

/// Decodes and verifies a bundle: every signature, key and byte.
#[uniffi::export]
pub fn verify_bundle(bundle: Vec<u8>) -> Result<BundleInfo> {
    let b = core::PreKeyBundle::from_bytes(&bundle).map_err(core::Error::from)?;
    Ok(BundleInfo {
        identity_key: b.identity().to_bytes().to_vec(),
        fingerprint: b.identity().fingerprint_hex(),
        signed_prekey_id: b.signed_prekey().id,
        signed_prekey_created_at: b.signed_prekey().created_at,
        one_time_prekey_id: b.one_time_prekey().map(|k| k.id),
        pq_prekey_id: b.pq_prekey().id,
        pq_prekey_is_last_resort: b.pq_prekey().kind == core::keys::PqPreKeyKind::LastResort,
    })
}

/// The fingerprint (64 hex digits) of an encoded identity key.
#[uniffi::export]
pub fn identity_fingerprint(identity_key: Vec<u8>) -> Result<String> {
    Ok(core::IdentityKey::from_bytes(&identity_key).map_err(core::Error::from)?.fingerprint_hex())
}

/// The digest by which a retry request names a message.
#[uniffi::export]
pub fn message_digest(message: Vec<u8>) -> Vec<u8> {
    core::Device::message_digest(&message).to_vec()
}

/// The library version.
#[uniffi::export]
pub fn library_version() -> String {
    core::VERSION.to_owned()
}

/// The enforced limits.
#[uniffi::export]
pub fn limits() -> Limits {
    use core::limits::*;
    let u = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    Limits {
        max_forward_jump: MAX_FORWARD_JUMP,
        max_skipped_keys: u(MAX_SKIPPED_KEYS),
        max_receiver_chains: u(MAX_RECEIVER_CHAINS),
        max_archived_sessions: u(MAX_ARCHIVED_SESSIONS),
        max_message_bytes: u(MAX_MESSAGE_BYTES),
        max_plaintext_bytes: u(MAX_PLAINTEXT_BYTES),
        max_bundle_bytes: u(MAX_BUNDLE_BYTES),
        padding_block: u(PADDING_BLOCK),
        max_group_members: u(core::group::MAX_GROUP_MEMBERS),
        group_max_forward_jump: core::group::MAX_FORWARD_JUMP,
        group_max_skipped_keys: u(core::group::MAX_SKIPPED_KEYS),
        max_group_skipped_keys: u(core::group::MAX_GROUP_SKIPPED_KEYS),
        max_sender_generations: u(core::group::MAX_SENDER_GENERATIONS),
        max_groups: u(core::group::MAX_GROUPS),
        max_group_message_bytes: u(core::group::MAX_GROUP_MESSAGE_BYTES),
        max_announcement_body_bytes: u(core::channel::MAX_ANNOUNCEMENT_BODY_BYTES),
        max_announcement_future_secs: core::channel::MAX_ANNOUNCEMENT_FUTURE_SECS,
        max_channels: u(core::channel::MAX_CHANNELS),
        header_bytes: u(core::attachment::HEADER_BYTES),
        default_segment_size: core::attachment::DEFAULT_SEGMENT_SIZE,
        min_segment_size: core::attachment::MIN_SEGMENT_SIZE,
        max_segment_size: core::attachment::MAX_SEGMENT_SIZE,
        max_attachment_bytes: core::attachment::MAX_ATTACHMENT_BYTES,
        max_pointer_bytes: u(core::attachment::MAX_POINTER_BYTES),
    }
}

/// A device: identity, prekeys and sessions with peer devices. Thread safe.
#[derive(Debug, uniffi::Object)]
pub struct Device {
    inner: Mutex<holder::Holder>,
}

#[uniffi::export]
impl Device {
    /// Creates a device with a fresh identity, signed prekey and last-resort ML-KEM
    /// prekey. `now` is seconds since the Unix epoch.
    #[uniffi::constructor]
    pub fn new(user_id: String, now: u64) -> Arc<Self> {
        Arc::new(Device { inner: Mutex::new(holder::Holder::Memory(core::Device::new(&user_id, now, &mut rng()))) })
    }

    /// Restores a device from a snapshot made by `export` with the same 32-byte key.
    ///
    /// Named `from_snapshot` rather than `import`: `import` is a keyword in Python and
    /// Swift (uniffi turned it into a private-looking `Device._import` in Python).
    #[uniffi::constructor]
    pub fn from_snapshot(key: Vec<u8>, snapshot: Vec<u8>) -> Result<Arc<Self>> {
        let d = core::Device::import(&snapshot_key(key)?, &snapshot)?;
        Ok(Arc::new(Device { inner: Mutex::new(holder::Holder::Memory(d)) }))
    }

    /// The user id given at creation.
    pub fn user_id(&self) -> String {
        self.lock().user_id().to_owned()
    }

    /// The encoded identity key (66 bytes).
    pub fn identity_key(&self) -> Vec<u8> {
        self.lock().identity().to_bytes().to_vec()
    }

    /// The identity fingerprint, 64 hex digits.
    pub fn fingerprint(&self) -> String {
        self.lock().identity().fingerprint_hex()
    }

    /// Generates `count` one-time X25519 prekeys (at most 200 held).
    pub fn generate_one_time_prekeys(&self, count: u32) -> Result<()> {
        self.with(|d| {
            d.account_mut().generate_one_time_prekeys(count as usize, &mut rng()).map_err(core::Error::from)
        })?;
        Ok(())
    }

    /// Generates `count` one-time ML-KEM-1024 prekeys (at most 200 held).
    pub fn generate_pq_prekeys(&self, count: u32, now: u64) -> Result<()> {
        self.with(|d| d.account_mut().generate_pq_prekeys(count as usize, now, &mut rng()).map_err(core::Error::from))?;
        Ok(())
    }

    /// Rotates the signed prekey (the old one stays usable for 30 days).
    pub fn rotate_signed_prekey(&self, now: u64) -> Result<()> {
        self.with(|d| d.account_mut().rotate_signed_prekey(now, &mut rng()).map_err(core::Error::from))?;
        Ok(())
    }

    /// Rotates the last-resort ML-KEM prekey (the old one stays usable for 30 days).
    pub fn rotate_last_resort_prekey(&self, now: u64) -> Result<()> {
        self.with(|d| d.account_mut().rotate_last_resort_prekey(now, &mut rng()).map_err(core::Error::from))?;
        Ok(())
    }

    /// Drops retired prekeys past their grace period.
    pub fn expire_prekeys(&self, now: u64) -> Result<()> {
        self.with(|d| {
            d.account_mut().expire_prekeys(now);
            Ok(())
        })
    }

    /// A fresh bundle to publish: the next unissued one-time prekeys, else last-resort.
    pub fn next_bundle(&self) -> Result<Vec<u8>> {
        Ok(self.with(|d| d.next_bundle())?.to_bytes())
    }

    /// Starts an outbound session with `peer` from its bundle (verified first). The
    /// bundle's identity is checked against the pin: refused with `IdentityChanged` if it
    /// differs under `RequireApproval`.
    pub fn initiate(&self, peer: String, bundle: Vec<u8>) -> Result<IdentityEvent> {
        let bundle = core::PreKeyBundle::from_bytes(&bundle).map_err(core::Error::from)?;
        Ok(self.with(|d| d.initiate(&peer, &bundle, &mut rng()))?.into())
    }

    /// Sets the identity-change policy (default `RequireApproval`).
    pub fn set_identity_policy(&self, policy: IdentityPolicy) -> Result<()> {
        let policy = match policy {
            IdentityPolicy::RequireApproval => core::IdentityPolicy::RequireApproval,
            IdentityPolicy::Notify => core::IdentityPolicy::Notify,
            IdentityPolicy::Certified => core::IdentityPolicy::Certified,
        };
        self.with(|d| {
            d.set_identity_policy(policy);
            Ok(())
        })
    }

    /// The identity-change policy in force.
    pub fn identity_policy(&self) -> IdentityPolicy {
        match self.lock().trust().policy() {
            core::IdentityPolicy::RequireApproval => IdentityPolicy::RequireApproval,
            core::IdentityPolicy::Notify => IdentityPolicy::Notify,
            core::IdentityPolicy::Certified => IdentityPolicy::Certified,
        }
    }

    /// The app's trust decision: pins `identity_key` for `peer` and makes the newest
    /// session with it current (approving the pinned one dismisses a pending change).
    pub fn approve_identity(&self, peer: String, identity_key: Vec<u8>) -> Result<()> {
        let identity = identity_key_arg(&identity_key)?;
        self.with(|d| d.approve_identity(&peer, &identity))?;
        Ok(())
    }

    /// Deletes every session with `peer` (its pinned identity stays); whether there was
    /// one. The way to shed state when calls fail with `StateFull`.
    pub fn remove_sessions(&self, peer: String) -> Result<bool> {
        self.with(|d| Ok(d.remove_sessions(&peer)))
    }

    /// Forgets the pinned identity of `peer`: the next session is a first contact again
    /// (trust on first use). Only for an explicit user decision; whether one was pinned.
    pub fn forget_identity(&self, peer: String) -> Result<bool> {
        self.with(|d| Ok(d.forget_identity(&peer)))
    }

    /// The exact size in bytes of the device's state (a device snapshot is 51 bytes
    /// more); never more than the state budget.
    pub fn state_len(&self) -> u64 {
        self.lock().state_len() as u64
    }

    /// The identity pinned for `peer`, if any.
    pub fn pinned_identity(&self, peer: String) -> Option<Vec<u8>> {
        self.lock().trust().pinned(&peer).map(|k| k.to_bytes().to_vec())
    }

    /// The changed identity `peer` showed that awaits approval, if any.
    pub fn pending_identity(&self, peer: String) -> Option<Vec<u8>> {
        self.lock().trust().pending(&peer).map(|k| k.to_bytes().to_vec())
    }

    /// Whether a session with `peer` exists.
    pub fn has_session(&self, peer: String) -> bool {
        self.lock().session_record(&peer).is_some_and(|r| r.has_current())
    }

    /// The identity key of `peer` on the current session, if any.
    pub fn peer_identity(&self, peer: String) -> Option<Vec<u8>> {
        self.lock().session_record(&peer).and_then(|r| r.remote_identity()).map(|k| k.to_bytes().to_vec())
    }

    /// Encrypts for `peer` on the current session.
    pub fn encrypt(&self, peer: String, plaintext: Vec<u8>) -> Result<Vec<u8>> {
        let plaintext = Zeroizing::new(plaintext);
        self.with(|d| d.encrypt(&peer, &plaintext))
    }

    /// Decrypts a message from `peer` (starting a session on a prekey message), with
    /// the sender's identity and the identity event the app must check.
    ///
    /// On a store-backed device the result is committed with the ratchet step and kept
    /// until `ack(digest)`: the same message delivered again (after a crash) returns it
    /// again with `redelivered` set, instead of `Duplicate`.
    pub fn decrypt(&self, peer: String, message: Vec<u8>) -> Result<DecryptResult> {
        let (d, digest, redelivered) = self.with_holder(|h| match h {
            holder::Holder::Memory(d) => {
                Ok((d.decrypt(&peer, &message, &mut rng())?, core::Device::message_digest(&message), false))
            }
            holder::Holder::Stored(s) => {
                let r = s.decrypt(&peer, &message, &mut rng())?;
                Ok((r.decrypted, r.digest, r.redelivered))
            }
        })?;
        Ok(DecryptResult::new(d, &digest, redelivered))
    }

    /// Builds a signed retry request for `failed_message` from `peer`, addressed to the
    /// identity `recipient_identity` (the sender of the failed message), stamped `now`.
    /// Refused with `Duplicate` for a message whose header names a used counter.
    pub fn retry_request(
        &self,
        peer: String,
        recipient_identity: Vec<u8>,
        failed_message: Vec<u8>,
        now: u64,
    ) -> Result<Vec<u8>> {
        let recipient = identity_key_arg(&recipient_identity)?;
        self.with(|d| d.retry_request(&peer, &recipient, &failed_message, now))
    }

    /// Handles a retry request from `peer` at time `now`: starts a new session and
    /// returns the digest of the message to re-send.
    pub fn handle_retry_request(&self, peer: String, request: Vec<u8>, now: u64) -> Result<Vec<u8>> {
        Ok(self.with(|d| d.handle_retry_request(&peer, &request, now, &mut rng()))?.to_vec())
    }

    /// Exports the whole device as a snapshot encrypted under the 32-byte `key`. Refused
    /// (`NotSupported`) on a store-backed device, whose live state must not be copied: move
    /// it with `move_out`, which retires the store.
    pub fn export(&self, key: Vec<u8>) -> Result<Vec<u8>> {
        let key = snapshot_key(key)?;
        self.with_holder(|h| match h {
            holder::Holder::Memory(d) => Ok(d.export(&key, &mut rng())?),
            holder::Holder::Stored(_) => Err(store::not_supported("a store-backed device moves with move_out")),
        })
    }

    /// Exports the session record with `peer` as a snapshot.
    pub fn export_session(&self, peer: String, key: Vec<u8>) -> Result<Vec<u8>> {
        let key = snapshot_key(key)?;
        Ok(self.lock().export_session(&peer, &key, &mut rng())?)
    }

    /// Imports a session record snapshot for `peer`, replacing any held.
    pub fn import_session(&self, peer: String, key: Vec<u8>, snapshot: Vec<u8>) -> Result<()> {
        let key = snapshot_key(key)?;
        self.with(|d| d.import_session(&peer, &key, &snapshot))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_core_code_maps_to_a_variant_of_the_same_name() {
        for code in ErrorCode::ALL {
            assert_eq!(GoChatError::from_code(code, String::new(), false).code(), code.as_str());
        }
        let e: GoChatError = core::Error::NoSession.into();
        assert_eq!(e.code(), "NoSession");
        assert!(matches!(e, GoChatError::NoSession { retry_may_help: true, .. }));
    }

    #[test]
    fn conversation_through_the_ffi_api() {
        let alice = Device::new("alice".into(), 1);
        let bob = Device::new("bob".into(), 1);
        bob.generate_one_time_prekeys(2).unwrap();
        bob.generate_pq_prekeys(2, 1).unwrap();
        let bundle = bob.next_bundle().unwrap();
        assert_eq!(verify_bundle(bundle.clone()).unwrap().one_time_prekey_id, Some(1));
        assert_eq!(alice.initiate("bob".into(), bundle).unwrap(), IdentityEvent::New);
        let m = alice.encrypt("bob".into(), b"hi".to_vec()).unwrap();
        let got = bob.decrypt("alice".into(), m.clone()).unwrap();
        assert_eq!(got.plaintext, b"hi");
        assert_eq!(got.sender_identity, alice.identity_key());
        assert_eq!(got.identity_event, IdentityEvent::New);
        assert_eq!(bob.pinned_identity("alice".into()), Some(alice.identity_key()));
        let e = bob.decrypt("alice".into(), m).unwrap_err();
        assert_eq!(e.code(), "Duplicate");
        let key = vec![9u8; 32];
        let snap = bob.export(key.clone()).unwrap();
        let bob2 = Device::from_snapshot(key, snap).unwrap();
        assert_eq!(bob2.identity_key(), bob.identity_key());
        assert_eq!(Device::from_snapshot(vec![1; 31], vec![]).unwrap_err().code(), "InvalidSnapshotKey");
    }
}
