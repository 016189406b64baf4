//! A device: its [`Account`] plus one [`SessionRecord`] per peer device.
//!
//! This is the object apps hold. Every method is failure-atomic: it either succeeds or
//! returns an [`Error`] and leaves the account, every prekey store and every session
//! exactly as before.

use std::collections::BTreeMap;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::account::Account;
use crate::error::Error;
use crate::handshake::{initiate, KeyScheduleTrace};
use crate::keys::{IdentityKey, PreKeyBundle};
use crate::ratchet::RatchetState;
use crate::retry::{self, RetryError};
use crate::session::{message_digest, Incoming, RecordError, Session, SessionRecord};
use crate::snapshot::{self, SnapshotError, SnapshotKey, SnapshotKind};
use crate::trust::{IdentityEvent, IdentityPolicy, TrustStore};
use crate::wire::{DecodeError, Reader, Writer};

/// Longest peer name and user id accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Most peers whose session records a device snapshot may hold.
pub const MAX_PEERS: usize = 1_000_000;

/// A device: identity, prekeys and sessions with peer devices (named by the app).
///
/// Deliberately not `Clone`: two copies of live ratchet state that both send would
/// re-use message keys. Moving state goes through [`Device::export`] and
/// [`Device::import`], and an imported device starts a new sender epoch.
#[derive(Debug)]
pub struct Device {
    user_id: String,
    account: Account,
    peers: BTreeMap<String, SessionRecord>,
    trust: TrustStore,
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
        Device { user_id: truncate_name(user_id), account, peers: BTreeMap::new(), trust: TrustStore::default() }
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
        self.trust.approve(peer, identity);
        if let Some(record) = self.peers.get_mut(peer) {
            record.promote_identity(identity);
        }
        Ok(())
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
        self.initiate_inner(peer, bundle, rng, None)
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
        let _event = self.initiate_inner(peer, bundle, rng, Some(&mut trace))?;
        Ok(trace)
    }

    fn initiate_inner<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        bundle: &PreKeyBundle,
        rng: &mut R,
        trace: Option<&mut KeyScheduleTrace>,
    ) -> Result<IdentityEvent, Error> {
        check_name(peer)?;
        let event = self.trust.classify(peer, bundle.identity());
        if !event.is_trusted() {
            return Err(Error::IdentityChanged);
        }
        let session = self.outbound_session(bundle, rng, trace)?;
        self.trust.record(peer, bundle.identity(), &event);
        self.peers.entry(peer.to_owned()).or_default().insert_outbound(session);
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
        let record = self.peers.get_mut(peer).ok_or(Error::NoSession)?;
        let identity = record.remote_identity().ok_or(Error::NoSession)?;
        self.trust.check_send(peer, identity).map_err(|_| Error::IdentityChanged)?;
        Ok(record.encrypt(plaintext)?)
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
        let Some(header) = &m.prekey else {
            let record = self.peers.get_mut(peer).ok_or(Error::NoSession)?;
            let (plaintext, index) = record.decrypt(&m, rng)?;
            return Ok(self.conclude(peer, index, plaintext, true));
        };
        if let Some(record) = self.peers.get_mut(peer) {
            if let Some(i) = record.find_base_key(&header.base_key) {
                let plaintext = record.decrypt_on(i, &m, rng)?;
                return Ok(self.conclude(peer, i, plaintext, false));
            }
        }
        if !self.peers.contains_key(peer) && self.peers.len() >= MAX_PEERS {
            return Err(Error::TooManyPeers);
        }
        let (secret, ad, signed, consumed) = self.account.accept(header, None)?;
        let ratchet = RatchetState::new_responder(&secret.0, &signed.secret, signed.public.key);
        let mut session =
            Session { ratchet, ad, remote_identity: header.initiator, base_key: header.base_key, pending: None };
        let plaintext = session.decrypt(&m, crate::ratchet::MAX_FORWARD_JUMP, rng)?;
        self.account.commit(consumed, rng);
        let sender = header.initiator;
        let identity = self.trust.classify(peer, &sender);
        self.trust.record(peer, &sender, &identity);
        let record = self.peers.entry(peer.to_owned()).or_default();
        match self.trust.pinned(peer) {
            Some(pinned) if !identity.is_trusted() => record.insert_unapproved(session, pinned),
            _ => record.insert_inbound(session),
        }
        Ok(Decrypted { plaintext, sender, identity })
    }

    /// After a successful decrypt on session `index` of `peer`'s record: classifies the
    /// sender's identity, records the event, and (if `promote`) makes the session current
    /// when its identity is trusted.
    fn conclude(&mut self, peer: &str, index: usize, plaintext: Vec<u8>, promote: bool) -> Decrypted {
        let Some(record) = self.peers.get_mut(peer) else {
            // Unreachable: the caller just decrypted on this record.
            return Decrypted { plaintext, sender: *self.account.identity(), identity: IdentityEvent::Same };
        };
        let sender = record.identity_at(index).copied().unwrap_or(*self.account.identity());
        let identity = self.trust.classify(peer, &sender);
        self.trust.record(peer, &sender, &identity);
        if promote && identity.is_trusted() {
            record.promote(index);
        }
        Decrypted { plaintext, sender, identity }
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
    /// and returns the digest of the message the app should re-send.
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
        let session = self.outbound_session(&req.bundle, rng, None)?;
        let record = self.peers.get_mut(peer).ok_or(Error::NoSession)?;
        record.take_sent(&req.digest);
        record.insert_outbound(session);
        Ok(req.digest)
    }

    /// SHA-256 of the device's complete serialized state. Two devices with equal digests
    /// hold byte-for-byte equal state; tests use it to prove a failed call changed nothing.
    pub fn state_digest(&self) -> [u8; 32] {
        crate::crypto::sha256(&[&self.encode_state()])
    }

    /// The complete state encoding (the plaintext of a device snapshot), wiped on drop.
    fn encode_state(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::raw(4096);
        w.var_bytes(self.user_id.as_bytes());
        self.account.write(&mut w);
        w.u32(self.peers.len() as u32);
        for (name, record) in &self.peers {
            w.var_bytes(name.as_bytes());
            record.write(&mut w);
        }
        self.trust.write(&mut w);
        w.into_secret_bytes()
    }

    /// Exports the whole device (account, prekeys, sessions) as an encrypted snapshot.
    pub fn export<R: CryptoRng + ?Sized>(&self, key: &SnapshotKey, rng: &mut R) -> Vec<u8> {
        snapshot::seal(key, SnapshotKind::Device, self.encode_state(), &[], rng)
    }

    /// Imports a device snapshot made by [`Device::export`]. Every session of the
    /// imported device starts a new sender epoch, so nothing it sends shares a message
    /// key and nonce with what the exported device sent, and peers can tell its
    /// messages from replays (`CounterReused`).
    pub fn import(key: &SnapshotKey, bytes: &[u8]) -> Result<Self, Error> {
        let state = snapshot::open(key, SnapshotKind::Device, bytes, &[])?;
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
        r.finish().map_err(invalid)?;
        Ok(Device { user_id, account, peers, trust })
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
        Ok(snapshot::seal(key, SnapshotKind::SessionRecord, w.into_secret_bytes(), &context, rng))
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
        record.bump_epochs();
        self.peers.insert(peer.to_owned(), record);
        Ok(())
    }
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
