//! The signed, hash-chained group membership.
//!
//! A group's membership at epoch `e` is a list of member devices (name, identity,
//! admin flag), sorted by name. Its hash chains every epoch to the one before:
//!
//! ```text
//! state_hash(e) = SHA-256("GoChat-E2EE v1 group state" || group_id || e (u64)
//!                         || state_hash(e-1) || count (u16) || members in name order)
//! ```
//! with `state_hash(-1)` = 32 zero bytes. Every change (a commit) names the epoch it
//! creates and the hash of the state it changes, and is signed by a member allowed to
//! make it (the admin rule, `Membership::check_author`). Every group message and
//! every distribution names its sender's epoch and hash, so two members shown
//! different histories by the server (a fork) see different hashes at one epoch.

use std::collections::{BTreeMap, VecDeque};

use crate::crypto::sha256;
use crate::keys::{IdentityKey, IDENTITY_KEY_BYTES};
use crate::labels;
use crate::wire::{DecodeError, Reader, Writer};

use super::message::{read_name, CommitOp};
use super::GroupError;

/// Most member devices in a group.
pub const MAX_GROUP_MEMBERS: usize = 1_000;
/// Past epochs whose hash a member remembers, to accept late messages and detect forks.
pub const MAX_EPOCH_HISTORY: usize = 64;

/// A group's identifier: 32 random bytes chosen by its creator.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub [u8; 32]);

impl core::fmt::Debug for GroupId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "GroupId(")?;
        self.0[..8].iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, "..)")
    }
}

/// One member device: the name peers use for it, its identity, and whether it may
/// add, remove and replace members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The device's name (the peer name other devices use for it).
    pub name: String,
    /// Its identity key.
    pub identity: IdentityKey,
    /// Whether it is an admin.
    pub admin: bool,
}

/// One remembered epoch: its hash and whether the change into it removed a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochRecord {
    pub(crate) epoch: u64,
    pub(crate) hash: [u8; 32],
    pub(crate) removal: bool,
    /// SHA-256 of the commit that led into this epoch (zeros if unknown: the epoch
    /// a member joined at, or creation).
    pub(crate) commit: [u8; 32],
}

/// What a commit changed, for the app.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MembershipChange {
    /// Devices added (or, for a replacement, the new device).
    pub added: Vec<String>,
    /// Devices removed (or, for a replacement, the old device's name).
    pub removed: Vec<String>,
    /// Names whose device was replaced by a new identity.
    pub replaced: Vec<String>,
}

/// The membership at the current epoch, plus the hashes of recent epochs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    members: BTreeMap<String, (IdentityKey, bool)>,
    /// Recent epochs, oldest first; the last is the current one.
    history: VecDeque<EpochRecord>,
}

pub(crate) fn hash_state(group_id: &GroupId, epoch: u64, prev: &[u8; 32], members: &[GroupMember]) -> [u8; 32] {
    let mut w = Writer::raw(64 + members.len() * 100);
    w.bytes(&group_id.0).u64(epoch).bytes(prev).u16(members.len() as u16);
    for m in members {
        w.var_bytes(m.name.as_bytes());
        m.identity.write(&mut w);
        w.flag(m.admin);
    }
    sha256(&[labels::GROUP_STATE, &w.into_bytes()])
}

impl Membership {
    /// A membership from a full member list (a welcome): checks the list's rules.
    pub(crate) fn from_list(
        group_id: &GroupId,
        epoch: u64,
        prev: &[u8; 32],
        list: &[GroupMember],
    ) -> Result<Self, GroupError> {
        let mut members = BTreeMap::new();
        for m in list {
            if m.name.is_empty() || members.insert(m.name.clone(), (m.identity, m.admin)).is_some() {
                return Err(GroupError::InvalidMembership("duplicate or empty member name"));
            }
        }
        let me = Membership { members, history: VecDeque::new() };
        me.check_rules()?;
        if list.windows(2).any(|w| w[0].name >= w[1].name) {
            return Err(GroupError::InvalidMembership("members not in name order"));
        }
        let hash = hash_state(group_id, epoch, prev, list);
        let mut me = me;
        me.history.push_back(EpochRecord { epoch, hash, removal: false, commit: [0; 32] });
        Ok(me)
    }

    fn check_rules(&self) -> Result<(), GroupError> {
        if self.members.is_empty() || self.members.len() > MAX_GROUP_MEMBERS {
            return Err(GroupError::InvalidMembership("member count"));
        }
        if !self.members.values().any(|(_, admin)| *admin) {
            return Err(GroupError::InvalidMembership("no admin left"));
        }
        let mut ids: Vec<[u8; 32]> = self.members.values().map(|(id, _)| *id.signing_key_bytes()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(GroupError::InvalidMembership("one identity under two names"));
        }
        Ok(())
    }

    fn current(&self) -> EpochRecord {
        // Never empty: every constructor and `read` holds the current epoch.
        self.history.back().copied().unwrap_or(EpochRecord { epoch: 0, hash: [0; 32], removal: false, commit: [0; 32] })
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.current().epoch
    }

    pub(crate) fn hash(&self) -> [u8; 32] {
        self.current().hash
    }

    pub(crate) fn list(&self) -> Vec<GroupMember> {
        self.members
            .iter()
            .map(|(name, (identity, admin))| GroupMember { name: name.clone(), identity: *identity, admin: *admin })
            .collect()
    }

    pub(crate) fn get(&self, name: &str) -> Option<(&IdentityKey, bool)> {
        self.members.get(name).map(|(id, admin)| (id, *admin))
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// Accepts a message or distribution stamped with `(epoch, hash)`:
    /// - the current epoch with another hash is a fork (`GroupFork`);
    /// - a later epoch is `EpochAhead` (apply the missing commits, then retry);
    /// - an earlier epoch is accepted only if it is remembered with the same hash
    ///   (else `GroupFork`) and no device was removed since (else `StaleEpoch`: the
    ///   sender had not yet seen a removal, so a removed device could read it).
    pub(crate) fn check_stamp(&self, epoch: u64, hash: &[u8; 32]) -> Result<(), GroupError> {
        let current = self.current();
        if epoch > current.epoch {
            return Err(GroupError::EpochAhead { have: current.epoch, got: epoch });
        }
        let Some(pos) = self.history.iter().position(|r| r.epoch == epoch) else {
            return Err(GroupError::StaleEpoch);
        };
        if self.history.get(pos).is_none_or(|r| &r.hash != hash) {
            return Err(GroupError::GroupFork { epoch });
        }
        if self.history.iter().skip(pos + 1).any(|r| r.removal) {
            return Err(GroupError::StaleEpoch);
        }
        Ok(())
    }

    /// Checks that `author` (signed with its listed identity) may make `op` under the
    /// admin rule: admins may add, remove and replace any device; any member may
    /// remove itself (leave). Returns the author's identity, which must have signed.
    pub(crate) fn check_author(&self, author: &str, op: &CommitOp) -> Result<IdentityKey, GroupError> {
        let (identity, admin) = self.get(author).ok_or(GroupError::NotMember)?;
        let leaving = matches!(op, CommitOp::Remove(names) if names.len() == 1 && names[0] == author);
        if !admin && !leaving {
            return Err(GroupError::NotAdmin);
        }
        Ok(*identity)
    }

    /// Where a commit for `epoch` building on `prev`, with digest `commit`, stands:
    /// `Ok(())` if it is the next one; `Duplicate` if it is a commit already applied
    /// (a replay); `GroupFork` if it builds on another state than ours, or is another
    /// commit than the one we applied for that epoch; `EpochAhead` if commits are
    /// missing; `StaleEpoch` if the epoch is older than the remembered history.
    pub(crate) fn check_next(&self, epoch: u64, prev: &[u8; 32], commit: &[u8; 32]) -> Result<(), GroupError> {
        let current = self.current();
        if epoch == current.epoch.wrapping_add(1) && epoch != 0 {
            if prev != &current.hash {
                return Err(GroupError::GroupFork { epoch: current.epoch });
            }
            return Ok(());
        }
        if epoch > current.epoch {
            return Err(GroupError::EpochAhead { have: current.epoch, got: epoch });
        }
        match self.history.iter().find(|r| r.epoch == epoch) {
            Some(r) if &r.commit == commit || r.commit == [0; 32] => Err(GroupError::Duplicate),
            Some(_) => Err(GroupError::GroupFork { epoch }),
            None => Err(GroupError::StaleEpoch),
        }
    }

    /// The membership after `op` (not yet applied), and what changed. Refuses an add
    /// of an existing name or identity, a remove or replace of an unknown name, and a
    /// result that breaks the list's rules (no admin, too many, an identity twice).
    pub(crate) fn apply(
        &self,
        group_id: &GroupId,
        op: &CommitOp,
        commit: [u8; 32],
    ) -> Result<(Membership, MembershipChange), GroupError> {
        let mut next = self.clone();
        let mut change = MembershipChange::default();
        let removal = match op {
            CommitOp::Add(members) => {
                if members.is_empty() {
                    return Err(GroupError::InvalidMembership("empty add"));
                }
                for m in members {
                    if m.name.is_empty() || next.members.insert(m.name.clone(), (m.identity, m.admin)).is_some() {
                        return Err(GroupError::InvalidMembership("added name already a member"));
                    }
                    change.added.push(m.name.clone());
                }
                false
            }
            CommitOp::Remove(names) => {
                if names.is_empty() {
                    return Err(GroupError::InvalidMembership("empty remove"));
                }
                for n in names {
                    if next.members.remove(n).is_none() {
                        return Err(GroupError::InvalidMembership("removed name not a member"));
                    }
                    change.removed.push(n.clone());
                }
                true
            }
            CommitOp::Replace { name, identity } => {
                let entry =
                    next.members.get_mut(name).ok_or(GroupError::InvalidMembership("replaced name not a member"))?;
                if &entry.0 == identity {
                    return Err(GroupError::InvalidMembership("replacement with the same identity"));
                }
                entry.0 = *identity;
                change.replaced.push(name.clone());
                true
            }
        };
        next.check_rules()?;
        let epoch = self.epoch() + 1;
        let hash = hash_state(group_id, epoch, &self.hash(), &next.list());
        next.history.push_back(EpochRecord { epoch, hash, removal, commit });
        while next.history.len() > MAX_EPOCH_HISTORY {
            next.history.pop_front();
        }
        Ok((next, change))
    }

    pub(crate) fn encoded_len(&self) -> usize {
        4 + self.members.keys().map(|n| 4 + n.len() + IDENTITY_KEY_BYTES + 1).sum::<usize>()
            + 4
            + self.history.len() * (8 + 32 + 1 + 32)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.members.len() as u32);
        for (name, (identity, admin)) in &self.members {
            w.var_bytes(name.as_bytes());
            identity.write(w);
            w.flag(*admin);
        }
        w.u32(self.history.len() as u32);
        for r in &self.history {
            w.u64(r.epoch).bytes(&r.hash).flag(r.removal).bytes(&r.commit);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count(MAX_GROUP_MEMBERS, "member count")?;
        let mut members = BTreeMap::new();
        let mut last: Option<String> = None;
        for _ in 0..n {
            let name = read_name(r)?;
            if last.as_ref().is_some_and(|l| l >= &name) {
                return Err(DecodeError::InvalidValue("member order"));
            }
            let identity = IdentityKey::read_trusted(r).map_err(|_| DecodeError::InvalidValue("member identity"))?;
            let admin = r.flag("admin flag")?;
            last = Some(name.clone());
            members.insert(name, (identity, admin));
        }
        let h = r.count(MAX_EPOCH_HISTORY, "epoch history")?;
        if h == 0 {
            return Err(DecodeError::InvalidValue("epoch history"));
        }
        let mut history = VecDeque::with_capacity(h);
        for _ in 0..h {
            let epoch = r.u64()?;
            let hash = r.array()?;
            let removal = r.flag("removal flag")?;
            let commit = r.array()?;
            if history.back().is_some_and(|p: &EpochRecord| p.epoch + 1 != epoch) {
                return Err(DecodeError::InvalidValue("epoch history order"));
            }
            history.push_back(EpochRecord { epoch, hash, removal, commit });
        }
        let m = Membership { members, history };
        m.check_rules().map_err(|_| DecodeError::InvalidValue("membership rules"))?;
        Ok(m)
    }
}
