#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A model-based test: random interleavings of sends in both directions, deliveries of
//! any in-flight message, drops, reorders, duplicates, snapshot round trips of
//! either device, and new session starts by either side, checked against a small model
//! of what each receiver must accept.
//!
//! Invariant: every delivery either decrypts, exactly once, to exactly what was sent, or
//! is refused with the error the model predicts (`Duplicate` for a re-delivery while its
//! chain is held; `AuthenticationFailed` for a message whose receiving chain was dropped
//! as the oldest of more than `MAX_RECEIVER_CHAINS` and whose key was not stored as
//! skipped), leaving the receiver byte-for-byte unchanged. A message on a chain that is
//! certainly held, or on a new chain, must decrypt. At the end, every in-flight message
//! is delivered and a fresh exchange works both ways.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use common::*;
use gochat_e2ee::limits::{MAX_ARCHIVED_FORWARD_JUMP, MAX_DROPPED_CHAINS, MAX_RECEIVER_CHAINS, MAX_SKIPPED_KEYS};
use gochat_e2ee::{Device, ErrorCode};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rand_chacha::ChaCha20Rng;

#[derive(Debug, Clone)]
enum Event {
    Send { to_bob: bool, len: u8 },
    Deliver(usize),
    Drop(usize),
    Reorder,
    Duplicate(usize),
    Reload { bob: bool },
    Restart { by_bob: bool },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        5 => (any::<bool>(), any::<u8>()).prop_map(|(to_bob, len)| Event::Send { to_bob, len }),
        5 => any::<usize>().prop_map(Event::Deliver),
        1 => any::<usize>().prop_map(Event::Drop),
        1 => Just(Event::Reorder),
        1 => any::<usize>().prop_map(Event::Duplicate),
        1 => any::<bool>().prop_map(|bob| Event::Reload { bob }),
        1 => any::<bool>().prop_map(|by_bob| Event::Restart { by_bob }),
    ]
}

/// What a receiver holds, as far as acceptance is concerned.
#[derive(Debug, Clone, Default)]
struct Receiver {
    /// Ratchet keys in the order the receiver first accepted a message on them (each
    /// such acceptance added a receiving chain to one of its sessions).
    order: Vec<[u8; 32]>,
    /// Next expected counter on each accepted ratchet key.
    next: BTreeMap<[u8; 32], u32>,
    /// Stored skipped message keys.
    skipped: BTreeSet<([u8; 32], u32)>,
}

/// What a delivery may do: succeed (leaving the model in this state) and/or be refused
/// with one of these codes.
struct Expect {
    success: Option<Receiver>,
    refusals: Vec<ErrorCode>,
}

impl Receiver {
    /// Whether the receiving chain of `key` is certainly still held. With one session
    /// per side (`exact`) it is held exactly when fewer than `MAX_RECEIVER_CHAINS`
    /// chains were added after it; with several sessions the newer chains may belong to
    /// other sessions, so the chain may be held even when that many were added.
    fn held(&self, key: &[u8; 32]) -> bool {
        let i = self.order.iter().position(|k| k == key).unwrap();
        self.order.len() - 1 - i < MAX_RECEIVER_CHAINS
    }

    /// Whether the chain of `key` is held or still remembered as a dropped chain.
    fn remembered(&self, key: &[u8; 32]) -> bool {
        let i = self.order.iter().position(|k| k == key).unwrap();
        self.order.len() - 1 - i < MAX_RECEIVER_CHAINS + MAX_DROPPED_CHAINS
    }

    fn expect(&self, key: [u8; 32], counter: u32, exact: bool) -> Expect {
        use ErrorCode::{AuthenticationFailed, Duplicate, MessageLost, TooFarAhead};
        // With several sessions, the message may be tried on an archived one, whose
        // forward jump is bounded more tightly.
        let archived_too_far =
            |jump: u32| if !exact && jump > MAX_ARCHIVED_FORWARD_JUMP { vec![TooFarAhead] } else { vec![] };
        let mut next = self.clone();
        if next.skipped.remove(&(key, counter)) {
            return Expect { success: Some(next), refusals: vec![] };
        }
        let Some(&n) = self.next.get(&key) else {
            // A new ratchet key: a DH ratchet step.
            next.order.push(key);
            next.next.insert(key, counter + 1);
            next.skipped.extend((0..counter).map(|c| (key, c)));
            assert!(next.skipped.len() < MAX_SKIPPED_KEYS, "the model does not cover eviction");
            return Expect { success: Some(next), refusals: archived_too_far(counter) };
        };
        // A dropped chain is remembered (ratchet key, next counter) for a while: replays
        // on it are duplicates, later counters are lost. Beyond that record it cannot be
        // told apart from a forgery.
        let held = self.held(&key);
        let remembered = self.remembered(&key);
        if counter < n {
            let refusals = match (held || remembered, exact) {
                (true, _) => vec![Duplicate],
                (false, true) => vec![AuthenticationFailed],
                (false, false) => vec![Duplicate, AuthenticationFailed],
            };
            return Expect { success: None, refusals };
        }
        next.skipped.extend((n..counter).map(|c| (key, c)));
        next.next.insert(key, counter + 1);
        assert!(next.skipped.len() < MAX_SKIPPED_KEYS, "the model does not cover eviction");
        let gone = if remembered { MessageLost } else { AuthenticationFailed };
        match (held, exact) {
            (true, _) => Expect { success: Some(next), refusals: archived_too_far(counter - n) },
            (false, true) => Expect { success: None, refusals: vec![gone] },
            (false, false) => {
                let mut refusals = vec![MessageLost, AuthenticationFailed];
                refusals.extend(archived_too_far(counter - n));
                Expect { success: Some(next), refusals }
            }
        }
    }
}

struct Sent {
    to_bob: bool,
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
    decrypted: bool,
}

struct World {
    alice: Device,
    bob: Device,
    alice_model: Receiver,
    bob_model: Receiver,
    sent: Vec<Sent>,
    in_flight: Vec<usize>,
    rng: ChaCha20Rng,
    /// Whether either side has started another session (so there may be several).
    restarted: bool,
    stats: [usize; 3],
}

impl World {
    fn send(&mut self, to_bob: bool, len: usize) -> Option<usize> {
        let id = self.sent.len();
        let mut plaintext = format!("{} #{id} ", if to_bob { "a->b" } else { "b->a" }).into_bytes();
        plaintext.resize(plaintext.len() + len, b'.');
        let (sender, peer) = if to_bob { (&mut self.alice, "bob") } else { (&mut self.bob, "alice") };
        if sender.session_record(peer).is_none() {
            // Bob cannot send before Alice's first message has arrived.
            let before = sender.state_digest();
            assert_eq!(sender.encrypt(peer, &plaintext).unwrap_err().code(), ErrorCode::NoSession);
            assert_eq!(sender.state_digest(), before);
            return None;
        }
        let bytes = sender.encrypt(peer, &plaintext).unwrap();
        self.sent.push(Sent { to_bob, bytes, plaintext, decrypted: false });
        self.in_flight.push(id);
        Some(id)
    }

    fn deliver(&mut self, id: usize) {
        let sent = &self.sent[id];
        let (receiver, peer, model) = if sent.to_bob {
            (&mut self.bob, "alice", &mut self.bob_model)
        } else {
            (&mut self.alice, "bob", &mut self.alice_model)
        };
        let (key, counter) = header(&sent.bytes);
        let expect = model.expect(key, counter, !self.restarted);
        let before = (!expect.refusals.is_empty()).then(|| receiver.state_digest());
        match receiver.decrypt(peer, &sent.bytes, &mut self.rng) {
            Ok(got) => {
                let pt = got.plaintext;
                let next = expect.success.unwrap_or_else(|| panic!("message {id} decrypted, model expected refusal"));
                assert_eq!(pt, sent.plaintext, "message {id} decrypted to something else");
                assert!(!sent.decrypted, "message {id} decrypted twice");
                self.sent[id].decrypted = true;
                *model = next;
                self.stats[0] += 1;
            }
            Err(err) => {
                let code = err.code();
                assert!(
                    expect.refusals.contains(&code),
                    "message {id} refused ({err}), model expected {:?}",
                    expect.refusals
                );
                assert_eq!(Some(receiver.state_digest()), before, "message {id}: refusal changed state");
                if code == ErrorCode::Duplicate {
                    assert!(sent.decrypted, "message {id} refused as a duplicate but never decrypted");
                    self.stats[1] += 1;
                } else {
                    self.stats[2] += 1;
                }
            }
        }
    }

    fn apply(&mut self, e: &Event) {
        match *e {
            Event::Send { to_bob, len } => {
                self.send(to_bob, usize::from(len));
            }
            Event::Deliver(i) if !self.in_flight.is_empty() => {
                let id = self.in_flight.remove(i % self.in_flight.len());
                self.deliver(id);
            }
            Event::Drop(i) if !self.in_flight.is_empty() => {
                self.in_flight.remove(i % self.in_flight.len());
            }
            Event::Reorder => shuffle(&mut self.in_flight, &mut self.rng),
            Event::Duplicate(i) if !self.sent.is_empty() => self.in_flight.push(i % self.sent.len()),
            Event::Reload { bob } => {
                let d = if bob { &mut self.bob } else { &mut self.alice };
                *d = reload(d, &mut self.rng);
            }
            Event::Restart { by_bob } => {
                let (initiator, responder, peer) = if by_bob {
                    (&mut self.bob, &mut self.alice, "alice")
                } else {
                    (&mut self.alice, &mut self.bob, "bob")
                };
                let b = responder.next_bundle().unwrap();
                let _ = initiator.initiate(peer, &b, &mut self.rng).unwrap();
                self.restarted = true;
            }
            _ => {}
        }
    }

    fn finish(&mut self) {
        while !self.in_flight.is_empty() {
            let id = self.in_flight.remove(0);
            self.deliver(id);
        }
        // A fresh exchange works both ways (Alice first: Bob may have no session yet).
        for to_bob in [true, false, true, false] {
            let id = self.send(to_bob, 3).expect("can send");
            self.in_flight.clear();
            self.deliver(id);
            assert!(self.sent[id].decrypted);
        }
    }
}

/// Alice with a session started from Bob's bundle, and Bob: built once as snapshots, imported per case.
fn start() -> &'static (Vec<u8>, Vec<u8>) {
    static START: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    START.get_or_init(|| {
        let mut rng = rng(0x5eed);
        let mut alice = device("alice", 1, &mut rng);
        let mut bob = device("bob", 1, &mut rng);
        let b = bundle(&mut bob);
        let _ = alice.initiate("bob", &b, &mut rng).unwrap();
        let key = snapshot_key(0x11);
        (alice.export(&key, &mut rng).expect("export"), bob.export(&key, &mut rng).expect("export"))
    })
}

fn run(seed: u64, events: &[Event]) -> [usize; 3] {
    let (alice, bob) = start();
    let key = snapshot_key(0x11);
    let (alice, bob) = (Device::import(&key, alice).unwrap(), Device::import(&key, bob).unwrap());
    let mut w = World {
        alice,
        bob,
        alice_model: Receiver::default(),
        bob_model: Receiver::default(),
        sent: Vec::new(),
        in_flight: Vec::new(),
        rng: rng(seed),
        restarted: false,
        stats: [0; 3],
    };
    for e in events {
        w.apply(e);
    }
    w.finish();
    w.stats
}

proptest! {
    #![proptest_config(ProptestConfig {
        // 64 by default; set PROPTEST_CASES for a longer search.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
        rng_seed: RngSeed::Fixed(0x6f63_6861_7420),
        failure_persistence: None,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_interleavings_keep_both_sides_in_step(seed in any::<u64>(), events in prop::collection::vec(event(), 0..60)) {
        run(seed, &events);
    }
}

#[test]
fn model_exercises_duplicates_and_dropped_chains() {
    // A fixed schedule: heavy ping-pong with a message held back from the first chain,
    // and re-deliveries, so both refusal kinds the model predicts are observed.
    // Three on the first chain; the middle one is delivered, so the first stays a
    // stored skipped key and the third is held back until its chain is dropped (lost).
    let mut events = vec![
        Event::Send { to_bob: true, len: 0 },
        Event::Send { to_bob: true, len: 1 },
        Event::Send { to_bob: true, len: 1 },
    ];
    events.push(Event::Deliver(1));
    for _ in 0..MAX_RECEIVER_CHAINS + 1 {
        events.extend([Event::Send { to_bob: false, len: 2 }, Event::Deliver(2), Event::Send { to_bob: true, len: 3 }]);
        events.push(Event::Deliver(2));
    }
    let last = 3 + 2 * (MAX_RECEIVER_CHAINS + 1) - 1;
    events.extend([Event::Duplicate(1), Event::Duplicate(last), Event::Deliver(1), Event::Deliver(1)]);
    events.extend([Event::Deliver(0), Event::Deliver(0), Event::Deliver(0)]);
    let [ok, duplicate, dropped] = run(7, &events);
    assert!(ok > 10);
    assert!(duplicate >= 1, "{duplicate}");
    assert!(dropped >= 1, "{dropped}");
}
