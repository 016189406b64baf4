//! The channel façade of [`Device`]: each method finds the channel, lets `channel/`
//! decide, checks the state budget and commits. A restricted channel's content key
//! travels only inside pairwise 1:1 sessions, as a control message, and never to an
//! identity the app has not approved (the same fan-out as group sender keys); it is
//! received by [`Device::receive_control`].

use rand_core::CryptoRng;

use super::{check_name, Device};
use crate::channel::{
    ChannelError, ChannelId, ChannelKind, ChannelRekey, Channels, ContentType, Publisher, Received, Subscription,
};
use crate::error::Error;
use crate::group::{Outgoing, Withheld};
use crate::keys::IdentityKey;
use crate::session::SENT_MESSAGE_STATE_BYTES;
use crate::wire::DecodeError;

impl Device {
    /// The channels this device publishes to and is subscribed to.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Creates a channel of `kind` that this device publishes to: a random channel id,
    /// a random channel signing key and, for a restricted channel, a random content
    /// key. Give subscribers the id and [`Self::channel_public_key`] out of band (the
    /// agency's directory); they trust nothing else.
    pub fn channel_create<R: CryptoRng + ?Sized>(
        &mut self,
        kind: ChannelKind,
        rng: &mut R,
    ) -> Result<ChannelId, Error> {
        let publisher = Publisher::new(kind, rng);
        let id = publisher.channel_id();
        let len = publisher.encoded_len();
        self.ensure_room(len)?;
        self.channels.insert_publisher(publisher)?;
        self.held += len;
        Ok(id)
    }

    /// The current channel signing key (Ed25519 public key) of a channel this device
    /// publishes to. Refused (`UnknownChannel`) for any other channel.
    pub fn channel_public_key(&self, id: &ChannelId) -> Result<[u8; 32], Error> {
        Ok(self.channels.publisher(id).ok_or(ChannelError::UnknownChannel)?.public_key())
    }

    /// Posts `body` to a channel this device publishes to, dated `now`, with the next
    /// sequence number: a signed 0x30 announcement (public channel) or the same signed
    /// announcement encrypted as a 0x32 post (restricted channel). The server delivers
    /// the bytes to every subscriber; only holders of the channel key could have made
    /// them. Refused, with nothing changed: an unknown channel, a body over
    /// `MAX_ANNOUNCEMENT_BODY_BYTES`, exhausted sequence numbers.
    pub fn channel_announce(
        &mut self,
        id: &ChannelId,
        content_type: ContentType,
        body: &[u8],
        now: u64,
    ) -> Result<Vec<u8>, Error> {
        let publisher = self.channels.publisher_mut(id).ok_or(ChannelError::UnknownChannel)?;
        // A publisher's encoding has a fixed size: posting never grows the state.
        Ok(publisher.announce(content_type, body, now)?)
    }

    /// Replaces the channel's signing key and returns the 0x31 rotation, signed by the
    /// old key and the new one: post it like an announcement. Subscribers that accept
    /// it refuse posts by the old key from then on. On a restricted channel the content
    /// key is replaced too: send it with [`Self::channel_send_key`] after posting the
    /// rotation (the distribution is signed by the new key).
    pub fn channel_rotate_signing_key<R: CryptoRng + ?Sized>(
        &mut self,
        id: &ChannelId,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        let publisher = self.channels.publisher_mut(id).ok_or(ChannelError::UnknownChannel)?;
        Ok(publisher.rotate_key(now, rng)?)
    }

    /// Sends a restricted channel's current content key, at its current position, to
    /// each of `subscribers` (peer names) as a pairwise control message: they can read
    /// every post from now on, none before. A subscriber without a session, or whose
    /// identity change is not approved, gets nothing and is listed in the second
    /// result. Refused on a public channel (`WrongKind`).
    pub fn channel_send_key(
        &mut self,
        id: &ChannelId,
        subscribers: &[String],
    ) -> Result<(Vec<Outgoing>, Vec<Withheld>), Error> {
        self.check_fan_out(subscribers)?;
        self.send_content_key(id, subscribers)
    }

    /// Replaces a restricted channel's content key (new id, new chain) and sends it to
    /// `subscribers` only. This is how a subscriber is removed: leave it out. It keeps
    /// the old keys, so it can still read what was posted under them, and reads
    /// nothing posted afterwards. Refused on a public channel (`WrongKind`).
    pub fn channel_rotate_content_key<R: CryptoRng + ?Sized>(
        &mut self,
        id: &ChannelId,
        subscribers: &[String],
        rng: &mut R,
    ) -> Result<ChannelRekey, Error> {
        self.check_fan_out(subscribers)?;
        let publisher = self.channels.publisher_mut(id).ok_or(ChannelError::UnknownChannel)?;
        let key_id = publisher.rotate_content_key(rng)?;
        let (outgoing, withheld) = self.send_content_key(id, subscribers)?;
        Ok(ChannelRekey { key_id, outgoing, withheld })
    }

    /// The checks before a content-key fan-out: valid names, and room for one sent
    /// message per subscriber (so the fan-out itself cannot run out of budget).
    fn check_fan_out(&self, subscribers: &[String]) -> Result<(), Error> {
        subscribers.iter().try_for_each(|n| check_name(n))?;
        self.ensure_room(subscribers.len() * SENT_MESSAGE_STATE_BYTES)
    }

    /// Encrypts the channel's current 0x33 for each subscriber (after `check_fan_out`).
    fn send_content_key(
        &mut self,
        id: &ChannelId,
        subscribers: &[String],
    ) -> Result<(Vec<Outgoing>, Vec<Withheld>), Error> {
        let payload = self.channels.publisher(id).ok_or(ChannelError::UnknownChannel)?.key_distribution()?;
        let listed: Vec<(String, Option<IdentityKey>)> = subscribers.iter().map(|n| (n.clone(), None)).collect();
        self.fan_out(&listed, &payload)
    }

    /// Subscribes to channel `id`, trusting `channel_key` (from the agency's directory,
    /// never from the server) as its signing key. A restricted subscription reads posts
    /// once the publisher has sent it a content key ([`Self::receive_control`]).
    /// Refused: an invalid key, a channel already subscribed to, `MAX_CHANNELS`.
    pub fn channel_subscribe(&mut self, id: ChannelId, channel_key: [u8; 32], kind: ChannelKind) -> Result<(), Error> {
        let subscription = Subscription::new(id, channel_key, kind)?;
        let len = subscription.encoded_len();
        self.ensure_room(len)?;
        self.channels.insert_subscription(subscription)?;
        self.held += len;
        Ok(())
    }

    /// Receives a post (0x30 announcement, 0x31 key rotation or 0x32 restricted
    /// announcement) for a subscribed channel, named by the post. Shown to the user only
    /// on success: it names the channel, is signed by the channel's current key, its
    /// sequence number is greater than the last one accepted (no replay, rollback or
    /// reordering), and it is not dated more than `MAX_ANNOUNCEMENT_FUTURE_SECS` after
    /// `now`. On any error, nothing changes (`UnknownKey` and `WrongSigner` may succeed
    /// on a retry, after the content key or the rotation arrives).
    ///
    /// A post never changes the length of the state (the sequence number and the
    /// content chains are fixed-width and no skipped key is kept), so it needs no room
    /// under the state budget.
    pub fn channel_receive(&mut self, post: &[u8], now: u64) -> Result<Received, Error> {
        let id = post_channel_id(post)?;
        let subscription = self.channels.subscription_mut(&id).ok_or(ChannelError::UnknownChannel)?;
        Ok(subscription.receive(post, now)?)
    }

    /// Deletes this device's publisher and subscription state for channel `id` (the
    /// signing key is wiped). Returns whether anything was held.
    pub fn channel_forget(&mut self, id: &ChannelId) -> bool {
        let publisher = self.channels.remove_publisher(id).map_or(0, |p| p.encoded_len());
        let subscription = self.channels.remove_subscription(id).map_or(0, |s| s.encoded_len());
        self.held -= publisher + subscription;
        publisher + subscription > 0
    }
}

/// The channel a post or key distribution names (bytes 2..34, after type and version);
/// the full object is decoded and verified by the subscription.
pub(super) fn post_channel_id(bytes: &[u8]) -> Result<ChannelId, Error> {
    let id = bytes.get(2..34).ok_or(DecodeError::Truncated)?;
    let mut out = [0u8; 32];
    out.copy_from_slice(id);
    Ok(ChannelId(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn channel_state_is_counted_exactly_and_a_post_never_grows_it() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let mut agency = Device::new("agency", NOW, &mut rng);
        let mut ana = Device::new("ana", NOW, &mut rng);
        let public = agency.channel_create(ChannelKind::Public, &mut rng).unwrap();
        let restricted = agency.channel_create(ChannelKind::Restricted, &mut rng).unwrap();
        let key = agency.channel_public_key(&public).unwrap();
        ana.channel_subscribe(public, key, ChannelKind::Public).unwrap();
        let rkey = agency.channel_public_key(&restricted).unwrap();
        ana.channel_subscribe(restricted, rkey, ChannelKind::Restricted).unwrap();
        for d in [&agency, &ana] {
            assert_eq!(d.held, d.count_held());
            assert_eq!(d.encode_state().len(), d.state_len());
        }
        let post = agency.channel_announce(&public, ContentType::Text, b"one", NOW).unwrap();
        let _ = agency.channel_rotate_content_key(&restricted, &[], &mut rng).unwrap();
        let _ = ana.channel_receive(&post, NOW).unwrap();
        assert_eq!(ana.held, ana.count_held());
        // A full budget does not stop a post: it cannot grow the state, not even one
        // that skips the content chain ahead.
        let key = agency.channels().publisher(&restricted).unwrap().key_distribution().unwrap();
        ana.channels.subscription_mut(&restricted).unwrap().accept_key(&key).unwrap();
        ana.held = ana.count_held();
        ana.budget = ana.reserved() + ana.held;
        for i in 0..20u8 {
            let p = agency.channel_announce(&restricted, ContentType::Text, &[i], NOW).unwrap();
            if i % 7 == 6 {
                let _ = ana.channel_receive(&p, NOW).unwrap();
            }
        }
        let post = agency.channel_announce(&public, ContentType::Text, b"two", NOW).unwrap();
        let _ = ana.channel_receive(&post, NOW).unwrap();
        assert_eq!(ana.held, ana.count_held());
        assert_eq!(ana.encode_state().len(), ana.state_len());
        assert!(ana.channel_forget(&restricted));
        assert!(agency.channel_forget(&public));
        for d in [&agency, &ana] {
            assert_eq!(d.held, d.count_held());
            assert_eq!(d.encode_state().len(), d.state_len());
        }
    }
}
