//! The group wire formats (types `0x21`–`0x24`, version 1): commits and welcomes
//! (public, signed membership changes), sender-key distributions (carried inside
//! pairwise sessions) and group messages. Every layout is written and read here, once.

use crate::keys::{IdentityKey, IDENTITY_KEY_BYTES};
use crate::ratchet::{check_ciphertext_len, MAX_PADDED_BYTES};
use crate::wire::{type_byte, DecodeError, Reader, Writer};

use super::membership::{GroupId, GroupMember, MAX_GROUP_MEMBERS};
use super::GroupError;

/// Longest member name (a peer name).
pub const MAX_MEMBER_NAME_BYTES: usize = crate::device::MAX_NAME_BYTES;
/// The largest member entry on the wire: name (u32 length + bytes), identity, admin flag.
pub(crate) const MAX_MEMBER_ENTRY_BYTES: usize = 4 + MAX_MEMBER_NAME_BYTES + IDENTITY_KEY_BYTES + 1;
/// Bytes of a group message before the ciphertext: type, version, group id, epoch,
/// membership hash, key id, iteration.
pub const GROUP_MESSAGE_HEADER_BYTES: usize = 2 + 32 + 8 + 32 + 4 + 4;
/// The largest group message: header, a full padded ciphertext with its tag, signature.
pub const MAX_GROUP_MESSAGE_BYTES: usize = GROUP_MESSAGE_HEADER_BYTES + 16 + MAX_PADDED_BYTES + 64;
/// A sender-key distribution's exact size.
pub const DISTRIBUTION_BYTES: usize = 2 + 32 + 8 + 32 + 4 + 4 + 32 + 32;
/// Fixed part of a commit or welcome: type, version, group id, epoch, previous hash,
/// author name (at its longest), signature.
const CHANGE_FIXED_BYTES: usize = 2 + 32 + 8 + 32 + 4 + MAX_MEMBER_NAME_BYTES + 64;
/// The largest commit: an add of `MAX_GROUP_MEMBERS` members.
pub const MAX_COMMIT_BYTES: usize = CHANGE_FIXED_BYTES + 1 + 2 + MAX_GROUP_MEMBERS * MAX_MEMBER_ENTRY_BYTES;
/// The largest welcome: the full list of `MAX_GROUP_MEMBERS` members.
pub const MAX_WELCOME_BYTES: usize = CHANGE_FIXED_BYTES + 2 + MAX_GROUP_MEMBERS * MAX_MEMBER_ENTRY_BYTES;

/// What a commit changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOp {
    /// New member devices (op `0x01`).
    Add(Vec<GroupMember>),
    /// Member devices removed, by name (op `0x02`); a member may remove only itself
    /// unless it is an admin.
    Remove(Vec<String>),
    /// A member's device replaced by a new identity (op `0x03`): the old device is
    /// removed and the new one added under the same name and role.
    Replace {
        /// The member name.
        name: String,
        /// The new device's identity.
        identity: IdentityKey,
    },
}

/// A decoded commit or welcome: the signed bytes are kept for verification.
#[derive(Debug, Clone)]
pub(crate) struct Change<'a, T> {
    pub(crate) group_id: GroupId,
    pub(crate) epoch: u64,
    pub(crate) prev_hash: [u8; 32],
    pub(crate) author: String,
    pub(crate) body: T,
    pub(crate) signed: &'a [u8],
    pub(crate) signature: [u8; 64],
}

fn write_member(w: &mut Writer, m: &GroupMember) {
    w.var_bytes(m.name.as_bytes());
    m.identity.write(w);
    w.flag(m.admin);
}

pub(crate) fn read_name(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let b = r.var_bytes(MAX_MEMBER_NAME_BYTES, "member name")?;
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError::InvalidValue("member name"))
}

fn read_member(r: &mut Reader<'_>) -> Result<GroupMember, GroupError> {
    let name = read_name(r)?;
    let identity = IdentityKey::read(r)?;
    let admin = r.flag("admin flag")?;
    Ok(GroupMember { name, identity, admin })
}

fn read_member_list(r: &mut Reader<'_>) -> Result<Vec<GroupMember>, GroupError> {
    let n = r.u16()? as usize;
    if n > MAX_GROUP_MEMBERS {
        return Err(DecodeError::InvalidValue("member count").into());
    }
    (0..n).map(|_| read_member(r)).collect()
}

fn change_header(t: u8, group_id: &GroupId, epoch: u64, prev_hash: &[u8; 32], author: &str, cap: usize) -> Writer {
    let mut w = Writer::with_header(t, cap);
    w.bytes(&group_id.0).u64(epoch).bytes(prev_hash).var_bytes(author.as_bytes());
    w
}

fn read_change_header<'a>(r: &mut Reader<'a>) -> Result<(GroupId, u64, [u8; 32], String), GroupError> {
    let group_id = GroupId(r.array()?);
    let epoch = r.u64()?;
    let prev_hash = r.array()?;
    let author = read_name(r)?;
    Ok((group_id, epoch, prev_hash, author))
}

/// The bytes a commit's author signs (everything before the signature); the caller
/// appends the signature.
pub(crate) fn commit_body(group_id: &GroupId, epoch: u64, prev_hash: &[u8; 32], author: &str, op: &CommitOp) -> Writer {
    let mut w = change_header(type_byte::GROUP_COMMIT, group_id, epoch, prev_hash, author, 512);
    match op {
        CommitOp::Add(members) => {
            w.u8(0x01).u16(members.len() as u16);
            members.iter().for_each(|m| write_member(&mut w, m));
        }
        CommitOp::Remove(names) => {
            w.u8(0x02).u16(names.len() as u16);
            names.iter().for_each(|n| {
                w.var_bytes(n.as_bytes());
            });
        }
        CommitOp::Replace { name, identity } => {
            w.u8(0x03).var_bytes(name.as_bytes());
            identity.write(&mut w);
        }
    }
    w
}

/// Decodes a commit (signature not yet checked: that needs the author's key).
pub(crate) fn decode_commit(bytes: &[u8]) -> Result<Change<'_, CommitOp>, GroupError> {
    let mut r = Reader::open(bytes, type_byte::GROUP_COMMIT, MAX_COMMIT_BYTES)?;
    let (group_id, epoch, prev_hash, author) = read_change_header(&mut r)?;
    let op = match r.u8()? {
        0x01 => CommitOp::Add(read_member_list(&mut r)?),
        0x02 => {
            let n = r.u16()? as usize;
            if n > MAX_GROUP_MEMBERS {
                return Err(DecodeError::InvalidValue("member count").into());
            }
            CommitOp::Remove((0..n).map(|_| read_name(&mut r)).collect::<Result<_, _>>()?)
        }
        0x03 => {
            let name = read_name(&mut r)?;
            CommitOp::Replace { name, identity: IdentityKey::read(&mut r)? }
        }
        _ => return Err(DecodeError::InvalidValue("commit op").into()),
    };
    let signed = &bytes[..r.position()];
    let signature = r.array()?;
    r.finish()?;
    Ok(Change { group_id, epoch, prev_hash, author, body: op, signed, signature })
}

/// The bytes a welcome's author signs.
pub(crate) fn welcome_body(
    group_id: &GroupId,
    epoch: u64,
    prev_hash: &[u8; 32],
    author: &str,
    members: &[GroupMember],
) -> Writer {
    let mut w = change_header(type_byte::GROUP_WELCOME, group_id, epoch, prev_hash, author, 512 + members.len() * 100);
    w.u16(members.len() as u16);
    members.iter().for_each(|m| write_member(&mut w, m));
    w
}

/// Decodes a welcome (signature not yet checked).
pub(crate) fn decode_welcome(bytes: &[u8]) -> Result<Change<'_, Vec<GroupMember>>, GroupError> {
    let mut r = Reader::open(bytes, type_byte::GROUP_WELCOME, MAX_WELCOME_BYTES)?;
    let (group_id, epoch, prev_hash, author) = read_change_header(&mut r)?;
    let members = read_member_list(&mut r)?;
    let signed = &bytes[..r.position()];
    let signature = r.array()?;
    r.finish()?;
    Ok(Change { group_id, epoch, prev_hash, author, body: members, signed, signature })
}

/// A sender-key distribution (the plaintext of a pairwise control message).
pub(crate) struct Distribution {
    pub(crate) group_id: GroupId,
    pub(crate) epoch: u64,
    pub(crate) state_hash: [u8; 32],
    pub(crate) key_id: u32,
    pub(crate) iteration: u32,
    pub(crate) chain_key: crate::crypto::Secret32,
    pub(crate) signing_public: [u8; 32],
}

impl Distribution {
    pub(crate) fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut w = Writer::with_header(type_byte::GROUP_DISTRIBUTION, DISTRIBUTION_BYTES);
        w.bytes(&self.group_id.0).u64(self.epoch).bytes(&self.state_hash).u32(self.key_id).u32(self.iteration);
        w.bytes(self.chain_key.as_bytes()).bytes(&self.signing_public);
        w.into_secret_bytes()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        let mut r = Reader::open(bytes, type_byte::GROUP_DISTRIBUTION, DISTRIBUTION_BYTES)?;
        let group_id = GroupId(r.array()?);
        let epoch = r.u64()?;
        let state_hash = r.array()?;
        let key_id = r.u32()?;
        let iteration = r.u32()?;
        let chain_key = crate::crypto::Secret32(r.array()?);
        let signing_public = r.array()?;
        r.finish()?;
        Ok(Distribution { group_id, epoch, state_hash, key_id, iteration, chain_key, signing_public })
    }
}

/// A decoded group message.
pub(crate) struct GroupMessage<'a> {
    pub(crate) group_id: GroupId,
    pub(crate) epoch: u64,
    pub(crate) state_hash: [u8; 32],
    pub(crate) key_id: u32,
    pub(crate) iteration: u32,
    /// Everything before the ciphertext (the AEAD's AAD).
    pub(crate) header: &'a [u8],
    pub(crate) ciphertext: &'a [u8],
    /// Everything before the signature.
    pub(crate) signed: &'a [u8],
    pub(crate) signature: [u8; 64],
}

impl<'a> GroupMessage<'a> {
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, GroupError> {
        let mut r = Reader::open(bytes, type_byte::GROUP_MESSAGE, MAX_GROUP_MESSAGE_BYTES)?;
        let group_id = GroupId(r.array()?);
        let epoch = r.u64()?;
        let state_hash = r.array()?;
        let key_id = r.u32()?;
        let iteration = r.u32()?;
        let header = &bytes[..r.position()];
        let rest = r.rest();
        if rest.len() < 64 {
            return Err(DecodeError::Truncated.into());
        }
        let (ciphertext, sig) = rest.split_at(rest.len() - 64);
        check_ciphertext_len(ciphertext.len())?;
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig);
        let signed = &bytes[..bytes.len() - 64];
        Ok(GroupMessage { group_id, epoch, state_hash, key_id, iteration, header, ciphertext, signed, signature })
    }

    /// Writes the header of a message (everything before the ciphertext).
    pub(crate) fn header_writer(
        group_id: &GroupId,
        epoch: u64,
        state_hash: &[u8; 32],
        key_id: u32,
        iteration: u32,
        cap: usize,
    ) -> Writer {
        let mut w = Writer::with_header(type_byte::GROUP_MESSAGE, cap);
        w.bytes(&group_id.0).u64(epoch).bytes(state_hash).u32(key_id).u32(iteration);
        w
    }
}
