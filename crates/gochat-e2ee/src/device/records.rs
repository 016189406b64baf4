//! The device as a set of records (see [`crate::records`]): what a store reads, writes
//! and commits per operation.
//!
//! Record bodies (after the version byte [`RECORD_VERSION`]):
//! ```text
//! Account       user id (u32 length || UTF-8) || account state
//! Settings      identity policy (1) || trust anchors || own device || device lists
//! Peer          flag || [session record] || flag || [pinned (66) || flag || [pending (66)]]
//! Group         group state (its id must equal the key's name)
//! Publisher     publisher state (its channel id must equal the key's name)
//! Subscription  subscription state (its channel id must equal the key's name)
//! ```
//! A peer with neither a session record nor a pinned identity has no record.

use zeroize::Zeroizing;

use super::{check_name, read_name, Device};
use crate::account::Account;
use crate::channel::{ChannelId, Publisher, Subscription};
use crate::error::Error;
use crate::group::{Group, GroupId};
use crate::records::{RecordKey, RecordKind, Tracked, RECORD_VERSION};
use crate::session::SessionRecord;
use crate::snapshot::SnapshotError;
use crate::trust::certificate::TrustAnchors;
use crate::trust::devices::OwnDevice;
use crate::trust::{DeviceLists, IdentityPolicy, TrustStore};
use crate::wire::{DecodeError, Reader, Writer};

fn invalid(e: DecodeError) -> Error {
    Error::Snapshot(SnapshotError::InvalidState(e))
}

/// Encodes a record body behind the version byte, in a buffer sized exactly (so no
/// copy of the secret state is left behind by a reallocation).
fn record(len: usize, f: impl FnOnce(&mut Writer)) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::raw(1 + len);
    w.u8(RECORD_VERSION);
    f(&mut w);
    w.into_secret_bytes()
}

/// Opens a record body: checks the version byte, runs `f`, refuses trailing bytes.
fn body<T>(bytes: &[u8], f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>) -> Result<T, Error> {
    let mut r = Reader::raw(bytes);
    if r.u8().map_err(invalid)? != RECORD_VERSION {
        return Err(invalid(DecodeError::InvalidValue("record version")));
    }
    let out = f(&mut r).map_err(invalid)?;
    r.finish().map_err(invalid)?;
    Ok(out)
}

fn read_account(r: &mut Reader<'_>) -> Result<(String, Account), DecodeError> {
    let user_id = read_name(r)?;
    let account = Account::read(r).map_err(|e| match e {
        crate::keys::KeyError::Decode(d) => d,
        _ => DecodeError::InvalidValue("account keys"),
    })?;
    Ok((user_id, account))
}

/// What a settings record holds.
type Settings = (IdentityPolicy, TrustAnchors, OwnDevice, DeviceLists);

fn read_settings(r: &mut Reader<'_>) -> Result<Settings, DecodeError> {
    let policy = IdentityPolicy::from_byte(r.u8()?)?;
    Ok((policy, TrustAnchors::read(r)?, OwnDevice::read(r)?, DeviceLists::read(r)?))
}

impl Device {
    /// The records changed since the last call (or since the device was made), each
    /// once, in key order; clears the marks. A store commits exactly these after a
    /// successful operation: every mutable access to the state marks the record it
    /// reached, so no change is ever missing (a record may be listed unchanged). A
    /// listed key whose [`Device::encode_record`] is `None` was deleted. After a failed
    /// operation the state is unchanged, and the marks can be dropped. A device made by
    /// [`Device::new`], [`Device::from_account`] or [`Device::import`] has never been
    /// saved: it lists every record (a store replaces whatever it held).
    pub fn take_changes(&mut self) -> Vec<RecordKey> {
        let mut out = Vec::new();
        if self.account.take_touched() {
            out.push(RecordKey::ACCOUNT);
        }
        let (policy, trusted) = self.trust.take_touched();
        let settings = [policy, self.anchors.take_touched(), self.own.take_touched(), self.device_lists.take_touched()];
        if settings.contains(&true) {
            out.push(RecordKey::SETTINGS);
        }
        let mut peers = self.peers.take_touched();
        peers.extend(trusted);
        out.extend(peers.iter().map(|p| RecordKey::peer(p)));
        out.extend(self.groups.take_touched().iter().map(|id| RecordKey::id(RecordKind::Group, &id.0)));
        let (publishers, subscriptions) = self.channels.take_touched();
        out.extend(publishers.iter().map(|id| RecordKey::id(RecordKind::Publisher, &id.0)));
        out.extend(subscriptions.iter().map(|id| RecordKey::id(RecordKind::Subscription, &id.0)));
        out
    }

    /// Marks every record changed: a device just made or imported has never been saved.
    pub(crate) fn mark_all(&mut self) {
        self.account.mark();
        self.anchors.mark();
        self.own.mark();
        self.device_lists.mark();
        self.trust.mark_all();
        self.peers.mark_all();
        self.groups.mark_all();
        self.channels.mark_all();
    }

    /// The key of every record the device holds, in key order (a full save).
    pub fn record_keys(&self) -> Vec<RecordKey> {
        let mut peers: Vec<&str> = self.peers.keys().map(String::as_str).chain(self.trust.peers()).collect();
        peers.sort_unstable();
        peers.dedup();
        let mut out = vec![RecordKey::ACCOUNT, RecordKey::SETTINGS];
        out.extend(peers.into_iter().map(RecordKey::peer));
        out.extend(self.groups.ids().map(|id| RecordKey::id(RecordKind::Group, &id.0)));
        out.extend(self.channels.publisher_ids().map(|id| RecordKey::id(RecordKind::Publisher, &id.0)));
        out.extend(self.channels.subscription_ids().map(|id| RecordKey::id(RecordKind::Subscription, &id.0)));
        out
    }

    /// Every record, encoded, in key order: a full save (what a new store writes).
    pub fn records(&self) -> Vec<(RecordKey, Zeroizing<Vec<u8>>)> {
        self.record_keys().into_iter().filter_map(|k| self.encode_record(&k).map(|v| (k, v))).collect()
    }

    /// The record at `key` (version byte and body), in a buffer wiped on drop; `None`
    /// if the device holds no such record (it was deleted, or never existed).
    pub fn encode_record(&self, key: &RecordKey) -> Option<Zeroizing<Vec<u8>>> {
        match key.kind() {
            RecordKind::Account => Some(record(4 + self.user_id.len() + self.account.encoded_len(), |w| {
                w.var_bytes(self.user_id.as_bytes());
                self.account.write(w);
            })),
            RecordKind::Settings => {
                let len = 1 + self.anchors.encoded_len() + self.own.encoded_len() + self.device_lists.encoded_len();
                Some(record(len, |w| {
                    w.u8(self.trust.policy().to_byte());
                    self.anchors.write(w);
                    self.own.write(w);
                    self.device_lists.write(w);
                }))
            }
            RecordKind::Peer => {
                let peer = key.peer_name()?;
                let session = self.peers.get(peer);
                let pin_len = self.trust.entry_body_len(peer);
                if session.is_none() && pin_len == 0 {
                    return None;
                }
                Some(record(1 + session.map_or(0, SessionRecord::encoded_len) + 1 + pin_len, |w| {
                    w.flag(session.is_some());
                    if let Some(s) = session {
                        s.write(w);
                    }
                    w.flag(pin_len > 0);
                    self.trust.write_entry(peer, w);
                }))
            }
            RecordKind::Group => {
                let g = self.groups.get(&GroupId(key.id_bytes()?))?;
                Some(record(g.encoded_len(), |w| g.write(w)))
            }
            RecordKind::Publisher => {
                let p = self.channels.publisher(&ChannelId(key.id_bytes()?))?;
                Some(record(p.encoded_len(), |w| p.write(w)))
            }
            RecordKind::Subscription => {
                let s = self.channels.subscription(&ChannelId(key.id_bytes()?))?;
                Some(record(s.encoded_len(), |w| s.write(w)))
            }
        }
    }

    /// Rebuilds a device from its records (as a store holds them). The account record
    /// is required; every record is decoded strictly (version, framing, a name that
    /// matches its contents) and a bad one is refused (`SnapshotInvalidState`). Unlike
    /// [`Device::import`] this continues the same device: no new sender epoch, because
    /// the store committed every ratchet step before its message was released.
    pub fn from_records<I>(records: I) -> Result<Device, Error>
    where
        I: IntoIterator<Item = (RecordKey, Zeroizing<Vec<u8>>)>,
    {
        let mut rest = Vec::new();
        let mut account = None;
        for (key, value) in records {
            if key.kind() == RecordKind::Account {
                if account.is_some() {
                    return Err(invalid(DecodeError::InvalidValue("duplicate account record")));
                }
                account = Some(body(&value, read_account)?);
            } else {
                rest.push((key, value));
            }
        }
        let (user_id, account) = account.ok_or(invalid(DecodeError::InvalidValue("no account record")))?;
        let mut device = Device::from_account(&user_id, account);
        device.user_id = user_id;
        for (key, value) in &rest {
            device.put_record(key, Some(value))?;
        }
        device.held = device.count_held();
        device.take_changes();
        Ok(device)
    }

    /// Replaces (or, with `None`, removes) one record with what a store holds, for
    /// another handle's commit on the same store. Decoded strictly before anything
    /// changes: a bad record is refused and the device is unchanged. The change is not
    /// reported by [`Device::take_changes`] (it came from the store): call it between
    /// operations only, as a store does before it runs the next one, since it drops
    /// every pending change mark.
    pub fn apply_record(&mut self, key: &RecordKey, value: Option<&[u8]>) -> Result<(), Error> {
        let before = self.part_len(key);
        self.put_record(key, value)?;
        self.held = self.held + self.part_len(key) - before;
        self.take_changes();
        Ok(())
    }

    /// The bytes the part of the state `key` names takes in the `held` budget.
    fn part_len(&self, key: &RecordKey) -> usize {
        match key.kind() {
            RecordKind::Account => 0,
            RecordKind::Settings => {
                self.anchors.encoded_len() + self.own.encoded_len() + self.device_lists.encoded_len()
            }
            RecordKind::Peer => key.peer_name().map_or(0, |p| self.peer_len(p)),
            RecordKind::Group => key.id_bytes().map_or(0, |id| self.groups.entry_len(&GroupId(id))),
            RecordKind::Publisher => {
                key.id_bytes().and_then(|id| self.channels.publisher(&ChannelId(id))).map_or(0, Publisher::encoded_len)
            }
            RecordKind::Subscription => key
                .id_bytes()
                .and_then(|id| self.channels.subscription(&ChannelId(id)))
                .map_or(0, Subscription::encoded_len),
        }
    }

    /// Decodes `value` for `key` and puts it in place (`None` removes). Nothing changes
    /// if decoding fails.
    fn put_record(&mut self, key: &RecordKey, value: Option<&[u8]>) -> Result<(), Error> {
        let bad_name = || invalid(DecodeError::InvalidValue("record name"));
        match key.kind() {
            RecordKind::Account => {
                let value = value.ok_or(invalid(DecodeError::InvalidValue("account record removed")))?;
                let (user_id, account) = body(value, read_account)?;
                self.user_id = user_id;
                self.account = Tracked::new(account);
            }
            RecordKind::Settings => {
                let (policy, anchors, own, lists) = match value {
                    Some(v) => body(v, read_settings)?,
                    None => Default::default(),
                };
                self.trust.put_policy(policy);
                *self.anchors = anchors;
                *self.own = own;
                *self.device_lists = lists;
            }
            RecordKind::Peer => {
                let peer = key.peer_name().ok_or_else(bad_name)?;
                check_name(peer)?;
                let (session, pin) = match value {
                    Some(v) => body(v, |r| {
                        let session = if r.flag("session flag")? { Some(SessionRecord::read(r)?) } else { None };
                        let pin = if r.flag("pin flag")? { Some(TrustStore::read_entry(r)?) } else { None };
                        if session.is_none() && pin.is_none() {
                            return Err(DecodeError::InvalidValue("empty peer record"));
                        }
                        Ok((session, pin))
                    })?,
                    None => (None, None),
                };
                match session {
                    Some(s) => {
                        self.peers.insert(peer.to_owned(), s);
                    }
                    None => {
                        self.peers.remove(peer);
                    }
                }
                self.trust.put_entry(peer, pin);
            }
            RecordKind::Group => {
                let id = GroupId(key.id_bytes().ok_or_else(bad_name)?);
                match value {
                    Some(v) => {
                        let g = body(v, Group::read)?;
                        if g.id() != &id {
                            return Err(bad_name());
                        }
                        self.groups.insert(g);
                    }
                    None => {
                        self.groups.remove(&id);
                    }
                }
            }
            RecordKind::Publisher => {
                let id = ChannelId(key.id_bytes().ok_or_else(bad_name)?);
                let p = value.map(|v| body(v, Publisher::read)).transpose()?;
                if p.as_ref().is_some_and(|p| p.channel_id() != id) {
                    return Err(bad_name());
                }
                self.channels.put_publisher(id, p);
            }
            RecordKind::Subscription => {
                let id = ChannelId(key.id_bytes().ok_or_else(bad_name)?);
                let s = value.map(|v| body(v, Subscription::read)).transpose()?;
                if s.as_ref().is_some_and(|s| s.channel_id() != id) {
                    return Err(bad_name());
                }
                self.channels.put_subscription(id, s);
            }
        }
        Ok(())
    }
}
