//! A device's state as a set of records, and the change tracking a store commits by.
//!
//! A [`Device`](crate::Device) is the account, one record per peer (its session record
//! and pinned identity), one per group, one per channel published to or subscribed to,
//! and one for the device-wide settings (identity policy, trust anchors, own device,
//! device lists). Every mutation goes through a `TrackedMap` or `Tracked` value,
//! which remembers the key it touched, so an operation's change set is exactly the
//! records it may have changed (never fewer, by construction: there is no other way
//! to reach the state mutably). A store commits that set in one transaction
//! ([`Device::take_changes`](crate::Device::take_changes)); a snapshot is all records.
//!
//! ```text
//! RecordKey   = kind (1) || name
//!   0x01 Account       name empty
//!   0x02 Settings      name empty
//!   0x03 Peer          name = the peer name (UTF-8, 1..=MAX_NAME_BYTES)
//!   0x04 Group         name = group id (32)
//!   0x05 Publisher     name = channel id (32)
//!   0x06 Subscription  name = channel id (32)
//! Record      = version 0x01 || body (docs/protocol.md, "State records")
//! ```
//! The core does no I/O and no at-rest encryption of records: the store crate
//! encrypts each record under its data key, with the (hashed) record key as AD.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Deref, DerefMut};

use crate::wire::DecodeError;

/// The version byte every record body starts with.
pub const RECORD_VERSION: u8 = 0x01;

/// What a record holds. The byte values are part of the store format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// The user id and the account (identity, prekeys).
    Account = 0x01,
    /// Identity policy, trust anchors, this device's own-device state, device lists.
    Settings = 0x02,
    /// One peer: its session record and its pinned identity.
    Peer = 0x03,
    /// One group.
    Group = 0x04,
    /// One channel this device publishes to.
    Publisher = 0x05,
    /// One channel this device is subscribed to.
    Subscription = 0x06,
}

impl RecordKind {
    fn from_byte(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0x01 => RecordKind::Account,
            0x02 => RecordKind::Settings,
            0x03 => RecordKind::Peer,
            0x04 => RecordKind::Group,
            0x05 => RecordKind::Publisher,
            0x06 => RecordKind::Subscription,
            _ => return Err(DecodeError::InvalidValue("record kind")),
        })
    }
}

/// The key of one record: its kind and name. Constructed only with a name valid for
/// its kind (empty for the account and settings, a peer name of 1 to
/// `MAX_NAME_BYTES` bytes, a 32-byte id for groups and channels).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    kind: RecordKind,
    name: Vec<u8>,
}

impl RecordKey {
    /// The account record.
    pub const ACCOUNT: RecordKey = RecordKey { kind: RecordKind::Account, name: Vec::new() };
    /// The settings record.
    pub const SETTINGS: RecordKey = RecordKey { kind: RecordKind::Settings, name: Vec::new() };

    pub(crate) fn peer(name: &str) -> Self {
        RecordKey { kind: RecordKind::Peer, name: name.as_bytes().to_vec() }
    }

    pub(crate) fn id(kind: RecordKind, id: &[u8; 32]) -> Self {
        RecordKey { kind, name: id.to_vec() }
    }

    /// The kind.
    pub fn kind(&self) -> RecordKind {
        self.kind
    }

    /// The name bytes.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// `kind || name`: the bytes a store hashes (with its naming key) to address the record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.name.len());
        out.push(self.kind as u8);
        out.extend_from_slice(&self.name);
        out
    }

    /// Decodes [`RecordKey::encode`]'s output, refusing an unknown kind and a name
    /// that is not valid for its kind.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (&kind, name) = bytes.split_first().ok_or(DecodeError::Truncated)?;
        let kind = RecordKind::from_byte(kind)?;
        let ok = match kind {
            RecordKind::Account | RecordKind::Settings => name.is_empty(),
            RecordKind::Peer => {
                !name.is_empty() && name.len() <= crate::device::MAX_NAME_BYTES && std::str::from_utf8(name).is_ok()
            }
            RecordKind::Group | RecordKind::Publisher | RecordKind::Subscription => name.len() == 32,
        };
        if !ok {
            return Err(DecodeError::InvalidValue("record name"));
        }
        Ok(RecordKey { kind, name: name.to_vec() })
    }

    /// The peer name of a `Peer` key.
    pub(crate) fn peer_name(&self) -> Option<&str> {
        (self.kind == RecordKind::Peer).then(|| std::str::from_utf8(&self.name).ok()).flatten()
    }

    /// The 32-byte id of a group or channel key.
    pub(crate) fn id_bytes(&self) -> Option<[u8; 32]> {
        self.name.as_slice().try_into().ok()
    }
}

/// A value whose every mutable access is remembered (for a single-record state part).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tracked<T> {
    value: T,
    touched: bool,
}

impl<T> Tracked<T> {
    pub(crate) fn new(value: T) -> Self {
        Tracked { value, touched: false }
    }

    /// Marks it changed.
    pub(crate) fn mark(&mut self) {
        self.touched = true;
    }

    /// Whether it was reached mutably since the last call; clears the mark.
    pub(crate) fn take_touched(&mut self) -> bool {
        std::mem::take(&mut self.touched)
    }
}

impl<T> Deref for Tracked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Tracked<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.touched = true;
        &mut self.value
    }
}

/// An ordered map that remembers every key it handed out mutably, inserted or removed.
/// It offers no other way to reach a value mutably.
#[derive(Debug, Clone)]
pub(crate) struct TrackedMap<K: Ord + Clone, V> {
    map: BTreeMap<K, V>,
    touched: BTreeSet<K>,
}

impl<K: Ord + Clone, V> Default for TrackedMap<K, V> {
    fn default() -> Self {
        TrackedMap { map: BTreeMap::new(), touched: BTreeSet::new() }
    }
}

impl<K: Ord + Clone, V> TrackedMap<K, V> {
    /// A map with these entries, nothing touched.
    pub(crate) fn from_map(map: BTreeMap<K, V>) -> Self {
        TrackedMap { map, touched: BTreeSet::new() }
    }

    pub(crate) fn get<Q: Ord + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(k)
    }

    pub(crate) fn get_mut<Q: Ord + ToOwned<Owned = K> + ?Sized>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let v = self.map.get_mut(k)?;
        self.touched.insert(k.to_owned());
        Some(v)
    }

    /// The value at `k`, inserted with `f` if absent.
    pub(crate) fn get_or_insert_with(&mut self, k: K, f: impl FnOnce() -> V) -> &mut V {
        self.touched.insert(k.clone());
        self.map.entry(k).or_insert_with(f)
    }

    pub(crate) fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.touched.insert(k.clone());
        self.map.insert(k, v)
    }

    pub(crate) fn remove<Q: Ord + ToOwned<Owned = K> + ?Sized>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let v = self.map.remove(k)?;
        self.touched.insert(k.to_owned());
        Some(v)
    }

    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.map.contains_key(k)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn iter(&self) -> std::collections::btree_map::Iter<'_, K, V> {
        self.map.iter()
    }

    pub(crate) fn keys(&self) -> std::collections::btree_map::Keys<'_, K, V> {
        self.map.keys()
    }

    pub(crate) fn values(&self) -> std::collections::btree_map::Values<'_, K, V> {
        self.map.values()
    }

    /// Every value mutably: every key is marked.
    pub(crate) fn values_mut(&mut self) -> std::collections::btree_map::ValuesMut<'_, K, V> {
        self.touched.extend(self.map.keys().cloned());
        self.map.values_mut()
    }

    pub(crate) fn last_key_value(&self) -> Option<(&K, &V)> {
        self.map.last_key_value()
    }

    /// Marks every key changed.
    pub(crate) fn mark_all(&mut self) {
        self.touched.extend(self.map.keys().cloned());
    }

    /// The keys touched since the last call; clears the marks.
    pub(crate) fn take_touched(&mut self) -> BTreeSet<K> {
        std::mem::take(&mut self.touched)
    }
}

impl<'a, K: Ord + Clone, V> IntoIterator for &'a TrackedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::collections::btree_map::Iter<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_round_trip_and_refuse_bad_names() {
        for key in [
            RecordKey::ACCOUNT,
            RecordKey::SETTINGS,
            RecordKey::peer("bob"),
            RecordKey::id(RecordKind::Group, &[7; 32]),
        ] {
            assert_eq!(RecordKey::decode(&key.encode()).unwrap(), key);
        }
        for bad in [&[][..], &[0x00][..], &[0x07][..], &[0x01, 0][..], &[0x03][..], &[0x03, 0xff][..], &[0x04; 32][..]]
        {
            assert!(RecordKey::decode(bad).is_err(), "{bad:?}");
        }
        let long = [&[0x03][..], &[b'a'; crate::device::MAX_NAME_BYTES + 1][..]].concat();
        assert!(RecordKey::decode(&long).is_err());
    }

    #[test]
    fn tracked_map_marks_every_mutable_access_and_nothing_else() {
        let mut m: TrackedMap<u8, u8> = TrackedMap::default();
        m.insert(1, 1);
        m.insert(2, 2);
        assert_eq!(m.take_touched().into_iter().collect::<Vec<_>>(), vec![1, 2]);
        let _ = m.get(&1);
        let _ = m.iter().count();
        assert!(m.take_touched().is_empty());
        let _ = m.get_mut(&2);
        let _ = m.get_mut(&9);
        let _ = m.remove(&8);
        assert_eq!(m.take_touched().into_iter().collect::<Vec<_>>(), vec![2]);
        m.values_mut().for_each(|v| *v += 1);
        assert_eq!(m.take_touched().len(), 2);
        let mut t = Tracked::new(5u8);
        assert_eq!(*t, 5);
        assert!(!t.take_touched());
        *t += 1;
        assert!(t.take_touched());
    }
}
