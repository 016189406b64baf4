//! A device: its [`Account`] plus one [`SessionRecord`] per peer device.
//!
//! This is the object apps hold. Every method is failure-atomic: it either succeeds or
//! returns an [`Error`] and leaves the account, every prekey store and every session
//! exactly as before.

mod certified;
mod channels;
mod control;
mod devices;
mod groups;
mod link;
mod records;

pub use control::ControlReceived;
pub use devices::{DeviceListUpdate, DeviceOutcome, DeviceRemoval, DeviceReport, FanOut, MissingReason};
pub use link::LinkOutcome;

use std::collections::BTreeMap;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::account::{Account, MAX_ACCOUNT_STATE_BYTES};
use crate::channel::Channels;
use crate::error::Error;
use crate::group::Groups;
use crate::handshake::{initiate, KeyScheduleTrace};
use crate::keys::{IdentityKey, PreKeyBundle, IDENTITY_KEY_BYTES};
use crate::ratchet::RatchetState;
use crate::records::{Tracked, TrackedMap};
use crate::retry::{self, RetryError};
use crate::session::{
    message_digest, Content, Incoming, RecordError, Session, SessionRecord, MAX_SESSION_STATE_BYTES,
    SENT_MESSAGE_STATE_BYTES,
};
use crate::snapshot::{self, SnapshotError, SnapshotKey, SnapshotKind, MAX_SNAPSHOT_BYTES};
use crate::trust::certificate::{CertificateError, TrustAnchors, VerifiedDevice};
use crate::trust::devices::OwnDevice;
use crate::trust::{DeviceLists, IdentityEvent, IdentityPolicy, TrustStore};
use crate::wire::{DecodeError, Reader, Writer};

/// Longest peer name and user id accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Most peers whose session records a device snapshot may hold (and, separately, most
/// peers with a pinned identity).
pub const MAX_PEERS: usize = 1_000_000;
/// The largest device state (the encoding a device snapshot encrypts) a device grows
/// to: its snapshot (header, salt and tag added) is at most `MAX_SNAPSHOT_BYTES`, so
/// import never refuses what export produced. An input that could grow the state past
/// it is refused with `StateFull` before it is processed.
pub const MAX_STATE_BYTES: usize = MAX_SNAPSHOT_BYTES - snapshot::OVERHEAD_BYTES;
/// The most one input (a message, a retry request, an approval) can add to a device's
/// state: one full session, a new peer's record framing and its pinned identity.
pub const MAX_STATE_GROWTH_PER_INPUT: usize = MAX_SESSION_STATE_BYTES + PEER_FRAMING_BYTES + TRUST_ENTRY_MAX_BYTES;

/// A new peer's name and empty record in the state encoding.
const PEER_FRAMING_BYTES: usize = 4 + MAX_NAME_BYTES + 4 + 4;
/// A pinned identity entry at its largest (name, pinned and pending identity).
const TRUST_ENTRY_MAX_BYTES: usize = 4 + MAX_NAME_BYTES + IDENTITY_KEY_BYTES + 1 + IDENTITY_KEY_BYTES;

/// What a caller of `decrypt_parsed` checks in a decrypted control message before
/// anything is committed.
type Accept<'a> = dyn FnMut(&[u8], &IdentityKey) -> Result<(), Error> + 'a;

/// A device: identity, prekeys and sessions with peer devices (named by the app).
///
/// Deliberately not `Clone`: two copies of live ratchet state that both send would
/// re-use message keys. Moving state goes through [`Device::export`] and
/// [`Device::import`], and an imported device starts a new sender epoch.
#[derive(Debug)]
pub struct Device {
    user_id: String,
    account: Tracked<Account>,
    peers: TrackedMap<String, SessionRecord>,
    trust: TrustStore,
    groups: Groups,
    channels: Channels,
    /// Certificate roots, revocation lists and the require-certificate flag.
    anchors: Tracked<TrustAnchors>,
    /// This device as one of its user's devices (address, master key, endorsement).
    own: Tracked<OwnDevice>,
    /// Every held device list.
    device_lists: Tracked<DeviceLists>,
    /// The exact bytes the peer list, the trust store, the groups, the channels, the trust anchors and the device lists take in the state encoding,
    /// kept up to date by every call that changes them (the state-size budget).
    held: usize,
    /// `MAX_STATE_BYTES`; lowered only by unit tests, to reach the budget quickly.
    budget: usize,
}

/// A decrypted message and who sent it.
///
/// `identity` says how the sender's identity relates to the one pinned for the peer.
/// An app must show [`IdentityEvent::Changed`] to the user; with
/// `approved: false` the message comes from an identity the user has not approved.
#[must_use = "the identity event must be checked"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The sender's full identity key.
    pub sender: IdentityKey,
    /// New, same, or changed (and whether the change is approved).
    pub identity: IdentityEvent,
}

impl From<RecordError> for Error {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::NoSession => Error::NoSession,
            RecordError::Ratchet(r) => Error::Ratchet(r),
        }
    }
}

impl Device {
    /// Creates a device for `user_id` (cut to `MAX_NAME_BYTES`) with a fresh identity, signed prekey and
    /// last-resort ML-KEM prekey (no one-time prekeys yet).
    pub fn new<R: CryptoRng + ?Sized>(user_id: &str, now: u64, rng: &mut R) -> Self {
        Self::from_account(user_id, Account::new(now, rng))
    }

    /// Wraps an existing account.
    pub fn from_account(user_id: &str, account: Account) -> Self {
        let mut device = Device {
            user_id: truncate_name(user_id),
            account: Tracked::new(account),
            peers: TrackedMap::default(),
            trust: TrustStore::default(),
            groups: Groups::default(),
            channels: Channels::new(),
            anchors: Tracked::default(),
            own: Tracked::default(),
            device_lists: Tracked::default(),
            held: 0,
            budget: MAX_STATE_BYTES,
        };
        device.held = device.count_held();
        device.mark_all();
        device
    }

    /// The bytes of the peer list and the trust store, counted from scratch.
    fn count_held(&self) -> usize {
        let trust: usize = self.trust.peers().map(|p| self.trust.entry_len(p)).sum();
        4 + self.peers.iter().map(|(name, r)| 4 + name.len() + r.encoded_len()).sum::<usize>()
            + 1
            + 4
            + trust
            + self.groups.encoded_len()
            + self.channels.encoded_len()
            + self.anchors.encoded_len()
            + self.own.encoded_len()
            + self.device_lists.encoded_len()
    }

    /// The bytes `peer`'s record and pinned identity take in the state encoding.
    fn peer_len(&self, peer: &str) -> usize {
        self.peers.get(peer).map_or(0, |r| 4 + peer.len() + r.encoded_len()) + self.trust.entry_len(peer)
    }

    /// Refuses (`StateFull`) an input that could grow the state by `growth` past
    /// `MAX_STATE_BYTES`. The account is counted at its largest
    /// (`MAX_ACCOUNT_STATE_BYTES`), so prekey operations never need this check.
    fn ensure_room(&self, growth: usize) -> Result<(), Error> {
        if self.reserved() + self.held + growth > self.budget {
            return Err(Error::StateFull);
        }
        Ok(())
    }

    /// The budget's fixed part: the user id and the account at its largest.
    fn reserved(&self) -> usize {
        4 + self.user_id.len() + MAX_ACCOUNT_STATE_BYTES
    }

    /// Updates the budget after `peer`'s entries changed from `before` bytes.
    fn regrown(&mut self, peer: &str, before: usize) {
        self.held = self.held - before + self.peer_len(peer);
    }

    /// Refuses a peer that would be one more than `MAX_PEERS` sessions or pins.
    fn check_new_peer(&self, peer: &str) -> Result<(), Error> {
        let new_record = !self.peers.contains_key(peer) && self.peers.len() >= MAX_PEERS;
        let new_pin = !self.trust.contains(peer) && self.trust.len() >= MAX_PEERS;
        if new_record || new_pin {
            return Err(Error::TooManyPeers);
        }
        Ok(())
    }

    /// The exact length of the device's state encoding (what a snapshot encrypts).
    /// Never more than `MAX_STATE_BYTES`.
    pub fn state_len(&self) -> usize {
        4 + self.user_id.len() + self.account.encoded_len() + self.held
    }

    /// An exact copy of this device's live state, for fuzzers, benches and tests only
    /// (feature `testing`). Two copies that both send re-use message keys (AES-GCM-SIV
    /// then reveals equal plaintexts, and the receiver drops one as a duplicate); apps
    /// move state with [`Device::export`] / [`Device::import`] instead.
    #[cfg(feature = "testing")]
    pub fn fork_for_testing(&self) -> Self {
        Device {
            user_id: self.user_id.clone(),
            account: self.account.clone(),
            peers: self.peers.clone(),
            trust: self.trust.clone(),
            groups: self.groups.clone(),
            // Publishers are deliberately not `Clone`; the copy goes through the encoding.
            channels: Channels::from_state_bytes(&self.channels.to_state_bytes()).unwrap_or_default(),
            anchors: self.anchors.clone(),
            own: self.own.clone(),
            device_lists: self.device_lists.clone(),
            held: self.held,
            budget: self.budget,
        }
    }

    /// Calls `f` with every long-lived secret this device holds, each with a label: the
    /// identity seed and agreement key, every prekey secret and ML-KEM seed, and per
    /// session the root key, ratchet key, chain keys and skipped message keys. For tests
    /// that check memory hygiene only (feature `testing`): the slices are borrowed from
    /// the live state, no copy is made.
    #[cfg(feature = "testing")]
    pub fn for_each_secret_for_testing(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        self.account.for_each_secret(f);
        for record in self.peers.values() {
            record.for_each_secret(f);
        }
        self.groups.for_each_secret(f);
        self.channels.for_each_secret(f);
        if let Some(master) = &self.own.master {
            f("master key seed", master.seed_bytes());
        }
    }

    /// The user this device belongs to.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The device's public identity.
    pub fn identity(&self) -> &IdentityKey {
        self.account.identity()
    }

    /// The account (prekeys).
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The account, for prekey generation and rotation.
    pub fn account_mut(&mut self) -> &mut Account {
        &mut self.account
    }

    /// The pinned identities and the identity-change policy.
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// Sets what happens when a peer shows a changed identity (default:
    /// [`IdentityPolicy::RequireApproval`]).
    pub fn set_identity_policy(&mut self, policy: IdentityPolicy) {
        self.trust.set_policy(policy);
    }

    /// The app's trust decision: pins `identity` for `peer` (clearing any pending
    /// change) and makes the newest session with that identity current. Approving the
    /// already-pinned identity keeps it and dismisses a pending change. Can also pin an
    /// identity before any session exists (verified out of band).
    pub fn approve_identity(&mut self, peer: &str, identity: &IdentityKey) -> Result<(), Error> {
        check_name(peer)?;
        self.check_new_peer(peer)?;
        self.ensure_room(TRUST_ENTRY_MAX_BYTES)?;
        let before = self.peer_len(peer);
        self.trust.approve(peer, identity);
        if let Some(record) = self.peers.get_mut(peer) {
            record.promote_identity(identity);
        }
        self.regrown(peer, before);
        Ok(())
    }

    /// Deletes every session with `peer` and its retry window (the pinned identity
    /// stays, so a later session start with another identity is still a change). Returns
    /// whether there was a record. The way to shed state when calls fail with
    /// `StateFull`.
    pub fn remove_sessions(&mut self, peer: &str) -> bool {
        let before = self.peer_len(peer);
        let removed = self.peers.remove(peer).is_some();
        self.regrown(peer, before);
        removed
    }

    /// Forgets the pinned identity of `peer` (and any pending change): the next session
    /// with `peer` is a first contact again ([`IdentityEvent::New`], trust on first
    /// use). Sessions are kept; sending on them is refused until an identity is pinned
    /// again. Returns whether an identity was pinned. Only for an explicit user decision
    /// (e.g. "reset this contact"): it gives up the protection against a silent
    /// identity change.
    pub fn forget_identity(&mut self, peer: &str) -> bool {
        let before = self.peer_len(peer);
        let forgotten = self.trust.forget(peer);
        self.regrown(peer, before);
        forgotten
    }

    /// The next bundle to publish (see [`Account::next_bundle`]).
    pub fn next_bundle(&mut self) -> Result<PreKeyBundle, Error> {
        Ok(self.account.next_bundle()?)
    }

    /// The session record with `peer`, if any.
    pub fn session_record(&self, peer: &str) -> Option<&SessionRecord> {
        self.peers.get(peer)
    }

    /// Names of all peers with a session record.
    pub fn peers(&self) -> impl Iterator<Item = &str> {
        self.peers.keys().map(String::as_str)
    }

    /// Starts an outbound session with `peer` from its (verified) bundle. The new session
    /// becomes current; a previous one is archived.
    ///
    /// The bundle's identity is checked against the pin: a first contact pins it
    /// ([`IdentityEvent::New`]); another identity than the pinned one is refused with
    /// `IdentityChanged` under `RequireApproval` (nothing changes), and pinned at once
    /// under `Notify`.
    pub fn initiate<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        bundle: &PreKeyBundle,
        rng: &mut R,
    ) -> Result<IdentityEvent, Error> {
        self.initiate_inner(peer, bundle, rng, None, None)
    }

    /// As [`Device::initiate`], also returning the PQXDH key schedule (for test vectors
    /// only: feature `trace`; the result holds session secrets).
    #[cfg(feature = "trace")]
    pub fn initiate_traced<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        bundle: &PreKeyBundle,
        rng: &mut R,
    ) -> Result<KeyScheduleTrace, Error> {
        let mut trace = KeyScheduleTrace { dh: Vec::new(), kem_secret: [0; 32], ikm: Vec::new(), secret: [0; 32] };
        let _event = self.initiate_inner(peer, bundle, rng, Some(&mut trace), None)?;
        Ok(trace)
    }

    fn initiate_inner<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        bundle: &PreKeyBundle,
        rng: &mut R,
        trace: Option<&mut KeyScheduleTrace>,
        certificate: Option<&VerifiedDevice>,
    ) -> Result<IdentityEvent, Error> {
        check_name(peer)?;
        self.check_certificate(peer, bundle.identity(), certificate)?;
        let event = self.trust.classify_certified(peer, bundle.identity(), certificate.is_some());
        if !event.is_trusted() {
            return Err(Error::IdentityChanged);
        }
        self.check_new_peer(peer)?;
        self.ensure_room(MAX_STATE_GROWTH_PER_INPUT)?;
        let session = self.outbound_session(bundle, rng, trace)?;
        let before = self.peer_len(peer);
        self.trust.record(peer, bundle.identity(), &event);
        self.peers.get_or_insert_with(peer.to_owned(), SessionRecord::default).insert_outbound(session);
        self.regrown(peer, before);
        Ok(event)
    }

    fn outbound_session<R: CryptoRng + ?Sized>(
        &self,
        bundle: &PreKeyBundle,
        rng: &mut R,
        trace: Option<&mut KeyScheduleTrace>,
    ) -> Result<Session, Error> {
        let init = initiate(self.account.identity_pair(), bundle, rng, trace)?;
        let ratchet = RatchetState::new_initiator(&init.secret.0, &bundle.signed_prekey().key, rng)?;
        Ok(Session {
            ratchet,
            ad: init.ad,
            remote_identity: *bundle.identity(),
            base_key: init.header.base_key,
            pending: Some(init.header),
        })
    }

    /// Encrypts `plaintext` for `peer` on the current session. Until the peer has
    /// replied, the result is a prekey message; afterwards a ratchet message.
    ///
    /// Refused with `IdentityChanged` while the peer's current session is not with the
    /// pinned identity or a changed identity awaits approval: nothing is ever sent to an
    /// identity the app has not accepted. Persist the device state before sending the
    /// result: a state restored from before this call re-uses the message counter.
    pub fn encrypt(&mut self, peer: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.ensure_room(SENT_MESSAGE_STATE_BYTES)?;
        let record = self.peers.get_mut(peer).ok_or(Error::NoSession)?;
        let identity = record.remote_identity().ok_or(Error::NoSession)?;
        self.trust.check_send(peer, identity).map_err(|_| Error::IdentityChanged)?;
        // Only the record changes (its retry window); pins do not.
        let before = record.encoded_len();
        let message = record.encrypt(plaintext, Content::Chat)?;
        self.held = self.held - before + record.encoded_len();
        Ok(message)
    }

    /// Decrypts a message from `peer`, reporting the sender's identity and how it relates
    /// to the pinned one.
    ///
    /// A prekey message that starts a new session creates it (consuming the one-time
    /// prekeys it names); a retransmitted prekey message is decrypted on the session it
    /// started (so a replay is reported as `Duplicate`). A session whose identity is not
    /// the pinned one never becomes current: under `RequireApproval` it is kept aside
    /// until [`Device::approve_identity`]. On any error, nothing changes.
    pub fn decrypt<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        message: &[u8],
        rng: &mut R,
    ) -> Result<Decrypted, Error> {
        check_name(peer)?;
        let m = Incoming::parse(message)?;
        self.ensure_room(MAX_STATE_GROWTH_PER_INPUT)?;
        let before = self.peer_len(peer);
        let decrypted = self.decrypt_parsed(peer, &m, Content::Chat, &mut |_, _| Ok(()), None, rng)?;
        self.regrown(peer, before);
        Ok(decrypted)
    }

    /// Decrypts a parsed pairwise message of kind `content`. `accept` sees the
    /// plaintext and the sender's identity after the AEAD tag has verified and before
    /// anything is committed; if it refuses, every session, prekey and pin is left as
    /// it was (a control message whose content is refused can be retried).
    ///
    /// With `certificate`, the sender's identity must be the certified one
    /// (`CertificateMismatch`, nothing changes) and a change to it is approved under
    /// `Certified`. Without it, a prekey message that would start a new session is
    /// refused with `CertificateRequired` when the app requires certificates, before
    /// any key agreement.
    fn decrypt_parsed<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        m: &Incoming<'_>,
        content: Content,
        accept: &mut Accept<'_>,
        certificate: Option<&VerifiedDevice>,
        rng: &mut R,
    ) -> Result<Decrypted, Error> {
        // A chat message's content is never refused, so only control messages (and
        // certified decrypts, whose sender check comes after decryption) pay for the
        // copy that makes a refusal after decryption undoable.
        let saved = match (content, certificate) {
            (Content::Chat, None) => None,
            _ => self.peers.get(peer).cloned(),
        };
        let certified = certificate.is_some();
        let accept = &mut |plaintext: &[u8], sender: &IdentityKey| {
            if certificate.is_some_and(|c| c.identity() != sender) {
                return Err(Error::from(CertificateError::CertificateMismatch));
            }
            accept(plaintext, sender)
        };
        let restore = |peers: &mut TrackedMap<String, SessionRecord>, saved: Option<SessionRecord>| {
            if let Some(record) = saved {
                peers.insert(peer.to_owned(), record);
            }
        };
        let Some(header) = &m.prekey else {
            let record = self.peers.get_mut(peer).ok_or(Error::NoSession)?;
            let (plaintext, index, sender) = record.decrypt(m, content, rng)?;
            if let Err(e) = accept(&plaintext, &sender) {
                restore(&mut self.peers, saved);
                return Err(e);
            }
            return Ok(conclude(&mut self.trust, record, peer, (index, sender), plaintext, (true, certified)));
        };
        if let Some(record) = self.peers.get_mut(peer) {
            if let Some(i) = record.find_base_key(&header.base_key) {
                let (plaintext, sender) = record.decrypt_on(i, m, content, rng)?;
                if let Err(e) = accept(&plaintext, &sender) {
                    restore(&mut self.peers, saved);
                    return Err(e);
                }
                return Ok(conclude(&mut self.trust, record, peer, (i, sender), plaintext, (false, certified)));
            }
        }
        // A new session: the certificate policy is checked before any key agreement.
        self.check_certificate(peer, &header.initiator, certificate)?;
        self.check_new_peer(peer)?;
        let (secret, ad, signed, consumed) = self.account.accept(header, None)?;
        let ratchet = RatchetState::new_responder(&secret.0, &signed.secret, signed.public.key);
        let mut session =
            Session { ratchet, ad, remote_identity: header.initiator, base_key: header.base_key, pending: None };
        let plaintext = session.decrypt(m, crate::ratchet::MAX_FORWARD_JUMP, content, rng)?;
        accept(&plaintext, &header.initiator)?;
        self.account.commit(consumed, rng);
        let sender = header.initiator;
        let identity = self.trust.classify_certified(peer, &sender, certified);
        self.trust.record(peer, &sender, &identity);
        let record = self.peers.get_or_insert_with(peer.to_owned(), SessionRecord::default);
        match self.trust.pinned(peer) {
            Some(pinned) if !identity.is_trusted() => record.insert_unapproved(session, pinned),
            _ => record.insert_inbound(session),
        }
        Ok(Decrypted { plaintext, sender, identity })
    }

    /// The digest by which a retry request names `message` (for the app's sent log).
    pub fn message_digest(message: &[u8]) -> [u8; 32] {
        message_digest(message)
    }

    /// Builds a signed retry request for a message from `peer` that we could not
    /// decrypt, bound to the sender's identity `recipient` and stamped with `now`.
    ///
    /// Refused with `Duplicate` if the message's header names a counter we already
    /// used (a replay must never be turned into a re-send). The bundle it carries issues
    /// nothing ([`Account::retry_bundle`]: no one-time X25519 prekey, the last-resort
    /// ML-KEM prekey), so failures a server provokes cannot drain the one-time pools.
    pub fn retry_request(
        &mut self,
        peer: &str,
        recipient: &IdentityKey,
        failed_message: &[u8],
        now: u64,
    ) -> Result<Vec<u8>, Error> {
        if let (Ok(m), Some(record)) = (Incoming::parse(failed_message), self.peers.get(peer)) {
            if record.is_replay(&m) {
                return Err(crate::ratchet::RatchetError::Duplicate.into());
            }
        }
        let bundle = self.account.retry_bundle()?;
        Ok(retry::encode(self.account.identity_pair(), recipient, &message_digest(failed_message), now, &bundle))
    }

    /// Handles a retry request from `peer`: checks that it is signed by the peer's
    /// pinned identity (the full key), addressed to us, fresh at `now`, and names a
    /// message we sent to that same identity among the last `RETRY_WINDOW`, on a session
    /// we still hold (once only). Then starts a new session from the bundle it carries
    /// (unless the current session is still unanswered and was started from the same
    /// prekeys: then the re-send goes on it, so a burst of requests adds one session,
    /// not one each) and returns the digest of the message the app should re-send.
    pub fn handle_retry_request<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        request: &[u8],
        now: u64,
        rng: &mut R,
    ) -> Result<[u8; 32], Error> {
        let req = retry::decode(request)?;
        if &req.recipient != self.identity() {
            return Err(RetryError::WrongRecipient.into());
        }
        if !self.trust.is_pinned(peer, &req.requester) {
            return Err(RetryError::UntrustedIdentity.into());
        }
        if !retry::is_fresh(req.created_at, now) {
            return Err(RetryError::Expired.into());
        }
        let record = self.peers.get(peer).ok_or(Error::NoSession)?;
        if record.sent_to(&req.digest, &req.requester).is_none() {
            return Err(RetryError::UnknownMessage.into());
        }
        self.ensure_room(MAX_STATE_GROWTH_PER_INPUT)?;
        let before = self.peer_len(peer);
        if record.current_is_pending_from(&req.requester, &req.bundle) {
            // An earlier retry (or start) from the same prekeys is still unanswered: the
            // re-send goes on it, so many requests cannot churn the session archive.
            let record = self.peers.get_mut(peer).ok_or(Error::NoSession)?;
            record.take_sent(&req.digest);
        } else {
            let session = self.outbound_session(&req.bundle, rng, None)?;
            let record = self.peers.get_mut(peer).ok_or(Error::NoSession)?;
            record.take_sent(&req.digest);
            record.insert_outbound(session);
        }
        self.regrown(peer, before);
        Ok(req.digest)
    }

    /// SHA-256 of the device's complete serialized state. Two devices with equal digests
    /// hold byte-for-byte equal state; tests use it to prove a failed call changed nothing.
    pub fn state_digest(&self) -> [u8; 32] {
        crate::crypto::sha256(&[&self.encode_state()])
    }

    /// The complete state encoding (the plaintext of a device snapshot), wiped on drop.
    fn encode_state(&self) -> Zeroizing<Vec<u8>> {
        // Sized exactly: the buffer never grows, so no copy of the state is ever freed.
        let mut w = Writer::raw(self.state_len());
        w.var_bytes(self.user_id.as_bytes());
        self.account.write(&mut w);
        w.u32(self.peers.len() as u32);
        for (name, record) in &self.peers {
            w.var_bytes(name.as_bytes());
            record.write(&mut w);
        }
        self.trust.write(&mut w);
        self.groups.write(&mut w);
        self.channels.write(&mut w);
        self.anchors.write(&mut w);
        self.own.write(&mut w);
        self.device_lists.write(&mut w);
        w.into_secret_bytes()
    }

    /// Exports the whole device (account, prekeys, sessions) as an encrypted snapshot.
    pub fn export<R: CryptoRng + ?Sized>(&self, key: &SnapshotKey, rng: &mut R) -> Result<Vec<u8>, Error> {
        let state = self.encode_state();
        debug_assert_eq!(state.len(), self.state_len());
        // Every growth is checked against the budget, so this holds; it is checked
        // again here so that no snapshot import would refuse is ever produced.
        if state.len() > MAX_STATE_BYTES {
            return Err(Error::StateFull);
        }
        Ok(snapshot::seal(key, SnapshotKind::Device, state, &[], rng)?)
    }

    /// Imports a device snapshot made by [`Device::export`]. Every session of the
    /// imported device starts a new sender epoch, so nothing it sends shares a message
    /// key and nonce with what the exported device sent, and peers can tell its
    /// messages from replays (`CounterReused`).
    pub fn import(key: &SnapshotKey, bytes: &[u8]) -> Result<Self, Error> {
        let state = snapshot::open(key, SnapshotKind::Device, bytes, &[])?;
        // `open` checked the header: byte 1 is a version this library reads.
        let version = bytes.get(1).copied().unwrap_or(crate::wire::SNAPSHOT_VERSION);
        let invalid = |e: DecodeError| Error::Snapshot(SnapshotError::InvalidState(e));
        let mut r = Reader::raw(&state);
        let user_id = read_name(&mut r).map_err(invalid)?;
        let account = Account::read(&mut r).map_err(|e| match e {
            crate::keys::KeyError::Decode(d) => invalid(d),
            _ => invalid(DecodeError::InvalidValue("account keys")),
        })?;
        let n = r.count(MAX_PEERS, "peer count").map_err(invalid)?;
        let mut peers = BTreeMap::new();
        for _ in 0..n {
            let name = read_name(&mut r).map_err(invalid)?;
            let mut record = SessionRecord::read(&mut r).map_err(invalid)?;
            record.bump_epochs();
            if peers.insert(name, record).is_some() {
                return Err(invalid(DecodeError::InvalidValue("duplicate peer name")));
            }
        }
        let trust = TrustStore::read(&mut r, MAX_PEERS, read_name).map_err(invalid)?;
        // A version-2 state ends here: no groups, no channels.
        let (mut groups, mut channels) = (Groups::default(), Channels::new());
        if !r.rest_is_empty() {
            groups = Groups::read(&mut r).map_err(invalid)?;
            channels = Channels::read(&mut r).map_err(invalid)?;
        }
        // Versions 2 and 3 end here: no trust anchors and no device lists.
        let mut anchors = TrustAnchors::default();
        let (mut own, mut device_lists) = (OwnDevice::default(), DeviceLists::default());
        if version >= 0x04 {
            anchors = TrustAnchors::read(&mut r).map_err(invalid)?;
            own = OwnDevice::read(&mut r).map_err(invalid)?;
            device_lists = DeviceLists::read(&mut r).map_err(invalid)?;
        }
        r.finish().map_err(invalid)?;
        // A restored state may be older than what was sent: never send on its group
        // sender keys again (a new generation, with a new chain, starts at the next
        // send). A restored publisher skips RESTORE_SEQ_GAP sequence numbers and posts
        // nothing on its restricted content key until it is rotated.
        groups.retire_own_keys();
        channels.retire_after_restore();
        let mut device = Device {
            user_id,
            account: Tracked::new(account),
            peers: TrackedMap::from_map(peers),
            trust,
            groups,
            channels,
            anchors: Tracked::new(anchors),
            own: Tracked::new(own),
            device_lists: Tracked::new(device_lists),
            held: 0,
            budget: MAX_STATE_BYTES,
        };
        device.held = device.count_held();
        device.mark_all();
        Ok(device)
    }

    /// Exports the session record with `peer` as an encrypted snapshot, bound (in the
    /// AAD) to this device's identity and to the peer name.
    pub fn export_session<R: CryptoRng + ?Sized>(
        &self,
        peer: &str,
        key: &SnapshotKey,
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        let record = self.peers.get(peer).ok_or(Error::NoSession)?;
        let mut w = Writer::raw(4096);
        record.write(&mut w);
        let context = snapshot::session_context(self.identity(), peer);
        Ok(snapshot::seal(key, SnapshotKind::SessionRecord, w.into_secret_bytes(), &context, rng)?)
    }

    /// Imports a session record snapshot for `peer`, replacing any record held. Refused
    /// (`SnapshotUndecryptable`, nothing changes) if it was exported by another identity
    /// or for another peer name, so a record cannot be moved to another peer. Its
    /// sessions start a new sender epoch. The pinned identity of `peer` is not changed:
    /// sending stays refused unless the imported current session is with it.
    pub fn import_session(&mut self, peer: &str, key: &SnapshotKey, bytes: &[u8]) -> Result<(), Error> {
        check_name(peer)?;
        let context = snapshot::session_context(self.identity(), peer);
        let state = snapshot::open(key, SnapshotKind::SessionRecord, bytes, &context)?;
        let mut r = Reader::raw(&state);
        let invalid = |e: DecodeError| Error::Snapshot(SnapshotError::InvalidState(e));
        let mut record = SessionRecord::read(&mut r).map_err(invalid)?;
        r.finish().map_err(invalid)?;
        if !self.peers.contains_key(peer) && self.peers.len() >= MAX_PEERS {
            return Err(Error::TooManyPeers);
        }
        let old = self.peers.get(peer).map_or(0, |r| 4 + peer.len() + r.encoded_len());
        if self.reserved() + self.held - old + 4 + peer.len() + record.encoded_len() > self.budget {
            return Err(Error::StateFull);
        }
        let before = self.peer_len(peer);
        record.bump_epochs();
        self.peers.insert(peer.to_owned(), record);
        self.regrown(peer, before);
        Ok(())
    }
}

/// After a successful decrypt on session `index` of `peer`'s record: classifies the
/// sender's identity (the identity of the session that decrypted), records the event,
/// and (if `promote`) makes the session current when its identity is trusted.
fn conclude(
    trust: &mut TrustStore,
    record: &mut SessionRecord,
    peer: &str,
    (index, sender): (usize, IdentityKey),
    plaintext: Vec<u8>,
    (promote, certified): (bool, bool),
) -> Decrypted {
    let identity = trust.classify_certified(peer, &sender, certified);
    trust.record(peer, &sender, &identity);
    if promote && identity.is_trusted() {
        record.promote(index);
    }
    Decrypted { plaintext, sender, identity }
}

fn check_name(peer: &str) -> Result<(), Error> {
    if peer.len() > MAX_NAME_BYTES {
        return Err(DecodeError::InvalidValue("peer name").into());
    }
    Ok(())
}

fn truncate_name(s: &str) -> String {
    let mut end = s.len().min(MAX_NAME_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn read_name(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let b = r.var_bytes(MAX_NAME_BYTES, "name")?;
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError::InvalidValue("name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratchet::MAX_SKIPPED_KEYS;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const NOW: u64 = 1_700_000_000;

    fn fixed(d: &Device) -> usize {
        d.reserved()
    }

    /// Alice starts a session with `bob` under `peer` and sends `skip + 1` messages, of
    /// which Bob gets only the last: Bob stores `skip` skipped keys.
    fn skipped_session(bob: &mut Device, peer: &str, skip: usize, rng: &mut ChaCha20Rng) -> Result<(), Error> {
        let mut alice = Device::new("alice", NOW, rng);
        let bundle = bob.next_bundle()?;
        let _ = alice.initiate("bob", &bundle, rng)?;
        let first = alice.encrypt("bob", b"hello")?;
        let _ = bob.decrypt(peer, &first, rng)?;
        let reply = bob.encrypt(peer, b"hi")?;
        let _ = alice.decrypt("bob", &reply, rng).map_err(|_| Error::NoSession)?;
        let mut last = Vec::new();
        for _ in 0..=skip {
            last = alice.encrypt("bob", b"x")?;
        }
        let _ = bob.decrypt(peer, &last, rng)?;
        Ok(())
    }

    #[test]
    fn held_bytes_track_the_encoding_exactly() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut bob = Device::new("bob", NOW, &mut rng);
        bob.account_mut().generate_one_time_prekeys(4, &mut rng).unwrap();
        bob.account_mut().generate_pq_prekeys(4, NOW, &mut rng).unwrap();
        assert_eq!(bob.encode_state().len(), bob.state_len());
        bob.set_identity_policy(IdentityPolicy::Notify);
        skipped_session(&mut bob, "a", 30, &mut rng).unwrap();
        skipped_session(&mut bob, "a", 7, &mut rng).unwrap();
        skipped_session(&mut bob, "b", 0, &mut rng).unwrap();
        assert_eq!(bob.encode_state().len(), bob.state_len());
        assert_eq!(bob.held, bob.count_held());
        let other = Device::new("mallory", NOW, &mut rng);
        bob.approve_identity("c", other.identity()).unwrap();
        bob.approve_identity("a", other.identity()).unwrap();
        assert_eq!(bob.encode_state().len(), bob.state_len());
        assert!(bob.remove_sessions("b"));
        assert!(bob.forget_identity("c"));
        assert_eq!(bob.encode_state().len(), bob.state_len());
        assert_eq!(bob.held, bob.count_held());
    }

    #[test]
    fn state_budget_refuses_growth_and_changes_nothing() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let mut bob = Device::new("bob", NOW, &mut rng);
        // Room for the held state plus a little more than two inputs' worst case.
        bob.budget = fixed(&bob) + bob.held + 2 * MAX_STATE_GROWTH_PER_INPUT + 1000;
        let mut filled = 0;
        let refused = loop {
            match skipped_session(&mut bob, &format!("peer{filled}"), MAX_SKIPPED_KEYS, &mut rng) {
                Ok(()) => filled += 1,
                Err(e) => break e,
            }
            assert!(filled < 10, "the budget never refused");
        };
        assert_eq!(refused, Error::StateFull);
        assert_eq!(refused.code(), crate::ErrorCode::StateFull);
        assert!(filled >= 1);
        assert!(fixed(&bob) + bob.held <= bob.budget);
        // Every growing call is refused up front, and changes nothing.
        let digest = bob.state_digest();
        let mut alice = Device::new("alice2", NOW, &mut rng);
        // Prekey operations are outside the budget (the account is counted at its largest).
        bob.account_mut().generate_one_time_prekeys(3, &mut rng).unwrap();
        let bundle = bob.next_bundle().unwrap();
        let digest_after_bundle = bob.state_digest();
        assert_ne!(digest, digest_after_bundle);
        let _ = alice.initiate("bob", &bundle, &mut rng).unwrap();
        let m = alice.encrypt("bob", b"new contact").unwrap();
        assert_eq!(bob.decrypt("fresh", &m, &mut rng), Err(Error::StateFull));
        assert_eq!(bob.initiate("fresh", &alice.next_bundle().unwrap(), &mut rng), Err(Error::StateFull));
        assert_eq!(bob.state_digest(), digest_after_bundle);
        // Shedding state makes room again.
        assert!(bob.remove_sessions("peer0"));
        assert_eq!(bob.held, bob.count_held());
        assert!(bob.decrypt("fresh", &m, &mut rng).is_ok());
        let key = SnapshotKey::new([5; 32]);
        let snap = bob.export(&key, &mut rng).unwrap();
        assert_eq!(snap.len(), bob.state_len() + snapshot::OVERHEAD_BYTES);
        let restored = Device::import(&key, &snap).unwrap();
        assert_eq!(restored.state_len(), bob.state_len());
    }

    #[test]
    fn the_largest_state_fits_a_snapshot() {
        assert_eq!(MAX_STATE_BYTES + snapshot::OVERHEAD_BYTES, MAX_SNAPSHOT_BYTES);
        // One hostile peer at its bounds (41 full sessions) is far below the budget,
        // but about 44 of them would not be: the budget, not MAX_PEERS, is what binds.
        let full_record = 4 + (1 + crate::session::MAX_ARCHIVED_SESSIONS) * MAX_SESSION_STATE_BYTES;
        assert!(full_record < MAX_STATE_BYTES / 40);
        assert!(MAX_PEERS * full_record > MAX_STATE_BYTES);
    }

    #[test]
    fn pins_count_against_max_peers_and_budget() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let mut bob = Device::new("bob", NOW, &mut rng);
        let other = Device::new("x", NOW, &mut rng);
        bob.budget = fixed(&bob) + bob.held + TRUST_ENTRY_MAX_BYTES + 10;
        bob.approve_identity("p", other.identity()).unwrap();
        let digest = bob.state_digest();
        assert_eq!(bob.approve_identity("q", other.identity()), Err(Error::StateFull));
        assert_eq!(bob.state_digest(), digest);
    }
}
