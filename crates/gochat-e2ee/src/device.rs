//! A device: its [`Account`] plus one [`SessionRecord`] per peer device.
//!
//! This is the object apps hold. Every method is failure-atomic: it either succeeds or
//! returns an [`Error`] and leaves the account, every prekey store and every session
//! exactly as before.

use std::collections::BTreeMap;

use rand_core::CryptoRng;

use crate::account::Account;
use crate::error::Error;
use crate::handshake::{initiate, KeyScheduleTrace};
use crate::keys::{IdentityKey, PreKeyBundle};
use crate::ratchet::RatchetState;
use crate::retry::{self, RetryError};
use crate::session::{message_digest, Incoming, RecordError, Session, SessionRecord};
use crate::snapshot::{self, SnapshotError, SnapshotKey, SnapshotKind};
use crate::wire::{DecodeError, Reader, Writer};

/// Longest peer name and user id accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Most peers whose session records a device snapshot may hold.
pub const MAX_PEERS: usize = 1_000_000;

/// A device: identity, prekeys and sessions with peer devices (named by the app).
#[derive(Clone, Debug)]
pub struct Device {
    user_id: String,
    account: Account,
    peers: BTreeMap<String, SessionRecord>,
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
        Device { user_id: truncate_name(user_id), account: Account::new(now, rng), peers: BTreeMap::new() }
    }

    /// Wraps an existing account.
    pub fn from_account(user_id: &str, account: Account) -> Self {
        Device { user_id: truncate_name(user_id), account, peers: BTreeMap::new() }
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
    pub fn initiate<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        bundle: &PreKeyBundle,
        rng: &mut R,
    ) -> Result<(), Error> {
        check_name(peer)?;
        let session = self.outbound_session(bundle, rng, None)?;
        self.peers.entry(peer.to_owned()).or_default().insert_outbound(session);
        Ok(())
    }

    /// As [`Device::initiate`], also returning the PQXDH key schedule (for test vectors).
    pub fn initiate_traced<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        bundle: &PreKeyBundle,
        rng: &mut R,
    ) -> Result<KeyScheduleTrace, Error> {
        check_name(peer)?;
        let mut trace = KeyScheduleTrace { dh: Vec::new(), kem_secret: [0; 32], ikm: Vec::new(), secret: [0; 32] };
        let session = self.outbound_session(bundle, rng, Some(&mut trace))?;
        self.peers.entry(peer.to_owned()).or_default().insert_outbound(session);
        Ok(trace)
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
    pub fn encrypt(&mut self, peer: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let record = self.peers.get_mut(peer).ok_or(Error::NoSession)?;
        Ok(record.encrypt(plaintext)?)
    }

    /// Decrypts a message from `peer`. A prekey message that starts a new session creates
    /// it (consuming the one-time prekeys it names); a retransmitted prekey message is
    /// decrypted on the session it started (so a replay is reported as `Duplicate`).
    pub fn decrypt<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        message: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        check_name(peer)?;
        let m = Incoming::parse(message)?;
        let Some(header) = &m.prekey else {
            let record = self.peers.get_mut(peer).ok_or(Error::NoSession)?;
            return Ok(record.decrypt(&m, rng)?);
        };
        if let Some(record) = self.peers.get_mut(peer) {
            if let Some(i) = record.find_base_key(&header.base_key) {
                return Ok(record.decrypt_on(i, &m, rng)?);
            }
        }
        let (secret, ad, signed, consumed) = self.account.accept(header, None)?;
        let ratchet = RatchetState::new_responder(&secret.0, &signed.secret, signed.public.key);
        let mut session =
            Session { ratchet, ad, remote_identity: header.initiator, base_key: header.base_key, pending: None };
        let plaintext = session.decrypt(&m, rng)?;
        self.account.commit(consumed, rng);
        self.peers.entry(peer.to_owned()).or_default().insert_inbound(session);
        Ok(plaintext)
    }

    /// The digest by which a retry request names `message` (for the app's sent log).
    pub fn message_digest(message: &[u8]) -> [u8; 32] {
        message_digest(message)
    }

    /// Builds a signed retry request for a message from `peer` that we could not
    /// decrypt. It carries a bundle of ours that issues nothing ([`Account::retry_bundle`]:
    /// no one-time X25519 prekey, the last-resort ML-KEM prekey), so undecryptable
    /// messages cannot use up one-time prekeys, and is bound to the sender's identity
    /// `recipient`.
    pub fn retry_request(&mut self, recipient: &IdentityKey, failed_message: &[u8]) -> Result<Vec<u8>, Error> {
        let bundle = self.account.retry_bundle()?;
        Ok(retry::encode(self.account.identity_pair(), recipient, &message_digest(failed_message), &bundle))
    }

    /// Handles a retry request from `peer`: checks it is signed by the identity of our
    /// current session with `peer`, addressed to us, and names a message we sent among
    /// the last `RETRY_WINDOW` (once only). Then starts a new session from the bundle it
    /// carries and returns the digest of the message the app should re-send.
    pub fn handle_retry_request<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        request: &[u8],
        rng: &mut R,
    ) -> Result<[u8; 32], Error> {
        let req = retry::decode(request)?;
        if &req.recipient != self.identity() {
            return Err(RetryError::WrongRecipient.into());
        }
        let record = self.peers.get(peer).ok_or(Error::NoSession)?;
        if record.remote_identity() != Some(&req.requester) {
            return Err(RetryError::UntrustedIdentity.into());
        }
        if !record.has_sent_digest(&req.digest) {
            return Err(RetryError::UnknownMessage.into());
        }
        let session = self.outbound_session(&req.bundle, rng, None)?;
        let record = self.peers.get_mut(peer).ok_or(Error::NoSession)?;
        record.take_sent_digest(&req.digest);
        record.insert_outbound(session);
        Ok(req.digest)
    }

    /// SHA-256 of the device's complete serialized state. Two devices with equal digests
    /// hold byte-for-byte equal state; tests use it to prove a failed call changed nothing.
    pub fn state_digest(&self) -> [u8; 32] {
        let mut state = zeroize::Zeroizing::new(self.encode_state());
        let d = crate::crypto::sha256(&[&state]);
        state.clear();
        d
    }

    fn encode_state(&self) -> Vec<u8> {
        let mut w = Writer::raw(4096);
        w.var_bytes(self.user_id.as_bytes());
        self.account.write(&mut w);
        w.u32(self.peers.len() as u32);
        for (name, record) in &self.peers {
            w.var_bytes(name.as_bytes());
            record.write(&mut w);
        }
        w.into_bytes()
    }

    /// Exports the whole device (account, prekeys, sessions) as an encrypted snapshot.
    pub fn export<R: CryptoRng + ?Sized>(&self, key: &SnapshotKey, rng: &mut R) -> Vec<u8> {
        snapshot::seal(key, SnapshotKind::Device, self.encode_state(), rng)
    }

    /// Imports a device snapshot made by [`Device::export`].
    pub fn import(key: &SnapshotKey, bytes: &[u8]) -> Result<Self, Error> {
        let state = snapshot::open(key, SnapshotKind::Device, bytes)?;
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
            peers.insert(name, SessionRecord::read(&mut r).map_err(invalid)?);
        }
        r.finish().map_err(invalid)?;
        Ok(Device { user_id, account, peers })
    }

    /// Exports the session record with `peer` as an encrypted snapshot.
    pub fn export_session<R: CryptoRng + ?Sized>(
        &self,
        peer: &str,
        key: &SnapshotKey,
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        let record = self.peers.get(peer).ok_or(Error::NoSession)?;
        let mut w = Writer::raw(4096);
        record.write(&mut w);
        Ok(snapshot::seal(key, SnapshotKind::SessionRecord, w.into_bytes(), rng))
    }

    /// Imports a session record snapshot for `peer`, replacing any record held.
    pub fn import_session(&mut self, peer: &str, key: &SnapshotKey, bytes: &[u8]) -> Result<(), Error> {
        check_name(peer)?;
        let state = snapshot::open(key, SnapshotKind::SessionRecord, bytes)?;
        let mut r = Reader::raw(&state);
        let invalid = |e: DecodeError| Error::Snapshot(SnapshotError::InvalidState(e));
        let record = SessionRecord::read(&mut r).map_err(invalid)?;
        r.finish().map_err(invalid)?;
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
