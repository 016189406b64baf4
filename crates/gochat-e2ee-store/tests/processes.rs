//! Real processes on one SQLite store.
//!
//! - **Crash test**: Bob's device lives in a store in a child process that is killed
//!   with SIGKILL at random points of a long conversation, many times, and restarted
//!   from the store. Every message Alice sent is handled by Bob exactly once (an
//!   app-level log keyed by message number, with the inbox giving back a result whose
//!   handling a kill interrupted), every reply Bob wrote out decrypts at Alice exactly
//!   once, and the conversation continues. `GOCHAT_CRASH_LOOPS=N` runs N kills
//!   (default 20).
//! - **Two processes, one device**: two children open the same store at once (the app
//!   and its notification extension) and both encrypt to one peer: the peer decrypts
//!   every message, so no ratchet step was taken twice.
//!
//! The children are this test binary run again with `GOCHAT_STORE_WORKER` set: the
//! `worker` test below is then the child's whole work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use gochat_e2ee::{Device, PreKeyBundle};
use gochat_e2ee_store::{Argon2Params, Durability, PlatformKey, SqliteBackend, StoredDevice, Unlock};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const NOW: u64 = 1_700_000_000;
const PER_ROUND: usize = 8;

fn key() -> Unlock {
    Unlock::Key(PlatformKey::new([9; 32]))
}

fn open(path: &Path) -> StoredDevice {
    StoredDevice::open(Box::new(SqliteBackend::open(path, Durability::Normal).unwrap()), &key()).unwrap()
}

fn os_rng() -> ChaCha20Rng {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    ChaCha20Rng::seed_from_u64(t ^ u64::from(std::process::id()) << 32)
}

/// Writes `bytes` to `path` atomically (a reader sees all of it or nothing).
fn put_file(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn spawn(mode: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker", "--nocapture", "--test-threads=1"])
        .env("GOCHAT_STORE_WORKER", mode)
        .env("GOCHAT_STORE_DIR", dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The child's work (only when run as a worker).
#[test]
fn worker() {
    let Ok(mode) = std::env::var("GOCHAT_STORE_WORKER") else { return };
    let dir = PathBuf::from(std::env::var("GOCHAT_STORE_DIR").unwrap());
    let mut r = os_rng();
    let mut store = open(&dir.join("store.sqlite"));
    match mode.as_str() {
        // Bob: handle every message in `in/`, in order, exactly once, then write a reply.
        "bob" => {
            let log_path = dir.join("handled.log");
            let handled: BTreeSet<usize> =
                std::fs::read_to_string(&log_path).unwrap_or_default().lines().filter_map(|l| l.parse().ok()).collect();
            let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
            for n in 0.. {
                let Ok(message) = std::fs::read(dir.join(format!("in/{n}"))) else { break };
                if handled.contains(&n) {
                    // Handled before a kill; acknowledging again is harmless.
                    let _ = store.ack(&Device::message_digest(&message)).unwrap();
                    continue;
                }
                let got = store.decrypt("alice", &message, &mut r).unwrap();
                assert_eq!(got.decrypted.plaintext, format!("message {n}").into_bytes());
                writeln!(log, "{n}").unwrap();
                log.sync_all().unwrap();
                assert!(store.ack(&got.digest).unwrap() || got.redelivered);
                let reply = store.transact(&mut r, |d, _| d.encrypt("alice", format!("reply {n}").as_bytes())).unwrap();
                put_file(&dir.join(format!("out/{n}")), &reply);
            }
        }
        // One of two handles of Alice: 40 messages to Bob, each written out.
        other => {
            for i in 0..40 {
                let m = store.transact(&mut r, |d, _| d.encrypt("bob", format!("{other} {i}").as_bytes())).unwrap();
                put_file(&dir.join(format!("out/{other}-{i}")), &m);
            }
        }
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gochat-store-proc-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    dir
}

fn device(name: &str, r: &mut ChaCha20Rng) -> Device {
    let mut d = Device::new(name, NOW, r);
    d.account_mut().generate_one_time_prekeys(2, r).unwrap();
    d.account_mut().generate_pq_prekeys(2, NOW, r).unwrap();
    d
}

#[test]
fn a_device_killed_at_random_points_loses_and_repeats_nothing() {
    if std::env::var("GOCHAT_STORE_WORKER").is_ok() {
        return;
    }
    let loops: usize = std::env::var("GOCHAT_CRASH_LOOPS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = fresh_dir("crash");
    let mut r = ChaCha20Rng::seed_from_u64(0xC4A5);
    let backend = Box::new(SqliteBackend::open(dir.join("store.sqlite"), Durability::Normal).unwrap());
    let mut bob = StoredDevice::create(backend, &key(), Argon2Params::DEFAULT, device("bob", &mut r), &mut r).unwrap();
    let bundle = bob.transact(&mut r, |d, _| d.next_bundle()).unwrap();
    drop(bob);
    let mut alice = device("alice", &mut r);
    let _ = alice.initiate("bob", &PreKeyBundle::from_bytes(&bundle.to_bytes()).unwrap(), &mut r).unwrap();
    let (mut sent, mut replies, mut interrupted) = (0usize, BTreeSet::<usize>::new(), 0usize);
    let read_replies = |alice: &mut Device, r: &mut ChaCha20Rng, replies: &mut BTreeSet<usize>| {
        for e in std::fs::read_dir(dir.join("out")).unwrap() {
            let path = e.unwrap().path();
            let Some(n) = path.file_name().and_then(|f| f.to_str()).and_then(|f| f.parse::<usize>().ok()) else {
                continue;
            };
            if replies.insert(n) {
                let got = alice.decrypt("bob", &std::fs::read(&path).unwrap(), r);
                let got = got.unwrap_or_else(|e| panic!("reply {n} was refused: {e:?} (a message key used twice?)"));
                assert_eq!(got.plaintext, format!("reply {n}").into_bytes());
            }
        }
    };
    for _ in 0..loops {
        for _ in 0..PER_ROUND {
            let m = alice.encrypt("bob", format!("message {sent}").as_bytes()).unwrap();
            put_file(&dir.join(format!("in/{sent}")), &m);
            sent += 1;
        }
        let mut child = spawn("bob", &dir);
        std::thread::sleep(Duration::from_millis(5 + u64::from(r.next_u32() % 90)));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        let done = std::fs::read_to_string(dir.join("handled.log")).unwrap_or_default().lines().count();
        if !status.success() && done < sent {
            interrupted += 1;
        }
        read_replies(&mut alice, &mut r, &mut replies);
    }
    let before_last = std::fs::read_to_string(dir.join("handled.log")).unwrap_or_default().lines().count();
    eprintln!(
        "crash test: {loops} kills, {interrupted} with messages still unhandled, {sent} messages, {before_last} handled before the last run, {} replies",
        replies.len()
    );
    assert!(interrupted > 0 && before_last > 0, "no kill interrupted a working device: the test proves nothing");
    // A last run, not killed, finishes the backlog.
    assert!(spawn("bob", &dir).wait().unwrap().success(), "the restarted device failed");
    read_replies(&mut alice, &mut r, &mut replies);
    let log = std::fs::read_to_string(dir.join("handled.log")).unwrap();
    let handled: Vec<usize> = log.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(handled, (0..sent).collect::<Vec<_>>(), "each message handled exactly once, in order");
    assert!(!replies.is_empty());
    // The conversation continues: a new message, and Bob's newest reply decrypted above.
    let m = alice.encrypt("bob", format!("message {sent}").as_bytes()).unwrap();
    put_file(&dir.join(format!("in/{sent}")), &m);
    assert!(spawn("bob", &dir).wait().unwrap().success());
    read_replies(&mut alice, &mut r, &mut replies);
    assert!(replies.contains(&sent), "the continued conversation got its reply");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_processes_on_one_store_never_fork_a_session() {
    if std::env::var("GOCHAT_STORE_WORKER").is_ok() {
        return;
    }
    let dir = fresh_dir("two");
    let mut r = ChaCha20Rng::seed_from_u64(0x2F0C);
    let mut bob = device("bob", &mut r);
    let bundle = PreKeyBundle::from_bytes(&bob.next_bundle().unwrap().to_bytes()).unwrap();
    let backend = Box::new(SqliteBackend::open(dir.join("store.sqlite"), Durability::Normal).unwrap());
    let mut alice =
        StoredDevice::create(backend, &key(), Argon2Params::DEFAULT, device("alice", &mut r), &mut r).unwrap();
    let _ = alice.transact(&mut r, |d, r| d.initiate("bob", &bundle, r)).unwrap();
    drop(alice);
    let (mut a, mut b) = (spawn("app", &dir), spawn("extension", &dir));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let mut n = 0;
    for e in std::fs::read_dir(dir.join("out")).unwrap() {
        let path = e.unwrap().path();
        let got = bob.decrypt("alice", &std::fs::read(&path).unwrap(), &mut r);
        let got = got.unwrap_or_else(|e| panic!("{}: {e:?}: the two processes forked the session", path.display()));
        assert!(got.plaintext.starts_with(b"app ") || got.plaintext.starts_with(b"extension "));
        n += 1;
    }
    assert_eq!(n, 80);
    let _ = std::fs::remove_dir_all(&dir);
}
