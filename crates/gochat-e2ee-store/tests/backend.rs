//! The two backends against one suite (same transaction semantics), then what is SQLite's
//! alone: WAL mode, the schema version, two handles on one file in two threads.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use gochat_e2ee_store::backend::{MAX_GENERATION, SCHEMA_VERSION, SCHEMA_VERSION_META};
use gochat_e2ee_store::{Backend, Durability, MemoryBackend, SqliteBackend, StoreError};

fn k(b: u8) -> [u8; 32] {
    [b; 32]
}

/// A backend's name, two handles on one fresh store, and the directory to keep alive.
type Pair = (&'static str, Box<dyn Backend>, Box<dyn Backend>, Option<tempfile::TempDir>);

/// A fresh store of each kind, with a second handle on the same store.
fn stores() -> Vec<Pair> {
    let mem = MemoryBackend::new();
    let other = mem.shared();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let a = SqliteBackend::open(&path, Durability::Full).unwrap();
    let b = SqliteBackend::open(&path, Durability::Normal).unwrap();
    vec![("memory", Box::new(mem), Box::new(other), None), ("sqlite", Box::new(a), Box::new(b), Some(dir))]
}

#[test]
fn writes_outside_a_transaction_are_refused() {
    for (name, mut s, _, _dir) in stores() {
        assert_eq!(s.put(&k(1), Some(b"v"), 1).unwrap_err(), StoreError::NotInTransaction, "{name}");
        assert_eq!(s.put_meta("m", b"v").unwrap_err(), StoreError::NotInTransaction, "{name}");
        assert_eq!(s.commit().unwrap_err(), StoreError::NotInTransaction, "{name}");
        assert_eq!(s.rollback().unwrap_err(), StoreError::NotInTransaction, "{name}");
        s.begin().unwrap();
        assert_eq!(s.begin().unwrap_err(), StoreError::AlreadyInTransaction, "{name}");
        s.rollback().unwrap();
    }
}

#[test]
fn commit_makes_writes_visible_to_the_other_handle() {
    for (name, mut a, mut b, _dir) in stores() {
        a.begin().unwrap();
        a.put(&k(1), Some(b"one"), 1).unwrap();
        a.put_meta("store_id", b"id").unwrap();
        // Inside: its own writes are visible to it, not yet to the other handle.
        assert_eq!(a.get(&k(1)).unwrap().as_deref(), Some(&b"one"[..]), "{name}");
        assert_eq!(a.get_meta("store_id").unwrap().as_deref(), Some(&b"id"[..]), "{name}");
        assert_eq!(b.get(&k(1)).unwrap(), None, "{name}");
        assert_eq!(b.get_meta("store_id").unwrap(), None, "{name}");
        a.commit().unwrap();
        assert_eq!(b.get(&k(1)).unwrap().as_deref(), Some(&b"one"[..]), "{name}");
        assert_eq!(b.get_meta("store_id").unwrap().as_deref(), Some(&b"id"[..]), "{name}");
    }
}

#[test]
fn rollback_discards_every_write() {
    for (name, mut a, mut b, _dir) in stores() {
        a.begin().unwrap();
        a.put(&k(1), Some(b"kept"), 1).unwrap();
        a.put_meta("m", b"kept").unwrap();
        a.commit().unwrap();
        a.begin().unwrap();
        a.put(&k(1), Some(b"discarded"), 2).unwrap();
        a.put(&k(2), Some(b"discarded"), 2).unwrap();
        a.put_meta("m", b"discarded").unwrap();
        a.put_meta("n", b"discarded").unwrap();
        a.rollback().unwrap();
        for s in [&mut a, &mut b] {
            assert_eq!(s.get(&k(1)).unwrap().as_deref(), Some(&b"kept"[..]), "{name}");
            assert_eq!(s.get(&k(2)).unwrap(), None, "{name}");
            assert_eq!(s.get_meta("m").unwrap().as_deref(), Some(&b"kept"[..]), "{name}");
            assert_eq!(s.get_meta("n").unwrap(), None, "{name}");
            assert_eq!(s.changed_since(1).unwrap(), vec![], "{name}");
        }
    }
}

#[test]
fn dropping_a_handle_mid_transaction_rolls_back_and_releases_the_lock() {
    for (name, mut a, mut b, _dir) in stores() {
        a.begin().unwrap();
        a.put(&k(1), Some(b"lost"), 1).unwrap();
        drop(a);
        b.begin().unwrap();
        assert_eq!(b.get(&k(1)).unwrap(), None, "{name}");
        b.commit().unwrap();
    }
}

#[test]
fn generations_changed_since_and_tombstones() {
    for (name, mut a, mut b, _dir) in stores() {
        a.begin().unwrap();
        a.put(&k(3), Some(b"c1"), 1).unwrap();
        a.put(&k(1), Some(b"a1"), 1).unwrap();
        a.put(&k(2), Some(b"b1"), 1).unwrap();
        a.commit().unwrap();
        a.begin().unwrap();
        a.put(&k(2), None, 2).unwrap(); // deleted
        a.put(&k(4), Some(b"d2"), 2).unwrap();
        a.commit().unwrap();
        a.begin().unwrap();
        a.put(&k(1), Some(b"a3"), 3).unwrap();
        a.commit().unwrap();

        for s in [&mut a, &mut b] {
            assert_eq!(s.get(&k(2)).unwrap(), None, "{name}: a tombstone reads as absent");
            assert_eq!(
                s.changed_since(0).unwrap(),
                vec![
                    (k(3), Some(b"c1".to_vec())),
                    (k(2), None),
                    (k(4), Some(b"d2".to_vec())),
                    (k(1), Some(b"a3".to_vec())),
                ],
                "{name}: ordered by generation, then key"
            );
            assert_eq!(
                s.changed_since(1).unwrap(),
                vec![(k(2), None), (k(4), Some(b"d2".to_vec())), (k(1), Some(b"a3".to_vec()))]
            );
            assert_eq!(s.changed_since(3).unwrap(), vec![], "{name}");
            assert_eq!(s.changed_since(u64::MAX).unwrap(), vec![], "{name}");
            assert_eq!(
                s.all().unwrap(),
                vec![(k(1), b"a3".to_vec()), (k(3), b"c1".to_vec()), (k(4), b"d2".to_vec())],
                "{name}: live rows by key"
            );
        }
        // Inside a transaction, the staged rows take part too.
        a.begin().unwrap();
        a.put(&k(3), None, 4).unwrap();
        a.put(&k(2), Some(b"b4"), 4).unwrap();
        assert_eq!(a.changed_since(3).unwrap(), vec![(k(2), Some(b"b4".to_vec())), (k(3), None)], "{name}");
        assert_eq!(
            a.all().unwrap(),
            vec![(k(1), b"a3".to_vec()), (k(2), b"b4".to_vec()), (k(4), b"d2".to_vec())],
            "{name}"
        );
        a.rollback().unwrap();
    }
}

#[test]
fn bounds_and_reserved_names_are_refused() {
    for (name, mut s, _, _dir) in stores() {
        s.begin().unwrap();
        s.put(&k(1), Some(b""), MAX_GENERATION).unwrap();
        assert_eq!(
            s.put(&k(1), Some(b"v"), MAX_GENERATION + 1).unwrap_err(),
            StoreError::GenerationOutOfRange(MAX_GENERATION + 1),
            "{name}"
        );
        assert_eq!(
            s.put_meta(SCHEMA_VERSION_META, b"\0\0\0\x09").unwrap_err(),
            StoreError::ReservedName(SCHEMA_VERSION_META.into()),
            "{name}"
        );
        s.commit().unwrap();
        assert_eq!(s.get(&k(1)).unwrap().as_deref(), Some(&b""[..]), "{name}: an empty value is not a tombstone");
        assert_eq!(s.get_meta(SCHEMA_VERSION_META).unwrap(), Some(SCHEMA_VERSION.to_be_bytes().to_vec()), "{name}");
    }
}

/// Handle A holds a transaction for `HOLD`; handle B's `begin` (on another thread) waits
/// for A's commit, then sees A's write.
fn serializes(mut a: Box<dyn Backend>, mut b: Box<dyn Backend>, name: &str) {
    const HOLD: Duration = Duration::from_millis(300);
    let barrier = Arc::new(Barrier::new(2));
    let gate = Arc::clone(&barrier);
    let holder = std::thread::spawn(move || {
        a.begin().unwrap();
        a.put(&k(9), Some(b"first"), 1).unwrap();
        gate.wait();
        std::thread::sleep(HOLD);
        a.commit().unwrap();
        Instant::now()
    });
    barrier.wait();
    let start = Instant::now();
    b.begin().unwrap();
    let waited = start.elapsed();
    let committed_at = holder.join().unwrap();
    assert!(Instant::now() >= committed_at);
    assert!(waited >= HOLD - Duration::from_millis(50), "{name}: begin returned after {waited:?}");
    assert_eq!(b.get(&k(9)).unwrap().as_deref(), Some(&b"first"[..]), "{name}");
    b.put(&k(9), Some(b"second"), 2).unwrap();
    b.commit().unwrap();
}

#[test]
fn two_handles_on_two_threads_serialize_their_transactions() {
    for (name, a, b, _dir) in stores() {
        serializes(a, b, name);
    }
}

#[test]
fn begin_times_out_as_busy() {
    let mem = MemoryBackend::new();
    let mut other = mem.shared();
    other.set_busy_timeout(Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let sql = SqliteBackend::open(&path, Durability::Full).unwrap();
    let mut sql_other = SqliteBackend::open(&path, Durability::Full).unwrap();
    sql_other.set_busy_timeout(Duration::from_millis(50)).unwrap();
    let pairs: Vec<(Box<dyn Backend>, Box<dyn Backend>)> =
        vec![(Box::new(mem), Box::new(other)), (Box::new(sql), Box::new(sql_other))];
    for (mut a, mut b) in pairs {
        a.begin().unwrap();
        let start = Instant::now();
        assert_eq!(b.begin().unwrap_err(), StoreError::Busy);
        assert!(start.elapsed() >= Duration::from_millis(40));
        // A reader outside a transaction is never blocked.
        assert_eq!(b.get(&k(1)).unwrap(), None);
        a.commit().unwrap();
        b.begin().unwrap();
        b.commit().unwrap();
    }
}

// ---------------------------------------------------------------------------------
// SQLite alone.

#[test]
fn sqlite_file_is_in_wal_mode_with_schema_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut s = SqliteBackend::open(&path, Durability::Full).unwrap();
    s.begin().unwrap();
    s.put(&k(1), Some(b"v"), 1).unwrap();
    s.commit().unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = raw.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 1);
    let app: i64 = raw.query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap();
    assert_eq!(app, 0x4743_4853);
    let meta: Vec<u8> =
        raw.query_row("SELECT value FROM meta WHERE name = 'schema_version'", [], |r| r.get(0)).unwrap();
    assert_eq!(meta, vec![0, 0, 0, 1]);
    let sql: String = raw.query_row("SELECT sql FROM sqlite_master WHERE name = 'records'", [], |r| r.get(0)).unwrap();
    assert!(sql.contains("WITHOUT ROWID"), "{sql}");
    let index: i64 = raw
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'records_generation'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(index, 1);
    // Reopening an existing store keeps its rows.
    drop(s);
    let mut again = SqliteBackend::open(&path, Durability::Normal).unwrap();
    assert_eq!(again.get(&k(1)).unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn sqlite_refuses_a_newer_schema_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteBackend::open(&path, Durability::Full).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 2).unwrap();
    drop(raw);
    assert_eq!(SqliteBackend::open(&path, Durability::Full).unwrap_err(), StoreError::UnsupportedSchema(2));
    let raw = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = raw.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 2);
}

#[test]
fn sqlite_refuses_files_that_are_not_stores() {
    let dir = tempfile::tempdir().unwrap();
    // Someone else's database.
    let path = dir.path().join("other.db");
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("CREATE TABLE t(x)").unwrap();
    drop(raw);
    assert!(matches!(SqliteBackend::open(&path, Durability::Full).unwrap_err(), StoreError::Corrupt(_)));
    // A store whose meta row contradicts user_version.
    let path = dir.path().join("store.db");
    drop(SqliteBackend::open(&path, Durability::Full).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("UPDATE meta SET value = x'00000002' WHERE name = 'schema_version'", []).unwrap();
    drop(raw);
    assert!(matches!(SqliteBackend::open(&path, Durability::Full).unwrap_err(), StoreError::Corrupt(_)));
    // Not a database at all.
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, [0x5Au8; 4096]).unwrap();
    assert!(matches!(SqliteBackend::open(&path, Durability::Full).unwrap_err(), StoreError::Corrupt(_)));
}

#[test]
fn sqlite_reports_an_unopenable_path_as_io() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-directory").join("store.db");
    assert!(matches!(SqliteBackend::open(&path, Durability::Full).unwrap_err(), StoreError::Io(_)));
}
