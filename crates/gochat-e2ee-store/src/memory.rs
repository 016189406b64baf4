//! An in-memory [`Backend`] with the SQLite backend's transaction semantics, for tests and
//! for platforms that keep their rows elsewhere.
//!
//! Handles made with [`MemoryBackend::shared`] see one store: its exclusive write lock is
//! a real lock (a flag under a mutex, with a condition variable) held from `begin` to
//! `commit` or `rollback`, so two handles on two threads serialize exactly as two SQLite
//! connections do. Writes are staged in the handle and applied at commit; a rollback (or
//! dropping the handle mid-transaction) discards them.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::backend::{
    check_generation, check_meta_name, Backend, ChangedRow, Row, StoreError, BUSY_TIMEOUT, SCHEMA_VERSION,
    SCHEMA_VERSION_META,
};

type Rows = BTreeMap<[u8; 32], (u64, Option<Vec<u8>>)>;

#[derive(Default)]
struct Committed {
    locked: bool,
    meta: BTreeMap<String, Vec<u8>>,
    records: Rows,
}

struct Shared {
    state: Mutex<Committed>,
    released: Condvar,
}

impl Shared {
    /// The state, even if a thread panicked while holding the mutex: every mutation
    /// under it is a single map operation, so the state is consistent either way.
    fn lock(&self) -> MutexGuard<'_, Committed> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Staged {
    meta: BTreeMap<String, Vec<u8>>,
    records: Rows,
}

/// An in-memory store; see the module documentation.
pub struct MemoryBackend {
    shared: Arc<Shared>,
    tx: Option<Staged>,
    timeout: Duration,
}

impl core::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryBackend").field("in_transaction", &self.tx.is_some()).finish_non_exhaustive()
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBackend {
    /// A new, empty store (schema version recorded as in SQLite).
    pub fn new() -> Self {
        let mut committed = Committed::default();
        committed.meta.insert(SCHEMA_VERSION_META.to_owned(), SCHEMA_VERSION.to_be_bytes().to_vec());
        MemoryBackend {
            shared: Arc::new(Shared { state: Mutex::new(committed), released: Condvar::new() }),
            tx: None,
            timeout: BUSY_TIMEOUT,
        }
    }

    /// Another handle on the same store (not in a transaction, default busy timeout).
    pub fn shared(&self) -> MemoryBackend {
        MemoryBackend { shared: Arc::clone(&self.shared), tx: None, timeout: BUSY_TIMEOUT }
    }

    /// How long [`Backend::begin`] waits for another handle's transaction.
    pub fn set_busy_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn release(&self) {
        self.shared.lock().locked = false;
        self.shared.released.notify_one();
    }

    fn staged(&mut self) -> Result<&mut Staged, StoreError> {
        self.tx.as_mut().ok_or(StoreError::NotInTransaction)
    }
}

impl Drop for MemoryBackend {
    fn drop(&mut self) {
        if self.tx.take().is_some() {
            self.release();
        }
    }
}

impl Backend for MemoryBackend {
    fn begin(&mut self) -> Result<(), StoreError> {
        if self.tx.is_some() {
            return Err(StoreError::AlreadyInTransaction);
        }
        let deadline = Instant::now().checked_add(self.timeout);
        let mut state = self.shared.lock();
        while state.locked {
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(StoreError::Busy);
            }
            state = match self.shared.released.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.locked = true;
        drop(state);
        self.tx = Some(Staged::default());
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let staged = self.tx.take().ok_or(StoreError::NotInTransaction)?;
        let mut state = self.shared.lock();
        state.meta.extend(staged.meta);
        state.records.extend(staged.records);
        state.locked = false;
        drop(state);
        self.shared.released.notify_one();
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        self.tx.take().ok_or(StoreError::NotInTransaction)?;
        self.release();
        Ok(())
    }

    fn get_meta(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.tx.as_ref().and_then(|t| t.meta.get(name)) {
            return Ok(Some(v.clone()));
        }
        Ok(self.shared.lock().meta.get(name).cloned())
    }

    fn put_meta(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        check_meta_name(name)?;
        self.staged()?.meta.insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    fn get(&mut self, key_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some((_, v)) = self.tx.as_ref().and_then(|t| t.records.get(key_hash)) {
            return Ok(v.clone());
        }
        Ok(self.shared.lock().records.get(key_hash).and_then(|(_, v)| v.clone()))
    }

    fn put(&mut self, key_hash: &[u8; 32], value: Option<&[u8]>, generation: u64) -> Result<(), StoreError> {
        check_generation(generation)?;
        self.staged()?.records.insert(*key_hash, (generation, value.map(<[u8]>::to_vec)));
        Ok(())
    }

    fn changed_since(&mut self, generation: u64) -> Result<Vec<ChangedRow>, StoreError> {
        let mut merged = self.shared.lock().records.clone();
        if let Some(t) = &self.tx {
            merged.extend(t.records.iter().map(|(k, v)| (*k, v.clone())));
        }
        let mut rows: Vec<(u64, [u8; 32], Option<Vec<u8>>)> =
            merged.into_iter().filter(|(_, (g, _))| *g > generation).map(|(k, (g, v))| (g, k, v)).collect();
        rows.sort_by_key(|r| (r.0, r.1));
        Ok(rows.into_iter().map(|(_, k, v)| (k, v)).collect())
    }

    fn all(&mut self) -> Result<Vec<Row>, StoreError> {
        let mut merged = self.shared.lock().records.clone();
        if let Some(t) = &self.tx {
            merged.extend(t.records.iter().map(|(k, v)| (*k, v.clone())));
        }
        Ok(merged.into_iter().filter_map(|(k, (_, v))| v.map(|v| (k, v))).collect())
    }
}
