//! The group façade of [`Device`]: each method finds the group, lets `group/` decide,
//! checks the state budget, commits, and encrypts the resulting distributions on the
//! pairwise sessions (never to an identity the app has not approved).

use rand_core::CryptoRng;

use super::{check_name, ControlReceived, Device};
use crate::error::Error;
use crate::group::{
    self, CommitOp, Group, GroupChange, GroupError, GroupId, GroupMember, GroupPlaintext, GroupSent, Groups,
    MembershipChange, Outgoing, RotationPolicy, SenderKeyReceived, Withheld, WithheldReason, MAX_GROUPS,
};
use crate::keys::IdentityKey;
use crate::session::{Content, SENT_MESSAGE_STATE_BYTES};

impl Device {
    /// The groups this device holds.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// The group with `id`.
    pub fn group(&self, id: &GroupId) -> Option<&Group> {
        self.groups.get(id)
    }

    /// Creates a group with this device (named by its user id, admin) and `others`,
    /// at epoch 0. Returns the welcome to deliver to every other member and this
    /// device's sender key, encrypted pairwise for every member with an approved
    /// session (the others are listed in `withheld`).
    pub fn group_create<R: CryptoRng + ?Sized>(
        &mut self,
        others: &[GroupMember],
        now: u64,
        rng: &mut R,
    ) -> Result<GroupChange, Error> {
        others.iter().try_for_each(|m| check_name(&m.name))?;
        if self.groups.len() >= MAX_GROUPS {
            return Err(GroupError::TooManyGroups.into());
        }
        let (group, welcome) = Group::create(&self.user_id, self.account.identity_pair(), others, now, rng)?;
        let id = *group.id();
        let names = group.others();
        self.ensure_room(4 + group.encoded_len() + names.len() * SENT_MESSAGE_STATE_BYTES)?;
        self.store_group(group);
        let (outgoing, withheld) = self.send_key(&id, &names)?;
        let change = MembershipChange { added: names, ..MembershipChange::default() };
        Ok(GroupChange { group_id: id, epoch: 0, commit: None, welcome: Some(welcome), change, outgoing, withheld })
    }

    /// Adds member devices (this device must be an admin). Returns the commit for the
    /// current members, the welcome for the new ones, and this device's key at its
    /// current position for the new ones (they cannot read earlier messages).
    pub fn group_add<R: CryptoRng + ?Sized>(
        &mut self,
        id: &GroupId,
        members: &[GroupMember],
        now: u64,
        rng: &mut R,
    ) -> Result<GroupChange, Error> {
        members.iter().try_for_each(|m| check_name(&m.name))?;
        self.own_commit(id, &CommitOp::Add(members.to_vec()), now, rng)
    }

    /// Removes member devices (an admin; or any member removing itself, to leave).
    /// This device rotates to a new sender key and sends it only to the remaining
    /// members; every remaining member does the same when it applies the commit.
    pub fn group_remove<R: CryptoRng + ?Sized>(
        &mut self,
        id: &GroupId,
        names: &[String],
        now: u64,
        rng: &mut R,
    ) -> Result<GroupChange, Error> {
        names.iter().try_for_each(|n| check_name(n))?;
        self.own_commit(id, &CommitOp::Remove(names.to_vec()), now, rng)
    }

    /// Replaces the device behind member `name` by `identity` (an admin): the old
    /// device is cut off exactly as by a removal, and the new one gets the welcome and
    /// the new keys (start a pairwise session with it first).
    pub fn group_replace<R: CryptoRng + ?Sized>(
        &mut self,
        id: &GroupId,
        name: &str,
        identity: &IdentityKey,
        now: u64,
        rng: &mut R,
    ) -> Result<GroupChange, Error> {
        check_name(name)?;
        self.own_commit(id, &CommitOp::Replace { name: name.to_owned(), identity: *identity }, now, rng)
    }

    fn own_commit<R: CryptoRng + ?Sized>(
        &mut self,
        id: &GroupId,
        op: &CommitOp,
        now: u64,
        rng: &mut R,
    ) -> Result<GroupChange, Error> {
        let group = self.groups.get(id).ok_or(GroupError::UnknownGroup)?;
        let (next, commit, welcome, change) = group.commit(op, self.account.identity_pair())?;
        let mut out = self.adopt(next, change, now, rng)?;
        out.commit = Some(commit);
        out.welcome = welcome;
        Ok(out)
    }

    /// Applies a commit made by another member (delivered by the server; it is signed,
    /// so the server can withhold or reorder it, never forge or replay it). Refused:
    /// a commit for an epoch not yet reached (`EpochAhead`: apply the missing ones
    /// first), a replay (`Duplicate`), a commit on another history (`GroupFork`), one
    /// its author may not make (`NotAdmin`, `NotMember`), a bad signature. Returns the
    /// change and this device's pairwise messages: its key for added devices, or a new
    /// generation for the remaining members after a removal or replacement.
    pub fn group_process_commit<R: CryptoRng + ?Sized>(
        &mut self,
        commit: &[u8],
        now: u64,
        rng: &mut R,
    ) -> Result<GroupChange, Error> {
        let id = group::commit_group_id(commit)?;
        let group = self.groups.get(&id).ok_or(GroupError::UnknownGroup)?;
        let (next, change) = group.apply_commit(commit)?;
        self.adopt(next, change, now, rng)
    }

    /// Stores `next` (the group after a commit) within the state budget and sends what
    /// the change requires.
    fn adopt<R: CryptoRng + ?Sized>(
        &mut self,
        mut next: Group,
        change: MembershipChange,
        now: u64,
        rng: &mut R,
    ) -> Result<GroupChange, Error> {
        let id = *next.id();
        let rotated = next.ensure_key(now, rng);
        let recipients: Vec<String> = if !next.is_active() {
            Vec::new()
        } else if rotated {
            next.others()
        } else {
            // Only the added devices need this device's (unchanged) key.
            change.added.iter().filter(|n| next.member_identity(n).is_some()).cloned().collect()
        };
        let old = self.groups.entry_len(&id);
        if self.reserved() + self.held - old + 4 + next.encoded_len() + recipients.len() * SENT_MESSAGE_STATE_BYTES
            > self.budget
        {
            return Err(Error::StateFull);
        }
        let epoch = next.epoch();
        self.store_group(next);
        let (outgoing, withheld) = self.send_key(&id, &recipients)?;
        Ok(GroupChange { group_id: id, epoch, commit: None, welcome: None, change, outgoing, withheld })
    }

    /// Joins a group from a welcome. Its author must be an admin in the welcome's list,
    /// must have signed it, and must be a pinned, approved identity for its name on
    /// this device (else `UntrustedIdentity`: start a session with the author first);
    /// this device must be in the list under its user id and identity. Returns this
    /// device's new sender key for every other member.
    pub fn group_join<R: CryptoRng + ?Sized>(
        &mut self,
        welcome: &[u8],
        now: u64,
        rng: &mut R,
    ) -> Result<GroupChange, Error> {
        let id = group::welcome_group_id(welcome)?;
        if let Some(existing) = self.groups.get(&id) {
            if existing.is_active() {
                return Err(GroupError::Duplicate.into());
            }
        } else if self.groups.len() >= MAX_GROUPS {
            return Err(GroupError::TooManyGroups.into());
        }
        let (group, author, author_identity) = Group::join(welcome, &self.user_id, self.account.identity(), now, rng)?;
        if self.trust.check_send(&author, &author_identity).is_err() || !self.trust.is_pinned(&author, &author_identity)
        {
            return Err(crate::retry::RetryError::UntrustedIdentity.into());
        }
        let names = group.others();
        let epoch = group.epoch();
        let old = self.groups.entry_len(&id);
        if self.reserved() + self.held - old + 4 + group.encoded_len() + names.len() * SENT_MESSAGE_STATE_BYTES
            > self.budget
        {
            return Err(Error::StateFull);
        }
        self.store_group(group);
        let (outgoing, withheld) = self.send_key(&id, &names)?;
        let change = MembershipChange { added: vec![self.user_id.clone()], ..MembershipChange::default() };
        Ok(GroupChange { group_id: id, epoch, commit: None, welcome: None, change, outgoing, withheld })
    }

    /// Encrypts `plaintext` for the group. If this device's sender key is due (the
    /// rotation policy, a removal, a restore of older state), a new generation starts
    /// first and its distributions are returned with the message: deliver them before
    /// it. Refused if this device is no longer a member.
    pub fn group_encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        id: &GroupId,
        plaintext: &[u8],
        now: u64,
        rng: &mut R,
    ) -> Result<GroupSent, Error> {
        let group = self.groups.get(id).ok_or(GroupError::UnknownGroup)?;
        if !group.is_active() {
            return Err(GroupError::NotMember.into());
        }
        if plaintext.len() > crate::ratchet::MAX_PLAINTEXT_BYTES {
            return Err(GroupError::PlaintextTooLarge(plaintext.len()).into());
        }
        self.ensure_room(group::OWN_KEY_STATE_BYTES + 1 + group.others_len() * SENT_MESSAGE_STATE_BYTES)?;
        let before = self.groups.entry_len(id);
        let group = self.groups.get_mut(id).ok_or(GroupError::UnknownGroup)?;
        let rotated = group.ensure_key(now, rng);
        // The new generation is distributed at its start, before this message uses it.
        let payload = if rotated { group.distribution() } else { None };
        let message = group.encrypt(plaintext)?;
        // The recipient list is built only for a fan-out: a plain send clones no
        // member names.
        let listed: Vec<(String, Option<IdentityKey>)> = match payload {
            Some(_) => group
                .others()
                .into_iter()
                .map(|n| {
                    let identity = group.member_identity(&n);
                    (n, identity)
                })
                .collect(),
            None => Vec::new(),
        };
        self.held = self.held - before + self.groups.entry_len(id);
        let (outgoing, withheld) = match payload {
            Some(p) => self.fan_out(&listed, &p)?,
            None => (Vec::new(), Vec::new()),
        };
        Ok(GroupSent { message, rotated, outgoing, withheld })
    }

    /// Decrypts a group message from member `sender` (the name the server gives; a
    /// wrong one fails the signature). The signature is checked before anything else;
    /// then the membership stamp, the chain and the AEAD. `MissingSenderKey` means the
    /// distribution has not arrived: keep the message and retry after it has. On any
    /// error, nothing changes.
    pub fn group_decrypt(&mut self, sender: &str, message: &[u8]) -> Result<GroupPlaintext, Error> {
        check_name(sender)?;
        let id = group::message_group_id(message)?;
        let group = self.groups.get(&id).ok_or(GroupError::UnknownGroup)?;
        let staged = group.stage_decrypt(sender, message)?;
        self.ensure_room(staged.added_keys() * group::SKIPPED_KEY_STATE_BYTES)?;
        let group = self.groups.get_mut(&id).ok_or(GroupError::UnknownGroup)?;
        let (out, delta) = group.apply_decrypt(staged);
        self.held = self.held.saturating_add_signed(delta * group::SKIPPED_KEY_STATE_BYTES as isize);
        Ok(out)
    }

    /// Receives a group sender key (0x23) from `peer` on the pairwise session: exactly
    /// [`Self::receive_control`] with any other control message refused before the
    /// session commits. The peer must be a member whose listed identity is the
    /// session's identity, at a consistent epoch; if the group refuses the key, the
    /// pairwise session is left as it was, so it can be retried (e.g. after the welcome
    /// or the commit arrives).
    pub fn group_receive<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        message: &[u8],
        rng: &mut R,
    ) -> Result<SenderKeyReceived, Error> {
        match self.receive_control_of(peer, message, Some(crate::wire::type_byte::GROUP_DISTRIBUTION), rng)? {
            ControlReceived::SenderKey(received) => Ok(received),
            // Refused by the type filter before anything committed.
            ControlReceived::ChannelKey(_) => {
                Err(crate::wire::DecodeError::InvalidValue("control message type").into())
            }
        }
    }

    /// Sends this device's current sender key (at its current position) to one member
    /// again: after a withheld member got a session or an approval, or when it lost the
    /// key. Messages sent before the current position stay unreadable for it.
    pub fn group_resend_key(&mut self, id: &GroupId, peer: &str) -> Result<(Vec<Outgoing>, Vec<Withheld>), Error> {
        let group = self.groups.get(id).ok_or(GroupError::UnknownGroup)?;
        if !group.is_active() {
            return Err(GroupError::NotMember.into());
        }
        if group.member_identity(peer).is_none() || peer == self.user_id {
            return Err(GroupError::NotMember.into());
        }
        self.ensure_room(SENT_MESSAGE_STATE_BYTES)?;
        self.send_key(id, &[peer.to_owned()])
    }

    /// Sets when this device rotates its sender key in group `id`.
    pub fn group_set_rotation_policy(&mut self, id: &GroupId, policy: RotationPolicy) -> Result<(), Error> {
        let group = self.groups.get_mut(id).ok_or(GroupError::UnknownGroup)?;
        group.set_policy(policy);
        Ok(())
    }

    /// Deletes all state of group `id` (for a group this device left or was removed
    /// from). Returns whether it was held.
    pub fn group_forget(&mut self, id: &GroupId) -> bool {
        let before = self.groups.entry_len(id);
        let removed = self.groups.remove(id).is_some();
        self.held -= before;
        removed
    }

    fn store_group(&mut self, group: Group) {
        let id = *group.id();
        let before = self.groups.entry_len(&id);
        self.groups.insert(group);
        self.held = self.held - before + self.groups.entry_len(&id);
    }

    /// Encrypts this device's current distribution for each of `names` on its pairwise
    /// session, as a control message. A member without a session, whose identity
    /// change is not approved, or whose session is with another identity than the
    /// member list holds, gets nothing and is listed in the second result.
    fn send_key(&mut self, id: &GroupId, names: &[String]) -> Result<(Vec<Outgoing>, Vec<Withheld>), Error> {
        let group = self.groups.get(id).ok_or(GroupError::UnknownGroup)?;
        let Some(payload) = group.distribution() else { return Ok((Vec::new(), Vec::new())) };
        let listed: Vec<(String, Option<IdentityKey>)> =
            names.iter().map(|n| (n.clone(), group.member_identity(n))).collect();
        self.fan_out(&listed, &payload)
    }

    /// Encrypts `payload` as a control message for each `(peer, expected identity)`.
    pub(crate) fn fan_out(
        &mut self,
        recipients: &[(String, Option<IdentityKey>)],
        payload: &[u8],
    ) -> Result<(Vec<Outgoing>, Vec<Withheld>), Error> {
        let mut outgoing = Vec::with_capacity(recipients.len());
        let mut withheld = Vec::new();
        for (peer, expected) in recipients {
            let current = self.peers.get(peer).and_then(|r| r.remote_identity());
            let pending = self.trust.pending(peer);
            let reason = match (current, expected) {
                // The listed identity is known but awaits the app's approval.
                (_, Some(listed)) if pending == Some(listed) => Some(WithheldReason::IdentityNotApproved),
                (None, _) => Some(WithheldReason::NoSession),
                (Some(current), Some(listed)) if current != listed => Some(WithheldReason::IdentityMismatch),
                (Some(current), _) if self.trust.check_send(peer, current).is_err() => {
                    Some(WithheldReason::IdentityNotApproved)
                }
                _ => None,
            };
            if let Some(reason) = reason {
                withheld.push(Withheld { peer: peer.clone(), reason });
                continue;
            }
            self.ensure_room(SENT_MESSAGE_STATE_BYTES)?;
            let Some(record) = self.peers.get_mut(peer) else { continue };
            let before = record.encoded_len();
            match record.encrypt(payload, Content::Control) {
                Ok(message) => {
                    self.held = self.held - before + record.encoded_len();
                    outgoing.push(Outgoing { peer: peer.clone(), message });
                }
                Err(_) => withheld.push(Withheld { peer: peer.clone(), reason: WithheldReason::NoSession }),
            }
        }
        Ok((outgoing, withheld))
    }
}
