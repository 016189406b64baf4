//! A simulated network of devices with pairwise sessions, for group tests: it delivers
//! commits, welcomes and pairwise distributions the way a server would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::{BTreeMap, VecDeque};

use gochat_e2ee::group::{GroupChange, GroupId, GroupMember, Outgoing};
use gochat_e2ee::records::RecordKey;
use gochat_e2ee::{Device, ErrorCode};
use rand_chacha::ChaCha20Rng;

use super::{device, rng, NOW};

/// One delivery the server makes.
#[derive(Debug, Clone)]
pub enum Item {
    Commit { to: String, bytes: Vec<u8> },
    Welcome { to: String, bytes: Vec<u8> },
    Pairwise { from: String, to: String, bytes: Vec<u8> },
}

pub struct Net {
    pub devices: BTreeMap<String, Device>,
    pub rng: ChaCha20Rng,
    pub now: u64,
    /// Every pairwise message ever addressed to each device (to prove what a removed
    /// device was sent).
    pub pairwise_log: Vec<(String, String)>,
    /// What a store holding each device would hold, kept up to date only from
    /// `Device::take_changes` (checked against the live state at every `dev` call and
    /// when the net is dropped: a change a device does not report fails the test).
    pub mirrors: BTreeMap<String, BTreeMap<RecordKey, Vec<u8>>>,
}

fn all_records(d: &Device) -> BTreeMap<RecordKey, Vec<u8>> {
    d.records().into_iter().map(|(k, v)| (k, v.to_vec())).collect()
}

impl Drop for Net {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.sync_mirrors();
        for (name, mirror) in &self.mirrors {
            let rebuilt =
                Device::from_records(mirror.iter().map(|(k, v)| (k.clone(), zeroize::Zeroizing::new(v.clone()))))
                    .unwrap();
            assert_eq!(
                rebuilt.state_digest(),
                self.devices[name].state_digest(),
                "{name}: records do not rebuild the state"
            );
        }
    }
}

impl Net {
    /// Devices named `names`, with a pairwise session between every two (the one
    /// earlier in name order starts it; the other has answered, so both can send).
    pub fn new(names: &[&str], seed: u64) -> Net {
        let mut rng = rng(seed);
        let mut devices = BTreeMap::new();
        for n in names {
            devices.insert(n.to_string(), device(n, names.len(), &mut rng));
        }
        let mut net = Net { devices, rng, now: NOW, pairwise_log: Vec::new(), mirrors: BTreeMap::new() };
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                net.connect(a, b);
            }
        }
        net
    }

    /// Starts a session from `a` to `b` and answers it.
    pub fn connect(&mut self, a: &str, b: &str) {
        let bundle = super::bundle(self.devices.get_mut(b).unwrap());
        let da = self.devices.get_mut(a).unwrap();
        let _ = da.initiate(b, &bundle, &mut self.rng).unwrap();
        let m = da.encrypt(b, b"hi").unwrap();
        let _ = self.devices.get_mut(b).unwrap().decrypt(a, &m, &mut self.rng).unwrap();
        let r = self.devices.get_mut(b).unwrap().encrypt(a, b"hi").unwrap();
        let _ = self.devices.get_mut(a).unwrap().decrypt(b, &r, &mut self.rng).unwrap();
    }

    pub fn dev(&mut self, name: &str) -> &mut Device {
        self.sync_mirrors();
        self.devices.get_mut(name).unwrap()
    }

    /// Applies each device's reported changes to its mirror and checks the mirror
    /// equals the device's records.
    pub fn sync_mirrors(&mut self) {
        for (name, d) in self.devices.iter_mut() {
            let changes = d.take_changes();
            let Some(mirror) = self.mirrors.get_mut(name) else {
                // First seen: a store saves every record of a new device.
                self.mirrors.insert(name.clone(), all_records(d));
                continue;
            };
            if d.record_keys().iter().all(|k| changes.contains(k)) {
                // A new or imported device: a store replaces everything it held.
                mirror.clear();
            }
            for k in changes {
                match d.encode_record(&k) {
                    Some(v) => mirror.insert(k, v.to_vec()),
                    None => mirror.remove(&k),
                };
            }
            assert!(*mirror == all_records(d), "{name} changed a record it did not report");
        }
    }

    pub fn member(&self, name: &str, admin: bool) -> GroupMember {
        GroupMember { name: name.to_owned(), identity: *self.devices[name].identity(), admin }
    }

    /// The members of `gid` as `name` sees them.
    pub fn members(&self, name: &str, gid: &GroupId) -> Vec<String> {
        self.devices[name].group(gid).unwrap().members().into_iter().map(|m| m.name).collect()
    }

    /// Queues what `author`'s change asks for: the commit to `old_members` (but the
    /// author), the welcome to the added devices, the pairwise messages.
    pub fn items_for(&self, author: &str, change: &GroupChange, old_members: &[String]) -> VecDeque<Item> {
        let mut q = VecDeque::new();
        if let Some(c) = &change.commit {
            for m in old_members.iter().filter(|m| *m != author) {
                q.push_back(Item::Commit { to: m.clone(), bytes: c.clone() });
            }
        }
        if let Some(w) = &change.welcome {
            let added: Vec<&String> = if change.commit.is_none() {
                change.change.added.iter().collect()
            } else {
                change.change.added.iter().chain(&change.change.replaced).collect()
            };
            for m in added {
                q.push_back(Item::Welcome { to: m.clone(), bytes: w.clone() });
            }
        }
        q.extend(self.pairwise(author, &change.outgoing));
        q
    }

    fn pairwise(&self, from: &str, out: &[Outgoing]) -> Vec<Item> {
        out.iter()
            .map(|o| Item::Pairwise { from: from.to_owned(), to: o.peer.clone(), bytes: o.message.clone() })
            .collect()
    }

    /// Delivers everything in `q` and everything it causes, retrying an item that
    /// failed with a retryable code (its prerequisite had not arrived yet).
    pub fn run(&mut self, mut q: VecDeque<Item>) {
        let mut stalls = 0;
        while let Some(item) = q.pop_front() {
            match self.deliver(&item) {
                Ok(more) => {
                    stalls = 0;
                    q.extend(more);
                }
                Err(code) if matches!(code, ErrorCode::UnknownGroup | ErrorCode::EpochAhead) && stalls < 10_000 => {
                    stalls += 1;
                    q.push_back(item);
                }
                Err(code) => panic!("delivery of {item:?} failed: {code:?}"),
            }
        }
    }

    /// Delivers one item; returns what the receiver must send in turn.
    pub fn deliver(&mut self, item: &Item) -> Result<Vec<Item>, ErrorCode> {
        let now = self.now;
        match item {
            Item::Commit { to, bytes } => {
                let d = self.devices.get_mut(to).unwrap();
                let change = d.group_process_commit(bytes, now, &mut self.rng).map_err(|e| e.code())?;
                Ok(self.pairwise(to, &change.outgoing))
            }
            Item::Welcome { to, bytes } => {
                let d = self.devices.get_mut(to).unwrap();
                let change = d.group_join(bytes, now, &mut self.rng).map_err(|e| e.code())?;
                Ok(self.pairwise(to, &change.outgoing))
            }
            Item::Pairwise { from, to, bytes } => {
                self.pairwise_log.push((from.clone(), to.clone()));
                let d = self.devices.get_mut(to).unwrap();
                let _ = d.group_receive(from, bytes, &mut self.rng).map_err(|e| e.code())?;
                Ok(Vec::new())
            }
        }
    }

    /// `creator` creates a group with `others` (admins as flagged) and everything is
    /// delivered.
    pub fn create(&mut self, creator: &str, others: &[(&str, bool)]) -> GroupId {
        let members: Vec<GroupMember> = others.iter().map(|(n, a)| self.member(n, *a)).collect();
        let now = self.now;
        let change = self.devices.get_mut(creator).unwrap().group_create(&members, now, &mut self.rng).unwrap();
        assert!(change.withheld.is_empty(), "{:?}", change.withheld);
        let q = self.items_for(creator, &change, &[]);
        self.run(q);
        change.group_id
    }

    /// Applies a change made by `author` and delivers it to the members of the epoch
    /// before it.
    pub fn apply(&mut self, author: &str, gid: &GroupId, change: GroupChange, old: Vec<String>) {
        let q = self.items_for(author, &change, &old);
        let _ = gid;
        self.run(q);
    }

    pub fn add(&mut self, author: &str, gid: &GroupId, names: &[&str]) {
        let old = self.members(author, gid);
        let members: Vec<GroupMember> = names.iter().map(|n| self.member(n, false)).collect();
        let now = self.now;
        let mut r = self.rng.clone();
        let change = self.dev(author).group_add(gid, &members, now, &mut r).unwrap();
        self.rng = r;
        self.apply(author, gid, change, old);
    }

    pub fn remove(&mut self, author: &str, gid: &GroupId, names: &[&str]) {
        let old = self.members(author, gid);
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let now = self.now;
        let mut r = self.rng.clone();
        let change = self.dev(author).group_remove(gid, &names, now, &mut r).unwrap();
        self.rng = r;
        self.apply(author, gid, change, old);
    }

    /// `from` sends `text`: its rotation distributions (if any) are delivered first.
    pub fn send(&mut self, from: &str, gid: &GroupId, text: &[u8]) -> Vec<u8> {
        let now = self.now;
        let mut r = self.rng.clone();
        let sent = self.dev(from).group_encrypt(gid, text, now, &mut r).unwrap();
        self.rng = r;
        let q: VecDeque<Item> = self.pairwise(from, &sent.outgoing).into();
        self.run(q);
        sent.message
    }

    /// `to` decrypts `msg` from `from`.
    pub fn read(&mut self, to: &str, from: &str, msg: &[u8]) -> Result<Vec<u8>, ErrorCode> {
        self.dev(to).group_decrypt(from, msg).map(|p| p.plaintext).map_err(|e| e.code())
    }
}
