//! Sessions with one peer device: the current session plus archived ones.
//!
//! A [`SessionRecord`] holds up to `1 + MAX_ARCHIVED_SESSIONS` sessions, the current one
//! first. Rules (specified in `docs/protocol.md`, "Session records"):
//! - a ratchet message that decrypts on an archived session makes it current, but only
//!   if the session's identity is the pinned one (the device decides: see `trust`);
//! - a prekey message whose base key matches a stored session is decrypted on it (so a
//!   retransmission is reported as a duplicate, not as a new session);
//! - a new inbound session becomes current, except when the current session is our own
//!   still-unanswered outbound session to the same peer identity and its base key sorts
//!   lower: then both sides of a simultaneous start keep the same session (the one with
//!   the lower base key). A peer that comes back with a new identity always wins, so a
//!   reinstalled peer is never stuck behind our unanswered session;
//! - a session with an unapproved identity is kept aside (never current), and at most
//!   one such session is kept, so a server cannot flush the archive with throwaway
//!   identities;
//! - work per message is bounded: the current session allows a forward jump of up to
//!   `MAX_FORWARD_JUMP`, every other session `MAX_ARCHIVED_FORWARD_JUMP`.

mod message;

pub use message::{message_kind, MessageKind, MAX_MESSAGE_BYTES};
pub(crate) use message::{Incoming, ParseError};

use std::collections::VecDeque;

use rand_core::CryptoRng;

use crate::crypto::sha256;
use crate::handshake::{PreKeyHeader, SESSION_AD_BYTES};
use crate::keys::{IdentityKey, IDENTITY_KEY_BYTES};
use crate::labels;
use crate::ratchet::{
    RatchetError, RatchetState, MAX_ARCHIVED_FORWARD_JUMP, MAX_FORWARD_JUMP, MAX_RATCHET_STATE_BYTES,
};
use crate::wire::{type_byte, DecodeError, Reader, Writer};

/// Archived sessions kept per peer device, besides the current one (as libsignal).
pub const MAX_ARCHIVED_SESSIONS: usize = 40;
/// Digests of recently sent messages kept per peer, so a retry request can name one.
pub const RETRY_WINDOW: usize = 64;

/// What a pairwise message carries. The two kinds are separated in the AEAD's
/// associated data (a control message appends `"GoChat-E2EE v1 pairwise control"` to the
/// session AD), so a control message never decrypts as a chat message or back, whatever
/// a server labels it: the wrong kind fails authentication and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// An application message (`Device::encrypt` / `Device::decrypt`).
    Chat,
    /// A sender-key or channel-key distribution, made and read only by the library.
    Control,
}

impl Content {
    fn ad<'a>(self, session_ad: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        match self {
            Content::Chat => std::borrow::Cow::Borrowed(session_ad),
            Content::Control => std::borrow::Cow::Owned([session_ad, crate::labels::PAIRWISE_CONTROL].concat()),
        }
    }
}

/// One Double Ratchet session with a peer device.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) ratchet: RatchetState,
    pub(crate) ad: Vec<u8>,
    pub(crate) remote_identity: IdentityKey,
    pub(crate) base_key: [u8; 32],
    /// Set on an initiator's session until the first message from the peer arrives.
    pub(crate) pending: Option<PreKeyHeader>,
}

impl Session {
    pub(crate) fn encrypt(&mut self, plaintext: &[u8], content: Content) -> Result<Vec<u8>, RatchetError> {
        let w = match &self.pending {
            Some(h) => {
                let mut w = Writer::with_header(type_byte::PREKEY_MESSAGE, 2048 + plaintext.len());
                h.write(&mut w);
                w
            }
            None => Writer::with_header(type_byte::RATCHET_MESSAGE, 128 + plaintext.len()),
        };
        self.ratchet.encrypt(&content.ad(&self.ad), w, plaintext)
    }

    pub(crate) fn decrypt<R: CryptoRng + ?Sized>(
        &mut self,
        m: &Incoming<'_>,
        max_jump: u32,
        content: Content,
        rng: &mut R,
    ) -> Result<Vec<u8>, RatchetError> {
        let out = self.ratchet.decrypt(&content.ad(&self.ad), m.prefix, &m.header, m.ciphertext, max_jump, rng)?;
        self.pending = None;
        Ok(out)
    }

    fn recognizes(&self, m: &Incoming<'_>) -> bool {
        self.ratchet.recognizes(&m.header)
    }

    /// The exact length of [`Session::write`]'s output.
    fn encoded_len(&self) -> usize {
        self.ratchet.encoded_len() + self.ad.len() + 32 + 1 + self.pending.as_ref().map_or(0, PreKeyHeader::encoded_len)
    }

    fn write(&self, w: &mut Writer) {
        self.ratchet.write(w);
        w.bytes(&self.ad);
        w.bytes(&self.base_key);
        w.flag(self.pending.is_some());
        if let Some(h) = &self.pending {
            h.write(w);
        }
    }

    fn read(r: &mut Reader<'_>, remote_identity: IdentityKey) -> Result<Self, DecodeError> {
        let ratchet = RatchetState::read(r)?;
        let ad = r.bytes(SESSION_AD_BYTES)?.to_vec();
        let base_key = r.array()?;
        let pending = if r.flag("pending flag")? {
            Some(PreKeyHeader::read_trusted(r).map_err(|_| DecodeError::InvalidValue("pending prekey header"))?)
        } else {
            None
        };
        Ok(Session { ratchet, ad, remote_identity, base_key, pending })
    }
}

/// Why a message could not be decrypted on any session of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordError {
    NoSession,
    Ratchet(RatchetError),
}

/// A message we sent, remembered so that a retry request can name it: its digest, the
/// identity it was encrypted to, and the session it went on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SentMessage {
    pub(crate) digest: [u8; 32],
    pub(crate) recipient: IdentityKey,
    pub(crate) base_key: [u8; 32],
}

/// Bytes one retry-window entry takes in a state encoding.
pub(crate) const SENT_MESSAGE_STATE_BYTES: usize = 32 + IDENTITY_KEY_BYTES + 32;

/// The longest state encoding of one session in a record (its identity, a full ratchet
/// and a pending prekey header): the most one input can add to a record.
pub(crate) const MAX_SESSION_STATE_BYTES: usize =
    IDENTITY_KEY_BYTES + MAX_RATCHET_STATE_BYTES + SESSION_AD_BYTES + 32 + 1 + PreKeyHeader::MAX_BYTES;

/// All sessions with one peer device, current first.
///
/// Sessions are boxed: a session holds its root key, ratchet key and sending chain key
/// inline, and a `VecDeque` that grows, inserts or removes moves its elements bitwise,
/// leaving stale copies in memory it frees without wiping. Boxed, the deque moves only
/// pointers, and each session is wiped in place when its box is dropped.
#[derive(Debug, Default, Clone)]
pub struct SessionRecord {
    sessions: VecDeque<Box<Session>>,
    sent: VecDeque<SentMessage>,
}

/// The digest that names a message in a retry request.
pub(crate) fn message_digest(message: &[u8]) -> [u8; 32] {
    sha256(&[labels::MESSAGE_DIGEST, message])
}

/// The forward-jump bound for the session at `index` (0 is current).
fn max_jump(index: usize) -> u32 {
    if index == 0 {
        MAX_FORWARD_JUMP
    } else {
        MAX_ARCHIVED_FORWARD_JUMP
    }
}

impl SessionRecord {
    /// Whether the record holds a current session.
    pub fn has_current(&self) -> bool {
        !self.sessions.is_empty()
    }

    /// Number of archived sessions.
    pub fn archived_len(&self) -> usize {
        self.sessions.len().saturating_sub(1)
    }

    /// Encrypts on the current session and remembers the message (digest, recipient
    /// identity, session) for retry requests.
    pub(crate) fn encrypt(&mut self, plaintext: &[u8], content: Content) -> Result<Vec<u8>, RecordError> {
        let s = self.sessions.front_mut().ok_or(RecordError::NoSession)?;
        let out = s.encrypt(plaintext, content).map_err(RecordError::Ratchet)?;
        let sent = SentMessage { digest: message_digest(&out), recipient: s.remote_identity, base_key: s.base_key };
        if self.sent.len() == RETRY_WINDOW {
            self.sent.pop_front();
        }
        self.sent.push_back(sent);
        Ok(out)
    }

    /// The sent message named by `digest`, if it is among the last `RETRY_WINDOW` sent,
    /// was encrypted to `recipient` (full identity), and its session is still held.
    pub(crate) fn sent_to(&self, digest: &[u8; 32], recipient: &IdentityKey) -> Option<&SentMessage> {
        self.sent
            .iter()
            .find(|m| &m.digest == digest && &m.recipient == recipient)
            .filter(|m| self.find_base_key(&m.base_key).is_some())
    }

    /// Removes `digest` from the sent window (a message is retried at most once).
    pub(crate) fn take_sent(&mut self, digest: &[u8; 32]) {
        self.sent.retain(|m| &m.digest != digest);
    }

    pub(crate) fn find_base_key(&self, base_key: &[u8; 32]) -> Option<usize> {
        self.sessions.iter().position(|s| &s.base_key == base_key)
    }

    /// Decrypts a prekey message on the stored session `index` (a retransmission).
    /// Never changes which session is current.
    pub(crate) fn decrypt_on<R: CryptoRng + ?Sized>(
        &mut self,
        index: usize,
        m: &Incoming<'_>,
        content: Content,
        rng: &mut R,
    ) -> Result<(Vec<u8>, IdentityKey), RecordError> {
        let s = self.sessions.get_mut(index).ok_or(RecordError::NoSession)?;
        let pt = s.decrypt(m, max_jump(index), content, rng).map_err(RecordError::Ratchet)?;
        Ok((pt, s.remote_identity))
    }

    /// Decrypts a ratchet message: first on a session that already knows its ratchet
    /// key, else by trying a DH ratchet step on each session, current first (at most
    /// `1 + MAX_ARCHIVED_SESSIONS` attempts, each within its forward-jump bound).
    /// Returns the plaintext, the index of the session that decrypted it and that
    /// session's identity; does not
    /// change which session is current (the caller promotes a trusted one). Failure
    /// leaves every session unchanged.
    pub(crate) fn decrypt<R: CryptoRng + ?Sized>(
        &mut self,
        m: &Incoming<'_>,
        content: Content,
        rng: &mut R,
    ) -> Result<(Vec<u8>, usize, IdentityKey), RecordError> {
        if self.sessions.is_empty() {
            return Err(RecordError::NoSession);
        }
        if let Some(i) = self.sessions.iter().position(|s| s.recognizes(m)) {
            let s = self.sessions.get_mut(i).ok_or(RecordError::NoSession)?;
            let pt = s.decrypt(m, max_jump(i), content, rng).map_err(RecordError::Ratchet)?;
            return Ok((pt, i, s.remote_identity));
        }
        let mut first_err = None;
        for i in 0..self.sessions.len() {
            let Some(s) = self.sessions.get_mut(i) else { break };
            match s.decrypt(m, max_jump(i), content, rng) {
                Ok(pt) => return Ok((pt, i, s.remote_identity)),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(RecordError::Ratchet(first_err.unwrap_or(RatchetError::AuthenticationFailed)))
    }

    /// Makes session `i` current (the others keep their order).
    pub(crate) fn promote(&mut self, i: usize) {
        if i > 0 {
            if let Some(s) = self.sessions.remove(i) {
                self.sessions.push_front(s);
            }
        }
    }

    /// Makes the newest session with `identity` current, if there is one.
    pub(crate) fn promote_identity(&mut self, identity: &IdentityKey) {
        if let Some(i) = self.sessions.iter().position(|s| &s.remote_identity == identity) {
            self.promote(i);
        }
    }

    fn truncate(&mut self) {
        self.sessions.truncate(1 + MAX_ARCHIVED_SESSIONS);
    }

    /// Makes an outbound session current, archiving the previous one.
    /// Whether the current session is still unanswered (it sends prekey messages) and was
    /// started with `identity` from exactly the prekeys `bundle` offers (its signed and
    /// ML-KEM prekeys, no one-time X25519 prekey): a new session from `bundle` would be
    /// equivalent, so a retry can re-send on this one instead of starting another.
    pub(crate) fn current_is_pending_from(&self, identity: &IdentityKey, bundle: &crate::keys::PreKeyBundle) -> bool {
        self.sessions.front().is_some_and(|s| {
            s.remote_identity == *identity
                && s.pending.as_ref().is_some_and(|h| {
                    h.signed_prekey_id == bundle.signed_prekey().id
                        && h.pq_prekey_id == bundle.pq_prekey().id
                        && h.one_time_prekey_id.is_none()
                        && bundle.one_time_prekey().is_none()
                })
        })
    }

    pub(crate) fn insert_outbound(&mut self, s: Session) {
        self.sessions.push_front(Box::new(s));
        self.truncate();
    }

    /// Stores a new inbound session with a trusted identity (see the module rules for
    /// which becomes current).
    pub(crate) fn insert_inbound(&mut self, s: Session) {
        let s = Box::new(s);
        let keep_current = matches!(
            self.sessions.front(),
            Some(cur) if cur.pending.is_some()
                && cur.remote_identity == s.remote_identity
                && cur.base_key < s.base_key
        );
        if keep_current {
            self.sessions.insert(1, s);
        } else {
            self.sessions.push_front(s);
        }
        self.truncate();
    }

    /// Stores a session whose identity is not approved: never current, and it replaces
    /// any other session whose identity is not `pinned`.
    pub(crate) fn insert_unapproved(&mut self, s: Session, pinned: &IdentityKey) {
        self.sessions.retain(|x| &x.remote_identity == pinned);
        let at = self.sessions.len().min(1);
        self.sessions.insert(at, Box::new(s));
        self.truncate();
    }

    /// The identity of the peer on the current session.
    pub fn remote_identity(&self) -> Option<&IdentityKey> {
        self.sessions.front().map(|s| &s.remote_identity)
    }

    /// Whether `m`'s header names a counter already used on the session it belongs to
    /// (decided from the header alone, as `Duplicate` is).
    pub(crate) fn is_replay(&self, m: &Incoming<'_>) -> bool {
        let on = |s: &Session| s.ratchet.is_replay(&m.header);
        match &m.prekey {
            Some(h) => self.find_base_key(&h.base_key).and_then(|i| self.sessions.get(i)).is_some_and(|s| on(s)),
            None => self.sessions.iter().any(|s| on(s)),
        }
    }

    /// Marks every session as restored from a snapshot (a new sender epoch).
    pub(crate) fn bump_epochs(&mut self) {
        for s in &mut self.sessions {
            s.ratchet.bump_epoch();
        }
    }

    /// The exact length of [`SessionRecord::write`]'s output, computed without writing
    /// (constant time per session).
    pub(crate) fn encoded_len(&self) -> usize {
        4 + self.sessions.iter().map(|s| IDENTITY_KEY_BYTES + s.encoded_len()).sum::<usize>()
            + 4
            + self.sent.len() * SENT_MESSAGE_STATE_BYTES
    }

    /// Calls `f` with every secret of every session (feature `testing`).
    #[cfg(feature = "testing")]
    pub(crate) fn for_each_secret(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        for s in &self.sessions {
            s.ratchet.for_each_secret(f);
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.sessions.len() as u32);
        for s in &self.sessions {
            s.remote_identity.write(w);
            s.write(w);
        }
        w.u32(self.sent.len() as u32);
        for m in &self.sent {
            w.bytes(&m.digest);
            m.recipient.write(w);
            w.bytes(&m.base_key);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bad_identity = |_| DecodeError::InvalidValue("remote identity");
        let n = r.count(1 + MAX_ARCHIVED_SESSIONS, "session count")?;
        let mut sessions = VecDeque::with_capacity(n);
        for _ in 0..n {
            let remote = IdentityKey::read_trusted(r).map_err(bad_identity)?;
            sessions.push_back(Box::new(Session::read(r, remote)?));
        }
        let n = r.count(RETRY_WINDOW, "sent message count")?;
        let mut sent = VecDeque::with_capacity(n);
        for _ in 0..n {
            let digest = r.array()?;
            let recipient = IdentityKey::read_trusted(r).map_err(bad_identity)?;
            sent.push_back(SentMessage { digest, recipient, base_key: r.array()? });
        }
        Ok(SessionRecord { sessions, sent })
    }
}
