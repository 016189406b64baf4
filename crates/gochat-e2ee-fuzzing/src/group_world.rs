//! The stateful `group` target: four devices (`ana`, `ben`, `cai`, `dev`, every two
//! with a pairwise session) and one group, driven by an arbitrary operation sequence
//! through a simulated server that may deliver, drop, duplicate, reorder and tamper
//! with everything it carries (commits, welcomes, pairwise key distributions, group
//! messages).
//!
//! Each operation is an opcode byte (taken mod 11) and its arguments (missing bytes
//! read as 0); `a`, `b` pick devices (`% 4`), `i` an in-flight item (`% n`):
//!
//! | op | arguments   | event |
//! |----|-------------|-------|
//! | 0  | a, m        | `a` creates the group (once) with the devices in bit mask `m & 0xF`; bit `4 + k` makes device `k` an admin |
//! | 1  | a, b        | `a` adds `b` (admin if bit 2 of `b`) |
//! | 2  | a, b        | `a` removes `b` (`a == b`: leaves) |
//! | 3  | a, len      | `a` sends a group message (to the three others) |
//! | 4  | i           | deliver item `i` (a retryable refusal re-queues it, at most 8 times) |
//! | 5  | i           | drop item `i` |
//! | 6  | i           | duplicate item `i` |
//! | 7  | i, hi, lo, x| add a copy of item `i` with byte `(hi,lo) % len` xor `x \| 1` |
//! | 8  | i           | re-deliver an already delivered item |
//! | 9  | –           | deliver everything in flight, in order, retrying (bounded) |
//! | 10 | a, b        | `a` re-sends its sender key to `b` |
//!
//! Asserted, for every delivery and every operation:
//! - every refusal leaves the device's state digest unchanged (every call goes through
//!   [`atomic`]);
//! - a first, unmodified delivery of a group message to a current member that is at
//!   the epoch and membership hash the message was sent at, and holds the sender's key
//!   generation from at or before the message's iteration (the harness tracks which
//!   keys each device received, mirroring `MAX_SENDER_GENERATIONS` and removals),
//!   decrypts to exactly what was sent;
//! - a device that was not in the sender's member list when the message was sent (a
//!   removed member, a device never added) never decrypts it;
//! - a modified copy is refused; a duplicate or replay is refused, and as `Duplicate`
//!   when the receiver is still at the message's epoch with its key;
//! - a key distribution is only ever sent to another current member of the sender's
//!   view, a received key names the generation sent, `fresh` agrees with the model,
//!   and a repeated pairwise message is refused as `Duplicate`;
//! - a repeated commit or welcome is refused.
//!
//! At the end, everything in flight is delivered, each active member sends once more
//! and that is delivered too (under the same checks).

use std::collections::HashMap;

use gochat_e2ee::group::{GroupChange, GroupId, GroupMember, Outgoing, MAX_SENDER_GENERATIONS};
use gochat_e2ee::{Device, ErrorCode, IdentityKey};
use rand_chacha::ChaCha20Rng;

use crate::fixtures::NOW;
use crate::groups::{atomic, NAMES};
use crate::rng;

/// Most operations run per input.
pub const MAX_OPS: usize = 96;
const MAX_IN_FLIGHT: usize = 96;
const MAX_RETRIES: u8 = 8;

#[derive(Clone, Debug)]
enum Kind {
    Commit,
    Welcome,
    /// A pairwise key distribution of generation `key_id`, made at `iteration`, stamped
    /// with the sender's epoch and membership hash.
    Key {
        from: usize,
        key_id: u32,
        iteration: u32,
        epoch: u64,
        hash: [u8; 32],
    },
    /// Group message number `id`.
    Message {
        from: usize,
        id: usize,
    },
}

#[derive(Clone, Debug)]
struct Item {
    to: usize,
    kind: Kind,
    bytes: Vec<u8>,
    /// The bytes as made (a copy modified twice back to the original is not modified).
    original: Vec<u8>,
    retries: u8,
}

struct Msg {
    plaintext: Vec<u8>,
    /// The sender's member list when it sent the message.
    members: Vec<(String, IdentityKey)>,
    epoch: u64,
    hash: [u8; 32],
    key_id: u32,
    iteration: u32,
}

/// A device's view of the group: active, epoch, membership hash, members.
type View = (bool, u64, [u8; 32], Vec<(String, IdentityKey)>);

struct World {
    d: [Device; 4],
    rng: ChaCha20Rng,
    gid: Option<GroupId>,
    in_flight: Vec<Item>,
    delivered: Vec<Item>,
    msgs: Vec<Msg>,
    /// (receiver, message id) pairs that decrypted.
    read: std::collections::HashSet<(usize, usize)>,
    /// Accepted pairwise messages (receiver, bytes) and applied commits / welcomes.
    accepted: std::collections::HashSet<(usize, Vec<u8>)>,
    /// Per receiver and sender: the key generations held, oldest first, with the
    /// iteration each starts at.
    keys: [[Vec<(u32, u32)>; 4]; 4],
    /// Messages each device sent per key generation (the next iteration).
    sent_on: HashMap<(usize, u32), u32>,
    decrypted: usize,
}

fn is_retryable(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::UnknownGroup | ErrorCode::EpochAhead | ErrorCode::MissingSenderKey | ErrorCode::NotMember)
}

impl World {
    fn group_view(&self, k: usize) -> Option<View> {
        let g = self.d[k].group(self.gid.as_ref()?)?;
        Some((
            g.is_active(),
            g.epoch(),
            g.membership_hash(),
            g.members().into_iter().map(|m| (m.name, m.identity)).collect(),
        ))
    }

    fn push(&mut self, to: usize, kind: Kind, bytes: Vec<u8>) {
        if self.in_flight.len() < MAX_IN_FLIGHT {
            self.in_flight.push(Item { to, kind, original: bytes.clone(), bytes, retries: 0 });
        }
    }

    /// Queues `from`'s pairwise key messages; each must go to another member of its view.
    fn push_keys(&mut self, from: usize, out: &[Outgoing]) {
        if out.is_empty() {
            return;
        }
        let (active, epoch, hash, members) = self.group_view(from).expect("keys sent without a group");
        assert!(active, "an inactive device sent keys");
        let key_id = self.d[from].group(self.gid.as_ref().unwrap()).unwrap().own_key_id().expect("keys without a key");
        let iteration = self.sent_on.get(&(from, key_id)).copied().unwrap_or(0);
        for o in out {
            assert!(
                o.peer != NAMES[from] && members.iter().any(|(n, _)| *n == o.peer),
                "{} sent its key to {} (not another member)",
                NAMES[from],
                o.peer
            );
            let to = NAMES.iter().position(|n| *n == o.peer).expect("known peer");
            self.push(to, Kind::Key { from, key_id, iteration, epoch, hash }, o.message.clone());
        }
    }

    /// Queues a change made by `author`: the commit to the members before it (but the
    /// author), the welcome to the added devices, the keys.
    fn push_change(&mut self, author: usize, before: &[(String, IdentityKey)], c: &GroupChange) {
        if let Some(commit) = &c.commit {
            for (n, _) in before.iter().filter(|(n, _)| n != NAMES[author]) {
                let to = NAMES.iter().position(|x| x == n).unwrap();
                self.push(to, Kind::Commit, commit.clone());
            }
        }
        if let Some(w) = &c.welcome {
            for n in c.change.added.iter().filter(|n| *n != NAMES[author]) {
                let to = NAMES.iter().position(|x| x == n).unwrap();
                self.push(to, Kind::Welcome, w.clone());
            }
        }
        self.push_keys(author, &c.outgoing);
    }

    fn create(&mut self, a: u8, mask: u8) {
        if self.gid.is_some() {
            return;
        }
        let a = usize::from(a) % 4;
        let mut others = Vec::new();
        for k in (0..4).filter(|k| *k != a) {
            if mask & (1 << k) != 0 {
                others.push(GroupMember {
                    name: NAMES[k].into(),
                    identity: *self.d[k].identity(),
                    admin: mask & (16 << k) != 0,
                });
            }
        }
        let r = &mut self.rng;
        let c = atomic(&mut self.d[a], "group_create", |d| d.group_create(&others, NOW, r)).expect("group_create");
        assert!(c.withheld.is_empty(), "{:?}", c.withheld);
        self.gid = Some(c.group_id);
        self.push_change(a, &[], &c);
    }

    fn commit(&mut self, a: u8, b: u8, add: bool) {
        let Some(gid) = self.gid else { return };
        let (a, t) = (usize::from(a) % 4, usize::from(b) % 4);
        let before = self.group_view(a).map(|v| v.3).unwrap_or_default();
        let member = GroupMember { name: NAMES[t].into(), identity: *self.d[t].identity(), admin: b & 4 != 0 };
        let r = &mut self.rng;
        let out = atomic(&mut self.d[a], "group_add/remove", |d| {
            if add {
                d.group_add(&gid, &[member], NOW, r)
            } else {
                d.group_remove(&gid, &[NAMES[t].to_owned()], NOW, r)
            }
        });
        let Ok(c) = out else { return };
        self.after_change(a, &c);
        self.push_change(a, &before, &c);
    }

    /// Mirrors a change applied at `k` in the key model.
    fn after_change(&mut self, k: usize, c: &GroupChange) {
        for n in c.change.removed.iter().chain(&c.change.replaced) {
            if n == NAMES[k] {
                self.keys[k].iter_mut().for_each(Vec::clear);
            } else if let Some(x) = NAMES.iter().position(|y| y == n) {
                self.keys[k][x].clear();
            }
        }
    }

    fn send(&mut self, a: u8, len: u8) {
        let Some(gid) = self.gid else { return };
        let a = usize::from(a) % 4;
        let id = self.msgs.len();
        let mut pt = format!("{}#{id}:", NAMES[a]).into_bytes();
        pt.extend(std::iter::repeat_n(len, usize::from(len)));
        let r = &mut self.rng;
        let Ok(sent) = atomic(&mut self.d[a], "group_encrypt", |d| d.group_encrypt(&gid, &pt, NOW, r)) else { return };
        let (_, epoch, hash, members) = self.group_view(a).unwrap();
        let key_id = self.d[a].group(&gid).unwrap().own_key_id().unwrap();
        // The rotation's distributions were made before the message (at its iteration).
        self.push_keys(a, &sent.outgoing);
        let counter = self.sent_on.entry((a, key_id)).or_insert(0);
        let iteration = *counter;
        *counter += 1;
        self.msgs.push(Msg { plaintext: pt, members, epoch, hash, key_id, iteration });
        for to in (0..4).filter(|k| *k != a) {
            self.push(to, Kind::Message { from: a, id }, sent.message.clone());
        }
    }

    fn resend(&mut self, a: u8, b: u8) {
        let Some(gid) = self.gid else { return };
        let (a, b) = (usize::from(a) % 4, usize::from(b) % 4);
        let Ok((out, _)) = atomic(&mut self.d[a], "group_resend_key", |d| d.group_resend_key(&gid, NAMES[b])) else {
            return;
        };
        self.push_keys(a, &out);
    }

    /// Whether `to` must be able to read message `id` now (its first delivery).
    fn must_read(&self, to: usize, from: usize, id: usize) -> bool {
        let m = &self.msgs[id];
        let Some((active, epoch, hash, _)) = self.group_view(to) else { return false };
        active
            && epoch == m.epoch
            && hash == m.hash
            && self.keys[to][from].iter().any(|&(k, start)| k == m.key_id && start <= m.iteration)
    }

    /// Delivers `item`; returns it if it should be re-queued.
    fn deliver(&mut self, item: Item, replay: bool) -> Option<Item> {
        let to = item.to;
        let modified = item.bytes != item.original;
        let gid = self.gid.expect("items exist only with a group");
        let result: Result<(), ErrorCode> = match item.kind.clone() {
            Kind::Message { from, id } => {
                let first = !self.read.contains(&(to, id));
                let must = !modified && first && self.must_read(to, from, id);
                let out = atomic(&mut self.d[to], "group_decrypt", |d| d.group_decrypt(NAMES[from], &item.bytes));
                let m = &self.msgs[id];
                let listed = m.members.iter().any(|(n, i)| n == NAMES[to] && i == self.d[to].identity());
                match out {
                    Ok(p) => {
                        assert!(!modified, "a modified group message was accepted");
                        assert!(first, "group message #{id} decrypted twice by {}", NAMES[to]);
                        assert!(listed, "{} (not a member when #{id} was sent) decrypted it", NAMES[to]);
                        assert_eq!(p.plaintext, m.plaintext, "group message #{id} decrypted to something else");
                        assert_eq!(p.key_id, m.key_id);
                        assert_eq!(p.iteration, m.iteration);
                        self.read.insert((to, id));
                        self.decrypted += 1;
                        Ok(())
                    }
                    Err(e) => {
                        assert!(!must, "{} could not read group message #{id} from {}: {e:?}", NAMES[to], NAMES[from]);
                        if !modified && !first && self.must_read(to, from, id) {
                            assert_eq!(e.code(), ErrorCode::Duplicate, "a repeated group message: {e:?}");
                        }
                        Err(e.code())
                    }
                }
            }
            Kind::Key { from, key_id, iteration, epoch, hash } => {
                let repeat = self.accepted.contains(&(to, item.bytes.clone()));
                let view = self.group_view(to);
                let must = !modified
                    && !repeat
                    && view.as_ref().is_some_and(|(active, e, h, members)| {
                        *active
                            && *e == epoch
                            && *h == hash
                            && members.iter().any(|(n, i)| n == NAMES[from] && i == self.d[from].identity())
                    });
                let r = &mut self.rng;
                let out = atomic(&mut self.d[to], "group_receive", |d| d.group_receive(NAMES[from], &item.bytes, r));
                match out {
                    Ok(k) => {
                        assert!(!modified && !repeat, "a modified or repeated pairwise message was accepted");
                        assert_eq!((k.group_id, k.sender.as_str(), k.key_id), (gid, NAMES[from], key_id));
                        let held = &mut self.keys[to][from];
                        assert_eq!(
                            k.fresh,
                            !held.iter().any(|(id, _)| *id == key_id),
                            "fresh disagrees with the model"
                        );
                        if k.fresh {
                            held.push((key_id, iteration));
                            if held.len() > MAX_SENDER_GENERATIONS {
                                held.remove(0);
                            }
                        }
                        self.accepted.insert((to, item.bytes.clone()));
                        Ok(())
                    }
                    Err(e) => {
                        assert!(!must, "{} refused {}'s key: {e:?}", NAMES[to], NAMES[from]);
                        if repeat && !modified {
                            assert_eq!(e.code(), ErrorCode::Duplicate, "a repeated pairwise message: {e:?}");
                        }
                        Err(e.code())
                    }
                }
            }
            Kind::Commit | Kind::Welcome => {
                let repeat = self.accepted.contains(&(to, item.bytes.clone()));
                let welcome = matches!(item.kind, Kind::Welcome);
                let r = &mut self.rng;
                let out = atomic(&mut self.d[to], "group_process_commit/join", |d| {
                    if welcome {
                        d.group_join(&item.bytes, NOW, r)
                    } else {
                        d.group_process_commit(&item.bytes, NOW, r)
                    }
                });
                match out {
                    Ok(c) => {
                        assert!(!modified, "a modified commit or welcome was accepted");
                        assert!(!repeat || welcome, "a commit was applied twice");
                        if welcome {
                            // A join starts from an empty set of received keys.
                            self.keys[to].iter_mut().for_each(Vec::clear);
                        } else {
                            self.after_change(to, &c);
                        }
                        self.accepted.insert((to, item.bytes.clone()));
                        self.push_keys(to, &c.outgoing);
                        Ok(())
                    }
                    Err(e) => {
                        if repeat && !modified && welcome {
                            // Refused only while the device is still in the group.
                            assert!(self.group_view(to).is_some_and(|v| v.0), "a rejoin refused: {e:?}");
                        }
                        Err(e.code())
                    }
                }
            }
        };
        if result.is_ok() || !replay {
            self.delivered.push(item.clone());
        }
        match result {
            Err(code) if !replay && !modified && is_retryable(code) && item.retries < MAX_RETRIES => {
                Some(Item { retries: item.retries + 1, ..item })
            }
            _ => None,
        }
    }

    fn deliver_at(&mut self, i: usize) {
        let item = self.in_flight.remove(i);
        if let Some(again) = self.deliver(item, false) {
            self.in_flight.push(again);
        }
    }

    fn flush(&mut self) {
        let mut budget = 4 * MAX_IN_FLIGHT;
        while !self.in_flight.is_empty() && budget > 0 {
            budget -= 1;
            self.deliver_at(0);
        }
    }
}

/// `group`: see the module documentation. Returns `true` if at least one group message
/// was decrypted before the final round.
pub fn group(data: &[u8]) -> bool {
    let f = crate::groups::get();
    let mut w = World {
        d: f.base.each_ref().map(Device::fork_for_testing),
        rng: rng(0x6A0F),
        gid: None,
        in_flight: Vec::new(),
        delivered: Vec::new(),
        msgs: Vec::new(),
        read: Default::default(),
        accepted: Default::default(),
        keys: Default::default(),
        sent_on: HashMap::new(),
        decrypted: 0,
    };
    let mut input = data.iter().copied();
    let mut ops = 0;
    while let Some(op) = input.next() {
        if ops == MAX_OPS {
            break;
        }
        ops += 1;
        let mut arg = || input.next().unwrap_or(0);
        let pick = |n: usize, i: u8| if n == 0 { None } else { Some(usize::from(i) % n) };
        match op % 11 {
            0 => {
                let (a, m) = (arg(), arg());
                w.create(a, m);
            }
            1 | 2 => {
                let (a, b) = (arg(), arg());
                w.commit(a, b, op % 11 == 1);
            }
            3 => {
                let (a, len) = (arg(), arg());
                w.send(a, len);
            }
            4 => {
                if let Some(i) = pick(w.in_flight.len(), arg()) {
                    w.deliver_at(i);
                }
            }
            5 => {
                if let Some(i) = pick(w.in_flight.len(), arg()) {
                    w.in_flight.remove(i);
                }
            }
            6 => {
                if let Some(i) = pick(w.in_flight.len(), arg()) {
                    if w.in_flight.len() < MAX_IN_FLIGHT {
                        let it = w.in_flight[i].clone();
                        w.in_flight.push(it);
                    }
                }
            }
            7 => {
                let (i, hi, lo, x) = (arg(), arg(), arg(), arg());
                if let Some(i) = pick(w.in_flight.len(), i) {
                    if w.in_flight.len() < MAX_IN_FLIGHT {
                        let mut it = w.in_flight[i].clone();
                        let pos = usize::from(u16::from_be_bytes([hi, lo])) % it.bytes.len();
                        it.bytes[pos] ^= x | 1;
                        w.in_flight.push(it);
                    }
                }
            }
            8 => {
                if let Some(i) = pick(w.delivered.len(), arg()) {
                    let it = w.delivered[i].clone();
                    let _ = w.deliver(it, true);
                }
            }
            9 => w.flush(),
            _ => {
                let (a, b) = (arg(), arg());
                w.resend(a, b);
            }
        }
    }
    let decrypted = w.decrypted > 0;
    w.flush();
    for a in 0..4u8 {
        if w.group_view(usize::from(a)).is_some_and(|v| v.0) {
            w.send(a, 3);
        }
    }
    w.flush();
    decrypted
}

/// Seed scripts (see the opcode table).
pub fn seed_scripts() -> Vec<(&'static str, Vec<u8>)> {
    let mut long = vec![0, 0, 0b0001_1110, 9];
    for k in 0..8u8 {
        long.extend_from_slice(&[3, k, k, 3, k + 1, 2 * k, 4, 0, 4, 1, 9]);
    }
    vec![
        // ana creates with ben, cai (admin); everyone talks.
        ("valid-create-and-talk", vec![0, 0, 0b0100_0110, 9, 3, 0, 5, 3, 1, 6, 3, 2, 7, 9]),
        // ana adds dev, removes ben; dev reads after joining, ben nothing after removal.
        (
            "valid-add-remove",
            vec![
                0,
                0,
                0b0000_0110,
                9,
                3,
                1,
                4,
                1,
                0,
                3,
                9,
                3,
                3,
                8,
                3,
                0,
                9,
                9,
                2,
                0,
                1,
                9,
                3,
                0,
                2,
                3,
                2,
                9,
                3,
                3,
                1,
                9,
            ],
        ),
        // Drops, duplicates, tampering, replays and out-of-order delivery.
        (
            "valid-adversarial-server",
            vec![
                0,
                0,
                0b0000_1110,
                9,
                3,
                0,
                4,
                3,
                1,
                4,
                6,
                0,
                7,
                1,
                0,
                9,
                1,
                4,
                3,
                4,
                2,
                4,
                0,
                8,
                0,
                8,
                1,
                5,
                0,
                9,
                3,
                2,
                1,
                9,
            ],
        ),
        // A member leaves, an admin re-adds it, keys are re-sent.
        (
            "valid-leave-rejoin",
            vec![0, 1, 0b0010_1101, 9, 3, 0, 1, 2, 2, 2, 9, 3, 1, 1, 9, 1, 1, 2, 9, 10, 0, 2, 9, 3, 2, 2, 9],
        ),
        ("valid-long", long),
    ]
}
