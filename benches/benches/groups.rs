//! Groups (Sender Keys) and official channels: GoChat E2EE vs vodozemac Megolm, the
//! fan-out of a large group or channel over pairwise sessions, and the most expensive
//! hostile inputs.
//!
//! Run: `cargo bench -p gochat-e2ee-benches --bench groups -- --warm-up-time 1 --measurement-time 3`.
//! Groups are named `<operation>/<implementation>`. Sizes (bytes to upload, message
//! sizes) are printed to stdout when a fixture is built. The large fixtures (999 and
//! 10,000 pairwise sessions) are built once, lazily, only if a benchmark that needs
//! them is selected by the filter; each measured call runs on a fresh copy
//! (`fork_for_testing`) made outside the timing, and returns its state so that
//! dropping it is not timed either.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, OnceCell};
use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gochat_e2ee::channel::{verify_announcement, ChannelId, ChannelKind, ContentType, Publisher, Subscription};
use gochat_e2ee::group::{GroupChange, GroupId, GroupMember, RotationPolicy, MAX_FORWARD_JUMP};
use gochat_e2ee::Device;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use vodozemac::megolm::{GroupSession, InboundGroupSession, SessionConfig};

const NOW: u64 = 1_700_000_000;
const MSG: [u8; 100] = [0x61; 100];
/// Never rotate by count or age (so a long measurement loop never pays a fan-out).
const NEVER: RotationPolicy = RotationPolicy { max_messages: 0, max_age_secs: 0 };

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

// ---------------------------------------------------------------- fixtures

/// Starts a session from `a` to `b` (named `a_name` / `b_name` by the other) and
/// answers it, so `a` sends ratchet messages on a warm chain.
fn connect(a: &mut Device, a_name: &str, b: &mut Device, b_name: &str, r: &mut ChaCha20Rng) {
    let bundle = b.next_bundle().unwrap();
    let _ = a.initiate(b_name, &bundle, r).unwrap();
    let m = a.encrypt(b_name, b"hi").unwrap();
    let _ = b.decrypt(a_name, &m, r).unwrap();
    let m = b.encrypt(a_name, b"hi").unwrap();
    let _ = a.decrypt(b_name, &m, r).unwrap();
}

/// `hub` with a warm session to `n` fresh peer devices named `prefix0000`...; returns
/// the peers' names and identities (the peer devices are dropped, except the first,
/// which is returned).
fn hub(n: usize, prefix: &str, r: &mut ChaCha20Rng) -> (Device, Vec<GroupMember>, Device) {
    let t = Instant::now();
    let mut hub = Device::new("hub", NOW, r);
    let mut members = Vec::with_capacity(n);
    let mut first = None;
    for i in 0..n {
        let name = format!("{prefix}{i:05}");
        let mut peer = Device::new(&name, NOW, r);
        connect(&mut hub, "hub", &mut peer, &name, r);
        members.push(GroupMember { name, identity: *peer.identity(), admin: i == 0 });
        if i == 0 {
            first = Some(peer);
        }
    }
    eprintln!("[setup] {n} warm pairwise sessions in {:.1} s", t.elapsed().as_secs_f64());
    (hub, members, first.unwrap())
}

fn upload_bytes(change: &GroupChange) -> (usize, usize, usize) {
    let pairwise: usize = change.outgoing.iter().map(|o| o.message.len()).sum();
    let welcome = change.welcome.as_ref().map_or(0, Vec::len);
    let commit = change.commit.as_ref().map_or(0, Vec::len);
    (pairwise, welcome, commit)
}

/// Alice and Bob with a session, in a group Alice created (Bob has joined and holds
/// Alice's sender key). Alice never rotates by policy.
fn small_group(r: &mut ChaCha20Rng) -> (Device, Device, GroupId) {
    let mut alice = Device::new("alice", NOW, r);
    let mut bob = Device::new("bob", NOW, r);
    connect(&mut alice, "alice", &mut bob, "bob", r);
    let member = GroupMember { name: "bob".into(), identity: *bob.identity(), admin: false };
    let created = alice.group_create(&[member], NOW, r).unwrap();
    let gid = created.group_id;
    let _ = bob.group_join(created.welcome.as_ref().unwrap(), NOW, r).unwrap();
    for o in &created.outgoing {
        let _ = bob.group_receive("alice", &o.message, r).unwrap();
    }
    alice.group_set_rotation_policy(&gid, NEVER).unwrap();
    let m = alice.group_encrypt(&gid, b"warm up", NOW, r).unwrap();
    assert!(m.outgoing.is_empty());
    let _ = bob.group_decrypt("alice", &m.message).unwrap();
    (alice, bob, gid)
}

/// A Megolm outbound session and an inbound copy made from its session key.
fn megolm() -> (GroupSession, InboundGroupSession) {
    let out = GroupSession::new(SessionConfig::version_2());
    let inbound = InboundGroupSession::new(&out.session_key(), SessionConfig::version_2());
    (out, inbound)
}

// ---------------------------------------------------------------- 100-byte messages vs Megolm

fn messages(c: &mut Criterion) {
    let r = &mut rng(1);
    let (mut alice, _, gid) = small_group(r);
    let (mut mo, _) = megolm();

    let ours_len = alice.group_encrypt(&gid, &MSG, NOW, r).unwrap().message.len();
    let theirs_len = mo.encrypt(MSG).to_bytes().len();
    println!("group message for a 100-byte plaintext: ours {ours_len} B, Megolm v2 {theirs_len} B (binary)");

    let mut g = c.benchmark_group("group_encrypt_100B");
    g.bench_function("ours/device_2_members", |b| {
        b.iter(|| alice.group_encrypt(&gid, black_box(&MSG), NOW, r).unwrap().message)
    });
    g.bench_function("megolm/group_session_encrypt", |b| b.iter(|| mo.encrypt(black_box(MSG))));
    g.finish();

    // Both receivers are at the message's iteration: one chain step each.
    let mut g = c.benchmark_group("group_decrypt_100B");
    let r2 = &mut rng(2);
    // Re-sync Bob: the encrypt benchmark above advanced Alice's chain far ahead.
    let (mut alice, mut bob, gid) = small_group(r2);
    g.bench_function("ours/device_2_members", |b| {
        b.iter_batched(
            || alice.group_encrypt(&gid, &MSG, NOW, r2).unwrap().message,
            |m| bob.group_decrypt("alice", black_box(&m)).unwrap().plaintext,
            BatchSize::SmallInput,
        )
    });
    let (mut mo, mut mi2) = megolm();
    g.bench_function("megolm/inbound_group_session_decrypt", |b| {
        b.iter_batched(|| mo.encrypt(MSG), |m| mi2.decrypt(black_box(&m)).unwrap(), BatchSize::SmallInput)
    });
    g.finish();

    let mut g = c.benchmark_group("group_decrypt_after_skipping_1000");
    let (mut alice, bob, gid) = small_group(r);
    for _ in 0..1000 {
        let _ = alice.group_encrypt(&gid, &MSG, NOW, r).unwrap();
    }
    let last = alice.group_encrypt(&gid, &MSG, NOW, r).unwrap().message;
    g.bench_function("ours", |b| {
        b.iter_batched(
            || bob.fork_for_testing(),
            |mut d| (d.group_decrypt("alice", &last).unwrap().plaintext, d),
            BatchSize::SmallInput,
        )
    });
    let (mut mo, _) = megolm();
    let key = mo.session_key();
    for _ in 0..1000 {
        let _ = mo.encrypt(MSG);
    }
    let last = mo.encrypt(MSG);
    g.bench_function("megolm", |b| {
        b.iter_batched(
            || InboundGroupSession::new(&key, SessionConfig::version_2()),
            |mut s| (s.decrypt(&last).unwrap(), s),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

// ---------------------------------------------------------------- a group of 1,000 devices

struct Big {
    /// The creator, with 999 warm sessions, before `group_create`.
    hub: Device,
    members: Vec<GroupMember>,
    /// The creator after `group_create` (never rotates by policy).
    created: Device,
    gid: GroupId,
    /// A commit by the second admin removing the last member.
    commit: Vec<u8>,
    /// The second admin (a member holding the creator's sender key), before its commit.
    member: Device,
}

fn big_group() -> Big {
    let r = &mut rng(3);
    let (hub, members, mut admin2) = hub(999, "m", r);
    let mut created = hub.fork_for_testing();
    let change = created.group_create(&members, NOW, r).unwrap();
    assert!(change.withheld.is_empty());
    let (pairwise, welcome, _) = upload_bytes(&change);
    println!(
        "group_create, 1,000 members: {} pairwise messages, {pairwise} B + welcome {welcome} B = {} B to upload",
        change.outgoing.len(),
        pairwise + welcome
    );
    let gid = change.group_id;
    created.group_set_rotation_policy(&gid, NEVER).unwrap();
    let _ = admin2.group_join(change.welcome.as_ref().unwrap(), NOW, r).unwrap();
    let to_admin2 = change.outgoing.iter().find(|o| o.peer == members[0].name).unwrap();
    let _ = admin2.group_receive("hub", &to_admin2.message, r).unwrap();
    let last = members.last().unwrap().name.clone();
    let member = admin2.fork_for_testing();
    let removal = admin2.group_remove(&gid, std::slice::from_ref(&last), NOW, r).unwrap();
    let commit = removal.commit.unwrap();
    Big { hub, members, created, gid, commit, member }
}

fn large_group(c: &mut Criterion) {
    let big = OnceCell::new();
    let big = || big.get_or_init(big_group);
    let mut g = c.benchmark_group("group_1000_members");
    g.sample_size(10);
    let r = &mut rng(4);
    g.bench_function("create(welcome+999_distributions)", |b| {
        let f = big();
        b.iter_batched(
            || f.hub.fork_for_testing(),
            |mut d| (d.group_create(&f.members, NOW, r).unwrap(), d),
            BatchSize::PerIteration,
        )
    });
    let printed = Cell::new(false);
    g.bench_function("remove_one(own_commit+998_distributions)", |b| {
        let f = big();
        let last = [f.members.last().unwrap().name.clone()];
        b.iter_batched(
            || f.created.fork_for_testing(),
            |mut d| {
                let change = d.group_remove(&f.gid, &last, NOW, r).unwrap();
                if !printed.replace(true) {
                    let (pairwise, _, commit) = upload_bytes(&change);
                    println!(
                        "group_remove (admin), 1,000 -> 999 members: {} pairwise messages, {pairwise} B + commit {commit} B = {} B",
                        change.outgoing.len(),
                        pairwise + commit
                    );
                }
                (change, d)
            },
            BatchSize::PerIteration,
        )
    });
    let printed = Cell::new(false);
    g.bench_function("process_removal_commit(verify+998_distributions)", |b| {
        let f = big();
        b.iter_batched(
            || f.created.fork_for_testing(),
            |mut d| {
                let change = d.group_process_commit(&f.commit, NOW, r).unwrap();
                if !printed.replace(true) {
                    let (pairwise, _, _) = upload_bytes(&change);
                    println!(
                        "group_process_commit (member), removal: {} pairwise messages, {pairwise} B",
                        change.outgoing.len()
                    );
                }
                (change, d)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("group_encrypt_100B");
    g.bench_function("ours/device_1000_members", |b| {
        let f = big();
        let mut d = f.created.fork_for_testing();
        b.iter(|| d.group_encrypt(&f.gid, black_box(&MSG), NOW, r).unwrap().message)
    });
    g.finish();

    let mut g = c.benchmark_group("group_decrypt_100B");
    g.bench_function("ours/device_1000_members", |b| {
        let f = big();
        let mut sender = f.created.fork_for_testing();
        let mut d = f.member.fork_for_testing();
        b.iter_batched(
            || sender.group_encrypt(&f.gid, &MSG, NOW, r).unwrap().message,
            |m| d.group_decrypt("hub", black_box(&m)).unwrap().plaintext,
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

// ---------------------------------------------------------------- hostile group messages

fn hostile(c: &mut Criterion) {
    let mut g = c.benchmark_group("worst_case_hostile_group_message");
    g.sample_size(10);
    let r = &mut rng(5);
    let (mut alice, bob, gid) = small_group(r);
    let mut forged = alice.group_encrypt(&gid, &MSG, NOW, r).unwrap().message;
    *forged.last_mut().unwrap() ^= 1;
    let mut bob = bob;
    g.bench_function("forged_signature", |b| b.iter(|| bob.group_decrypt("alice", black_box(&forged)).unwrap_err()));
    // A member's own, validly signed message MAX_FORWARD_JUMP iterations ahead of
    // Bob's copy of its chain: the most chain steps a signed message can cost. It is
    // accepted (a member may send it); one with a bad AEAD tag costs the same steps
    // minus the store, but needs the member's signing key to forge.
    let t = Instant::now();
    let (mut alice, bob, gid) = small_group(r);
    for _ in 0..MAX_FORWARD_JUMP {
        let _ = alice.group_encrypt(&gid, &MSG, NOW, r).unwrap();
    }
    let jump = alice.group_encrypt(&gid, &MSG, NOW, r).unwrap().message;
    let beyond = {
        let mut a = alice.fork_for_testing();
        a.group_encrypt(&gid, &MSG, NOW, r).unwrap().message
    };
    eprintln!("[setup] {} signed group messages in {:.1} s", MAX_FORWARD_JUMP + 1, t.elapsed().as_secs_f64());
    g.bench_function("signed_jump_25000(accepted)", |b| {
        b.iter_batched(
            || bob.fork_for_testing(),
            |mut d| (d.group_decrypt("alice", black_box(&jump)).unwrap(), d),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("signed_jump_25001(refused_too_far_ahead)", |b| {
        b.iter_batched(
            || bob.fork_for_testing(),
            |mut d| (d.group_decrypt("alice", black_box(&beyond)).unwrap_err(), d),
            BatchSize::SmallInput,
        )
    });

    // The 1:1 worst case, in the same run (as in compare.rs, `1_sessions`): a new
    // ratchet key, counter MAX_FORWARD_JUMP, bad tag.
    let mut a1 = Device::new("alice", NOW, r);
    let mut b1 = Device::new("bob", NOW, r);
    let bundle = b1.next_bundle().unwrap();
    let _ = a1.initiate("bob", &bundle, r).unwrap();
    let m = a1.encrypt("bob", b"x").unwrap();
    let _ = b1.decrypt("alice", &m, r).unwrap();
    let mut forged = b1.encrypt("alice", b"y").unwrap();
    let fresh = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([9u8; 32]));
    forged[2..34].copy_from_slice(fresh.as_bytes());
    forged[38..42].copy_from_slice(&gochat_e2ee::limits::MAX_FORWARD_JUMP.to_be_bytes());
    g.bench_function("1to1_worst_case(same_run)", |bn| {
        bn.iter(|| b1.decrypt("alice", black_box(&forged), r).unwrap_err())
    });

    // A restricted channel post anyone can forge (no key needed): a held key id, an
    // iteration MAX_FORWARD_JUMP ahead, a bad tag. The chain is stepped before the
    // AEAD and the inner signature are checked.
    let mut p = Publisher::new(ChannelKind::Restricted, r);
    let mut s = Subscription::new(p.channel_id(), p.public_key(), ChannelKind::Restricted).unwrap();
    s.accept_key(&p.key_distribution().unwrap()).unwrap();
    let mut post = p.announce(ContentType::Text, &MSG, NOW).unwrap();
    post[38..42].copy_from_slice(&MAX_FORWARD_JUMP.to_be_bytes());
    g.bench_function("restricted_channel_post_jump_25000_bad_tag", |b| {
        b.iter(|| s.receive(black_box(&post), NOW).unwrap_err())
    });
    g.finish();
}

// ---------------------------------------------------------------- channels

fn channels(c: &mut Criterion) {
    let r = &mut rng(6);
    let mut g = c.benchmark_group("channel_announcement_100B");
    let mut public = Publisher::new(ChannelKind::Public, r);
    let key = public.public_key();
    let post = public.announce(ContentType::Text, &MSG, NOW).unwrap();
    println!("announcement for a 100-byte body: public {} B", post.len());
    g.bench_function("publisher_announce(sign)", |b| {
        b.iter(|| public.announce(ContentType::Text, black_box(&MSG), NOW).unwrap())
    });
    g.bench_function("verify_announcement", |b| b.iter(|| verify_announcement(black_box(&post), &key).unwrap()));
    let mut p = Publisher::new(ChannelKind::Public, r);
    let mut s = Subscription::new(p.channel_id(), p.public_key(), ChannelKind::Public).unwrap();
    g.bench_function("subscription_receive", |b| {
        b.iter_batched(
            || p.announce(ContentType::Text, &MSG, NOW).unwrap(),
            |m| s.receive(black_box(&m), NOW).unwrap(),
            BatchSize::SmallInput,
        )
    });
    // The same through the Device façade (the channel looked up by id, the state
    // budget checked), publisher and subscriber devices.
    let mut pd = Device::new("publisher", NOW, r);
    let id = pd.channel_create(ChannelKind::Public, r).unwrap();
    let mut sd = Device::new("subscriber", NOW, r);
    sd.channel_subscribe(id, pd.channel_public_key(&id).unwrap(), ChannelKind::Public).unwrap();
    g.bench_function("device_channel_announce(sign)", |b| {
        b.iter(|| pd.channel_announce(&id, ContentType::Text, black_box(&MSG), NOW).unwrap())
    });
    g.bench_function("device_channel_receive(verify)", |b| {
        b.iter_batched(
            || pd.channel_announce(&id, ContentType::Text, &MSG, NOW).unwrap(),
            |m| sd.channel_receive(black_box(&m), NOW).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let mut rp = Publisher::new(ChannelKind::Restricted, r);
    let mut rs = Subscription::new(rp.channel_id(), rp.public_key(), ChannelKind::Restricted).unwrap();
    rs.accept_key(&rp.key_distribution().unwrap()).unwrap();
    println!(
        "announcement for a 100-byte body: restricted {} B",
        rp.announce(ContentType::Text, &MSG, NOW).unwrap().len()
    );
    rs = Subscription::new(rp.channel_id(), rp.public_key(), ChannelKind::Restricted).unwrap();
    rs.accept_key(&rp.key_distribution().unwrap()).unwrap();
    g.bench_function("restricted_publisher_announce(sign+seal)", |b| {
        b.iter(|| rp.announce(ContentType::Text, black_box(&MSG), NOW).unwrap())
    });
    rs = Subscription::new(rp.channel_id(), rp.public_key(), ChannelKind::Restricted).unwrap();
    rs.accept_key(&rp.key_distribution().unwrap()).unwrap();
    g.bench_function("restricted_subscription_receive(open+verify)", |b| {
        b.iter_batched(
            || rp.announce(ContentType::Text, &MSG, NOW).unwrap(),
            |m| rs.receive(black_box(&m), NOW).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    // The primitive floor of a post: one Ed25519 signature / one strict verification
    // (with key decompression) over the signed bytes of a 100-byte announcement.
    let mut g = c.benchmark_group("channel_announcement_100B");
    {
        use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
        let sk = SigningKey::from_bytes(&[3u8; 32]);
        let data = [0x55u8; 35 + 155];
        let sig = sk.sign(&data);
        let vk = sk.verifying_key().to_bytes();
        g.bench_function("floor/ed25519_sign(expanded_key)", |b| b.iter(|| sk.sign(black_box(&data))));
        g.bench_function("floor/ed25519_sign(from_seed)", |b| {
            b.iter(|| SigningKey::from_bytes(black_box(&[3u8; 32])).sign(black_box(&data)))
        });
        g.bench_function("floor/ed25519_verify_strict(with_decompress)", |b| {
            b.iter(|| VerifyingKey::from_bytes(black_box(&vk)).unwrap().verify_strict(black_box(&data), &sig).unwrap())
        });
    }
    g.finish();
}

/// A restricted channel with 10,000 subscriber devices, each with a warm pairwise
/// session: a content-key rotation and its fan-out, through the Device façade
/// (`channel_rotate_content_key`: new content key, 0x33 distribution signed once, one
/// pairwise control message per subscriber).
fn channel_fan_out(c: &mut Criterion) {
    struct Fixture {
        hub: Device,
        names: Vec<String>,
        id: ChannelId,
    }
    let fixture = OnceCell::new();
    let fixture = || {
        fixture.get_or_init(|| {
            let r = &mut rng(7);
            let (mut hub, members, _) = hub(10_000, "s", r);
            let id = hub.channel_create(ChannelKind::Restricted, r).unwrap();
            Fixture { hub, names: members.into_iter().map(|m| m.name).collect(), id }
        })
    };
    let mut g = c.benchmark_group("channel_10000_subscribers");
    g.sample_size(10);
    let r = &mut rng(8);
    let printed = Cell::new(false);
    g.bench_function("device_rotate_content_key(10000_pairwise_distributions)", |b| {
        let f = fixture();
        b.iter_batched(
            || f.hub.fork_for_testing(),
            |mut d| {
                let rekey = d.channel_rotate_content_key(&f.id, &f.names, r).unwrap();
                if !printed.replace(true) {
                    assert!(rekey.withheld.is_empty());
                    let bytes: usize = rekey.outgoing.iter().map(|o| o.message.len()).sum();
                    println!(
                        "channel content-key rotation, 10,000 subscribers: {} pairwise messages, {bytes} B to upload",
                        rekey.outgoing.len()
                    );
                }
                (rekey, d)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, messages, channels, hostile, large_group, channel_fan_out);
criterion_main!(benches);
