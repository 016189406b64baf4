//! The SQLite [`Backend`] (bundled SQLite, WAL mode).
//!
//! ```sql
//! -- schema version 1: PRAGMA user_version = 1, PRAGMA application_id = 0x47434853 ("GCHS"),
//! -- and the meta row 'schema_version' = 00 00 00 01 (u32 big-endian)
//! CREATE TABLE meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);
//! CREATE TABLE records(key BLOB PRIMARY KEY, generation INTEGER NOT NULL, value BLOB) WITHOUT ROWID;
//! CREATE INDEX records_generation ON records(generation);
//! ```
//!
//! Opening a file: WAL journal mode (refused if SQLite will not enable it), the chosen
//! [`Durability`], `secure_delete` on (freed pages, such as an old keyslot after a passcode
//! change, are overwritten with zeros), a busy timeout of [`BUSY_TIMEOUT`], then the
//! migration, in one `BEGIN IMMEDIATE` transaction:
//! - a file with `user_version` 0 and no table is a new store: schema 1 is created;
//! - a file with `user_version` 0 and tables, or another `application_id`, is not a store
//!   ([`StoreError::Corrupt`]); so is one whose meta row disagrees with `user_version`;
//! - a `user_version` above [`SCHEMA_VERSION`] is refused with
//!   [`StoreError::UnsupportedSchema`] and the file is left untouched;
//! - a lower one is migrated one step at a time (`from 1 to 2`, `from 2 to 3`, ...), each
//!   step bumping both version records, all in the one transaction: a crash mid-migration
//!   leaves the old schema. To add schema 2: raise [`SCHEMA_VERSION`], add an arm
//!   `1 => migrate_v1_to_v2(&tx)?` in `migrate`, and keep the v1 arm creating v1 (a new
//!   file then runs 0 -> 1 -> 2, so every step is exercised by every new store).
//!
//! Two handles (threads or processes) on one file serialize their transactions through
//! SQLite's write lock: `begin` is `BEGIN IMMEDIATE`, which waits up to the busy timeout.
//! Readers outside a transaction never wait (WAL) and see the last commit.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::backend::{
    check_generation, check_meta_name, Backend, ChangedRow, Row, StoreError, BUSY_TIMEOUT, MAX_GENERATION,
    SCHEMA_VERSION, SCHEMA_VERSION_META,
};

/// `PRAGMA application_id` of a store file: "GCHS".
pub const APPLICATION_ID: i32 = 0x4743_4853;

/// How hard a commit is pushed to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL`: the WAL is synced at every commit, so a commit survives a
    /// power loss. The default.
    #[default]
    Full,
    /// `synchronous = NORMAL`: a commit survives an app crash or SIGKILL, but the last
    /// commits before a power loss may be lost (never corrupted: the store stays at an
    /// earlier consistent commit).
    Normal,
}

/// A store in one SQLite file; see the module documentation.
pub struct SqliteBackend {
    conn: Connection,
    in_tx: bool,
}

impl core::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SqliteBackend").field("in_transaction", &self.in_tx).finish_non_exhaustive()
    }
}

fn sql(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt(e.to_string()),
        Some(
            ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied,
        ) => StoreError::Io(e.to_string()),
        _ => StoreError::Sqlite(e.to_string()),
    }
}

fn key_of(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("a record key of {} bytes", bytes.len())))
}

fn create_v1(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);
         CREATE TABLE records(key BLOB PRIMARY KEY, generation INTEGER NOT NULL, value BLOB) WITHOUT ROWID;
         CREATE INDEX records_generation ON records(generation);",
    )
    .map_err(sql)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(sql)
}

/// Brings the file to [`SCHEMA_VERSION`] (see the module documentation).
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql)?;
    let app_id: i64 = tx.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(sql)?;
    let found = u32::try_from(found).map_err(|_| StoreError::Corrupt(format!("user_version {found}")))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::UnsupportedSchema(found));
    }
    if found == 0 {
        let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).map_err(sql)?;
        if tables != 0 || app_id != 0 {
            return Err(StoreError::Corrupt("not a GoChat store (tables without a schema version)".into()));
        }
    } else if app_id != i64::from(APPLICATION_ID) {
        return Err(StoreError::Corrupt(format!("not a GoChat store (application_id {app_id:#x})")));
    }
    let mut version = found;
    while version < SCHEMA_VERSION {
        match version {
            0 => create_v1(&tx)?,
            // 1 => migrate_v1_to_v2(&tx)?,
            other => return Err(StoreError::Corrupt(format!("no migration from schema {other}"))),
        }
        version += 1;
        tx.pragma_update(None, "user_version", version).map_err(sql)?;
        tx.execute(
            "INSERT INTO meta(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![SCHEMA_VERSION_META, version.to_be_bytes().to_vec()],
        )
        .map_err(sql)?;
    }
    let recorded: Option<Vec<u8>> = tx
        .query_row("SELECT value FROM meta WHERE name = ?1", [SCHEMA_VERSION_META], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    if recorded.as_deref() != Some(&SCHEMA_VERSION.to_be_bytes()[..]) {
        return Err(StoreError::Corrupt("the meta schema_version disagrees with user_version".into()));
    }
    tx.commit().map_err(sql)
}

impl SqliteBackend {
    /// Opens (creating if absent) the store at `path` with `durability`, in WAL mode,
    /// migrating it to [`SCHEMA_VERSION`]; refuses a newer schema
    /// ([`StoreError::UnsupportedSchema`]) and a file that is not a store
    /// ([`StoreError::Corrupt`]).
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Sqlite(format!("WAL journal mode refused (journal_mode = {mode})")));
        }
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous).map_err(sql)?;
        conn.pragma_update(None, "secure_delete", "ON").map_err(sql)?;
        migrate(&mut conn)?;
        Ok(SqliteBackend { conn, in_tx: false })
    }

    /// How long [`Backend::begin`] waits for another handle's transaction (default
    /// [`BUSY_TIMEOUT`]).
    pub fn set_busy_timeout(&mut self, timeout: Duration) -> Result<(), StoreError> {
        self.conn.busy_timeout(timeout).map_err(sql)
    }

    fn require_tx(&self) -> Result<(), StoreError> {
        if self.in_tx {
            Ok(())
        } else {
            Err(StoreError::NotInTransaction)
        }
    }

    /// After a failed COMMIT or ROLLBACK: SQLite may have ended the transaction itself.
    fn sync_tx_flag(&mut self) {
        if self.conn.is_autocommit() {
            self.in_tx = false;
        }
    }
}

impl Drop for SqliteBackend {
    fn drop(&mut self) {
        if self.in_tx {
            // Closing the connection rolls back too; this makes it explicit.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl Backend for SqliteBackend {
    fn begin(&mut self) -> Result<(), StoreError> {
        if self.in_tx {
            return Err(StoreError::AlreadyInTransaction);
        }
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
        self.in_tx = true;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.require_tx()?;
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                self.in_tx = false;
                Ok(())
            }
            Err(e) => {
                self.sync_tx_flag();
                Err(sql(e))
            }
        }
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        self.require_tx()?;
        let r = self.conn.execute_batch("ROLLBACK");
        self.sync_tx_flag();
        r.map_err(sql)
    }

    fn get_meta(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT value FROM meta WHERE name = ?1").map_err(sql)?;
        st.query_row([name], |r| r.get(0)).optional().map_err(sql)
    }

    fn put_meta(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        check_meta_name(name)?;
        self.require_tx()?;
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO meta(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            )
            .map_err(sql)?;
        st.execute(params![name, value]).map(|_| ()).map_err(sql)
    }

    fn get(&mut self, key_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT value FROM records WHERE key = ?1").map_err(sql)?;
        let row: Option<Option<Vec<u8>>> = st.query_row([&key_hash[..]], |r| r.get(0)).optional().map_err(sql)?;
        Ok(row.flatten())
    }

    fn put(&mut self, key_hash: &[u8; 32], value: Option<&[u8]>, generation: u64) -> Result<(), StoreError> {
        check_generation(generation)?;
        self.require_tx()?;
        let generation = i64::try_from(generation).map_err(|_| StoreError::GenerationOutOfRange(generation))?;
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO records(key, generation, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET generation = excluded.generation, value = excluded.value",
            )
            .map_err(sql)?;
        st.execute(params![&key_hash[..], generation, value]).map(|_| ()).map_err(sql)
    }

    fn changed_since(&mut self, generation: u64) -> Result<Vec<ChangedRow>, StoreError> {
        if generation >= MAX_GENERATION {
            return Ok(Vec::new());
        }
        let generation = i64::try_from(generation).map_err(|_| StoreError::GenerationOutOfRange(generation))?;
        let mut st = self
            .conn
            .prepare_cached("SELECT key, value FROM records WHERE generation > ?1 ORDER BY generation, key")
            .map_err(sql)?;
        let rows = st
            .query_map([generation], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Option<Vec<u8>>>(1)?)))
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (k, v) = row.map_err(sql)?;
            out.push((key_of(k)?, v));
        }
        Ok(out)
    }

    fn all(&mut self) -> Result<Vec<Row>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT key, value FROM records WHERE value IS NOT NULL ORDER BY key")
            .map_err(sql)?;
        let rows = st.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))).map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (k, v) = row.map_err(sql)?;
            out.push((key_of(k)?, v));
        }
        Ok(out)
    }
}
