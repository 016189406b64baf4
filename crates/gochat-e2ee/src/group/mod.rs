//! Groups with Sender Keys: each member device's sender chain and signing key, a
//! signed, hash-chained membership, and the pairwise distributions a change needs.
//!
//! Security properties (protocol chapter 12):
//! - A group message is signed by its sender's per-generation Ed25519 key; the
//!   signature is checked before anything else, so a server that cannot sign costs a
//!   receiver one lookup and one verification.
//! - Every message and distribution names the sender's membership epoch and hash. A
//!   member refuses one from a forked history (`GroupFork`), from an epoch it has not
//!   reached (`EpochAhead`, retry after the commits) and from before a removal
//!   (`StaleEpoch`: a removed device could have read it).
//! - Membership changes are commits signed by a member allowed to make them and
//!   chained by hash: the server can withhold or reorder them, not forge or replay them.
//! - After a removal or a device replacement every remaining member rotates to a new
//!   generation and sends it only to the remaining members, and every receiver deletes
//!   the removed device's keys.
//! - Decrypting is two-phase (stage, then apply): a failed decrypt changes nothing.

pub mod chain;
pub mod membership;
pub mod message;
pub mod sender_key;

use std::collections::BTreeMap;

use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::crypto::{sha256, CryptoError};
use crate::keys::{IdentityKey, IdentityKeyPair, KeyError};
use crate::labels;
use crate::ratchet::{pad, unpad, MAX_PLAINTEXT_BYTES};
use crate::records::TrackedMap;
use crate::wire::{DecodeError, Reader, Writer};

use chain::{message_key, ChainError, ReceiverChain, Staged};
pub use chain::{MAX_FORWARD_JUMP, MAX_SKIPPED_KEYS};
use membership::Membership;
pub use membership::{GroupId, GroupMember, MembershipChange, MAX_EPOCH_HISTORY, MAX_GROUP_MEMBERS};
use message::{commit_body, decode_commit, decode_welcome, welcome_body, Distribution, GroupMessage};
pub use message::{CommitOp, MAX_COMMIT_BYTES, MAX_GROUP_MESSAGE_BYTES, MAX_WELCOME_BYTES};
use sender_key::{Generations, OwnSenderKey, ReceivedKey};
pub use sender_key::{RotationPolicy, MAX_SENDER_GENERATIONS};

/// Most groups one device belongs to.
pub const MAX_GROUPS: usize = 1_024;
/// Most skipped message keys held in one group, over all its senders. When a message
/// would exceed it, its own sender's oldest skipped keys are evicted, so one member
/// flooding cannot evict the keys of others.
pub const MAX_GROUP_SKIPPED_KEYS: usize = 20_000;

/// Why a group operation was refused. Nothing changed in any case.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupError {
    /// The input does not follow its layout.
    #[error("malformed input: {0}")]
    Decode(#[from] DecodeError),
    /// A key in the input is invalid.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No group with this id is held.
    #[error("unknown group")]
    UnknownGroup,
    /// The group already exists (a second welcome for it).
    #[error("group already exists")]
    GroupExists,
    /// The device (the sender, the author, or this device) is not a member.
    #[error("not a member of the group")]
    NotMember,
    /// The change needs an admin and its author is not one.
    #[error("only an admin may make this change")]
    NotAdmin,
    /// No sender key with this id is held for the sender: the distribution has not
    /// arrived (retry the message once it has) or the key was dropped.
    #[error("no sender key {key_id:#010x} from {sender}")]
    MissingSenderKey {
        /// The sender's member name.
        sender: String,
        /// The key id the message names.
        key_id: u32,
    },
    /// The input is from a membership epoch this device has not reached: apply the
    /// missing commits, then retry.
    #[error("input is from epoch {got}, this device is at {have}")]
    EpochAhead {
        /// This device's epoch.
        have: u64,
        /// The input's epoch.
        got: u64,
    },
    /// The input is from an epoch before a removal (or older than the history kept).
    #[error("input is from an epoch before a removal")]
    StaleEpoch,
    /// The input's membership hash differs from ours at that epoch, or a second
    /// commit for an epoch arrived: the server shows members different histories.
    #[error("membership fork detected at epoch {epoch}")]
    GroupFork {
        /// The epoch at which the histories differ.
        epoch: u64,
    },
    /// A commit or welcome already applied (a replay), or a message already read.
    #[error("already applied")]
    Duplicate,
    /// A change breaks the membership rules (the reason is given).
    #[error("invalid membership change: {0}")]
    InvalidMembership(&'static str),
    /// A signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// A distribution came over a pairwise session whose identity is not the one the
    /// member list holds for that name.
    #[error("sender identity differs from the member list")]
    IdentityMismatch,
    /// The sender chain refused the iteration.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The ciphertext did not authenticate.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The decrypted padding is invalid.
    #[error("invalid padding")]
    InvalidPadding,
    /// The plaintext is longer than `MAX_PLAINTEXT_BYTES`.
    #[error("plaintext of {0} bytes is too large")]
    PlaintextTooLarge(usize),
    /// The device already holds `MAX_GROUPS` groups.
    #[error("too many groups")]
    TooManyGroups,
    /// A primitive refused an internal length (a bug).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// One group as this device sees it.
#[derive(Debug, Clone)]
pub struct Group {
    id: GroupId,
    me: String,
    membership: Membership,
    own: Option<OwnSenderKey>,
    received: BTreeMap<String, Generations>,
    policy: RotationPolicy,
    /// False once this device was removed (or replaced): it sends and reads nothing.
    active: bool,
}

/// A decrypted group message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlaintext {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The sender's member name.
    pub sender: String,
    /// The sender's identity (from the member list).
    pub sender_identity: IdentityKey,
    /// The sender key generation and the message's iteration on it.
    pub key_id: u32,
    /// The message's iteration.
    pub iteration: u32,
}

/// A verified, decrypted message whose chain step is not yet applied.
pub(crate) struct StagedMessage {
    pub(crate) out: GroupPlaintext,
    generation: usize,
    staged: Staged,
}

impl StagedMessage {
    /// Skipped keys applying this adds (for the state budget).
    pub(crate) fn added_keys(&self) -> usize {
        self.staged.added_keys()
    }
}

/// This device's own commit: the group after it, the commit, a welcome for the devices
/// it adds, and the change.
pub(crate) type OwnCommit = (Group, Vec<u8>, Option<Vec<u8>>, MembershipChange);

fn digest(bytes: &[u8]) -> [u8; 32] {
    sha256(&[bytes])
}

impl Group {
    /// Creates a group at epoch 0 with `me` (admin, `pair`'s identity) and `others`,
    /// and signs its welcome (the full list, for every member).
    pub(crate) fn create<R: CryptoRng + ?Sized>(
        me: &str,
        pair: &IdentityKeyPair,
        others: &[GroupMember],
        now: u64,
        rng: &mut R,
    ) -> Result<(Group, Vec<u8>), GroupError> {
        let mut id = [0u8; 32];
        rng.fill_bytes(&mut id);
        let id = GroupId(id);
        let mut list = others.to_vec();
        list.push(GroupMember { name: me.to_owned(), identity: *pair.public(), admin: true });
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let membership = Membership::from_list(&id, 0, &[0; 32], &list)?;
        let welcome = sign_change(welcome_body(&id, 0, &[0; 32], me, &list), pair, labels::SIG_GROUP_WELCOME);
        let group = Group {
            id,
            me: me.to_owned(),
            membership,
            own: Some(OwnSenderKey::generate(now, rng)),
            received: BTreeMap::new(),
            policy: RotationPolicy::default(),
            active: true,
        };
        Ok((group, welcome))
    }

    /// Joins from a welcome: checks that the author is an admin in the list and signed
    /// it, and that `me` is in it with `my_identity`. Returns the group (with a fresh
    /// sender key) and the author's name and identity (the caller checks it is a
    /// trusted identity for that name).
    pub(crate) fn join<R: CryptoRng + ?Sized>(
        welcome: &[u8],
        me: &str,
        my_identity: &IdentityKey,
        now: u64,
        rng: &mut R,
    ) -> Result<(Group, String, IdentityKey), GroupError> {
        let w = decode_welcome(welcome)?;
        let author = w.body.iter().find(|m| m.name == w.author).ok_or(GroupError::NotMember)?;
        if !author.admin {
            return Err(GroupError::NotAdmin);
        }
        if !author.identity.verify(labels::SIG_GROUP_WELCOME, w.signed, &w.signature) {
            return Err(GroupError::BadSignature);
        }
        if !w.body.iter().any(|m| m.name == me && &m.identity == my_identity) {
            return Err(GroupError::NotMember);
        }
        let membership = Membership::from_list(&w.group_id, w.epoch, &w.prev_hash, &w.body)?;
        let group = Group {
            id: w.group_id,
            me: me.to_owned(),
            membership,
            own: Some(OwnSenderKey::generate(now, rng)),
            received: BTreeMap::new(),
            policy: RotationPolicy::default(),
            active: true,
        };
        Ok((group, author.name.clone(), author.identity))
    }

    /// The group id.
    pub fn id(&self) -> &GroupId {
        &self.id
    }

    /// The current membership epoch.
    pub fn epoch(&self) -> u64 {
        self.membership.epoch()
    }

    /// The hash of the current membership (compare it out of band to detect a fork).
    pub fn membership_hash(&self) -> [u8; 32] {
        self.membership.hash()
    }

    /// The current member devices, in name order.
    pub fn members(&self) -> Vec<GroupMember> {
        self.membership.list()
    }

    /// Whether this device is still a member.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The rotation policy.
    pub fn policy(&self) -> RotationPolicy {
        self.policy
    }

    pub(crate) fn set_policy(&mut self, policy: RotationPolicy) {
        self.policy = policy;
    }

    /// Every member name but this device's.
    pub(crate) fn others(&self) -> Vec<String> {
        self.membership.names().filter(|n| *n != self.me).map(str::to_owned).collect()
    }

    /// The number of [`Self::others`], without allocating.
    pub(crate) fn others_len(&self) -> usize {
        self.membership.names().filter(|n| *n != self.me).count()
    }

    /// Whether this device may remove member `name` (another device): it is active and
    /// an admin, and `name` is a member.
    pub(crate) fn may_remove(&self, name: &str) -> bool {
        self.active
            && name != self.me
            && self.membership.get(name).is_some()
            && self.membership.get(&self.me).is_some_and(|(_, admin)| admin)
    }

    pub(crate) fn member_identity(&self, name: &str) -> Option<IdentityKey> {
        self.membership.get(name).map(|(id, _)| *id)
    }

    /// Signs a commit making `op` and returns the group after it (not yet stored),
    /// the commit, a welcome for the devices it adds (if any), and the change.
    pub(crate) fn commit(&self, op: &CommitOp, pair: &IdentityKeyPair) -> Result<OwnCommit, GroupError> {
        if !self.active {
            return Err(GroupError::NotMember);
        }
        self.membership.check_author(&self.me, op)?;
        let epoch = self.epoch() + 1;
        let commit = sign_change(
            commit_body(&self.id, epoch, &self.membership.hash(), &self.me, op),
            pair,
            labels::SIG_GROUP_COMMIT,
        );
        let (next, change) = self.after(op, digest(&commit))?;
        let welcome = match op {
            CommitOp::Add(_) | CommitOp::Replace { .. } => Some(sign_change(
                welcome_body(&self.id, epoch, &self.membership.hash(), &self.me, &next.membership.list()),
                pair,
                labels::SIG_GROUP_WELCOME,
            )),
            CommitOp::Remove(_) => None,
        };
        Ok((next, commit, welcome, change))
    }

    /// Verifies a commit by another member and returns the group after it (not yet
    /// stored) and the change. Checks, in order: layout, group id, the author is a
    /// current member (`NotMember`) and signed it (`BadSignature`), then epoch and
    /// previous hash (`EpochAhead`, `Duplicate`, `GroupFork`: so only a signed commit
    /// can report a fork), the admin rule (`NotAdmin`), the membership rules.
    pub(crate) fn apply_commit(&self, bytes: &[u8]) -> Result<(Group, MembershipChange), GroupError> {
        let c = decode_commit(bytes)?;
        if c.group_id != self.id {
            return Err(GroupError::UnknownGroup);
        }
        // The signature first: an unsigned commit must not be able to raise a fork,
        // an epoch or a replay verdict.
        let (identity, _) = self.membership.get(&c.author).ok_or(GroupError::NotMember)?;
        if !identity.verify(labels::SIG_GROUP_COMMIT, c.signed, &c.signature) {
            return Err(GroupError::BadSignature);
        }
        let d = digest(bytes);
        self.membership.check_next(c.epoch, &c.prev_hash, &d)?;
        if !self.active {
            return Err(GroupError::NotMember);
        }
        self.membership.check_author(&c.author, &c.body)?;
        self.after(&c.body, d)
    }

    /// The group after `op`: removed and replaced devices lose their keys here, this
    /// device's key is retired after any removal, and this device becomes inactive if
    /// it was removed or replaced.
    fn after(&self, op: &CommitOp, commit: [u8; 32]) -> Result<(Group, MembershipChange), GroupError> {
        let (membership, change) = self.membership.apply(&self.id, op, commit)?;
        let mut next = self.clone();
        next.membership = membership;
        for name in change.removed.iter().chain(&change.replaced) {
            next.received.remove(name);
        }
        if !change.removed.is_empty() || !change.replaced.is_empty() {
            if let Some(own) = next.own.as_mut() {
                own.retired = true;
            }
        }
        let me_gone = change.removed.iter().any(|n| n == &self.me) || (change.replaced.iter().any(|n| n == &self.me));
        if me_gone {
            next.active = false;
            next.own = None;
            next.received.clear();
        }
        Ok((next, change))
    }

    /// Starts a new sender key generation if there is none or the current one is due
    /// (policy, or retired after a removal or a restore). Returns whether it rotated.
    pub(crate) fn ensure_key<R: CryptoRng + ?Sized>(&mut self, now: u64, rng: &mut R) -> bool {
        if !self.active {
            return false;
        }
        let due = match &self.own {
            None => true,
            Some(own) => own.due(&self.policy, now) || own.chain.iteration() == u32::MAX,
        };
        if due {
            self.own = Some(OwnSenderKey::generate(now, rng));
        }
        due
    }

    /// Forces a new generation at the next send (after a restore of older state: the
    /// restored chain may re-use message keys already used).
    pub(crate) fn retire_own_key(&mut self) {
        if let Some(own) = self.own.as_mut() {
            own.retired = true;
        }
    }

    /// The distribution of this device's key at its current position, stamped with the
    /// current epoch and hash. `None` if inactive.
    pub(crate) fn distribution(&self) -> Option<Zeroizing<Vec<u8>>> {
        let own = self.own.as_ref().filter(|_| self.active)?;
        let d = Distribution {
            group_id: self.id,
            epoch: self.epoch(),
            state_hash: self.membership_hash(),
            key_id: own.key_id,
            iteration: own.chain.iteration(),
            chain_key: crate::crypto::Secret32(*own.chain.key_bytes()),
            signing_public: own.signing_public(),
        };
        Some(d.encode())
    }

    /// The current key's id, if any.
    pub fn own_key_id(&self) -> Option<u32> {
        self.own.as_ref().map(|o| o.key_id)
    }

    /// Encrypts and signs `plaintext` on this device's current generation (which the
    /// caller has made current with `ensure_key`). Refused if inactive or too large.
    pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, GroupError> {
        if !self.active {
            return Err(GroupError::NotMember);
        }
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(GroupError::PlaintextTooLarge(plaintext.len()));
        }
        let (epoch, hash) = (self.epoch(), self.membership_hash());
        let own = self.own.as_mut().ok_or(GroupError::NotMember)?;
        let mut chain = own.chain.clone();
        let (iteration, mk) = chain.next()?;
        let key = message_key(&mk, labels::GROUP_MESSAGE_KEYS)?;
        let padded = Zeroizing::new(pad(plaintext));
        let w = GroupMessage::header_writer(&self.id, epoch, &hash, own.key_id, iteration, 160 + padded.len());
        let mut out = w.into_bytes();
        let ct = key.seal(&out, &padded)?;
        out.extend_from_slice(&ct);
        let signature = own.sign(&[labels::SIG_GROUP_MESSAGE, &out]);
        out.extend_from_slice(&signature);
        own.chain = chain;
        own.sent = own.sent.saturating_add(1);
        Ok(out)
    }

    /// Verifies and decrypts a message from `sender` without changing anything. Order:
    /// layout, group id, this device active, sender a member, sender key held
    /// (`MissingSenderKey`), signature (`BadSignature`), epoch and hash, chain bounds,
    /// AEAD tag, padding.
    pub(crate) fn stage_decrypt(&self, sender: &str, bytes: &[u8]) -> Result<StagedMessage, GroupError> {
        let m = GroupMessage::decode(bytes)?;
        if m.group_id != self.id {
            return Err(GroupError::UnknownGroup);
        }
        if !self.active {
            return Err(GroupError::NotMember);
        }
        let (identity, _) = self.membership.get(sender).ok_or(GroupError::NotMember)?;
        let missing = || GroupError::MissingSenderKey { sender: sender.to_owned(), key_id: m.key_id };
        let gens = self.received.get(sender).ok_or_else(missing)?;
        let generation = gens.iter().position(|k| k.key_id == m.key_id).ok_or_else(missing)?;
        let key = &gens[generation];
        let signed = [labels::SIG_GROUP_MESSAGE, m.signed].concat();
        if !key.verify(&signed, &m.signature) {
            return Err(GroupError::BadSignature);
        }
        self.membership.check_stamp(m.epoch, &m.state_hash)?;
        let staged = key.chain.stage(m.iteration)?;
        let aead = message_key(&staged.key, labels::GROUP_MESSAGE_KEYS)?;
        let padded = aead.open(m.header, m.ciphertext).ok_or(GroupError::AuthenticationFailed)?;
        let plaintext = unpad(padded).map_err(|_| GroupError::InvalidPadding)?;
        let out = GroupPlaintext {
            plaintext,
            sender: sender.to_owned(),
            sender_identity: *identity,
            key_id: m.key_id,
            iteration: m.iteration,
        };
        Ok(StagedMessage { out, generation, staged })
    }

    /// Applies a staged decrypt (cannot fail), enforcing `MAX_GROUP_SKIPPED_KEYS`.
    /// Returns the plaintext and the change in the number of skipped keys held.
    pub(crate) fn apply_decrypt(&mut self, s: StagedMessage) -> (GroupPlaintext, isize) {
        let adds = s.staged.added_keys();
        let total_before = if adds > 0 { self.skipped_total() } else { 0 };
        let mut delta = 0isize;
        if let Some(key) = self.received.get_mut(&s.out.sender).and_then(|g| g.get_mut(s.generation)) {
            let before = key.chain.skipped_len() as isize;
            key.chain.apply(s.staged);
            let over = (total_before + adds).saturating_sub(MAX_GROUP_SKIPPED_KEYS);
            if over > 0 {
                let keep = key.chain.skipped_len().saturating_sub(over);
                key.chain.evict_to(keep);
            }
            delta = key.chain.skipped_len() as isize - before;
        }
        (s.out, delta)
    }

    fn skipped_total(&self) -> usize {
        self.received.values().flat_map(|g| g.iter()).map(|k| k.chain.skipped_len()).sum()
    }

    /// Checks a distribution from `sender` (whose pairwise session identity is
    /// `sender_identity`) without changing anything. Returns the key to store, or
    /// `None` if that generation is already held (a repeat changes nothing).
    pub(crate) fn stage_distribution(
        &self,
        sender: &str,
        sender_identity: &IdentityKey,
        d: &Distribution,
    ) -> Result<Option<ReceivedKey>, GroupError> {
        if !self.active {
            return Err(GroupError::NotMember);
        }
        if sender == self.me {
            return Err(GroupError::NotMember);
        }
        let (identity, _) = self.membership.get(sender).ok_or(GroupError::NotMember)?;
        if identity != sender_identity {
            return Err(GroupError::IdentityMismatch);
        }
        self.membership.check_stamp(d.epoch, &d.state_hash)?;
        let signing = ed25519_dalek::VerifyingKey::from_bytes(&d.signing_public)
            .map_err(|_| GroupError::Key(KeyError::InvalidIdentityKey))?;
        if self.received.get(sender).is_some_and(|g| g.iter().any(|k| k.key_id == d.key_id)) {
            return Ok(None);
        }
        Ok(Some(ReceivedKey {
            key_id: d.key_id,
            signing,
            chain: ReceiverChain::new(*d.chain_key.as_bytes(), d.iteration),
        }))
    }

    /// Stores a staged distribution, dropping the oldest generation beyond
    /// `MAX_SENDER_GENERATIONS`.
    pub(crate) fn apply_distribution(&mut self, sender: &str, key: ReceivedKey) {
        let gens = self.received.entry(sender.to_owned()).or_default();
        gens.push_back(key);
        while gens.len() > MAX_SENDER_GENERATIONS {
            gens.pop_front();
        }
    }

    /// The exact length of [`Group::write`]'s output.
    pub(crate) fn encoded_len(&self) -> usize {
        32 + 4
            + self.me.len()
            + self.membership.encoded_len()
            + 1
            + self.own.as_ref().map_or(0, |_| OwnSenderKey::STATE_BYTES)
            + 4
            + 8
            + 1
            + 4
            + self
                .received
                .iter()
                .map(|(n, g)| 4 + n.len() + 4 + g.iter().map(ReceivedKey::encoded_len).sum::<usize>())
                .sum::<usize>()
    }

    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn for_each_secret(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        if let Some(own) = &self.own {
            own.for_each_secret(f);
        }
        for k in self.received.values().flatten() {
            k.chain.for_each_secret(f);
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.id.0).var_bytes(self.me.as_bytes());
        self.membership.write(w);
        w.flag(self.own.is_some());
        if let Some(own) = &self.own {
            own.write(w);
        }
        w.u32(self.policy.max_messages).u64(self.policy.max_age_secs).flag(self.active);
        w.u32(self.received.len() as u32);
        for (name, gens) in &self.received {
            w.var_bytes(name.as_bytes()).u32(gens.len() as u32);
            gens.iter().for_each(|k| k.write(w));
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = GroupId(r.array()?);
        let me = message::read_name(r)?;
        let membership = Membership::read(r)?;
        let own = if r.flag("own key flag")? { Some(OwnSenderKey::read(r)?) } else { None };
        let policy = RotationPolicy { max_messages: r.u32()?, max_age_secs: r.u64()? };
        let active = r.flag("active flag")?;
        let n = r.count(MAX_GROUP_MEMBERS, "sender count")?;
        let mut received = BTreeMap::new();
        let mut last: Option<String> = None;
        for _ in 0..n {
            let name = message::read_name(r)?;
            if last.as_ref().is_some_and(|l| l >= &name) || membership.get(&name).is_none() {
                return Err(DecodeError::InvalidValue("sender order"));
            }
            let g = r.count(MAX_SENDER_GENERATIONS, "generation count")?;
            let gens = (0..g).map(|_| ReceivedKey::read(r)).collect::<Result<Generations, _>>()?;
            last = Some(name.clone());
            received.insert(name, gens);
        }
        Ok(Group { id, me, membership, own, received, policy, active })
    }
}

fn sign_change(w: Writer, pair: &IdentityKeyPair, label: &[u8]) -> Vec<u8> {
    let mut bytes = w.into_bytes();
    let signature = pair.sign(label, &bytes);
    bytes.extend_from_slice(&signature);
    bytes
}

/// Every group this device belongs to (or was removed from), by id.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    groups: TrackedMap<GroupId, Group>,
}

impl Groups {
    /// The group with `id`.
    pub fn get(&self, id: &GroupId) -> Option<&Group> {
        self.groups.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &GroupId) -> Option<&mut Group> {
        self.groups.get_mut(id)
    }

    /// Every group id held, in order.
    pub fn ids(&self) -> impl Iterator<Item = &GroupId> {
        self.groups.keys()
    }

    pub(crate) fn len(&self) -> usize {
        self.groups.len()
    }

    pub(crate) fn insert(&mut self, group: Group) {
        self.groups.insert(group.id, group);
    }

    pub(crate) fn remove(&mut self, id: &GroupId) -> Option<Group> {
        self.groups.remove(id)
    }

    /// Marks every group changed.
    pub(crate) fn mark_all(&mut self) {
        self.groups.mark_all();
    }

    /// The groups changed since the last call (for the store's change set); clears the marks.
    pub(crate) fn take_touched(&mut self) -> std::collections::BTreeSet<GroupId> {
        self.groups.take_touched()
    }

    /// Marks every own sender key for rotation (after an import).
    pub(crate) fn retire_own_keys(&mut self) {
        self.groups.values_mut().for_each(Group::retire_own_key);
    }

    /// The length of `id`'s entry in the state encoding (0 if absent).
    pub(crate) fn entry_len(&self, id: &GroupId) -> usize {
        self.groups.get(id).map_or(0, |g| 4 + g.encoded_len())
    }

    pub(crate) fn encoded_len(&self) -> usize {
        4 + self.groups.keys().map(|id| self.entry_len(id)).sum::<usize>()
    }

    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn for_each_secret(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        self.groups.values().for_each(|g| g.for_each_secret(f));
    }

    /// Each group is framed by its length, so a reader can skip one.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.groups.len() as u32);
        for g in self.groups.values() {
            w.u32(g.encoded_len() as u32);
            g.write(w);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count(MAX_GROUPS, "group count")?;
        let mut groups = BTreeMap::new();
        let mut last = None;
        for _ in 0..n {
            let len = r.u32()? as usize;
            let body = r.bytes(len)?;
            let mut gr = Reader::raw(body);
            let g = Group::read(&mut gr)?;
            gr.finish()?;
            if last.is_some_and(|l| l >= g.id) {
                return Err(DecodeError::InvalidValue("group order"));
            }
            last = Some(g.id);
            groups.insert(g.id, g);
        }
        Ok(Groups { groups: TrackedMap::from_map(groups) })
    }
}

/// A pairwise message the app must deliver to `peer` (a 1:1 message in the control
/// kind: pass it to the peer's `group_receive`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The member device (peer name) to deliver it to.
    pub peer: String,
    /// The pairwise message.
    pub message: Vec<u8>,
}

/// Why a member was not sent this device's sender key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithheldReason {
    /// There is no pairwise session with the member: start one (`initiate`), then
    /// call `group_resend_key`.
    NoSession,
    /// The member's identity changed and the change is not approved: approve it (after
    /// checking), then call `group_resend_key`.
    IdentityNotApproved,
    /// The pairwise session is with another identity than the member list holds for
    /// that name: the list or the session is wrong; nothing is sent.
    IdentityMismatch,
}

/// A member that was not sent a sender key, and why. Nothing is ever sent to an
/// identity the app has not approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withheld {
    /// The member device.
    pub peer: String,
    /// Why it was skipped.
    pub reason: WithheldReason,
}

/// The result of a membership operation: what to publish and what to send.
#[must_use = "the commit, welcome and pairwise messages must be sent, and withheld members handled"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChange {
    /// The group.
    pub group_id: GroupId,
    /// Its epoch after the change.
    pub epoch: u64,
    /// A commit to deliver to every member of the previous epoch (removed ones too).
    pub commit: Option<Vec<u8>>,
    /// A welcome to deliver to every added device (on creation: to every member).
    pub welcome: Option<Vec<u8>>,
    /// What changed.
    pub change: MembershipChange,
    /// Pairwise sender-key distributions to deliver.
    pub outgoing: Vec<Outgoing>,
    /// Members that were not sent this device's key.
    pub withheld: Vec<Withheld>,
}

/// An encrypted group message, with the distributions of a new sender key if this
/// send rotated it (deliver those first).
#[must_use = "the message and any pairwise distributions must be sent"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSent {
    /// The group message, for every member.
    pub message: Vec<u8>,
    /// Whether this send started a new sender key generation.
    pub rotated: bool,
    /// Pairwise distributions of the new generation.
    pub outgoing: Vec<Outgoing>,
    /// Members that were not sent the new key.
    pub withheld: Vec<Withheld>,
}

/// A sender key received over a pairwise session.
#[must_use = "the identity event must be checked"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderKeyReceived {
    /// The group.
    pub group_id: GroupId,
    /// The member that sent it.
    pub sender: String,
    /// The generation's key id.
    pub key_id: u32,
    /// False if this generation was already held (a repeat changes nothing).
    pub fresh: bool,
    /// How the pairwise sender's identity relates to its pin.
    pub identity: crate::trust::IdentityEvent,
}

/// The group a commit names (decodes the whole commit).
pub(crate) fn commit_group_id(bytes: &[u8]) -> Result<GroupId, GroupError> {
    Ok(decode_commit(bytes)?.group_id)
}

/// The group a welcome names.
pub(crate) fn welcome_group_id(bytes: &[u8]) -> Result<GroupId, GroupError> {
    Ok(decode_welcome(bytes)?.group_id)
}

/// The group a message names (decodes its layout, no cryptography).
pub(crate) fn message_group_id(bytes: &[u8]) -> Result<GroupId, GroupError> {
    Ok(GroupMessage::decode(bytes)?.group_id)
}

/// Decodes a distribution (the plaintext of a pairwise control message).
pub(crate) fn decode_distribution(bytes: &[u8]) -> Result<Distribution, GroupError> {
    Distribution::decode(bytes)
}

/// Bytes this device's own sender key takes in a group's state.
pub(crate) const OWN_KEY_STATE_BYTES: usize = OwnSenderKey::STATE_BYTES;
/// Bytes one skipped key takes in a group's state.
pub(crate) const SKIPPED_KEY_STATE_BYTES: usize = chain::SKIPPED_ENTRY_BYTES;
