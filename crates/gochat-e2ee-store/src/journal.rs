//! A [`Backend`] for hosts whose storage is asynchronous (IndexedDB in the browser): no
//! I/O of its own, and no SQLite, so it compiles for wasm32.
//!
//! The synchronous stored device cannot await an IndexedDB request, so the host does the
//! I/O around each operation and this backend sits in between:
//! - **reads** are served from the rows the host fed in: every row at open
//!   ([`JournalBackend::load`]), then, before each operation, the rows another handle
//!   committed since this one last synced ([`JournalBackend::feed_meta`],
//!   [`JournalBackend::feed_record`]; records with a generation above
//!   [`JournalBackend::synced_generation`], found through an index on generation);
//! - **writes** are staged in the open transaction; [`Backend::commit`] moves them into
//!   the journal (and the backend's view), [`Backend::rollback`] drops them, and the host
//!   drains the journal ([`JournalBackend::take_journal`]) and writes it, together with
//!   the operation's other effects, in one host transaction.
//!
//! So a commit here is **not yet durable**: the host must write the drained journal
//! durably before it releases the operation's result ("persist before send"). If the host
//! write fails, the handle's view is ahead of the disk: the host discards the handle
//! ([`JournalBackend::poison`] makes every later call fail with [`StoreError::Corrupt`]
//! until then) and loads a new one from the store.
//!
//! Mutual exclusion between handles (tabs, workers) is the host's: it must hold the
//! store's cross-context lock (Web Locks) from the feed before an operation to the end of
//! the host write after it. [`Backend::begin`] therefore never waits, and refuses only a
//! nested transaction.
//!
//! Clones made with [`JournalBackend::handle`] share one state: the stored device owns
//! one (boxed as its backend), the host keeps the other to feed rows and drain the
//! journal.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::{
    check_generation, check_meta_name, Backend, ChangedRow, Row, StoreError, SCHEMA_VERSION, SCHEMA_VERSION_META,
};

/// The most rows one journal may hold before the host drains it (a runaway loop of
/// commits without a drain is refused with [`StoreError::Busy`] rather than growing
/// without bound).
pub const MAX_JOURNAL_ROWS: usize = 1 << 20;

type Rows = BTreeMap<[u8; 32], (u64, Option<Vec<u8>>)>;

/// The writes of one or more committed transactions, in the form the host stores them:
/// meta rows by name, and record rows (key hash, generation, value or `None` for a
/// tombstone). Later writes of the same name or key replace earlier ones.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Journal {
    /// Meta rows to write (name, value).
    pub meta: BTreeMap<String, Vec<u8>>,
    /// Record rows to write: key hash -> (generation, value; `None` = tombstone).
    pub records: BTreeMap<[u8; 32], (u64, Option<Vec<u8>>)>,
}

impl Journal {
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty() && self.records.is_empty()
    }

    fn rows(&self) -> usize {
        self.meta.len().saturating_add(self.records.len())
    }

    fn extend(&mut self, other: Journal) {
        self.meta.extend(other.meta);
        self.records.extend(other.records);
    }
}

impl core::fmt::Debug for Journal {
    // Values are sealed records and keyslots; sizes are all a log needs.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Journal").field("meta", &self.meta.len()).field("records", &self.records.len()).finish()
    }
}

#[derive(Default)]
struct State {
    meta: BTreeMap<String, Vec<u8>>,
    records: Rows,
    synced: u64,
    tx: Option<Journal>,
    journal: Journal,
    poisoned: bool,
}

impl State {
    fn usable(&self) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::Corrupt("the host failed to write this handle's journal; reload the store".into()));
        }
        Ok(())
    }

    fn staged(&mut self) -> Result<&mut Journal, StoreError> {
        self.usable()?;
        self.tx.as_mut().ok_or(StoreError::NotInTransaction)
    }

    fn not_in_tx(&self) -> Result<(), StoreError> {
        self.usable()?;
        if self.tx.is_some() {
            return Err(StoreError::AlreadyInTransaction);
        }
        Ok(())
    }

    fn merged(&self) -> Rows {
        let mut merged = self.records.clone();
        if let Some(t) = &self.tx {
            merged.extend(t.records.iter().map(|(k, v)| (*k, v.clone())));
        }
        merged
    }
}

/// A journaling backend over rows the host feeds in; see the module documentation.
pub struct JournalBackend {
    state: Arc<Mutex<State>>,
}

impl core::fmt::Debug for JournalBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.lock();
        f.debug_struct("JournalBackend")
            .field("in_transaction", &s.tx.is_some())
            .field("synced_generation", &s.synced)
            .field("journal", &s.journal)
            .finish_non_exhaustive()
    }
}

impl JournalBackend {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation under the mutex is a few map operations that cannot panic
        // halfway in a way that matters: a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A handle on an empty new store (schema version [`SCHEMA_VERSION`]); the host must
    /// also write the schema version when it creates the database (IndexedDB: in
    /// `upgradeneeded`, as the meta row [`SCHEMA_VERSION_META`] and the database version).
    pub fn new() -> Self {
        let mut state = State::default();
        state.meta.insert(SCHEMA_VERSION_META.to_owned(), SCHEMA_VERSION.to_be_bytes().to_vec());
        JournalBackend { state: Arc::new(Mutex::new(state)) }
    }

    /// A handle on the committed rows of an existing store: every meta row and every
    /// record row (tombstones included or not; a tombstone is a row whose value is
    /// `None`). Refuses a store without the schema version meta row, or one whose value is
    /// not 4 bytes ([`StoreError::Corrupt`]), and a newer schema
    /// ([`StoreError::UnsupportedSchema`]); an over-range generation is
    /// [`StoreError::GenerationOutOfRange`].
    pub fn load(
        meta: impl IntoIterator<Item = (String, Vec<u8>)>,
        records: impl IntoIterator<Item = ([u8; 32], u64, Option<Vec<u8>>)>,
    ) -> Result<Self, StoreError> {
        let meta: BTreeMap<String, Vec<u8>> = meta.into_iter().collect();
        let version =
            meta.get(SCHEMA_VERSION_META).ok_or_else(|| StoreError::Corrupt("no schema_version meta row".into()))?;
        let version = <[u8; 4]>::try_from(version.as_slice())
            .map(u32::from_be_bytes)
            .map_err(|_| StoreError::Corrupt(format!("a schema_version of {} bytes", version.len())))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::UnsupportedSchema(version));
        }
        if version != SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!("schema_version {version}")));
        }
        let mut state = State { meta, ..State::default() };
        for (key, generation, value) in records {
            check_generation(generation)?;
            state.synced = state.synced.max(generation);
            state.records.insert(key, (generation, value));
        }
        Ok(JournalBackend { state: Arc::new(Mutex::new(state)) })
    }

    /// Another handle on the same state (for the host, while the stored device owns this
    /// one as its backend).
    pub fn handle(&self) -> JournalBackend {
        JournalBackend { state: Arc::clone(&self.state) }
    }

    /// The highest record generation this handle has seen (fed or committed): the host
    /// feeds the records whose generation is greater before the next operation.
    pub fn synced_generation(&self) -> u64 {
        self.lock().synced
    }

    /// Applies a meta row another handle committed (between operations only: in a
    /// transaction it is [`StoreError::AlreadyInTransaction`]; the schema version row is
    /// refused as in [`Backend::put_meta`]).
    pub fn feed_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        check_meta_name(name)?;
        let mut s = self.lock();
        s.not_in_tx()?;
        s.meta.insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    /// Applies a record row another handle committed (`None` = tombstone), between
    /// operations only ([`StoreError::AlreadyInTransaction`]); raises
    /// [`JournalBackend::synced_generation`] to `generation`.
    pub fn feed_record(&self, key_hash: &[u8; 32], generation: u64, value: Option<&[u8]>) -> Result<(), StoreError> {
        check_generation(generation)?;
        let mut s = self.lock();
        s.not_in_tx()?;
        s.synced = s.synced.max(generation);
        s.records.insert(*key_hash, (generation, value.map(<[u8]>::to_vec)));
        Ok(())
    }

    /// Drains the journal of every transaction committed since the last drain (empty if
    /// none). Refused inside a transaction ([`StoreError::AlreadyInTransaction`]): an
    /// open transaction's writes are not the host's to store.
    pub fn take_journal(&self) -> Result<Journal, StoreError> {
        let mut s = self.lock();
        s.not_in_tx()?;
        Ok(core::mem::take(&mut s.journal))
    }

    /// Marks the handle unusable after the host failed to store its journal: the view is
    /// ahead of the disk, so every later call fails with [`StoreError::Corrupt`] until the
    /// host loads a new handle.
    pub fn poison(&self) {
        let mut s = self.lock();
        s.poisoned = true;
        s.tx = None;
        s.journal = Journal::default();
    }

    /// Replaces this handle's rows, in place, by those of `fresh` (the host read them
    /// again after it failed to store a journal): every handle on this state, a stored
    /// device's included, then sees the disk again, and a poisoning is cleared. Refused
    /// inside a transaction ([`StoreError::AlreadyInTransaction`]). The device on this
    /// handle must reload before its next operation
    /// ([`crate::StoredDevice::reload_before_next`], with the generation it had after the
    /// last commit the host stored).
    pub fn replace_with(&self, fresh: JournalBackend) -> Result<(), StoreError> {
        let rows = core::mem::take(&mut *fresh.lock());
        let mut s = self.lock();
        if s.tx.is_some() && !s.poisoned {
            return Err(StoreError::AlreadyInTransaction);
        }
        *s = rows;
        Ok(())
    }
}

impl Default for JournalBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend for JournalBackend {
    fn begin(&mut self) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.not_in_tx()?;
        s.tx = Some(Journal::default());
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let mut s = self.lock();
        let staged = s.staged().map(core::mem::take)?;
        if s.journal.rows().saturating_add(staged.rows()) > MAX_JOURNAL_ROWS {
            s.tx = None;
            return Err(StoreError::Busy);
        }
        s.tx = None;
        for (name, value) in &staged.meta {
            s.meta.insert(name.clone(), value.clone());
        }
        for (key, (generation, value)) in &staged.records {
            s.synced = s.synced.max(*generation);
            s.records.insert(*key, (*generation, value.clone()));
        }
        s.journal.extend(staged);
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.staged()?;
        s.tx = None;
        Ok(())
    }

    fn get_meta(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let s = self.lock();
        s.usable()?;
        if let Some(v) = s.tx.as_ref().and_then(|t| t.meta.get(name)) {
            return Ok(Some(v.clone()));
        }
        Ok(s.meta.get(name).cloned())
    }

    fn put_meta(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        check_meta_name(name)?;
        self.lock().staged()?.meta.insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    fn get(&mut self, key_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let s = self.lock();
        s.usable()?;
        if let Some((_, v)) = s.tx.as_ref().and_then(|t| t.records.get(key_hash)) {
            return Ok(v.clone());
        }
        Ok(s.records.get(key_hash).and_then(|(_, v)| v.clone()))
    }

    fn put(&mut self, key_hash: &[u8; 32], value: Option<&[u8]>, generation: u64) -> Result<(), StoreError> {
        check_generation(generation)?;
        self.lock().staged()?.records.insert(*key_hash, (generation, value.map(<[u8]>::to_vec)));
        Ok(())
    }

    fn changed_since(&mut self, generation: u64) -> Result<Vec<ChangedRow>, StoreError> {
        let s = self.lock();
        s.usable()?;
        let mut rows: Vec<(u64, [u8; 32], Option<Vec<u8>>)> =
            s.merged().into_iter().filter(|(_, (g, _))| *g > generation).map(|(k, (g, v))| (g, k, v)).collect();
        rows.sort_by_key(|r| (r.0, r.1));
        Ok(rows.into_iter().map(|(_, k, v)| (k, v)).collect())
    }

    fn all(&mut self) -> Result<Vec<Row>, StoreError> {
        let s = self.lock();
        s.usable()?;
        Ok(s.merged().into_iter().filter_map(|(k, (_, v))| v.map(|v| (k, v))).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];

    fn schema() -> (String, Vec<u8>) {
        (SCHEMA_VERSION_META.to_owned(), SCHEMA_VERSION.to_be_bytes().to_vec())
    }

    /// Writes the drained journal into `disk` as the host would.
    fn store(disk: &mut (BTreeMap<String, Vec<u8>>, Rows), j: Journal) {
        disk.0.extend(j.meta);
        disk.1.extend(j.records);
    }

    fn load(disk: &(BTreeMap<String, Vec<u8>>, Rows)) -> JournalBackend {
        JournalBackend::load(disk.0.clone(), disk.1.iter().map(|(k, (g, v))| (*k, *g, v.clone())).collect::<Vec<_>>())
            .unwrap()
    }

    #[test]
    fn commit_journals_writes_and_reads_see_them() {
        let mut b = JournalBackend::new();
        let host = b.handle();
        b.begin().unwrap();
        b.put_meta("generation", &[0, 1]).unwrap();
        b.put(&A, Some(b"a1"), 1).unwrap();
        assert_eq!(b.get(&A).unwrap().as_deref(), Some(&b"a1"[..]), "a transaction reads its own writes");
        b.commit().unwrap();
        assert_eq!(b.get(&A).unwrap().as_deref(), Some(&b"a1"[..]));
        assert_eq!(host.synced_generation(), 1);
        let j = host.take_journal().unwrap();
        assert_eq!(j.meta.get("generation").map(Vec::as_slice), Some(&[0u8, 1][..]));
        assert_eq!(j.records.get(&A), Some(&(1, Some(b"a1".to_vec()))));
        assert!(host.take_journal().unwrap().is_empty(), "a drain empties the journal");
    }

    #[test]
    fn rollback_drops_the_writes_and_journals_nothing() {
        let mut b = JournalBackend::new();
        b.begin().unwrap();
        b.put(&A, Some(b"a1"), 1).unwrap();
        b.put_meta("x", b"y").unwrap();
        b.rollback().unwrap();
        assert_eq!(b.get(&A).unwrap(), None);
        assert_eq!(b.get_meta("x").unwrap(), None);
        assert_eq!(b.synced_generation(), 0);
        assert!(b.take_journal().unwrap().is_empty());
    }

    #[test]
    fn writes_outside_a_transaction_and_nested_begin_are_refused() {
        let mut b = JournalBackend::new();
        assert_eq!(b.put(&A, Some(b"a"), 1), Err(StoreError::NotInTransaction));
        assert_eq!(b.put_meta("x", b"y"), Err(StoreError::NotInTransaction));
        assert_eq!(b.commit(), Err(StoreError::NotInTransaction));
        assert_eq!(b.rollback(), Err(StoreError::NotInTransaction));
        b.begin().unwrap();
        assert_eq!(b.begin(), Err(StoreError::AlreadyInTransaction));
        assert_eq!(b.take_journal(), Err(StoreError::AlreadyInTransaction), "no drain mid-transaction");
        assert_eq!(b.feed_record(&B, 5, Some(b"b")), Err(StoreError::AlreadyInTransaction), "no feed mid-transaction");
        assert!(matches!(b.put_meta(SCHEMA_VERSION_META, b"x"), Err(StoreError::ReservedName(_))));
        assert!(matches!(b.put(&A, None, u64::MAX), Err(StoreError::GenerationOutOfRange(_))));
    }

    #[test]
    fn journals_of_several_commits_merge_until_drained() {
        let mut b = JournalBackend::new();
        for (g, v) in [(1u64, &b"v1"[..]), (2, b"v2")] {
            b.begin().unwrap();
            b.put(&A, Some(v), g).unwrap();
            b.commit().unwrap();
        }
        b.begin().unwrap();
        b.put(&B, None, 3).unwrap();
        b.commit().unwrap();
        let j = b.take_journal().unwrap();
        assert_eq!(j.records.len(), 2);
        assert_eq!(j.records.get(&A), Some(&(2, Some(b"v2".to_vec()))), "the later write wins");
        assert_eq!(j.records.get(&B), Some(&(3, None)), "tombstones are journaled");
    }

    #[test]
    fn fed_rows_are_read_and_reported_as_changed() {
        let mut b = JournalBackend::new();
        b.feed_record(&A, 4, Some(b"a4")).unwrap();
        b.feed_record(&B, 7, None).unwrap();
        b.feed_meta("generation", &[7]).unwrap();
        assert_eq!(b.synced_generation(), 7);
        assert_eq!(b.get(&A).unwrap().as_deref(), Some(&b"a4"[..]));
        assert_eq!(b.get(&B).unwrap(), None);
        assert_eq!(b.get_meta("generation").unwrap(), Some(vec![7]));
        assert_eq!(b.changed_since(4).unwrap(), vec![(B, None)]);
        assert_eq!(b.changed_since(0).unwrap(), vec![(A, Some(b"a4".to_vec())), (B, None)]);
        assert_eq!(b.all().unwrap(), vec![(A, b"a4".to_vec())]);
        assert!(b.take_journal().unwrap().is_empty(), "fed rows are not written back");
    }

    #[test]
    fn load_checks_the_schema_version() {
        assert!(matches!(JournalBackend::load(Vec::new(), Vec::new()), Err(StoreError::Corrupt(_))));
        let newer = (SCHEMA_VERSION_META.to_owned(), (SCHEMA_VERSION + 1).to_be_bytes().to_vec());
        assert_eq!(
            JournalBackend::load(vec![newer], Vec::new()).map(|_| ()),
            Err(StoreError::UnsupportedSchema(SCHEMA_VERSION + 1))
        );
        let short = (SCHEMA_VERSION_META.to_owned(), vec![1]);
        assert!(matches!(JournalBackend::load(vec![short], Vec::new()), Err(StoreError::Corrupt(_))));
        let b = JournalBackend::load(vec![schema()], vec![(A, 9, Some(b"a".to_vec()))]).unwrap();
        assert_eq!(b.synced_generation(), 9);
    }

    #[test]
    fn two_handles_through_a_host_store_see_each_others_commits() {
        let mut disk = (BTreeMap::from([schema()]), Rows::new());
        let mut one = load(&disk);
        let mut two = load(&disk);
        one.begin().unwrap();
        one.put(&A, Some(b"from one"), 1).unwrap();
        one.commit().unwrap();
        store(&mut disk, one.take_journal().unwrap());

        // The host feeds `two` what changed since its generation, as from an index.
        let since = two.synced_generation();
        for (k, (g, v)) in disk.1.iter().filter(|(_, (g, _))| *g > since) {
            two.feed_record(k, *g, v.as_deref()).unwrap();
        }
        assert_eq!(two.changed_since(since).unwrap(), vec![(A, Some(b"from one".to_vec()))]);
        two.begin().unwrap();
        two.put(&A, Some(b"from two"), 2).unwrap();
        two.commit().unwrap();
        store(&mut disk, two.take_journal().unwrap());
        assert_eq!(load(&disk).get(&A).unwrap().as_deref(), Some(&b"from two"[..]));
    }

    #[test]
    fn replace_with_restores_the_disk_rows_in_place_for_every_handle() {
        let mut b = JournalBackend::new();
        let host = b.handle();
        b.begin().unwrap();
        b.put(&A, Some(b"never stored"), 1).unwrap();
        b.commit().unwrap();
        host.poison();
        let disk = JournalBackend::load(vec![schema()], vec![(B, 4, Some(b"b".to_vec()))]).unwrap();
        host.replace_with(disk).unwrap();
        assert_eq!(b.get(&A).unwrap(), None, "the unstored commit is gone");
        assert_eq!(b.get(&B).unwrap().as_deref(), Some(&b"b"[..]));
        assert_eq!(b.synced_generation(), 4);
        b.begin().unwrap();
        assert_eq!(host.replace_with(JournalBackend::new()), Err(StoreError::AlreadyInTransaction));
    }

    #[test]
    fn a_poisoned_handle_refuses_everything() {
        let mut b = JournalBackend::new();
        b.begin().unwrap();
        b.put(&A, Some(b"a"), 1).unwrap();
        b.commit().unwrap();
        b.handle().poison();
        assert!(matches!(b.get(&A), Err(StoreError::Corrupt(_))));
        assert!(matches!(b.begin(), Err(StoreError::Corrupt(_))));
        assert!(matches!(b.all(), Err(StoreError::Corrupt(_))));
        assert!(matches!(b.take_journal(), Err(StoreError::Corrupt(_))));
    }
}
