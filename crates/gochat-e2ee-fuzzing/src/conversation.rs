//! The stateful `conversation` target: two devices, an arbitrary event sequence.
//!
//! The input is a sequence of operations; each is an opcode byte (taken mod 9) followed
//! by its argument bytes (missing bytes read as 0):
//!
//! | op | arguments            | event                                                      |
//! |----|----------------------|------------------------------------------------------------|
//! | 0  | len                  | Alice sends a fresh message (`len` filler bytes) to Bob    |
//! | 1  | len                  | Bob sends a fresh message to Alice                         |
//! | 2  | i                    | deliver in-flight message `i % n` (removing it)            |
//! | 3  | i                    | drop in-flight message `i % n`                             |
//! | 4  | i                    | duplicate in-flight message `i % n`                        |
//! | 5  | i, hi, lo, x         | add a copy of in-flight `i % n` with byte `(hi,lo) % len` xor `x \| 1` |
//! | 6  | s                    | export + import: bit 0 picks the device, bit 1 whole device or session record |
//! | 7  | i                    | replay delivered message `i % n`                           |
//! | 8  | s                    | bit 0 picks a side, which starts a new session from the other's next bundle (at most `MAX_RESTARTS` per input): old sessions become archived, and messages still in flight on them must decrypt there |
//!
//! Checked after every event:
//! - a message delivered for the first time, unmodified, decrypts to exactly what was
//!   sent; it may only be refused if the receiver has dropped its chain (more than
//!   `MAX_RECEIVER_CHAINS` newer chains, tracked by a model of the receiver);
//! - a modified, duplicated or replayed message is refused, and every refusal (and any
//!   failed encrypt or export) leaves the receiver's state digest unchanged;
//! - export + import reproduces the same state digest.
//!
//! At the end both sides must still be able to talk: Alice → Bob → Alice → Bob, each
//! delivered at once, must all decrypt.

use std::collections::{HashSet, VecDeque};

use gochat_e2ee::limits::{MAX_RECEIVER_CHAINS, PADDING_BLOCK};
use gochat_e2ee::{Device, SnapshotKey};
use rand_chacha::ChaCha20Rng;

use crate::{decrypt_atomic, fixtures, rng, SNAPSHOT_KEY};

/// Most operations run per input (keeps skipped keys far below `MAX_SKIPPED_KEYS`).
pub const MAX_OPS: usize = 128;
const MAX_IN_FLIGHT: usize = 64;
/// Most session restarts per input (keeps every session within `MAX_ARCHIVED_SESSIONS`).
pub const MAX_RESTARTS: usize = 16;

/// Long scripts seeded next to [`SEED_SCRIPTS`], so the fuzzer starts from conversations
/// with many DH steps, restarts (archived sessions) and exports instead of having to
/// grow them byte by byte.
pub fn long_seed_scripts() -> Vec<(&'static str, Vec<u8>)> {
    // Ping-pong: every delivered reply is a DH step.
    let mut ping_pong = Vec::new();
    for k in 0..32u8 {
        ping_pong.extend_from_slice(&[0, k, 2, 0, 1, k, 2, 0]);
    }
    // Restarts with messages left in flight on the old sessions, delivered late.
    let mut archived = Vec::new();
    for k in 0..12u8 {
        archived.extend_from_slice(&[0, k, 1, k, 8, k, 0, 3, 2, 2, 2, 1, 2, 0]);
    }
    // Everything mixed, with exports, drops, duplicates and late deliveries.
    let mut mixed = Vec::new();
    for k in 0..10u8 {
        mixed.extend_from_slice(&[0, k, 0, 1, 1, 2, 2, 1, 8, k, 1, 0, 4, 0, 2, 2, 6, k, 2, 0, 3, 1, 2, 0, 7, k]);
    }
    vec![("valid-long-ping-pong", ping_pong), ("valid-long-archived-sessions", archived), ("valid-long-mixed", mixed)]
}

/// Small scripts used as the corpus seeds (see the opcode table).
pub const SEED_SCRIPTS: [(&str, &[u8]); 6] = [
    ("valid-ping-pong", &[0, 5, 2, 0, 1, 7, 2, 0, 0, 9, 2, 0, 1, 3, 2, 0]),
    ("valid-out-of-order", &[0, 1, 0, 2, 0, 3, 2, 2, 2, 0, 1, 0, 1, 70, 2, 1, 2, 0, 2, 0]),
    (
        "valid-duplicate-replay-tamper",
        &[0, 1, 4, 0, 5, 0, 0, 50, 1, 2, 2, 2, 0, 7, 0, 2, 0, 1, 0, 5, 0, 0, 3, 8, 2, 1, 2, 0, 7, 1],
    ),
    ("valid-export-import", &[0, 1, 6, 0, 2, 0, 6, 1, 1, 0, 6, 2, 2, 0, 6, 3, 0, 0, 2, 0]),
    ("valid-drop", &[0, 1, 3, 0, 0, 1, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0]),
    (
        "valid-old-chain",
        &[
            0, 1, 2, 0, 0, 2, 1, 1, 2, 1, 0, 3, 2, 1, 1, 1, 2, 1, 0, 3, 2, 1, 1, 1, 2, 1, 0, 3, 2, 1, 1, 1, 2, 1, 0, 3,
            2, 1, 1, 1, 2, 1, 0, 3, 2, 1, 1, 1, 2, 1, 2, 0,
        ],
    ),
];

#[derive(Clone)]
struct InFlight {
    from_alice: bool,
    id: usize,
    bytes: Vec<u8>,
}

struct Side {
    device: Device,
    /// Our model of the device's receiving chains: sender ratchet keys, oldest first.
    chains: VecDeque<[u8; 32]>,
    seen: HashSet<[u8; 32]>,
}

struct World {
    sides: [Side; 2],
    /// The bytes as sent, by message id (a twice-modified copy may equal them again).
    originals: Vec<Vec<u8>>,
    rng: ChaCha20Rng,
    plaintexts: Vec<Vec<u8>>,
    delivered: Vec<bool>,
    in_flight: Vec<InFlight>,
    delivered_log: Vec<InFlight>,
    accepted: usize,
    restarts: usize,
}

fn peer_of(side: usize) -> &'static str {
    if side == 0 {
        "bob"
    } else {
        "alice"
    }
}

/// The sender's ratchet key: the 40-byte ratchet header sits right before the
/// ciphertext, whose length follows from the plaintext length.
fn ratchet_key(message: &[u8], plaintext_len: usize) -> Option<[u8; 32]> {
    let ct = (plaintext_len / PADDING_BLOCK + 1) * PADDING_BLOCK + 16;
    let start = message.len().checked_sub(ct + 40)?;
    message.get(start..start + 32)?.try_into().ok()
}

impl World {
    fn send(&mut self, side: usize, len: u8) {
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            return;
        }
        let id = self.plaintexts.len();
        let mut pt = format!("{}#{id}:", if side == 0 { 'A' } else { 'B' }).into_bytes();
        pt.extend(std::iter::repeat_n(len, usize::from(len)));
        let dev = &mut self.sides[side].device;
        let before = dev.state_digest();
        match crate::changes_checked(dev, "encrypt", |d| d.encrypt(peer_of(side), &pt)) {
            Ok(bytes) => {
                self.plaintexts.push(pt);
                self.delivered.push(false);
                self.originals.push(bytes.clone());
                self.in_flight.push(InFlight { from_alice: side == 0, id, bytes });
            }
            Err(e) => {
                // Only Bob, before he has any session, cannot send.
                assert!(side == 1 && matches!(e, gochat_e2ee::Error::NoSession), "encrypt failed: {e:?}");
                assert_eq!(before, dev.state_digest(), "failed encrypt changed the state");
            }
        }
    }

    fn deliver(&mut self, m: &InFlight, must_refuse_reason: Option<&str>) {
        let to = usize::from(m.from_alice);
        let from_name = peer_of(to);
        let pt = &self.plaintexts[m.id];
        let key = ratchet_key(&m.bytes, pt.len());
        let side = &mut self.sides[to];
        let result = decrypt_atomic(&mut side.device, from_name, &m.bytes, &mut self.rng);
        let reason = must_refuse_reason.or(if m.bytes != self.originals[m.id] {
            Some("a modified message")
        } else if self.delivered[m.id] {
            Some("a duplicate")
        } else {
            None
        });
        if let Some(reason) = reason {
            assert!(result.is_err(), "{reason} was accepted (message #{})", m.id);
            return;
        }
        let key = key.expect("sent messages have a ratchet header");
        let must_accept = !side.seen.contains(&key) || side.chains.contains(&key);
        match result {
            Ok(got) => {
                assert_eq!(&got, pt, "message #{} decrypted to something else", m.id);
                self.delivered[m.id] = true;
                self.accepted += 1;
                if side.seen.insert(key) {
                    side.chains.push_back(key);
                    while side.chains.len() > MAX_RECEIVER_CHAINS {
                        side.chains.pop_front();
                    }
                }
            }
            Err(e) => assert!(!must_accept, "message #{} on a live chain refused: {e:?}", m.id),
        }
        self.delivered_log.push(m.clone());
    }

    /// One side starts a new session with the other from the other's next bundle (same
    /// identity, so the event is `Same` or `New`, and the new session becomes current).
    fn restart(&mut self, sel: u8) {
        if self.restarts >= MAX_RESTARTS {
            return;
        }
        self.restarts += 1;
        let side = usize::from(sel & 1);
        let bundle = self.sides[1 - side].device.next_bundle().expect("next_bundle failed");
        let event = self.sides[side].device.initiate(peer_of(side), &bundle, &mut self.rng).expect("restart refused");
        // `New` when this side had not heard from the other yet (nothing pinned).
        assert!(
            matches!(event, gochat_e2ee::IdentityEvent::Same | gochat_e2ee::IdentityEvent::New),
            "a restart with the same identity reported {event:?}"
        );
    }

    fn export_import(&mut self, sel: u8) {
        let key = SnapshotKey::new(SNAPSHOT_KEY);
        let side = usize::from(sel & 1);
        let dev = &mut self.sides[side].device;
        // An import starts a new sender epoch (the digest changes by design); what must
        // survive is the identity and the set of peers.
        let before = (*dev.identity(), dev.peers().map(str::to_owned).collect::<Vec<_>>());
        if sel & 2 == 0 {
            let snap = dev.export(&key, &mut self.rng).expect("export");
            assert_eq!(snap.len(), dev.state_len() + gochat_e2ee::snapshot::OVERHEAD_BYTES, "state_len is exact");
            *dev = Device::import(&key, &snap).expect("import of an export failed");
        } else {
            match dev.export_session(peer_of(side), &key, &mut self.rng) {
                Ok(snap) => dev.import_session(peer_of(side), &key, &snap).expect("session re-import failed"),
                Err(e) => assert!(matches!(e, gochat_e2ee::Error::NoSession), "export_session failed: {e:?}"),
            }
        }
        let after = (*dev.identity(), dev.peers().map(str::to_owned).collect::<Vec<_>>());
        assert_eq!(before, after, "export + import changed the identity or the peers");
    }
}

/// `conversation`: see the module documentation. Returns `true` if at least one message
/// was accepted before the final checks.
pub fn conversation(data: &[u8]) -> bool {
    let f = fixtures::get();
    let side = |d: &Device| Side { device: d.fork_for_testing(), chains: VecDeque::new(), seen: HashSet::new() };
    let mut w = World {
        sides: [side(&f.conversation_alice), side(&f.conversation_bob)],
        originals: Vec::new(),
        rng: rng(0xC0DE),
        plaintexts: Vec::new(),
        delivered: Vec::new(),
        in_flight: Vec::new(),
        delivered_log: Vec::new(),
        accepted: 0,
        restarts: 0,
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
        match op % 9 {
            0 => w.send(0, arg()),
            1 => w.send(1, arg()),
            2 => {
                if let Some(i) = pick(w.in_flight.len(), arg()) {
                    let m = w.in_flight.remove(i);
                    w.deliver(&m, None);
                }
            }
            3 => {
                if let Some(i) = pick(w.in_flight.len(), arg()) {
                    w.in_flight.remove(i);
                }
            }
            4 => {
                if let Some(i) = pick(w.in_flight.len(), arg()) {
                    if w.in_flight.len() < MAX_IN_FLIGHT {
                        let m = w.in_flight[i].clone();
                        w.in_flight.push(m);
                    }
                }
            }
            5 => {
                let (i, hi, lo, x) = (arg(), arg(), arg(), arg());
                if let Some(i) = pick(w.in_flight.len(), i) {
                    if w.in_flight.len() < MAX_IN_FLIGHT {
                        let mut m = w.in_flight[i].clone();
                        let pos = usize::from(u16::from_be_bytes([hi, lo])) % m.bytes.len();
                        m.bytes[pos] ^= x | 1;
                        w.in_flight.push(m);
                    }
                }
            }
            6 => w.export_import(arg()),
            8 => w.restart(arg()),
            _ => {
                if let Some(i) = pick(w.delivered_log.len(), arg()) {
                    let m = w.delivered_log[i].clone();
                    w.deliver(&m, Some("a replayed message"));
                }
            }
        }
    }
    let accepted = w.accepted > 0;
    // Both sides can continue.
    for (round, from) in [0usize, 1, 0].into_iter().enumerate() {
        w.in_flight.clear();
        w.send(from, round as u8);
        let m = w.in_flight.pop().expect("final messages can be sent");
        w.deliver(&m, None);
        assert!(w.delivered[m.id], "final message {round} was not accepted");
    }
    accepted
}
