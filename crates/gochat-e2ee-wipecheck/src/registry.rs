//! The registered secrets and what the scan found, in fixed-size statics.
//!
//! Nothing here allocates: the allocator calls [`scan`] from inside `dealloc`, and an
//! allocation there would recurse into the allocator while the lock is held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Secrets are registered and searched for as 32-byte strings; a longer secret (an
/// ML-KEM seed) is registered as each of its whole 32-byte chunks.
pub const SECRET_BYTES: usize = 32;
/// Findings kept in detail (all are counted).
pub const MAX_FINDINGS: usize = 64;
/// Distinct labels counted separately in a [`Report`].
pub const MAX_LABELS: usize = 32;

/// Hash table slots; at most half are used, so probes stay short.
const SLOTS: usize = 1 << 16;
const MAX_SECRETS: usize = SLOTS / 2;
/// A bitmap over the first three bytes of every secret: most positions of a scanned block
/// are rejected by one bit test.
const PREFIX_WORDS: usize = (1 << 24) / 64;

#[derive(Clone, Copy)]
struct Slot {
    /// `None` for an empty slot (and all-zero, so the table starts in `.bss`).
    label: Option<&'static str>,
    bytes: [u8; SECRET_BYTES],
}

/// One freed block that held a registered secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The label the secret was registered with (what kind of secret it is).
    pub label: &'static str,
    /// Size of the freed block.
    pub block_size: usize,
    /// Offset of the secret in the block.
    pub offset: usize,
    /// True if the block was the old block of a `realloc` (a buffer that grew).
    pub via_realloc: bool,
}

/// Findings of one label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelCount {
    /// The label.
    pub label: &'static str,
    /// Secrets of this label found in freed blocks (one per block and secret).
    pub found: usize,
    /// How many of them were in the old block of a `realloc`.
    pub via_realloc: usize,
}

/// What the scan found since the last [`take_report`].
#[derive(Clone, Copy, Debug)]
pub struct Report {
    /// Secrets found in freed blocks (one per block and distinct secret offset).
    pub found: usize,
    /// Bytes scanned.
    pub scanned_bytes: u64,
    /// Blocks scanned.
    pub scanned_blocks: u64,
    /// The first [`MAX_FINDINGS`] findings.
    pub findings: [Option<Finding>; MAX_FINDINGS],
    /// Counts per label (the first [`MAX_LABELS`] labels seen).
    pub by_label: [Option<LabelCount>; MAX_LABELS],
}

impl Report {
    const EMPTY: Report = Report {
        found: 0,
        scanned_bytes: 0,
        scanned_blocks: 0,
        findings: [None; MAX_FINDINGS],
        by_label: [None; MAX_LABELS],
    };

    fn record(&mut self, f: Finding) {
        if let Some(slot) = self.findings.get_mut(self.found) {
            *slot = Some(f);
        }
        self.found += 1;
        for entry in self.by_label.iter_mut() {
            match entry {
                Some(c) if c.label == f.label => {
                    c.found += 1;
                    c.via_realloc += usize::from(f.via_realloc);
                    return;
                }
                Some(_) => {}
                None => {
                    *entry = Some(LabelCount { label: f.label, found: 1, via_realloc: usize::from(f.via_realloc) });
                    return;
                }
            }
        }
    }
}

struct Registry {
    slots: [Slot; SLOTS],
    len: usize,
    overflowed: bool,
    prefix: [u64; PREFIX_WORDS],
    report: Report,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    slots: [Slot { label: None, bytes: [0; SECRET_BYTES] }; SLOTS],
    len: 0,
    overflowed: false,
    prefix: [0; PREFIX_WORDS],
    report: Report::EMPTY,
});
static ARMED: AtomicBool = AtomicBool::new(false);

fn lock() -> MutexGuard<'static, Registry> {
    // A panic elsewhere while the lock was held leaves the registry consistent enough
    // for a test tool (every update is a few plain stores).
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn prefix_bit(w: &[u8]) -> (usize, u64) {
    let p = match w {
        [a, b, c, ..] => (usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c),
        _ => 0,
    };
    (p / 64, 1u64 << (p % 64))
}

fn home(w: &[u8]) -> usize {
    let mut h = [0u8; 8];
    for (d, s) in h.iter_mut().zip(w) {
        *d = *s;
    }
    // Secrets are uniformly random, so their first 8 bytes are a good hash already.
    (u64::from_le_bytes(h) as usize) & (SLOTS - 1)
}

impl Registry {
    fn has_prefix(&self, w: &[u8]) -> bool {
        let (word, bit) = prefix_bit(w);
        self.prefix.get(word).is_some_and(|x| x & bit != 0)
    }

    /// The slot holding `w`, or the empty slot where it would go.
    fn probe(&self, w: &[u8]) -> Option<usize> {
        let mut i = home(w);
        for _ in 0..SLOTS {
            let s = self.slots.get(i)?;
            if s.label.is_none() || s.bytes[..] == *w {
                return Some(i);
            }
            i = (i + 1) & (SLOTS - 1);
        }
        None
    }

    fn find(&self, w: &[u8]) -> Option<&'static str> {
        if !self.has_prefix(w) {
            return None;
        }
        self.slots.get(self.probe(w)?)?.label
    }

    fn insert(&mut self, label: &'static str, w: &[u8; SECRET_BYTES]) {
        let Some(i) = self.probe(w) else { return };
        let Some(slot) = self.slots.get_mut(i) else { return };
        if slot.label.is_some() {
            return;
        }
        if self.len >= MAX_SECRETS {
            self.overflowed = true;
            return;
        }
        *slot = Slot { label: Some(label), bytes: *w };
        self.len += 1;
        let (word, bit) = prefix_bit(w);
        if let Some(x) = self.prefix.get_mut(word) {
            *x |= bit;
        }
    }
}

/// Registers every whole 32-byte chunk of `secret` under `label` (idempotent). Chunks
/// whose bytes are all equal (such as all zeros) are skipped: they would match wiped
/// memory.
pub fn register(label: &'static str, secret: &[u8]) {
    let mut r = lock();
    for chunk in secret.chunks_exact(SECRET_BYTES) {
        let Ok(w) = <&[u8; SECRET_BYTES]>::try_from(chunk) else { continue };
        if w.iter().all(|b| *b == w[0]) {
            continue;
        }
        r.insert(label, w);
    }
}

/// Whether every whole 32-byte chunk of `secret` is registered.
pub fn is_registered(secret: &[u8]) -> bool {
    let r = lock();
    secret.chunks_exact(SECRET_BYTES).all(|c| c.iter().all(|b| *b == c[0]) || r.find(c).is_some())
}

/// Number of registered secrets (32-byte chunks).
pub fn secret_count() -> usize {
    lock().len
}

/// Whether a registration was refused because the registry was full.
pub fn overflowed() -> bool {
    lock().overflowed
}

/// A registered secret of `label`, if any (for a self-test of the check). The caller
/// must wipe the copy.
pub fn sample(label: &str) -> Option<[u8; SECRET_BYTES]> {
    lock().slots.iter().find(|s| s.label == Some(label)).map(|s| s.bytes)
}

/// Starts checking freed blocks.
pub fn arm() {
    ARMED.store(true, Ordering::SeqCst);
}

/// Stops checking freed blocks.
pub fn disarm() {
    ARMED.store(false, Ordering::SeqCst);
}

pub(crate) fn armed() -> bool {
    ARMED.load(Ordering::Relaxed)
}

/// What was found since the last call; resets the findings.
pub fn take_report() -> Report {
    core::mem::replace(&mut lock().report, Report::EMPTY)
}

/// Records every registered secret that `block` (about to be freed) holds.
pub(crate) fn scan(block: &[u8], via_realloc: bool) {
    let mut r = lock();
    r.report.scanned_blocks += 1;
    r.report.scanned_bytes += block.len() as u64;
    let mut offset = 0;
    while let Some(w) = block.get(offset..offset + SECRET_BYTES) {
        if let Some(label) = r.find(w) {
            r.report.record(Finding { label, block_size: block.len(), offset, via_realloc });
            offset += SECRET_BYTES;
        } else {
            offset += 1;
        }
    }
}
