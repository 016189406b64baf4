//! Pairwise control messages: the group sender keys (0x23) and restricted channel
//! content keys (0x33) that travel inside 1:1 sessions. One entry point decrypts them,
//! lets `group/` or `channel/` check them before the pairwise session commits, and
//! applies them after.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::channels::post_channel_id;
use super::{check_name, Device, MAX_NAME_BYTES, MAX_STATE_GROWTH_PER_INPUT};
use crate::channel::{type_byte as channel_type, ChannelError, ChannelId, ChannelKeyReceived, StagedContentKey};
use crate::error::Error;
use crate::group::sender_key::ReceivedKey;
use crate::group::{self, GroupError, GroupId, SenderKeyReceived};
use crate::keys::IdentityKey;
use crate::session::{Content, Incoming};
use crate::wire::{type_byte, DecodeError};

/// The most one accepted control message adds to the state besides the pairwise
/// session: a group sender entry (name, generation count) with a received key and an
/// empty chain, or a channel content key (id, chain key, iteration, empty skipped list).
const CONTROL_GROWTH: usize = {
    let sender_key = 4 + MAX_NAME_BYTES + 4 + 4 + 32 + 32 + 4 + 4 + 4;
    let content_key = 4 + 32 + 4 + 4;
    if sender_key > content_key {
        sender_key
    } else {
        content_key
    }
};

/// What [`Device::receive_control`] accepted from a pairwise control message.
#[must_use = "the identity event must be checked"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlReceived {
    /// A group member's sender key (type 0x23).
    SenderKey(SenderKeyReceived),
    /// A restricted channel's content key (type 0x33).
    ChannelKey(ChannelKeyReceived),
}

/// A control message checked against its group or channel before the pairwise session
/// commits, applied after (`None`: a key already held, nothing to apply).
enum Staged {
    SenderKey { group_id: GroupId, key_id: u32, key: Option<ReceivedKey> },
    ChannelKey { channel_id: ChannelId, key: StagedContentKey },
}

impl Device {
    /// Receives a pairwise control message from `peer`: a group sender key (0x23) or a
    /// restricted channel's content key (0x33). It is decrypted on the pairwise session
    /// as a control message (a chat message fails authentication here, and a control
    /// message fails in `decrypt`), then checked before the session commits:
    /// - a sender key: `peer` must be a member of the group whose listed identity is the
    ///   session's identity, at a consistent epoch;
    /// - a content key: it must be for a subscribed restricted channel and signed by
    ///   the channel key this device trusts (whoever relays it).
    ///
    /// If the check refuses it, the pairwise session is left as it was, so it can be
    /// retried (after the welcome, the commit or the subscription).
    pub fn receive_control<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        message: &[u8],
        rng: &mut R,
    ) -> Result<ControlReceived, Error> {
        self.receive_control_of(peer, message, None, rng)
    }

    /// [`Self::receive_control`], refusing (before the session commits) any control
    /// message whose type is not `only`, when given.
    pub(super) fn receive_control_of<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        message: &[u8],
        only: Option<u8>,
        rng: &mut R,
    ) -> Result<ControlReceived, Error> {
        check_name(peer)?;
        let m = Incoming::parse(message)?;
        self.ensure_room(MAX_STATE_GROWTH_PER_INPUT + CONTROL_GROWTH)?;
        let groups = std::mem::take(&mut self.groups);
        let channels = std::mem::take(&mut self.channels);
        let mut staged = None;
        let mut accept = |plaintext: &[u8], sender: &IdentityKey| -> Result<(), Error> {
            let found = *plaintext.first().ok_or(DecodeError::Empty)?;
            if let Some(expected) = only.filter(|&t| t != found) {
                return Err(DecodeError::WrongType { expected, found }.into());
            }
            staged = Some(match found {
                type_byte::GROUP_DISTRIBUTION => {
                    let d = group::decode_distribution(plaintext)?;
                    let g = groups.get(&d.group_id).ok_or(GroupError::UnknownGroup)?;
                    let key = g.stage_distribution(peer, sender, &d)?;
                    Staged::SenderKey { group_id: d.group_id, key_id: d.key_id, key }
                }
                channel_type::KEY_DISTRIBUTION => {
                    let id = post_channel_id(plaintext)?;
                    let current = channels.subscription(&id).ok_or(ChannelError::UnknownChannel)?;
                    Staged::ChannelKey { channel_id: id, key: current.stage_key(plaintext)? }
                }
                _ => return Err(DecodeError::InvalidValue("control message type").into()),
            });
            Ok(())
        };
        let before = self.peer_len(peer);
        let result = self.decrypt_parsed(peer, &m, Content::Control, &mut accept, None, rng);
        self.groups = groups;
        self.channels = channels;
        let decrypted = result?;
        self.regrown(peer, before);
        let identity = decrypted.identity;
        // The plaintext (a chain key) is wiped here.
        drop(Zeroizing::new(decrypted.plaintext));
        // `accept` ran and succeeded, or the decrypt above failed: `staged` is set.
        match staged.ok_or(DecodeError::Empty)? {
            Staged::SenderKey { group_id, key_id, key } => {
                let fresh = key.is_some();
                if let Some(key) = key {
                    let before = self.groups.entry_len(&group_id);
                    if let Some(g) = self.groups.get_mut(&group_id) {
                        g.apply_distribution(peer, key);
                    }
                    self.held = self.held - before + self.groups.entry_len(&group_id);
                }
                let sender = peer.to_owned();
                Ok(ControlReceived::SenderKey(SenderKeyReceived { group_id, sender, key_id, fresh, identity }))
            }
            Staged::ChannelKey { channel_id, key } => {
                let key_id = key.key_id;
                if let Some(s) = self.channels.subscription_mut(&channel_id) {
                    let before = s.encoded_len();
                    s.apply_key(key);
                    self.held = self.held - before + s.encoded_len();
                }
                let sender = peer.to_owned();
                Ok(ControlReceived::ChannelKey(ChannelKeyReceived { channel_id, sender, key_id, identity }))
            }
        }
    }
}
