//! Groups with Sender Keys (protocol chapter 12), as the `Device` object's `group_*`
//! methods. Every method converts, locks and calls the core's group façade: the core
//! decides, checks the state budget and is failure-atomic (a refused input changes
//! nothing). Group ids and identity keys cross as byte arrays; a wrong length is
//! refused with `Malformed` (ids) or `InvalidKey` (keys) before the core is called.

use gochat_e2ee as core;
use gochat_e2ee::group::{GroupId, GroupMember, RotationPolicy};
use gochat_e2ee::ErrorCode;
use zeroize::Zeroizing;

use gochat_e2ee_store::inbox::group_digest;

use crate::holder::Holder;
use crate::{identity_key_arg, rng, Device, GoChatError, IdentityEvent, Result};

/// `bytes` as a 32-byte array, or `code` naming `what` and the length given.
pub(crate) fn bytes32(bytes: &[u8], what: &str, code: ErrorCode) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| GoChatError::from_code(code, format!("{what} must be 32 bytes, got {}", bytes.len()), false))
}

fn group_id_arg(bytes: &[u8]) -> Result<GroupId> {
    Ok(GroupId(bytes32(bytes, "a group id", ErrorCode::Malformed)?))
}

/// One member device of a group.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupMemberRecord {
    /// The device's name: the peer name the other devices use for it (its user id on
    /// its own device).
    pub name: String,
    /// Its encoded identity key (66 bytes).
    pub identity_key: Vec<u8>,
    /// Whether it may add, remove and replace members.
    pub admin: bool,
}

impl From<GroupMember> for GroupMemberRecord {
    fn from(m: GroupMember) -> Self {
        GroupMemberRecord { name: m.name, identity_key: m.identity.to_bytes().to_vec(), admin: m.admin }
    }
}

fn members_arg(members: &[GroupMemberRecord]) -> Result<Vec<GroupMember>> {
    members
        .iter()
        .map(|m| Ok(GroupMember { name: m.name.clone(), identity: identity_key_arg(&m.identity_key)?, admin: m.admin }))
        .collect()
}

/// A pairwise control message to deliver to `peer` (over the 1:1 transport), which
/// passes it to its `receive_control` (or `group_receive`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutgoingRecord {
    /// The member device (peer name) to deliver it to.
    pub peer: String,
    /// The pairwise message.
    pub message: Vec<u8>,
}

/// Why a member (or subscriber) was not sent a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum WithheldReason {
    /// No pairwise session with it: start one (`initiate`), then resend the key.
    NoSession,
    /// Its identity changed and the change is not approved: check it, approve it
    /// (`approve_identity`), then resend the key.
    IdentityNotApproved,
    /// The pairwise session is with another identity than the member list holds for
    /// that name: the list or the session is wrong; nothing is sent.
    IdentityMismatch,
}

/// A member that was not sent a key, and why. Nothing is ever sent to an identity the
/// app has not approved; the app must act on every withheld member, or it cannot read
/// this device's messages.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WithheldRecord {
    /// The member device (or subscriber).
    pub peer: String,
    /// Why it was skipped.
    pub reason: WithheldReason,
}

/// Pairwise key messages to deliver, and the members that were not sent one.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FanOutRecord {
    /// The pairwise messages to deliver.
    pub outgoing: Vec<OutgoingRecord>,
    /// The members that got nothing, and why: act on each.
    pub withheld: Vec<WithheldRecord>,
}

pub(crate) fn outgoing(v: Vec<core::group::Outgoing>) -> Vec<OutgoingRecord> {
    v.into_iter().map(|o| OutgoingRecord { peer: o.peer, message: o.message }).collect()
}

pub(crate) fn withheld(v: Vec<core::group::Withheld>) -> Vec<WithheldRecord> {
    use core::group::WithheldReason as R;
    v.into_iter()
        .map(|w| WithheldRecord {
            peer: w.peer,
            reason: match w.reason {
                R::NoSession => WithheldReason::NoSession,
                R::IdentityNotApproved => WithheldReason::IdentityNotApproved,
                R::IdentityMismatch => WithheldReason::IdentityMismatch,
            },
        })
        .collect()
}

pub(crate) fn fan_out((o, w): (Vec<core::group::Outgoing>, Vec<core::group::Withheld>)) -> FanOutRecord {
    FanOutRecord { outgoing: outgoing(o), withheld: withheld(w) }
}

/// The result of a membership operation: what to publish and what to send.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupChangeRecord {
    /// The group id (32 bytes).
    pub group_id: Vec<u8>,
    /// The group's epoch after the change.
    pub epoch: u64,
    /// A commit to deliver to every member of the previous epoch (removed ones too).
    pub commit: Option<Vec<u8>>,
    /// A welcome to deliver to every added device (on creation: to every member).
    pub welcome: Option<Vec<u8>>,
    /// Devices added (for a replacement: the new device).
    pub added: Vec<String>,
    /// Devices removed (for a replacement: the old device's name).
    pub removed: Vec<String>,
    /// Names whose device was replaced by a new identity.
    pub replaced: Vec<String>,
    /// This device's sender key, as pairwise messages to deliver.
    pub outgoing: Vec<OutgoingRecord>,
    /// Members that were not sent this device's key: act on each.
    pub withheld: Vec<WithheldRecord>,
}

impl From<core::group::GroupChange> for GroupChangeRecord {
    fn from(c: core::group::GroupChange) -> Self {
        GroupChangeRecord {
            group_id: c.group_id.0.to_vec(),
            epoch: c.epoch,
            commit: c.commit,
            welcome: c.welcome,
            added: c.change.added,
            removed: c.change.removed,
            replaced: c.change.replaced,
            outgoing: outgoing(c.outgoing),
            withheld: withheld(c.withheld),
        }
    }
}

/// An encrypted group message, with the pairwise messages of a new sender key if this
/// send started one (deliver those before the message).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupSentRecord {
    /// The group message, for every member (the same bytes for all).
    pub message: Vec<u8>,
    /// Whether this send started a new sender key generation.
    pub rotated: bool,
    /// The new generation's pairwise messages.
    pub outgoing: Vec<OutgoingRecord>,
    /// Members that were not sent the new key: act on each.
    pub withheld: Vec<WithheldRecord>,
}

/// A decrypted group message.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupPlaintextRecord {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The sender's member name.
    pub sender: String,
    /// The sender's identity key from the member list (66 bytes).
    pub sender_identity: Vec<u8>,
    /// The sender key generation it was encrypted on.
    pub key_id: u32,
    /// The message's iteration on that generation.
    pub iteration: u32,
    /// The message's inbox digest (32 bytes): on a store-backed device, pass it to `ack`
    /// once the app has handled the message.
    pub digest: Vec<u8>,
    /// True if the store returned a kept, unacknowledged result again (nothing advanced;
    /// the app may have handled it already and must deduplicate by `digest`).
    pub redelivered: bool,
}

/// A group sender key received over a pairwise session.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SenderKeyReceivedRecord {
    /// The group id (32 bytes).
    pub group_id: Vec<u8>,
    /// The member that sent it.
    pub sender: String,
    /// The generation's key id.
    pub key_id: u32,
    /// False if this generation was already held (a repeat changes nothing).
    pub fresh: bool,
    /// How the pairwise sender's identity relates to its pin: must be checked.
    pub identity_event: IdentityEvent,
}

impl From<core::group::SenderKeyReceived> for SenderKeyReceivedRecord {
    fn from(r: core::group::SenderKeyReceived) -> Self {
        SenderKeyReceivedRecord {
            group_id: r.group_id.0.to_vec(),
            sender: r.sender,
            key_id: r.key_id,
            fresh: r.fresh,
            identity_event: r.identity.into(),
        }
    }
}

/// One group as this device sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupInfo {
    /// The group id (32 bytes).
    pub group_id: Vec<u8>,
    /// The current membership epoch.
    pub epoch: u64,
    /// The hash of the current membership (32 bytes; compare it out of band to detect
    /// a server showing members different histories).
    pub membership_hash: Vec<u8>,
    /// The current member devices, in name order.
    pub members: Vec<GroupMemberRecord>,
    /// False once this device was removed or replaced: it sends and reads nothing.
    pub active: bool,
    /// The id of this device's current sender key, if it has one.
    pub own_key_id: Option<u32>,
    /// The rotation policy: messages per generation (0: never by count).
    pub rotation_max_messages: u32,
    /// The rotation policy: the age of a generation in seconds (0: never by age).
    pub rotation_max_age_secs: u64,
}

#[uniffi::export]
impl Device {
    /// Creates a group with this device (named by its user id, admin) and `others` at
    /// epoch 0. Deliver the welcome to every other member and each outgoing message to
    /// its peer; a withheld member cannot read this device's messages until it is
    /// acted on (`group_resend_key` after a session or an approval).
    pub fn group_create(&self, others: Vec<GroupMemberRecord>, now: u64) -> Result<GroupChangeRecord> {
        let others = members_arg(&others)?;
        Ok(self.with(|d| d.group_create(&others, now, &mut rng()))?.into())
    }

    /// Adds member devices (this device must be an admin): a commit for the current
    /// members, a welcome for the new ones, and this device's key for the new ones
    /// (they cannot read earlier messages).
    pub fn group_add(&self, group_id: Vec<u8>, members: Vec<GroupMemberRecord>, now: u64) -> Result<GroupChangeRecord> {
        let (id, members) = (group_id_arg(&group_id)?, members_arg(&members)?);
        Ok(self.with(|d| d.group_add(&id, &members, now, &mut rng()))?.into())
    }

    /// Removes member devices (an admin; or any member removing itself, to leave).
    /// This device rotates its sender key and sends the new one only to the remaining
    /// members; so does every remaining member when it applies the commit.
    pub fn group_remove(&self, group_id: Vec<u8>, names: Vec<String>, now: u64) -> Result<GroupChangeRecord> {
        let id = group_id_arg(&group_id)?;
        Ok(self.with(|d| d.group_remove(&id, &names, now, &mut rng()))?.into())
    }

    /// Replaces the device behind member `name` by the one with `identity_key` (an
    /// admin): the old device is cut off as by a removal; the new one gets the welcome
    /// and the new keys (start a pairwise session with it first).
    pub fn group_replace(
        &self,
        group_id: Vec<u8>,
        name: String,
        identity_key: Vec<u8>,
        now: u64,
    ) -> Result<GroupChangeRecord> {
        let (id, identity) = (group_id_arg(&group_id)?, identity_key_arg(&identity_key)?);
        Ok(self.with(|d| d.group_replace(&id, &name, &identity, now, &mut rng()))?.into())
    }

    /// Applies a commit by another member. Refused: an epoch not yet reached
    /// (`EpochAhead`: apply the missing commits first), a replay (`Duplicate`), another
    /// history (`GroupFork`), an author not allowed (`NotAdmin`, `NotMember`), a bad
    /// signature. Deliver the returned pairwise messages.
    pub fn group_process_commit(&self, commit: Vec<u8>, now: u64) -> Result<GroupChangeRecord> {
        Ok(self.with(|d| d.group_process_commit(&commit, now, &mut rng()))?.into())
    }

    /// Joins a group from a welcome. Its author must be a pinned, approved identity on
    /// this device (else `UntrustedIdentity`: start a session with it first) and an
    /// admin who signed it; this device must be listed under its user id and identity.
    /// Deliver the returned pairwise messages (this device's key for every member).
    pub fn group_join(&self, welcome: Vec<u8>, now: u64) -> Result<GroupChangeRecord> {
        Ok(self.with(|d| d.group_join(&welcome, now, &mut rng()))?.into())
    }

    /// Encrypts for the group. If this send starts a new sender key (the rotation
    /// policy, a removal, a restore), its pairwise messages come with it: deliver them
    /// before the message. Refused (`NotMember`) once this device was removed.
    pub fn group_encrypt(&self, group_id: Vec<u8>, plaintext: Vec<u8>, now: u64) -> Result<GroupSentRecord> {
        let plaintext = Zeroizing::new(plaintext);
        let id = group_id_arg(&group_id)?;
        let s = self.with(|d| d.group_encrypt(&id, &plaintext, now, &mut rng()))?;
        Ok(GroupSentRecord {
            message: s.message,
            rotated: s.rotated,
            outgoing: outgoing(s.outgoing),
            withheld: withheld(s.withheld),
        })
    }

    /// Decrypts a group message from member `sender` (the name the server gives; a
    /// wrong one fails the signature). `MissingSenderKey`: the sender's key has not
    /// arrived; keep the message and decrypt it again once it has. On any error,
    /// nothing changes.
    ///
    /// On a store-backed device the result is kept in the store's inbox, committed with
    /// the chain step, until `ack(digest)`: the same message delivered again (after a
    /// crash) returns it again with `redelivered` set instead of `Duplicate`.
    pub fn group_decrypt(&self, sender: String, message: Vec<u8>) -> Result<GroupPlaintextRecord> {
        let (p, digest, redelivered) = self.with_holder(|h| match h {
            Holder::Memory(d) => Ok((d.group_decrypt(&sender, &message)?, group_digest(&message), false)),
            Holder::Stored(s) => {
                let g = s.group_decrypt(&sender, &message, &mut rng())?;
                Ok((g.plaintext, g.digest, g.redelivered))
            }
        })?;
        Ok(GroupPlaintextRecord {
            plaintext: p.plaintext,
            sender: p.sender,
            sender_identity: p.sender_identity.to_bytes().to_vec(),
            key_id: p.key_id,
            iteration: p.iteration,
            digest: digest.to_vec(),
            redelivered,
        })
    }

    /// Receives a sender key from `peer` over the pairwise session (a control
    /// message). If the group refuses it (e.g. `UnknownGroup` before the welcome,
    /// `EpochAhead` before a commit), the session is left as it was: retry later.
    pub fn group_receive(&self, peer: String, message: Vec<u8>) -> Result<SenderKeyReceivedRecord> {
        Ok(self.with(|d| d.group_receive(&peer, &message, &mut rng()))?.into())
    }

    /// Sends this device's current sender key to member `peer` again: after a withheld
    /// member got a session or an approval, or when it lost the key.
    pub fn group_resend_key(&self, group_id: Vec<u8>, peer: String) -> Result<FanOutRecord> {
        let id = group_id_arg(&group_id)?;
        Ok(fan_out(self.with(|d| d.group_resend_key(&id, &peer))?))
    }

    /// Sets when this device rotates its sender key in the group by itself: after
    /// `max_messages` messages or `max_age_secs` seconds (0: never by that measure;
    /// every removal and replacement rotates regardless).
    pub fn group_set_rotation_policy(&self, group_id: Vec<u8>, max_messages: u32, max_age_secs: u64) -> Result<()> {
        let id = group_id_arg(&group_id)?;
        self.with(|d| d.group_set_rotation_policy(&id, RotationPolicy { max_messages, max_age_secs }))?;
        Ok(())
    }

    /// Deletes all state of the group (one this device left or was removed from);
    /// whether it was held. A wrong-length id names no group.
    pub fn group_forget(&self, group_id: Vec<u8>) -> Result<bool> {
        let Ok(id) = group_id_arg(&group_id) else { return Ok(false) };
        self.with(|d| Ok(d.group_forget(&id)))
    }

    /// The ids of every group held (32 bytes each), in order.
    pub fn group_ids(&self) -> Vec<Vec<u8>> {
        self.lock().groups().ids().map(|id| id.0.to_vec()).collect()
    }

    /// The group's epoch, membership and this device's standing in it; `UnknownGroup`
    /// if it is not held.
    pub fn group_info(&self, group_id: Vec<u8>) -> Result<GroupInfo> {
        let id = group_id_arg(&group_id)?;
        let device = self.lock();
        let g = device.group(&id).ok_or(core::group::GroupError::UnknownGroup).map_err(core::Error::from)?;
        Ok(GroupInfo {
            group_id: g.id().0.to_vec(),
            epoch: g.epoch(),
            membership_hash: g.membership_hash().to_vec(),
            members: g.members().into_iter().map(GroupMemberRecord::from).collect(),
            active: g.is_active(),
            own_key_id: g.own_key_id(),
            rotation_max_messages: g.policy().max_messages,
            rotation_max_age_secs: g.policy().max_age_secs,
        })
    }
}
