//! The agency's side of a channel: the signing key, the sequence counter and, for a
//! restricted channel, the content key's sender chain.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::announcement::{encode_announcement, encode_distribution, encode_rotation, restricted_header};
use super::{ChannelError, ChannelId, ChannelKind, ChannelSigningKey, ContentType};
use crate::crypto::Secret32;
use crate::group::chain::{message_key, SenderChain};
use crate::labels;
use crate::ratchet::pad;
use crate::wire::{DecodeError, Reader, Writer};

/// How far a publisher's sequence counter jumps when its state is imported from a
/// snapshot (2^32): more posts than a restored snapshot can be behind by.
pub const RESTORE_SEQ_GAP: u64 = 1 << 32;

/// A restricted channel's current content key: its id and the sender chain.
#[derive(Debug)]
struct ContentKey {
    key_id: u32,
    chain: SenderChain,
    /// Set when the state was restored from a snapshot: the chain position may already
    /// have been used, so it posts nothing until the key is replaced. Not stored (every
    /// import sets it again).
    retired: bool,
}

impl ContentKey {
    /// A fresh random chain at iteration 0, with a random id different from `avoid`.
    fn generate<R: CryptoRng + ?Sized>(rng: &mut R, avoid: Option<u32>) -> Self {
        let key_id = loop {
            let mut id = [0u8; 4];
            rng.fill_bytes(&mut id);
            let id = u32::from_be_bytes(id);
            if Some(id) != avoid {
                break id;
            }
        };
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *key);
        ContentKey { key_id, chain: SenderChain::new(*key, 0), retired: false }
    }
}

/// The posting state of one channel, held by the agency.
///
/// Only this state can produce posts that subscribers accept: every post is signed by
/// the channel key and carries the next sequence number (starting at 1, shared by
/// announcements and key rotations, never reused). Deliberately not `Clone`: two copies
/// would reuse sequence numbers and, on a restricted channel, chain iterations (the
/// same AES-GCM key and nonce for two plaintexts).
#[derive(Debug)]
pub struct Publisher {
    channel_id: ChannelId,
    key: ChannelSigningKey,
    /// The sequence number of the next post (>= 1). `u64::MAX` means exhausted.
    next_seq: u64,
    /// `Some` exactly for a restricted channel.
    content: Option<ContentKey>,
}

impl Publisher {
    /// A new channel of `kind` with a random id and a random channel key; a restricted
    /// channel also gets a random content key (id and chain at iteration 0).
    pub fn new<R: CryptoRng + ?Sized>(kind: ChannelKind, rng: &mut R) -> Self {
        let mut id = [0u8; 32];
        rng.fill_bytes(&mut id);
        let key = ChannelSigningKey::generate(rng);
        let content = match kind {
            ChannelKind::Public => None,
            ChannelKind::Restricted => Some(ContentKey::generate(rng, None)),
        };
        Publisher { channel_id: ChannelId(id), key, next_seq: 1, content }
    }

    /// The channel's id.
    pub fn channel_id(&self) -> ChannelId {
        self.channel_id
    }

    /// The channel's kind.
    pub fn kind(&self) -> ChannelKind {
        if self.content.is_some() {
            ChannelKind::Restricted
        } else {
            ChannelKind::Public
        }
    }

    /// The current channel key's Ed25519 public key (what subscribers pin).
    pub fn public_key(&self) -> [u8; 32] {
        self.key.public
    }

    /// The sequence number the next post will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The current content key's id (restricted channels only).
    pub fn content_key_id(&self) -> Option<u32> {
        self.content.as_ref().map(|c| c.key_id)
    }

    /// Called on every state import: the snapshot may be older than what was already
    /// posted. The sequence counter jumps by [`RESTORE_SEQ_GAP`] so no sequence number
    /// is issued twice (subscribers would refuse it as a replay), and a restricted
    /// channel's content key is retired: posting and sending it are refused
    /// (`ContentKeyRetired`) until [`Self::rotate_content_key`] or [`Self::rotate_key`]
    /// replaces it, so no content chain position is used twice.
    pub(crate) fn retire_after_restore(&mut self) {
        if self.next_seq != u64::MAX {
            self.next_seq = self.next_seq.saturating_add(RESTORE_SEQ_GAP).min(u64::MAX - 1);
        }
        if let Some(c) = &mut self.content {
            c.retired = true;
        }
    }

    /// Whether the content key was retired by a restore and must be replaced before the
    /// next post (restricted channels only).
    pub fn content_key_retired(&self) -> bool {
        self.content.as_ref().is_some_and(|c| c.retired)
    }

    fn take_seq(&self) -> Result<u64, ChannelError> {
        if self.next_seq == u64::MAX {
            return Err(ChannelError::SequenceExhausted);
        }
        Ok(self.next_seq)
    }

    /// Posts an announcement dated `now` with the next sequence number.
    ///
    /// Public channel: the signed 0x30 bytes. Restricted channel: the 0x32 bytes, the
    /// signed 0x30 announcement padded and encrypted at the content chain's next
    /// iteration. Refused (state unchanged): a body over `MAX_ANNOUNCEMENT_BODY_BYTES`
    /// (`BodyTooLarge`), exhausted sequence numbers or chain, a content key retired by a
    /// restore (`ContentKeyRetired`: rotate it first).
    pub fn announce(&mut self, content_type: ContentType, body: &[u8], now: u64) -> Result<Vec<u8>, ChannelError> {
        let seq = self.take_seq()?;
        let inner = encode_announcement(&self.key, &self.channel_id, seq, now, content_type, body)?;
        let Some(content) = &mut self.content else {
            self.next_seq = seq + 1;
            return Ok(inner);
        };
        if content.retired {
            return Err(ChannelError::ContentKeyRetired);
        }
        let inner = Zeroizing::new(inner);
        let padded = Zeroizing::new(pad(&inner));
        let mut chain = content.chain.clone();
        let (iteration, mk) = chain.next()?;
        let aead = message_key(&mk, labels::CHANNEL_MESSAGE_KEYS)?;
        let header = restricted_header(&self.channel_id, content.key_id, iteration);
        let ciphertext = aead.seal_siv(&header, &padded)?;
        let mut out = Vec::with_capacity(header.len() + ciphertext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&ciphertext);
        content.chain = chain;
        self.next_seq = seq + 1;
        Ok(out)
    }

    /// Replaces the channel key with a fresh one and returns the 0x31 rotation (next
    /// sequence number, dated `now`), signed by the old key and by the new one. Posts
    /// after it are signed by the new key; subscribers refuse old-key posts once they
    /// have the rotation.
    ///
    /// On a restricted channel the content key is rotated too (new id, new chain): the
    /// app must then send [`Self::key_distribution`] (signed by the new key) to every
    /// subscriber, after the rotation. Refused only when sequence numbers are exhausted.
    pub fn rotate_key<R: CryptoRng + ?Sized>(&mut self, now: u64, rng: &mut R) -> Result<Vec<u8>, ChannelError> {
        let seq = self.take_seq()?;
        let new = loop {
            let k = ChannelSigningKey::generate(rng);
            if k.public != self.key.public {
                break k;
            }
        };
        let content = self.content.as_ref().map(|c| ContentKey::generate(rng, Some(c.key_id)));
        let out = encode_rotation(&self.key, &new, &self.channel_id, seq, now);
        self.key = new;
        if content.is_some() {
            self.content = content;
        }
        self.next_seq = seq + 1;
        Ok(out)
    }

    /// Replaces a restricted channel's content key with a fresh one (new random id, new
    /// random chain) and returns the new id. The app calls this when it removes a
    /// subscriber and then sends [`Self::key_distribution`] to the remaining subscribers
    /// only: the removed one keeps the old keys (it can still read what was posted under
    /// them) but cannot read anything posted afterwards. Refused on a public channel
    /// (`WrongKind`).
    pub fn rotate_content_key<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Result<u32, ChannelError> {
        let Some(content) = &mut self.content else {
            return Err(ChannelError::WrongKind);
        };
        *content = ContentKey::generate(rng, Some(content.key_id));
        Ok(content.key_id)
    }

    /// The 0x33 key distribution of the current content key at the chain's current
    /// position (a subscriber given it reads every post from now on, not earlier ones),
    /// signed by the current channel key. It holds the chain key: the Device sends it
    /// only inside a pairwise 1:1 session, and the buffer is wiped when dropped.
    /// Refused on a public channel (`WrongKind`) and for a key retired by a restore
    /// (`ContentKeyRetired`).
    pub fn key_distribution(&self) -> Result<Zeroizing<Vec<u8>>, ChannelError> {
        let content = self.content.as_ref().ok_or(ChannelError::WrongKind)?;
        if content.retired {
            return Err(ChannelError::ContentKeyRetired);
        }
        Ok(encode_distribution(
            &self.key,
            &self.channel_id,
            content.key_id,
            content.chain.iteration(),
            content.chain.key_bytes(),
        ))
    }

    /// Length of `Self::write`'s output: 73 bytes (public) or 113 (restricted).
    pub fn encoded_len(&self) -> usize {
        32 + 1 + 32 + 8 + self.content.as_ref().map_or(0, |_| 4 + SenderChain::STATE_BYTES)
    }

    /// Writes the state: `channel_id [32] || kind u8 || seed [32] || next_seq u64`, then
    /// for a restricted channel `key_id u32 || chain_key [32] || iteration u32`.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.channel_id.0).u8(self.kind().to_byte()).bytes(self.key.seed()).u64(self.next_seq);
        if let Some(c) = &self.content {
            w.u32(c.key_id);
            c.chain.write(w);
        }
    }

    /// Reads a state written by [`Self::write`]; refuses `next_seq = 0` and an unknown kind.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let channel_id = ChannelId(r.array()?);
        let kind = ChannelKind::read(r)?;
        let key = ChannelSigningKey::from_seed(Secret32(r.array()?));
        let next_seq = r.u64()?;
        if next_seq == 0 {
            return Err(DecodeError::InvalidValue("publisher next_seq"));
        }
        let content = match kind {
            ChannelKind::Public => None,
            ChannelKind::Restricted => {
                let key_id = r.u32()?;
                Some(ContentKey { key_id, chain: SenderChain::read(r)?, retired: false })
            }
        };
        Ok(Publisher { channel_id, key, next_seq, content })
    }

    /// The state encoding (`Self::write`) in a buffer wiped when dropped: it holds
    /// secrets. Exactly [`Self::encoded_len`] bytes.
    pub fn to_state_bytes(&self) -> Zeroizing<Vec<u8>> {
        crate::wire::encode_state(self.encoded_len(), |w| self.write(w))
    }

    /// Decodes a state encoding made by [`Self::to_state_bytes`] (validated as
    /// `Self::read` does; trailing bytes refused).
    pub fn from_state_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        crate::wire::decode_state(bytes, Self::read)
    }

    /// Calls `f` with every secret: the channel key's seed and the content chain key.
    pub fn for_each_secret(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        f("channel signing key seed", self.key.seed());
        if let Some(c) = &self.content {
            f("channel content chain key", c.chain.key_bytes());
        }
    }
}
