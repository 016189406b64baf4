//! wasm-bindgen bindings for the GoChat E2EE core (the npm package `@gochat/e2ee`).
//!
//! Thin by design: convert types, call the core, map errors. No protocol logic here.
//! - `Uint8Array` in and out; times are seconds since the Unix epoch as a JS `number`.
//! - Errors are thrown as `Error` objects with `name = "GoChatError"`, a stable `code`
//!   (the core's `ErrorCode`, e.g. `"Duplicate"`) and `retryMayHelp`.
//! - Randomness comes from `crypto.getRandomValues` (getrandom's `wasm_js` backend).
//! - Secrets never leave wasm memory except inside an encrypted snapshot.
//! - Snapshot keys and plaintexts are taken as owned `Vec<u8>` (the buffer wasm-bindgen
//!   copied them into), so they are wiped when the call is done with them; a decrypted
//!   plaintext is wiped in wasm memory once copied into its `Uint8Array`. The copies in
//!   the JS heap are the app's to wipe: see `docs/web.md`, "Memory hygiene".

#![forbid(unsafe_code)]

pub mod attachment;
pub mod certificates;
pub mod devices;
mod holder;
pub mod provisioning;
pub mod store;
pub mod trust;

use gochat_e2ee as core;
use gochat_e2ee::channel::{Announcement, ChannelId, ChannelKind, ContentType, Received};
use gochat_e2ee::device::ControlReceived;
use gochat_e2ee::group::{GroupChange, GroupId, GroupMember, Outgoing, RotationPolicy, Withheld, WithheldReason};
use gochat_e2ee::SnapshotKey;
use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use zeroize::Zeroizing;

fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// Converts a core error into a thrown JS `Error` with `code` and `retryMayHelp`.
fn js_error(e: core::Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("GoChatError");
    let obj: &JsValue = err.as_ref();
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(obj, &"code".into(), &e.code().as_str().into());
    let _ = js_sys::Reflect::set(obj, &"retryMayHelp".into(), &e.retry_may_help().into());
    err.into()
}

type JsResult<T> = Result<T, JsValue>;

fn seconds(now: f64) -> u64 {
    if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    }
}

fn identity_key(bytes: &[u8]) -> JsResult<core::IdentityKey> {
    core::IdentityKey::from_bytes(bytes).map_err(|e| js_error(e.into()))
}

/// `{kind: "new" | "same" | "changed", previous?: Uint8Array, approved?: boolean,
/// reason?: "notify" | "certified" | "awaitingApproval" | "uncertified"}`.
fn identity_event(e: core::IdentityEvent) -> JsValue {
    let o = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(&o, &k.into(), &v);
    };
    match e {
        core::IdentityEvent::New => set("kind", "new".into()),
        core::IdentityEvent::Same => set("kind", "same".into()),
        core::IdentityEvent::Changed { previous, approved, reason } => {
            set("kind", "changed".into());
            set("previous", js_sys::Uint8Array::from(&previous.to_bytes()[..]).into());
            set("approved", approved.into());
            let reason = match reason {
                core::ChangeReason::Notify => "notify",
                core::ChangeReason::Certified => "certified",
                core::ChangeReason::AwaitingApproval => "awaitingApproval",
                core::ChangeReason::Uncertified => "uncertified",
            };
            set("reason", reason.into());
        }
    }
    o.into()
}

/// `{plaintext, senderIdentity, identityEvent}`; the plaintext is wiped in wasm memory
/// once copied.
fn decrypted_obj(d: core::Decrypted) -> Obj {
    let plaintext = Zeroizing::new(d.plaintext);
    Obj::new()
        .set("plaintext", bytes(&plaintext))
        .set("senderIdentity", bytes(&d.sender.to_bytes()))
        .set("identityEvent", identity_event(d.identity))
}

/// `{plaintext, senderIdentity, identityEvent, digest, redelivered}`.
fn decrypted_with(d: core::Decrypted, digest: &[u8; 32], redelivered: bool) -> JsValue {
    decrypted_obj(d).set("digest", bytes(digest)).set("redelivered", redelivered).done()
}

/// The caller's snapshot key; wasm-bindgen's copy of it is wiped on return.
fn snapshot_key(key: Vec<u8>) -> JsResult<SnapshotKey> {
    let key = Zeroizing::new(key);
    SnapshotKey::from_slice(&key).map_err(|e| js_error(e.into()))
}

/// A plain JS object built field by field.
struct Obj(js_sys::Object);

impl Obj {
    fn new() -> Self {
        Obj(js_sys::Object::new())
    }

    fn set(self, key: &str, value: impl Into<JsValue>) -> Self {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&self.0, &key.into(), &value.into());
        self
    }

    fn done(self) -> JsValue {
        self.0.into()
    }
}

fn bytes(b: &[u8]) -> JsValue {
    Uint8Array::from(b).into()
}

fn opt_bytes(b: Option<&[u8]>) -> JsValue {
    b.map_or(JsValue::NULL, bytes)
}

fn strings(v: &[String]) -> JsValue {
    v.iter().map(JsValue::from).collect::<Array>().into()
}

/// A malformed argument from JS (thrown as `Malformed`).
fn malformed(what: &'static str) -> JsValue {
    js_error(core::wire::DecodeError::InvalidValue(what).into())
}

/// A 32-byte id (group or channel) from a `Uint8Array`; any other length is `Malformed`.
fn id32(b: &[u8], what: &'static str) -> JsResult<[u8; 32]> {
    <[u8; 32]>::try_from(b).map_err(|_| malformed(what))
}

fn group_id(b: &[u8]) -> JsResult<GroupId> {
    Ok(GroupId(id32(b, "group id")?))
}

/// Property `key` of a JS object (`undefined` when absent); a non-object is `Malformed`.
fn field(o: &JsValue, key: &str, what: &'static str) -> JsResult<JsValue> {
    if !o.is_object() {
        return Err(malformed(what));
    }
    Reflect::get(o, &key.into()).map_err(|_| malformed(what))
}

/// A whole number in `0..=max` from a JS number; anything else is `Malformed`.
fn whole(v: &JsValue, max: f64, what: &'static str) -> JsResult<f64> {
    match v.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= max => Ok(n),
        _ => Err(malformed(what)),
    }
}

/// `{name, identityKey, admin?}` objects into members (`admin` defaults to false).
fn group_members(list: &[JsValue]) -> JsResult<Vec<GroupMember>> {
    list.iter()
        .map(|m| {
            let name = field(m, "name", "member")?.as_string().ok_or_else(|| malformed("member name"))?;
            let key = field(m, "identityKey", "member")?
                .dyn_into::<Uint8Array>()
                .map_err(|_| malformed("member identityKey"))?;
            let identity = identity_key(&key.to_vec())?;
            let admin = field(m, "admin", "member")?;
            let admin =
                if admin.is_undefined() { false } else { admin.as_bool().ok_or_else(|| malformed("member admin"))? };
            Ok(GroupMember { name, identity, admin })
        })
        .collect()
}

fn member_obj(m: &GroupMember) -> JsValue {
    Obj::new()
        .set("name", m.name.as_str())
        .set("identityKey", bytes(&m.identity.to_bytes()))
        .set("admin", m.admin)
        .done()
}

fn outgoing(v: &[Outgoing]) -> JsValue {
    v.iter()
        .map(|o| Obj::new().set("peer", o.peer.as_str()).set("message", bytes(&o.message)).done())
        .collect::<Array>()
        .into()
}

fn withheld(v: &[Withheld]) -> JsValue {
    v.iter()
        .map(|w| {
            let reason = match w.reason {
                WithheldReason::NoSession => "noSession",
                WithheldReason::IdentityNotApproved => "identityNotApproved",
                WithheldReason::IdentityMismatch => "identityMismatch",
            };
            Obj::new().set("peer", w.peer.as_str()).set("reason", reason).done()
        })
        .collect::<Array>()
        .into()
}

/// `{outgoing, withheld}`: pairwise messages to deliver and members skipped.
fn fan_out((out, held): (Vec<Outgoing>, Vec<Withheld>)) -> JsValue {
    Obj::new().set("outgoing", outgoing(&out)).set("withheld", withheld(&held)).done()
}

fn group_change(c: GroupChange) -> JsValue {
    let change = Obj::new()
        .set("added", strings(&c.change.added))
        .set("removed", strings(&c.change.removed))
        .set("replaced", strings(&c.change.replaced))
        .done();
    Obj::new()
        .set("groupId", bytes(&c.group_id.0))
        .set("epoch", c.epoch as f64)
        .set("commit", opt_bytes(c.commit.as_deref()))
        .set("welcome", opt_bytes(c.welcome.as_deref()))
        .set("change", change)
        .set("outgoing", outgoing(&c.outgoing))
        .set("withheld", withheld(&c.withheld))
        .done()
}

fn sender_key_received(r: core::group::SenderKeyReceived) -> JsValue {
    Obj::new()
        .set("kind", "senderKey")
        .set("groupId", bytes(&r.group_id.0))
        .set("sender", r.sender.as_str())
        .set("keyId", r.key_id)
        .set("fresh", r.fresh)
        .set("identityEvent", identity_event(r.identity))
        .done()
}

fn channel_id(b: &[u8]) -> JsResult<ChannelId> {
    Ok(ChannelId(id32(b, "channel id")?))
}

/// `"public"` or `"restricted"`; anything else is `Malformed`.
fn channel_kind(kind: &str) -> JsResult<ChannelKind> {
    match kind {
        "public" => Ok(ChannelKind::Public),
        "restricted" => Ok(ChannelKind::Restricted),
        _ => Err(malformed("channel kind")),
    }
}

/// `"text"`, `"json"` or `"attachmentPointer"`; anything else is `Malformed`.
fn content_type(t: &str) -> JsResult<ContentType> {
    match t {
        "text" => Ok(ContentType::Text),
        "json" => Ok(ContentType::Json),
        "attachmentPointer" => Ok(ContentType::AttachmentPointer),
        _ => Err(malformed("content type")),
    }
}

fn content_type_str(t: ContentType) -> &'static str {
    match t {
        ContentType::Text => "text",
        ContentType::Json => "json",
        ContentType::AttachmentPointer => "attachmentPointer",
    }
}

/// `{channelId, seq, timestamp, contentType, body, signer}`. The body (a restricted
/// channel's plaintext) is wiped in wasm memory once copied into its `Uint8Array`.
fn announcement(a: Announcement) -> JsValue {
    let body = Zeroizing::new(a.body);
    Obj::new()
        .set("channelId", bytes(&a.channel_id.0))
        .set("seq", a.seq as f64)
        .set("timestamp", a.timestamp as f64)
        .set("contentType", content_type_str(a.content_type))
        .set("body", bytes(&body))
        .set("signer", bytes(&a.signer))
        .done()
}

/// `{kind: "announcement", announcement}` or `{kind: "keyRotated", old, new, seq}`.
fn channel_received(r: Received) -> JsValue {
    match r {
        Received::Announcement(a) => Obj::new().set("kind", "announcement").set("announcement", announcement(a)).done(),
        Received::KeyRotated { old, new, seq } => Obj::new()
            .set("kind", "keyRotated")
            .set("old", bytes(&old))
            .set("new", bytes(&new))
            .set("seq", seq as f64)
            .done(),
    }
}

/// The library version.
#[wasm_bindgen(js_name = libraryVersion)]
pub fn library_version() -> String {
    core::VERSION.to_owned()
}

/// Every error code the library can throw, in a stable order.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Vec<String> {
    core::ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect()
}

/// The enforced limits (see `docs/protocol.md`, sections 10 and 14.6).
#[wasm_bindgen]
pub fn limits() -> JsValue {
    use core::limits::*;
    let o = js_sys::Object::new();
    let set = |k: &str, v: f64| {
        let _ = js_sys::Reflect::set(&o, &k.into(), &v.into());
    };
    set("maxForwardJump", f64::from(MAX_FORWARD_JUMP));
    set("maxSkippedKeys", MAX_SKIPPED_KEYS as f64);
    set("maxReceiverChains", MAX_RECEIVER_CHAINS as f64);
    set("maxArchivedSessions", MAX_ARCHIVED_SESSIONS as f64);
    set("maxMessageBytes", MAX_MESSAGE_BYTES as f64);
    set("maxPlaintextBytes", MAX_PLAINTEXT_BYTES as f64);
    set("maxBundleBytes", MAX_BUNDLE_BYTES as f64);
    set("paddingBlock", PADDING_BLOCK as f64);
    attachment::add_limits(&o);
    o.into()
}

/// Verifies a forwarded announcement (0x30) on its own: signed by `agencyKey` (the
/// channel's 32-byte signing key from the agency's directory; else `WrongSigner`) with a
/// valid strict Ed25519 signature (else `BadSignature`). Says nothing about freshness or
/// replay (a subscription does). Returns the announcement.
#[wasm_bindgen(js_name = verifyAnnouncement)]
pub fn verify_announcement(announcement_bytes: &[u8], agency_key: &[u8]) -> JsResult<JsValue> {
    let key = id32(agency_key, "agency key")?;
    let a = core::channel::verify_announcement(announcement_bytes, &key).map_err(|e| js_error(e.into()))?;
    Ok(announcement(a))
}

/// Decodes and verifies a bundle; returns a plain object describing it.
#[wasm_bindgen(js_name = verifyBundle)]
pub fn verify_bundle(bundle: &[u8]) -> JsResult<JsValue> {
    let b = core::PreKeyBundle::from_bytes(bundle).map_err(|e| js_error(e.into()))?;
    let o = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(&o, &k.into(), &v);
    };
    set("identityKey", js_sys::Uint8Array::from(&b.identity().to_bytes()[..]).into());
    set("fingerprint", b.identity().fingerprint_hex().into());
    set("signedPreKeyId", b.signed_prekey().id.into());
    set("oneTimePreKeyId", b.one_time_prekey().map_or(JsValue::NULL, |k| k.id.into()));
    set("pqPreKeyId", b.pq_prekey().id.into());
    set("pqPreKeyIsLastResort", (b.pq_prekey().kind == core::keys::PqPreKeyKind::LastResort).into());
    Ok(o.into())
}

/// The fingerprint (64 hex digits) of an encoded identity key.
#[wasm_bindgen(js_name = identityFingerprint)]
pub fn identity_fingerprint(identity_key: &[u8]) -> JsResult<String> {
    Ok(core::IdentityKey::from_bytes(identity_key).map_err(|e| js_error(e.into()))?.fingerprint_hex())
}

/// The digest by which a retry request names a message.
#[wasm_bindgen(js_name = messageDigest)]
pub fn message_digest(message: &[u8]) -> Vec<u8> {
    core::Device::message_digest(message).to_vec()
}

/// A device: identity, prekeys and sessions with peer devices.
#[wasm_bindgen]
pub struct Device {
    inner: holder::Holder,
}

#[wasm_bindgen]
impl Device {
    /// Creates a device with a fresh identity, signed prekey and last-resort ML-KEM prekey.
    #[wasm_bindgen(constructor)]
    pub fn new(user_id: &str, now: f64) -> Device {
        Device { inner: holder::Holder::Memory(core::Device::new(user_id, seconds(now), &mut rng())) }
    }

    /// Restores a device from a snapshot made by `export` with the same 32-byte key.
    #[wasm_bindgen(js_name = import)]
    pub fn import(key: Vec<u8>, snapshot: &[u8]) -> JsResult<Device> {
        let inner = core::Device::import(&snapshot_key(key)?, snapshot).map_err(js_error)?;
        Ok(Device { inner: holder::Holder::Memory(inner) })
    }

    /// The user id given at creation.
    #[wasm_bindgen(getter, js_name = userId)]
    pub fn user_id(&self) -> String {
        self.dev().user_id().to_owned()
    }

    /// The encoded identity key (66 bytes).
    #[wasm_bindgen(getter, js_name = identityKey)]
    pub fn identity_key(&self) -> Vec<u8> {
        self.dev().identity().to_bytes().to_vec()
    }

    /// The identity fingerprint, 64 hex digits.
    #[wasm_bindgen(getter)]
    pub fn fingerprint(&self) -> String {
        self.dev().identity().fingerprint_hex()
    }

    /// Generates `count` one-time X25519 prekeys (at most 200 held).
    #[wasm_bindgen(js_name = generateOneTimePreKeys)]
    pub fn generate_one_time_prekeys(&mut self, count: u32) -> JsResult<()> {
        self.with(|d| {
            d.account_mut().generate_one_time_prekeys(count as usize, &mut rng()).map(|_| ()).map_err(Into::into)
        })
    }

    /// Generates `count` one-time ML-KEM-1024 prekeys (at most 200 held).
    #[wasm_bindgen(js_name = generatePqPreKeys)]
    pub fn generate_pq_prekeys(&mut self, count: u32, now: f64) -> JsResult<()> {
        self.with(|d| {
            d.account_mut()
                .generate_pq_prekeys(count as usize, seconds(now), &mut rng())
                .map(|_| ())
                .map_err(Into::into)
        })
    }

    /// Rotates the signed prekey (the old one stays usable for 30 days).
    #[wasm_bindgen(js_name = rotateSignedPreKey)]
    pub fn rotate_signed_prekey(&mut self, now: f64) -> JsResult<()> {
        self.with(|d| d.account_mut().rotate_signed_prekey(seconds(now), &mut rng()).map_err(Into::into))
    }

    /// Rotates the last-resort ML-KEM prekey (the old one stays usable for 30 days).
    #[wasm_bindgen(js_name = rotateLastResortPreKey)]
    pub fn rotate_last_resort_prekey(&mut self, now: f64) -> JsResult<()> {
        self.with(|d| d.account_mut().rotate_last_resort_prekey(seconds(now), &mut rng()).map_err(Into::into))
    }

    /// Drops retired prekeys past their grace period.
    #[wasm_bindgen(js_name = expirePreKeys)]
    pub fn expire_prekeys(&mut self, now: f64) -> JsResult<()> {
        self.with(|d| {
            d.account_mut().expire_prekeys(seconds(now));
            Ok(())
        })
    }

    /// A fresh bundle to publish: the next unissued one-time prekeys, else last-resort.
    #[wasm_bindgen(js_name = nextBundle)]
    pub fn next_bundle(&mut self) -> JsResult<Vec<u8>> {
        self.with(|d| d.next_bundle().map(|b| b.to_bytes()))
    }

    /// Starts an outbound session with `peer` from its bundle (verified first); returns
    /// the identity event. Throws `IdentityChanged` for an unapproved changed identity.
    pub fn initiate(&mut self, peer: &str, bundle: &[u8]) -> JsResult<JsValue> {
        let bundle = core::PreKeyBundle::from_bytes(bundle).map_err(|e| js_error(e.into()))?;
        self.with(|d| d.initiate(peer, &bundle, &mut rng())).map(identity_event)
    }

    /// Sets the identity-change policy: `"requireApproval"` (default), `"notify"` or
    /// `"certified"`.
    #[wasm_bindgen(js_name = setIdentityPolicy)]
    pub fn set_identity_policy(&mut self, policy: &str) -> JsResult<()> {
        let p = match policy {
            "requireApproval" => core::IdentityPolicy::RequireApproval,
            "notify" => core::IdentityPolicy::Notify,
            "certified" => core::IdentityPolicy::Certified,
            _ => return Err(js_error(core::wire::DecodeError::InvalidValue("identity policy").into())),
        };
        self.with(|d| {
            d.set_identity_policy(p);
            Ok(())
        })
    }

    /// The identity-change policy: `"requireApproval"`, `"notify"` or `"certified"`.
    #[wasm_bindgen(getter, js_name = identityPolicy)]
    pub fn identity_policy(&self) -> String {
        match self.dev().trust().policy() {
            core::IdentityPolicy::RequireApproval => "requireApproval".into(),
            core::IdentityPolicy::Notify => "notify".into(),
            core::IdentityPolicy::Certified => "certified".into(),
        }
    }

    /// The app's trust decision: pins `identityKey` for `peer` and makes the newest
    /// session with it current.
    #[wasm_bindgen(js_name = approveIdentity)]
    pub fn approve_identity(&mut self, peer: &str, identity: &[u8]) -> JsResult<()> {
        let k = identity_key(identity)?;
        self.with(|d| d.approve_identity(peer, &k))
    }

    /// Deletes every session with `peer` (its pinned identity stays); whether there was
    /// one. The way to shed state when calls fail with `StateFull`.
    #[wasm_bindgen(js_name = removeSessions)]
    pub fn remove_sessions(&mut self, peer: &str) -> JsResult<bool> {
        self.with(|d| Ok(d.remove_sessions(peer)))
    }

    /// Forgets the pinned identity of `peer`: the next session is a first contact again
    /// (trust on first use). Only for an explicit user decision; whether one was pinned.
    #[wasm_bindgen(js_name = forgetIdentity)]
    pub fn forget_identity(&mut self, peer: &str) -> JsResult<bool> {
        self.with(|d| Ok(d.forget_identity(peer)))
    }

    /// The exact size in bytes of the device's state (a snapshot is 51 bytes more).
    #[wasm_bindgen(getter, js_name = stateLen)]
    pub fn state_len(&self) -> f64 {
        self.dev().state_len() as f64
    }

    /// The identity pinned for `peer`, or `undefined`.
    #[wasm_bindgen(js_name = pinnedIdentity)]
    pub fn pinned_identity(&self, peer: &str) -> Option<Vec<u8>> {
        self.dev().trust().pinned(peer).map(|k| k.to_bytes().to_vec())
    }

    /// The changed identity of `peer` awaiting approval, or `undefined`.
    #[wasm_bindgen(js_name = pendingIdentity)]
    pub fn pending_identity(&self, peer: &str) -> Option<Vec<u8>> {
        self.dev().trust().pending(peer).map(|k| k.to_bytes().to_vec())
    }

    /// Whether a session with `peer` exists.
    #[wasm_bindgen(js_name = hasSession)]
    pub fn has_session(&self, peer: &str) -> bool {
        self.dev().session_record(peer).is_some_and(|r| r.has_current())
    }

    /// The identity key of `peer` on the current session, or `undefined`.
    #[wasm_bindgen(js_name = peerIdentity)]
    pub fn peer_identity(&self, peer: &str) -> Option<Vec<u8>> {
        self.dev().session_record(peer).and_then(|r| r.remote_identity()).map(|k| k.to_bytes().to_vec())
    }

    /// Encrypts for `peer` on the current session.
    pub fn encrypt(&mut self, peer: &str, plaintext: Vec<u8>) -> JsResult<Vec<u8>> {
        let plaintext = Zeroizing::new(plaintext);
        self.with(|d| d.encrypt(peer, &plaintext))
    }

    /// Decrypts a message from `peer` (starting a session on a prekey message). Returns
    /// `{plaintext, senderIdentity, identityEvent, digest, redelivered}`; the event must
    /// be checked. On a stored device the result is kept in the store's inbox, in the
    /// same transaction as the ratchet step, until `ack(digest)`: the same message
    /// delivered again returns it again with `redelivered: true` instead of `Duplicate`
    /// (`InboxFull`, nothing processed, once 1000 results wait). In memory `redelivered`
    /// is always false.
    pub fn decrypt(&mut self, peer: &str, message: &[u8]) -> JsResult<JsValue> {
        let (d, digest, redelivered) = match &mut self.inner {
            holder::Holder::Memory(d) => {
                (d.decrypt(peer, message, &mut rng()).map_err(js_error)?, core::Device::message_digest(message), false)
            }
            holder::Holder::Stored(s) => {
                let r = s.decrypt(peer, message, &mut rng()).map_err(store::device_error)?;
                (r.decrypted, r.digest, r.redelivered)
            }
        };
        Ok(decrypted_with(d, &digest, redelivered))
    }

    /// Decrypts a backlog in one call: `messages` is an array of `{peer, message}`; the
    /// result has one entry per message, in order: `{ok: true, result}` (as `decrypt`
    /// returns it) or `{ok: false, error}` (the `GoChatError` `decrypt` would have
    /// thrown; nothing changed for that message). One refused message does not stop the
    /// others. On a stored device the batch is one transaction (one IndexedDB commit for
    /// all; results kept until `ack`). Refused whole (`TooLarge`, nothing decrypted) above
    /// 1,000 messages (the store crate's `MAX_BATCH_MESSAGES`, as in every binding).
    #[wasm_bindgen(js_name = decryptBatch)]
    pub fn decrypt_batch(&mut self, messages: Vec<JsValue>) -> JsResult<js_sys::Array> {
        gochat_e2ee_store::check_batch_len(messages.len()).map_err(store::device_error)?;
        let mut items = Vec::with_capacity(messages.len());
        for m in &messages {
            let peer = Reflect::get(m, &"peer".into())
                .ok()
                .and_then(|p| p.as_string())
                .ok_or_else(|| malformed("batch peer"))?;
            let bytes = Reflect::get(m, &"message".into())
                .ok()
                .and_then(|b| b.dyn_into::<js_sys::Uint8Array>().ok())
                .ok_or_else(|| malformed("batch message"))?;
            items.push((peer, bytes.to_vec()));
        }
        let out = js_sys::Array::new();
        // A stored device decrypts the whole batch in one transaction (one commit).
        if let holder::Holder::Stored(s) = &mut self.inner {
            let pairs: Vec<(&str, &[u8])> = items.iter().map(|(p, m)| (p.as_str(), m.as_slice())).collect();
            for o in s.decrypt_batch(&pairs, &mut rng()).map_err(store::device_error)? {
                let entry = match o {
                    Ok(r) => Obj::new()
                        .set("ok", true)
                        .set("result", decrypted_with(r.decrypted, &r.digest, r.redelivered))
                        .done(),
                    Err(e) => Obj::new().set("ok", false).set("error", store::device_error(e)).done(),
                };
                out.push(&entry);
            }
            return Ok(out);
        }
        for (peer, message) in items {
            let entry = match self.decrypt(&peer, &message) {
                Ok(result) => Obj::new().set("ok", true).set("result", result).done(),
                Err(error) => Obj::new().set("ok", false).set("error", error).done(),
            };
            out.push(&entry);
        }
        Ok(out)
    }

    /// Builds a signed retry request for `failedMessage` from `peer`, addressed to the
    /// identity `recipientIdentity` (the sender of the failed message), stamped `now`.
    #[wasm_bindgen(js_name = retryRequest)]
    pub fn retry_request(
        &mut self,
        peer: &str,
        recipient_identity: &[u8],
        failed_message: &[u8],
        now: f64,
    ) -> JsResult<Vec<u8>> {
        let recipient = identity_key(recipient_identity)?;
        self.with(|d| d.retry_request(peer, &recipient, failed_message, seconds(now)))
    }

    /// Handles a retry request from `peer` at time `now`: starts a new session and
    /// returns the digest of the message to re-send.
    #[wasm_bindgen(js_name = handleRetryRequest)]
    pub fn handle_retry_request(&mut self, peer: &str, request: &[u8], now: f64) -> JsResult<Vec<u8>> {
        self.with(|d| d.handle_retry_request(peer, request, seconds(now), &mut rng()).map(|h| h.to_vec()))
    }

    /// Exports the whole device as a snapshot encrypted under the 32-byte `key`.
    /// Refused on a stored device (`NotSupported`): a snapshot beside a live store would
    /// let the same ratchet state run twice; it moves with `moveOut`.
    pub fn export(&self, key: Vec<u8>) -> JsResult<Vec<u8>> {
        let key = snapshot_key(key)?;
        match &self.inner {
            holder::Holder::Memory(d) => d.export(&key, &mut rng()).map_err(js_error),
            holder::Holder::Stored(_) => Err(store::not_supported("a stored device moves with moveOut, not export")),
        }
    }

    /// Exports the session record with `peer` as a snapshot.
    #[wasm_bindgen(js_name = exportSession)]
    pub fn export_session(&self, peer: &str, key: Vec<u8>) -> JsResult<Vec<u8>> {
        self.dev().export_session(peer, &snapshot_key(key)?, &mut rng()).map_err(js_error)
    }

    /// Imports a session record snapshot for `peer`, replacing any held.
    #[wasm_bindgen(js_name = importSession)]
    pub fn import_session(&mut self, peer: &str, key: Vec<u8>, snapshot: &[u8]) -> JsResult<()> {
        let key = snapshot_key(key)?;
        self.with(|d| d.import_session(peer, &key, snapshot))
    }

    /// Creates a group of this device (admin, named by its user id) and `others`
    /// (`{name, identityKey, admin?}`). Returns the change: the welcome for every other
    /// member and this device's sender key, pairwise, for each with an approved session.
    #[wasm_bindgen(js_name = groupCreate)]
    pub fn group_create(&mut self, others: Vec<JsValue>, now: f64) -> JsResult<JsValue> {
        let others = group_members(&others)?;
        self.with(|d| d.group_create(&others, seconds(now), &mut rng())).map(group_change)
    }

    /// Adds member devices (an admin only): a commit for the members, a welcome for the
    /// new ones, and this device's key at its current position for them.
    #[wasm_bindgen(js_name = groupAdd)]
    pub fn group_add(&mut self, id: &[u8], members: Vec<JsValue>, now: f64) -> JsResult<JsValue> {
        let (id, members) = (group_id(id)?, group_members(&members)?);
        self.with(|d| d.group_add(&id, &members, seconds(now), &mut rng())).map(group_change)
    }

    /// Removes member devices (an admin; any member may remove itself). This device
    /// rotates its sender key and sends the new one to the remaining members only.
    #[wasm_bindgen(js_name = groupRemove)]
    pub fn group_remove(&mut self, id: &[u8], names: Vec<String>, now: f64) -> JsResult<JsValue> {
        let id = group_id(id)?;
        self.with(|d| d.group_remove(&id, &names, seconds(now), &mut rng())).map(group_change)
    }

    /// Replaces the device behind member `name` by `identityKey` (an admin): the old
    /// device is cut off as by a removal.
    #[wasm_bindgen(js_name = groupReplace)]
    pub fn group_replace(&mut self, id: &[u8], name: &str, identity: &[u8], now: f64) -> JsResult<JsValue> {
        let (id, identity) = (group_id(id)?, identity_key(identity)?);
        self.with(|d| d.group_replace(&id, name, &identity, seconds(now), &mut rng())).map(group_change)
    }

    /// Applies another member's signed commit. Refused: `EpochAhead` (apply the missing
    /// ones first), `Duplicate`, `GroupFork`, `NotAdmin`, `NotMember`, `BadSignature`.
    #[wasm_bindgen(js_name = groupProcessCommit)]
    pub fn group_process_commit(&mut self, commit: &[u8], now: f64) -> JsResult<JsValue> {
        self.with(|d| d.group_process_commit(commit, seconds(now), &mut rng())).map(group_change)
    }

    /// Joins a group from a welcome signed by an admin whose identity is pinned and
    /// approved here (else `UntrustedIdentity`). Returns this device's sender key for
    /// every other member.
    #[wasm_bindgen(js_name = groupJoin)]
    pub fn group_join(&mut self, welcome: &[u8], now: f64) -> JsResult<JsValue> {
        self.with(|d| d.group_join(welcome, seconds(now), &mut rng())).map(group_change)
    }

    /// Encrypts for the group: `{message, rotated, outgoing, withheld}`. When the send
    /// rotated the sender key, deliver `outgoing` before `message`.
    #[wasm_bindgen(js_name = groupEncrypt)]
    pub fn group_encrypt(&mut self, id: &[u8], plaintext: Vec<u8>, now: f64) -> JsResult<JsValue> {
        let plaintext = Zeroizing::new(plaintext);
        let id = group_id(id)?;
        let s = self.with(|d| d.group_encrypt(&id, &plaintext, seconds(now), &mut rng()))?;
        Ok(Obj::new()
            .set("message", bytes(&s.message))
            .set("rotated", s.rotated)
            .set("outgoing", outgoing(&s.outgoing))
            .set("withheld", withheld(&s.withheld))
            .done())
    }

    /// Decrypts a group message from member `sender`: `{plaintext, sender,
    /// senderIdentity, keyId, iteration}`. `MissingSenderKey`: keep it and retry after the
    /// sender's key arrives. A failed call changes nothing.
    #[wasm_bindgen(js_name = groupDecrypt)]
    ///
    /// Also `digest` (32 bytes) and `redelivered`: on a stored device the result is
    /// committed with the chain step and kept until `ack(digest)`, so the same message
    /// delivered again returns it again with `redelivered: true` instead of `Duplicate`
    /// (as `decrypt`). In memory `redelivered` is always false.
    pub fn group_decrypt(&mut self, sender: &str, message: &[u8]) -> JsResult<JsValue> {
        let (d, digest, redelivered) = match &mut self.inner {
            holder::Holder::Memory(d) => (
                d.group_decrypt(sender, message).map_err(js_error)?,
                gochat_e2ee_store::inbox::group_digest(message),
                false,
            ),
            holder::Holder::Stored(s) => {
                let g = s.group_decrypt(sender, message, &mut rng()).map_err(store::device_error)?;
                (g.plaintext, g.digest, g.redelivered)
            }
        };
        let plaintext = Zeroizing::new(d.plaintext);
        Ok(Obj::new()
            .set("plaintext", bytes(&plaintext))
            .set("sender", d.sender.as_str())
            .set("senderIdentity", bytes(&d.sender_identity.to_bytes()))
            .set("keyId", d.key_id)
            .set("iteration", d.iteration)
            .set("digest", bytes(&digest))
            .set("redelivered", redelivered)
            .done())
    }

    /// Receives a sender key (a pairwise control message) from member `peer`. If the
    /// group refuses it (e.g. `UnknownGroup` before the welcome), the pairwise session
    /// is unchanged and it can be retried.
    #[wasm_bindgen(js_name = groupReceive)]
    pub fn group_receive(&mut self, peer: &str, message: &[u8]) -> JsResult<JsValue> {
        self.with(|d| d.group_receive(peer, message, &mut rng())).map(sender_key_received)
    }

    /// Sends this device's current sender key to member `peer` again (after it got a
    /// session or an approval): `{outgoing, withheld}`.
    #[wasm_bindgen(js_name = groupResendKey)]
    pub fn group_resend_key(&mut self, id: &[u8], peer: &str) -> JsResult<JsValue> {
        let id = group_id(id)?;
        self.with(|d| d.group_resend_key(&id, peer)).map(fan_out)
    }

    /// Sets when this device rotates its sender key: `{maxMessages, maxAgeSecs}` (0: never
    /// by that measure; removals and replacements always rotate).
    #[wasm_bindgen(js_name = groupSetRotationPolicy)]
    pub fn group_set_rotation_policy(&mut self, id: &[u8], policy: JsValue) -> JsResult<()> {
        let id = group_id(id)?;
        let max_messages =
            whole(&field(&policy, "maxMessages", "rotation policy")?, f64::from(u32::MAX), "maxMessages")?;
        let max_age_secs =
            whole(&field(&policy, "maxAgeSecs", "rotation policy")?, 9_007_199_254_740_991.0, "maxAgeSecs")?;
        let policy = RotationPolicy { max_messages: max_messages as u32, max_age_secs: max_age_secs as u64 };
        self.with(|d| d.group_set_rotation_policy(&id, policy))
    }

    /// Deletes all state of group `id`; whether it was held.
    #[wasm_bindgen(js_name = groupForget)]
    pub fn group_forget(&mut self, id: &[u8]) -> JsResult<bool> {
        let id = group_id(id)?;
        self.with(|d| Ok(d.group_forget(&id)))
    }

    /// The ids of every group held (also those this device was removed from).
    #[wasm_bindgen(js_name = groupIds)]
    pub fn group_ids(&self) -> Array {
        self.dev().groups().ids().map(|id| bytes(&id.0)).collect()
    }

    /// `{groupId, epoch, membershipHash, members, active, ownKeyId, rotationPolicy}` of
    /// group `id`, or `undefined` if it is not held.
    #[wasm_bindgen(js_name = groupInfo)]
    pub fn group_info(&self, id: &[u8]) -> JsResult<JsValue> {
        let Some(g) = self.dev().group(&group_id(id)?) else { return Ok(JsValue::UNDEFINED) };
        let policy = g.policy();
        let policy =
            Obj::new().set("maxMessages", policy.max_messages).set("maxAgeSecs", policy.max_age_secs as f64).done();
        Ok(Obj::new()
            .set("groupId", bytes(&g.id().0))
            .set("epoch", g.epoch() as f64)
            .set("membershipHash", bytes(&g.membership_hash()))
            .set("members", g.members().iter().map(member_obj).collect::<Array>())
            .set("active", g.is_active())
            .set("ownKeyId", g.own_key_id().map_or(JsValue::NULL, JsValue::from))
            .set("rotationPolicy", policy)
            .done())
    }

    /// Creates a channel this device publishes to, `"public"` (signed posts) or
    /// `"restricted"` (signed, then encrypted under a content key sent pairwise).
    /// Returns its random 32-byte id.
    #[wasm_bindgen(js_name = channelCreate)]
    pub fn channel_create(&mut self, kind: &str) -> JsResult<Vec<u8>> {
        let kind = channel_kind(kind)?;
        self.with(|d| d.channel_create(kind, &mut rng())).map(|id| id.0.to_vec())
    }

    /// The current 32-byte signing key of a channel this device publishes to (give it
    /// to subscribers out of band). `UnknownGroup` for any other channel.
    #[wasm_bindgen(js_name = channelPublicKey)]
    pub fn channel_public_key(&self, id: &[u8]) -> JsResult<Vec<u8>> {
        Ok(self.dev().channel_public_key(&channel_id(id)?).map_err(js_error)?.to_vec())
    }

    /// Posts `body` (`contentType` `"text"`, `"json"` or `"attachmentPointer"`) dated
    /// `now`: a signed 0x30 announcement, or on a restricted channel a 0x32 post.
    #[wasm_bindgen(js_name = channelAnnounce)]
    pub fn channel_announce(
        &mut self,
        id: &[u8],
        content_type_name: &str,
        body: Vec<u8>,
        now: f64,
    ) -> JsResult<Vec<u8>> {
        let body = Zeroizing::new(body);
        let (id, t) = (channel_id(id)?, content_type(content_type_name)?);
        self.with(|d| d.channel_announce(&id, t, &body, seconds(now)))
    }

    /// Replaces the channel's signing key: a 0x31 rotation (post it like an
    /// announcement). On a restricted channel the content key is replaced too: send it
    /// with `channelSendKey` after posting the rotation.
    #[wasm_bindgen(js_name = channelRotateSigningKey)]
    pub fn channel_rotate_signing_key(&mut self, id: &[u8], now: f64) -> JsResult<Vec<u8>> {
        let id = channel_id(id)?;
        self.with(|d| d.channel_rotate_signing_key(&id, seconds(now), &mut rng()))
    }

    /// A restricted channel's current content key for each of `subscribers` (peer
    /// names), as pairwise control messages: `{outgoing, withheld}`. Never sent to an
    /// identity the app has not approved.
    #[wasm_bindgen(js_name = channelSendKey)]
    pub fn channel_send_key(&mut self, id: &[u8], subscribers: Vec<String>) -> JsResult<JsValue> {
        let id = channel_id(id)?;
        self.with(|d| d.channel_send_key(&id, &subscribers)).map(fan_out)
    }

    /// A new content key, sent to `subscribers` only (removing a subscriber = rotate and
    /// leave it out): `{keyId, outgoing, withheld}`.
    #[wasm_bindgen(js_name = channelRotateContentKey)]
    pub fn channel_rotate_content_key(&mut self, id: &[u8], subscribers: Vec<String>) -> JsResult<JsValue> {
        let id = channel_id(id)?;
        let r = self.with(|d| d.channel_rotate_content_key(&id, &subscribers, &mut rng()))?;
        Ok(Obj::new()
            .set("keyId", r.key_id)
            .set("outgoing", outgoing(&r.outgoing))
            .set("withheld", withheld(&r.withheld))
            .done())
    }

    /// Subscribes to channel `id`, trusting `channelKey` (32 bytes, from the agency's
    /// directory, never from the server) as its signing key.
    #[wasm_bindgen(js_name = channelSubscribe)]
    pub fn channel_subscribe(&mut self, id: &[u8], channel_key: &[u8], kind: &str) -> JsResult<()> {
        let (id, key, kind) = (channel_id(id)?, id32(channel_key, "channel key")?, channel_kind(kind)?);
        self.with(|d| d.channel_subscribe(id, key, kind))
    }

    /// Receives a post (0x30, 0x31 or 0x32) for a subscribed channel, named by the post:
    /// `{kind: "announcement", announcement}` or `{kind: "keyRotated", old, new, seq}`.
    /// Refused with nothing changed: `StaleSequence` (a replay), `WrongSigner`,
    /// `FromFuture`, `MissingSenderKey` (no content key yet), `AuthenticationFailed`.
    #[wasm_bindgen(js_name = channelReceive)]
    ///
    /// Also `digest` and `redelivered`, with the inbox semantics of `groupDecrypt` on a
    /// stored device.
    pub fn channel_receive(&mut self, post: &[u8], now: f64) -> JsResult<JsValue> {
        let (received, digest, redelivered) = match &mut self.inner {
            holder::Holder::Memory(d) => (
                d.channel_receive(post, seconds(now)).map_err(js_error)?,
                gochat_e2ee_store::inbox::channel_digest(post),
                false,
            ),
            holder::Holder::Stored(s) => {
                let p = s.channel_receive(post, seconds(now), &mut rng()).map_err(store::device_error)?;
                (p.received, p.digest, p.redelivered)
            }
        };
        let out = channel_received(received);
        let _ = Reflect::set(&out, &"digest".into(), &bytes(&digest));
        let _ = Reflect::set(&out, &"redelivered".into(), &redelivered.into());
        Ok(out)
    }

    /// Receives any pairwise control message from `peer`: a group sender key
    /// (`{kind: "senderKey", ...}`, as `groupReceive`) or a restricted channel's content
    /// key (`{kind: "channelKey", channelId, sender, keyId, identityEvent}`). If refused,
    /// the pairwise session is unchanged and it can be retried.
    #[wasm_bindgen(js_name = receiveControl)]
    pub fn receive_control(&mut self, peer: &str, message: &[u8]) -> JsResult<JsValue> {
        Ok(match self.with(|d| d.receive_control(peer, message, &mut rng()))? {
            ControlReceived::SenderKey(r) => sender_key_received(r),
            ControlReceived::ChannelKey(r) => Obj::new()
                .set("kind", "channelKey")
                .set("channelId", bytes(&r.channel_id.0))
                .set("sender", r.sender.as_str())
                .set("keyId", r.key_id)
                .set("identityEvent", identity_event(r.identity))
                .done(),
        })
    }

    /// Deletes the publisher and/or subscription state of channel `id` (the signing key
    /// is wiped); whether anything was held.
    #[wasm_bindgen(js_name = channelForget)]
    pub fn channel_forget(&mut self, id: &[u8]) -> JsResult<bool> {
        let id = channel_id(id)?;
        self.with(|d| Ok(d.channel_forget(&id)))
    }

    /// The ids of the channels this device publishes to.
    #[wasm_bindgen(js_name = channelPublisherIds)]
    pub fn channel_publisher_ids(&self) -> Array {
        self.dev().channels().publisher_ids().map(|id| bytes(&id.0)).collect()
    }

    /// The ids of the channels this device is subscribed to.
    #[wasm_bindgen(js_name = channelSubscriptionIds)]
    pub fn channel_subscription_ids(&self) -> Array {
        self.dev().channels().subscription_ids().map(|id| bytes(&id.0)).collect()
    }
}
