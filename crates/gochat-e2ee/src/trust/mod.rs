//! Pinned peer identities and the identity-change policy.
//!
//! The device pins one identity per peer name: the first identity seen (trust on first
//! use), or the one the app approved. Every decrypt and every session start compares
//! the peer's **full 66-byte identity key** (Ed25519 and X25519 parts) with the pin. Half
//! a key is never enough: an identity is two independent keys, so
//! `(IKsig_Alice, IKdh_Mallory)` is a different identity from Alice's, and Mallory holds
//! its agreement secret.
//!
//! A changed identity never takes over by itself. Under [`IdentityPolicy::RequireApproval`]
//! (the default) a session with a changed identity is kept aside, never becomes current,
//! and sending to the peer fails with `IdentityChanged` until the app calls
//! `approve_identity`. Under [`IdentityPolicy::Notify`] the change is accepted at once,
//! and still reported. Either way the change reaches the app as an [`IdentityEvent`] in
//! the result of the call that saw it.
//!
//! Under [`IdentityPolicy::Certified`] a change that comes with a verified device
//! certificate ([`certificate::VerifiedDevice`]) for the peer and the new identity is
//! approved at once; an uncertified change stays blocked as under `RequireApproval`. The
//! event's [`ChangeReason`] says which rule decided.
//!
//! [`safety_number`] gives the users their own check: a 60-digit number and a scannable
//! payload over both identities (issue 11, first part). [`provisioning`] links a new
//! device from the phone through a one-time QR offer (issue 11, part 4).
//! [`certificate`] is the government trust chain (issue 11, part 2) and [`devices`] the
//! master-key-signed device lists (issue 11, part 3).

pub mod address;
pub mod certificate;
pub mod devices;
pub mod provisioning;
pub mod safety_number;

pub use devices::{
    DeviceEndorsement, DeviceEntry, DeviceList, DeviceListError, DeviceListEvent, DeviceLists, MasterKey,
    MasterPublicKey,
};

use std::collections::BTreeMap;

use crate::keys::{IdentityKey, IDENTITY_KEY_BYTES};
use crate::records::{Tracked, TrackedMap};
use crate::wire::{DecodeError, Reader, Writer};

/// What the device does when a peer shows an identity other than the pinned one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdentityPolicy {
    /// Keep the old identity pinned; the new one waits for `approve_identity`, and
    /// sending to the peer fails with `IdentityChanged` meanwhile. The default.
    #[default]
    RequireApproval,
    /// Pin the new identity at once (the change is still reported as an event).
    Notify,
    /// Pin the new identity at once if it comes with a verified device certificate for
    /// the peer and that identity (`initiate_certified`, `decrypt_certified`,
    /// `approve_certified`); otherwise as `RequireApproval`.
    Certified,
}

impl IdentityPolicy {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            IdentityPolicy::RequireApproval => 0,
            IdentityPolicy::Notify => 1,
            IdentityPolicy::Certified => 2,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Result<Self, DecodeError> {
        match b {
            0 => Ok(IdentityPolicy::RequireApproval),
            1 => Ok(IdentityPolicy::Notify),
            2 => Ok(IdentityPolicy::Certified),
            _ => Err(DecodeError::InvalidValue("identity policy")),
        }
    }
}

/// Why an identity change was, or was not, accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeReason {
    /// Accepted by the `Notify` policy.
    Notify,
    /// Accepted on a verified device certificate (policy `Certified`).
    Certified,
    /// Policy `RequireApproval`: waits for `approve_identity`.
    AwaitingApproval,
    /// Policy `Certified` but no verified certificate for this identity came with it:
    /// blocked as under `RequireApproval` (`approve_certified` or `approve_identity`).
    Uncertified,
}

/// How the sender's identity relates to the identity pinned for the peer.
#[must_use = "an identity change must be shown to the user"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// One value per call, never stored in bulk: boxing `previous` would only cost an allocation.
#[allow(clippy::large_enum_variant)]
pub enum IdentityEvent {
    /// No identity was pinned for this peer: this one is now (trust on first use).
    New,
    /// The pinned identity.
    Same,
    /// Another identity than the pinned one.
    Changed {
        /// The identity pinned before.
        previous: IdentityKey,
        /// True if the new identity is now pinned (policy `Notify`, or `Certified` with
        /// a verified certificate); false if it waits for `approve_identity` and sending
        /// to the peer is blocked until then.
        approved: bool,
        /// Which rule decided `approved`.
        reason: ChangeReason,
    },
}

impl IdentityEvent {
    /// Whether the identity is (now) the pinned one, so its session may become current.
    pub fn is_trusted(&self) -> bool {
        !matches!(self, IdentityEvent::Changed { approved: false, .. })
    }
}

/// The trust record of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PeerTrust {
    pinned: IdentityKey,
    /// The newest unapproved identity seen, if any.
    pending: Option<IdentityKey>,
}

/// One peer's pinned identity and pending change, as read from a store record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PinnedEntry(PeerTrust);

/// Pinned identities of every peer, and the policy.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    policy: Tracked<IdentityPolicy>,
    peers: TrackedMap<String, PeerTrust>,
}

/// Why sending to a peer is refused by the trust layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Untrusted;

impl TrustStore {
    /// The policy in force.
    pub fn policy(&self) -> IdentityPolicy {
        *self.policy
    }

    pub(crate) fn set_policy(&mut self, policy: IdentityPolicy) {
        *self.policy = policy;
    }

    /// The pinned identity of `peer`.
    pub fn pinned(&self, peer: &str) -> Option<&IdentityKey> {
        self.peers.get(peer).map(|t| &t.pinned)
    }

    /// The unapproved identity `peer` showed last, if any.
    pub fn pending(&self, peer: &str) -> Option<&IdentityKey> {
        self.peers.get(peer).and_then(|t| t.pending.as_ref())
    }

    /// The event `identity` would cause for `peer`, without recording it.
    /// `certified` says that a verified device certificate for `peer` and `identity`
    /// came with it (which approves a change under `Certified`).
    pub(crate) fn classify_certified(&self, peer: &str, identity: &IdentityKey, certified: bool) -> IdentityEvent {
        let reason = match (*self.policy, certified) {
            (IdentityPolicy::Notify, _) => ChangeReason::Notify,
            (IdentityPolicy::RequireApproval, _) => ChangeReason::AwaitingApproval,
            (IdentityPolicy::Certified, true) => ChangeReason::Certified,
            (IdentityPolicy::Certified, false) => ChangeReason::Uncertified,
        };
        let approved = matches!(reason, ChangeReason::Notify | ChangeReason::Certified);
        match self.peers.get(peer) {
            None => IdentityEvent::New,
            Some(t) if &t.pinned == identity => IdentityEvent::Same,
            Some(t) => IdentityEvent::Changed { previous: t.pinned, approved, reason },
        }
    }

    /// Records what [`TrustStore::classify_certified`] returned for `identity` (call only after the
    /// operation that saw it has succeeded).
    pub(crate) fn record(&mut self, peer: &str, identity: &IdentityKey, event: &IdentityEvent) {
        match event {
            IdentityEvent::New | IdentityEvent::Changed { approved: true, .. } => {
                self.peers.insert(peer.to_owned(), PeerTrust { pinned: *identity, pending: None });
            }
            IdentityEvent::Same => {}
            IdentityEvent::Changed { approved: false, .. } => {
                if let Some(t) = self.peers.get_mut(peer) {
                    t.pending = Some(*identity);
                }
            }
        }
    }

    /// Pins `identity` for `peer` and clears any pending change: the app's decision.
    pub(crate) fn approve(&mut self, peer: &str, identity: &IdentityKey) {
        self.peers.insert(peer.to_owned(), PeerTrust { pinned: *identity, pending: None });
    }

    /// Whether we may send to `peer` on a session with `identity`: it must be the pinned
    /// identity, and no unapproved change may be pending.
    pub(crate) fn check_send(&self, peer: &str, identity: &IdentityKey) -> Result<(), Untrusted> {
        match self.peers.get(peer) {
            Some(t) if &t.pinned == identity && t.pending.is_none() => Ok(()),
            _ => Err(Untrusted),
        }
    }

    /// Whether `identity` is the pinned identity of `peer`.
    pub(crate) fn is_pinned(&self, peer: &str, identity: &IdentityKey) -> bool {
        self.pinned(peer) == Some(identity)
    }

    /// The exact bytes `peer`'s entry takes in [`TrustStore::write`]'s output (0 if none).
    pub(crate) fn entry_len(&self, peer: &str) -> usize {
        self.peers.get(peer).map_or(0, |t| {
            4 + peer.len() + IDENTITY_KEY_BYTES + 1 + t.pending.as_ref().map_or(0, |_| IDENTITY_KEY_BYTES)
        })
    }

    /// Removes `peer`'s pinned identity and pending change; whether there was one.
    pub(crate) fn forget(&mut self, peer: &str) -> bool {
        self.peers.remove(peer).is_some()
    }

    /// Names of peers with a pinned identity.
    pub(crate) fn peers(&self) -> impl Iterator<Item = &str> {
        self.peers.keys().map(String::as_str)
    }

    /// Number of peers with a pinned identity.
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether `peer` has an entry.
    pub(crate) fn contains(&self, peer: &str) -> bool {
        self.peers.contains_key(peer)
    }

    /// Whether the policy was changed, and the peers whose entries were, since the last
    /// call (for the store's change set); clears the marks.
    pub(crate) fn take_touched(&mut self) -> (bool, std::collections::BTreeSet<String>) {
        (self.policy.take_touched(), self.peers.take_touched())
    }

    /// Marks the policy and every entry changed.
    pub(crate) fn mark_all(&mut self) {
        self.policy.mark();
        self.peers.mark_all();
    }

    /// The bytes [`TrustStore::write_entry`] writes for `peer` (0 if none).
    pub(crate) fn entry_body_len(&self, peer: &str) -> usize {
        self.peers
            .get(peer)
            .map_or(0, |t| IDENTITY_KEY_BYTES + 1 + t.pending.as_ref().map_or(0, |_| IDENTITY_KEY_BYTES))
    }

    /// Writes `peer`'s entry (`pinned || flag || pending?`); false (nothing written) if none.
    pub(crate) fn write_entry(&self, peer: &str, w: &mut Writer) -> bool {
        let Some(t) = self.peers.get(peer) else { return false };
        t.pinned.write(w);
        w.flag(t.pending.is_some());
        if let Some(p) = &t.pending {
            p.write(w);
        }
        true
    }

    /// Reads an entry written by [`TrustStore::write_entry`] (opaque to callers).
    pub(crate) fn read_entry(r: &mut Reader<'_>) -> Result<PinnedEntry, DecodeError> {
        let bad = |_| DecodeError::InvalidValue("pinned identity");
        let pinned = IdentityKey::read_trusted(r).map_err(bad)?;
        let pending =
            if r.flag("pending identity flag")? { Some(IdentityKey::read_trusted(r).map_err(bad)?) } else { None };
        Ok(PinnedEntry(PeerTrust { pinned, pending }))
    }

    /// Replaces (or removes, with `None`) `peer`'s entry with one read from a record.
    pub(crate) fn put_entry(&mut self, peer: &str, entry: Option<PinnedEntry>) {
        match entry {
            Some(PinnedEntry(t)) => {
                self.peers.insert(peer.to_owned(), t);
            }
            None => {
                self.peers.remove(peer);
            }
        }
    }

    /// Sets the policy read from a settings record.
    pub(crate) fn put_policy(&mut self, policy: IdentityPolicy) {
        *self.policy = policy;
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u8(self.policy.to_byte());
        w.u32(self.peers.len() as u32);
        for (name, t) in &self.peers {
            w.var_bytes(name.as_bytes());
            t.pinned.write(w);
            w.flag(t.pending.is_some());
            if let Some(p) = &t.pending {
                p.write(w);
            }
        }
    }

    pub(crate) fn read(
        r: &mut Reader<'_>,
        max_peers: usize,
        read_name: impl Fn(&mut Reader<'_>) -> Result<String, DecodeError>,
    ) -> Result<Self, DecodeError> {
        let policy = IdentityPolicy::from_byte(r.u8()?)?;
        let n = r.count(max_peers, "pinned identity count")?;
        let mut peers = BTreeMap::new();
        let bad = |_| DecodeError::InvalidValue("pinned identity");
        for _ in 0..n {
            let name = read_name(r)?;
            let pinned = IdentityKey::read_trusted(r).map_err(bad)?;
            let pending =
                if r.flag("pending identity flag")? { Some(IdentityKey::read_trusted(r).map_err(bad)?) } else { None };
            if peers.insert(name, PeerTrust { pinned, pending }).is_some() {
                return Err(DecodeError::InvalidValue("duplicate pinned peer"));
            }
        }
        Ok(TrustStore { policy: Tracked::new(policy), peers: TrackedMap::from_map(peers) })
    }
}
