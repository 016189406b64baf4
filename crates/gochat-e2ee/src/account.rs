//! The account: a device's identity and its prekey stores, with bounded sizes.
//!
//! The account hands out bundles, and on an incoming prekey message looks up the
//! prekeys it names. Consuming them is a separate step (`Account::commit`) taken only
//! after the first message has decrypted, so a failed session start consumes nothing.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::crypto::sha256;
use crate::handshake::{accept, HandshakeError, KeyScheduleTrace, PreKeyHeader, ResponderKeys, SessionSecret};
use crate::keys::{
    IdentityKey, IdentityKeyPair, KeyError, OneTimePreKey, OneTimePreKeyPublic, PqPreKey, PqPreKeyKind, PqPreKeyPublic,
    PreKeyBundle, SignedPreKey,
};
use crate::labels;
use crate::wire::{DecodeError, Reader, Writer};

/// Unissued one-time X25519 prekeys held at most; generating more is refused.
/// Keys already handed out in a bundle do not count (see [`MAX_ISSUED_PREKEYS`]).
pub const MAX_ONE_TIME_PREKEYS: usize = 200;
/// Unissued one-time ML-KEM-1024 prekeys held at most; generating more is refused.
/// Keys already handed out in a bundle do not count (see [`MAX_ISSUED_PREKEYS`]).
pub const MAX_PQ_ONE_TIME_PREKEYS: usize = 200;
/// Issued (handed out in a bundle) but unused one-time prekeys held at most, per kind
/// (X25519, ML-KEM); issuing one more deletes the oldest issued one.
pub const MAX_ISSUED_PREKEYS: usize = 1_000;
/// How long an issued but unused one-time prekey is kept: 30 days after
/// [`Account::expire_prekeys`] first saw it issued. Then it is deleted.
pub const ISSUED_PREKEY_LIFETIME_SECS: u64 = 30 * 24 * 60 * 60;
/// Retired signed prekeys (and retired last-resort PQ prekeys) kept for late session starts.
pub const MAX_RETIRED_PREKEYS: usize = 4;
/// How long a retired signed or last-resort prekey is kept after rotation: 30 days.
pub const PREKEY_GRACE_SECS: u64 = 30 * 24 * 60 * 60;
/// Uses of one last-resort prekey remembered for replay refusal. Records are kept for the
/// key's whole lifetime (never evicted); the use that fills them retires the key (a new
/// last-resort prekey becomes current), and a retired key with full records refuses
/// further uses (`LastResortExhausted`).
pub const MAX_LAST_RESORT_USES: usize = 4_096;

/// The longest encoding of an account with the given list lengths (retired signed
/// prekeys, one-time X25519 prekeys, one-time ML-KEM prekeys, retired last-resort
/// prekeys, last-resort use records). Exact except that each one-time prekey and each
/// retired last-resort prekey is counted with its 8-byte time present.
const fn account_len_bound(retired_signed: usize, one_time: usize, pq: usize, retired_lr: usize, uses: usize) -> usize {
    use crate::keys::{KEM_SEED_BYTES, OPK_BYTES, PQ_BYTES, SPK_BYTES};
    let signed = 32 + SPK_BYTES;
    let pq_key = KEM_SEED_BYTES + PQ_BYTES;
    64 + signed
        + 4
        + retired_signed * (8 + signed)
        + 4
        + 4
        + one_time * (9 + 32 + OPK_BYTES)
        + 4
        + 4
        + pq * (9 + pq_key)
        + pq_key
        + 4
        + retired_lr * (9 + pq_key)
        + 4
        + 4
        + uses * (4 + 32)
}

/// The most bytes an account's state can take under its bounds (about 3.5 MB, most of
/// it one-time ML-KEM prekeys and last-resort use records). A device reserves this much
/// of its state budget for its account, so prekey operations never need a size check.
pub const MAX_ACCOUNT_STATE_BYTES: usize = account_len_bound(
    MAX_RETIRED_PREKEYS,
    MAX_ONE_TIME_PREKEYS + MAX_ISSUED_PREKEYS,
    MAX_PQ_ONE_TIME_PREKEYS + MAX_ISSUED_PREKEYS,
    MAX_RETIRED_PREKEYS,
    (1 + MAX_RETIRED_PREKEYS) * MAX_LAST_RESORT_USES,
);

/// Why an account operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccountError {
    /// Generating this many prekeys would exceed the store's bound.
    #[error("prekey store full ({held} held, maximum {max})")]
    PreKeyStoreFull {
        /// Keys currently held.
        held: usize,
        /// The bound.
        max: usize,
    },
    /// The 32-bit id space of a prekey kind is exhausted.
    #[error("prekey ids exhausted")]
    IdsExhausted,
}

#[derive(Clone)]
struct Retired<T> {
    key: T,
    retired_at: u64,
}

/// A retired last-resort prekey with its use records. `retired_at` is `None` when it was
/// retired automatically (by [`Account::commit`], which has no clock) and not yet stamped
/// by [`Account::expire_prekeys`].
#[derive(Clone)]
struct RetiredLastResort {
    key: PqPreKey,
    retired_at: Option<u64>,
    uses: BTreeSet<[u8; 32]>,
}

/// Whether a one-time prekey was handed out in a bundle, and when that was first seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Issue {
    /// Not handed out yet.
    Unissued,
    /// Handed out; the time is stamped by the next [`Account::expire_prekeys`].
    Issued(Option<u64>),
}

impl Issue {
    fn is_issued(self) -> bool {
        self != Issue::Unissued
    }

    fn write(self, w: &mut Writer) {
        match self {
            Issue::Unissued => w.u8(0),
            Issue::Issued(None) => w.u8(1),
            Issue::Issued(Some(t)) => w.u8(2).u64(t),
        };
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Issue::Unissued),
            1 => Ok(Issue::Issued(None)),
            2 => Ok(Issue::Issued(Some(r.u64()?))),
            _ => Err(DecodeError::InvalidValue("issue state")),
        }
    }
}

/// Counts (unissued, issued) entries of a one-time pool.
fn pool_counts<K>(pool: &BTreeMap<u32, (K, Issue)>) -> (usize, usize) {
    let issued = pool.values().filter(|(_, i)| i.is_issued()).count();
    (pool.len() - issued, issued)
}

/// Marks the lowest-id unissued key of `pool` issued and returns its id, then deletes the
/// oldest issued keys beyond [`MAX_ISSUED_PREKEYS`]. Keys are issued in id order and new
/// keys get higher ids, so the lowest-id issued key is the oldest issued one.
fn issue_next<K>(pool: &mut BTreeMap<u32, (K, Issue)>) -> Option<u32> {
    let id = pool.iter_mut().find(|(_, (_, i))| !i.is_issued()).map(|(id, (_, i))| {
        *i = Issue::Issued(None);
        *id
    })?;
    let (_, mut issued) = pool_counts(pool);
    while issued > MAX_ISSUED_PREKEYS {
        let oldest = pool.iter().find(|(_, (_, i))| i.is_issued()).map(|(id, _)| *id);
        match oldest {
            Some(o) => {
                pool.remove(&o);
                issued -= 1;
            }
            None => break,
        }
    }
    Some(id)
}

/// Stamps newly issued keys with `now` and deletes issued keys older than
/// [`ISSUED_PREKEY_LIFETIME_SECS`].
fn expire_issued<K>(pool: &mut BTreeMap<u32, (K, Issue)>, now: u64) {
    pool.retain(|_, (_, i)| match i {
        Issue::Unissued => true,
        Issue::Issued(None) => {
            *i = Issue::Issued(Some(now));
            true
        }
        Issue::Issued(Some(t)) => now.saturating_sub(*t) <= ISSUED_PREKEY_LIFETIME_SECS,
    });
}

/// A device's identity and prekeys.
///
/// X25519 prekeys held in a collection are boxed: a `BTreeMap` shifts entries inside its
/// nodes and a `Vec` shifts and reallocates, each leaving stale bitwise copies in memory
/// it later frees without wiping. Boxed, each secret stays at one address and is wiped
/// in place when its box is dropped. (ML-KEM prekeys keep their seed and decapsulation
/// key in boxes already.)
#[derive(Clone)]
pub struct Account {
    identity: IdentityKeyPair,
    signed: SignedPreKey,
    retired_signed: Vec<Retired<Box<SignedPreKey>>>,
    next_signed_id: u32,
    one_time: BTreeMap<u32, (Box<OneTimePreKey>, Issue)>,
    next_one_time_id: u32,
    pq_one_time: BTreeMap<u32, (PqPreKey, Issue)>,
    last_resort: PqPreKey,
    retired_last_resort: Vec<RetiredLastResort>,
    next_pq_id: u32,
    /// Use records of the current last-resort prekey (never evicted).
    last_resort_uses: BTreeSet<[u8; 32]>,
}

impl core::fmt::Debug for Account {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Account")
            .field("identity", self.identity.public())
            .field("one_time_prekeys", &self.one_time.len())
            .field("pq_one_time_prekeys", &self.pq_one_time.len())
            .finish_non_exhaustive()
    }
}

/// Prekeys named by an accepted prekey message, to be consumed on success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Consumed {
    one_time: Option<u32>,
    pq_one_time: Option<u32>,
    /// The last-resort prekey id and the use record.
    last_resort_use: Option<(u32, [u8; 32])>,
}

fn next_id(id: &mut u32) -> Result<u32, AccountError> {
    let out = *id;
    *id = id.checked_add(1).ok_or(AccountError::IdsExhausted)?;
    Ok(out)
}

/// Reserves `count` consecutive ids, refusing (and reserving nothing) past `u32::MAX`.
fn reserve_ids(next: &mut u32, count: usize) -> Result<core::ops::Range<u32>, AccountError> {
    let first = *next;
    let end = u32::try_from(count).ok().and_then(|c| first.checked_add(c)).ok_or(AccountError::IdsExhausted)?;
    *next = end;
    Ok(first..end)
}

impl Account {
    /// Creates an account: a fresh identity, a signed prekey and a last-resort ML-KEM prekey.
    pub fn new<R: CryptoRng + ?Sized>(now: u64, rng: &mut R) -> Self {
        Self::with_identity(IdentityKeyPair::generate(rng), now, rng)
    }

    /// Creates an account around an existing identity.
    pub fn with_identity<R: CryptoRng + ?Sized>(identity: IdentityKeyPair, now: u64, rng: &mut R) -> Self {
        let signed = SignedPreKey::generate(&identity, 1, now, rng);
        let last_resort = PqPreKey::generate(&identity, 1, PqPreKeyKind::LastResort, now, rng);
        Account {
            identity,
            signed,
            retired_signed: Vec::new(),
            next_signed_id: 2,
            one_time: BTreeMap::new(),
            next_one_time_id: 1,
            pq_one_time: BTreeMap::new(),
            last_resort,
            retired_last_resort: Vec::new(),
            next_pq_id: 2,
            last_resort_uses: BTreeSet::new(),
        }
    }

    /// The public identity.
    pub fn identity(&self) -> &IdentityKey {
        self.identity.public()
    }

    pub(crate) fn identity_pair(&self) -> &IdentityKeyPair {
        &self.identity
    }

    /// Generates `count` signed one-time X25519 prekeys, returning their public parts
    /// for upload. Refused if the unissued keys would exceed `MAX_ONE_TIME_PREKEYS`.
    pub fn generate_one_time_prekeys<R: CryptoRng + ?Sized>(
        &mut self,
        count: usize,
        rng: &mut R,
    ) -> Result<Vec<OneTimePreKeyPublic>, AccountError> {
        let (held, _) = pool_counts(&self.one_time);
        if held.saturating_add(count) > MAX_ONE_TIME_PREKEYS {
            return Err(AccountError::PreKeyStoreFull { held, max: MAX_ONE_TIME_PREKEYS });
        }
        let ids = reserve_ids(&mut self.next_one_time_id, count)?;
        Ok(ids
            .map(|id| {
                let k = Box::new(OneTimePreKey::generate(&self.identity, id, rng));
                let public = *k.public();
                self.one_time.insert(id, (k, Issue::Unissued));
                public
            })
            .collect())
    }

    /// Generates `count` signed one-time ML-KEM-1024 prekeys. Refused if the unissued keys
    /// would exceed `MAX_PQ_ONE_TIME_PREKEYS`.
    pub fn generate_pq_prekeys<R: CryptoRng + ?Sized>(
        &mut self,
        count: usize,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<PqPreKeyPublic>, AccountError> {
        let (held, _) = pool_counts(&self.pq_one_time);
        if held.saturating_add(count) > MAX_PQ_ONE_TIME_PREKEYS {
            return Err(AccountError::PreKeyStoreFull { held, max: MAX_PQ_ONE_TIME_PREKEYS });
        }
        let ids = reserve_ids(&mut self.next_pq_id, count)?;
        Ok(ids
            .map(|id| {
                let k = PqPreKey::generate(&self.identity, id, PqPreKeyKind::OneTime, now, rng);
                let public = k.public().clone();
                self.pq_one_time.insert(id, (k, Issue::Unissued));
                public
            })
            .collect())
    }

    /// Replaces the signed prekey. The old one is kept for `PREKEY_GRACE_SECS` (and at
    /// most `MAX_RETIRED_PREKEYS` are kept) so sessions started from old bundles work.
    pub fn rotate_signed_prekey<R: CryptoRng + ?Sized>(&mut self, now: u64, rng: &mut R) -> Result<(), AccountError> {
        let id = next_id(&mut self.next_signed_id)?;
        let old = core::mem::replace(&mut self.signed, SignedPreKey::generate(&self.identity, id, now, rng));
        self.retired_signed.push(Retired { key: Box::new(old), retired_at: now });
        self.expire_prekeys(now);
        Ok(())
    }

    /// Replaces the last-resort ML-KEM prekey, retiring the old one like a signed prekey.
    pub fn rotate_last_resort_prekey<R: CryptoRng + ?Sized>(
        &mut self,
        now: u64,
        rng: &mut R,
    ) -> Result<(), AccountError> {
        let id = next_id(&mut self.next_pq_id)?;
        let fresh = PqPreKey::generate(&self.identity, id, PqPreKeyKind::LastResort, now, rng);
        self.retire_last_resort(fresh, Some(now));
        self.expire_prekeys(now);
        Ok(())
    }

    /// Makes `fresh` the current last-resort prekey; the old one is retired with its use
    /// records. Beyond `MAX_RETIRED_PREKEYS` the oldest retired key is dropped (no clock
    /// is needed for that bound).
    fn retire_last_resort(&mut self, fresh: PqPreKey, retired_at: Option<u64>) {
        let old = core::mem::replace(&mut self.last_resort, fresh);
        let uses = core::mem::take(&mut self.last_resort_uses);
        self.retired_last_resort.push(RetiredLastResort { key: old, retired_at, uses });
        let excess = self.retired_last_resort.len().saturating_sub(MAX_RETIRED_PREKEYS);
        self.retired_last_resort.drain(..excess);
    }

    /// Drops retired prekeys older than the grace period, and all but the newest
    /// `MAX_RETIRED_PREKEYS`; stamps automatically retired last-resort prekeys and newly
    /// issued one-time prekeys with `now`; deletes issued one-time prekeys stamped more
    /// than `ISSUED_PREKEY_LIFETIME_SECS` ago.
    pub fn expire_prekeys(&mut self, now: u64) {
        self.retired_signed.retain(|r| now.saturating_sub(r.retired_at) <= PREKEY_GRACE_SECS);
        let excess = self.retired_signed.len().saturating_sub(MAX_RETIRED_PREKEYS);
        self.retired_signed.drain(..excess);
        self.retired_last_resort.retain_mut(|r| {
            let at = *r.retired_at.get_or_insert(now);
            now.saturating_sub(at) <= PREKEY_GRACE_SECS
        });
        let excess = self.retired_last_resort.len().saturating_sub(MAX_RETIRED_PREKEYS);
        self.retired_last_resort.drain(..excess);
        expire_issued(&mut self.one_time, now);
        expire_issued(&mut self.pq_one_time, now);
    }

    /// Number of one-time X25519 and ML-KEM prekeys not yet handed out in a bundle.
    pub fn unissued_prekeys(&self) -> (usize, usize) {
        (pool_counts(&self.one_time).0, pool_counts(&self.pq_one_time).0)
    }

    /// Number of one-time X25519 and ML-KEM prekeys handed out in a bundle but not used
    /// yet (each at most `MAX_ISSUED_PREKEYS`).
    pub fn issued_prekeys(&self) -> (usize, usize) {
        (pool_counts(&self.one_time).1, pool_counts(&self.pq_one_time).1)
    }

    /// A bundle with the next unissued one-time X25519 and ML-KEM prekeys, marking them
    /// issued; without one-time keys left, the bundle has no one-time X25519 prekey and
    /// carries the last-resort ML-KEM prekey. Beyond `MAX_ISSUED_PREKEYS` issued keys
    /// of a kind, the oldest issued one is deleted.
    pub fn next_bundle(&mut self) -> Result<PreKeyBundle, KeyError> {
        let opk = issue_next(&mut self.one_time).and_then(|id| self.one_time.get(&id)).map(|(k, _)| *k.public());
        let pq =
            issue_next(&mut self.pq_one_time).and_then(|id| self.pq_one_time.get(&id)).map(|(k, _)| k.public().clone());
        let pq = pq.unwrap_or_else(|| self.last_resort.public().clone());
        PreKeyBundle::new(*self.identity.public(), *self.signed.public(), opk, pq)
    }

    /// A bundle that issues nothing: no one-time X25519 prekey and the current last-resort
    /// ML-KEM prekey. Used for retry requests, so that messages that cannot be decrypted
    /// (which anyone can send) cannot use up one-time prekeys. The trade-off: a session
    /// started from it has no one-time X25519 prekey (DH4) and uses the last-resort ML-KEM
    /// prekey, so its first messages have weaker forward secrecy than a session started
    /// from [`Account::next_bundle`] until the ratchet has turned.
    pub fn retry_bundle(&self) -> Result<PreKeyBundle, KeyError> {
        PreKeyBundle::new(*self.identity.public(), *self.signed.public(), None, self.last_resort.public().clone())
    }

    fn find_signed(&self, id: u32) -> Option<&SignedPreKey> {
        if self.signed.public().id == id {
            return Some(&self.signed);
        }
        self.retired_signed.iter().map(|r| &*r.key).find(|k| k.public().id == id)
    }

    fn last_resort_use(header: &PreKeyHeader) -> [u8; 32] {
        let mut w = Writer::raw(48);
        w.u32(header.signed_prekey_id).u32(header.one_time_prekey_id.unwrap_or(0)).u32(header.pq_prekey_id);
        sha256(&[labels::LAST_RESORT_USE, &w.into_bytes(), &header.base_key])
    }

    /// Looks up the prekeys named by `header` and runs the responder side of PQXDH.
    /// Does not change the account: the caller commits [`Consumed`] after the first
    /// message has decrypted.
    pub(crate) fn accept(
        &self,
        header: &PreKeyHeader,
        trace: Option<&mut KeyScheduleTrace>,
    ) -> Result<(SessionSecret, Vec<u8>, &SignedPreKey, Consumed), HandshakeError> {
        let signed = self
            .find_signed(header.signed_prekey_id)
            .ok_or(HandshakeError::UnknownSignedPreKey(header.signed_prekey_id))?;
        let one_time = match header.one_time_prekey_id {
            None => None,
            Some(id) => match self.one_time.get(&id) {
                Some((k, _)) => Some(&**k),
                None if id < self.next_one_time_id && id != 0 => return Err(HandshakeError::OneTimePreKeyReused(id)),
                None => return Err(HandshakeError::UnknownOneTimePreKey(id)),
            },
        };
        let pq_id = header.pq_prekey_id;
        let mut consumed = Consumed { one_time: header.one_time_prekey_id, pq_one_time: None, last_resort_use: None };
        let pq = if let Some((k, _)) = self.pq_one_time.get(&pq_id) {
            consumed.pq_one_time = Some(pq_id);
            k
        } else if let Some((k, uses)) = core::iter::once((&self.last_resort, &self.last_resort_uses))
            .chain(self.retired_last_resort.iter().map(|r| (&r.key, &r.uses)))
            .find(|(k, _)| k.public().id == pq_id)
        {
            let record = Self::last_resort_use(header);
            if uses.contains(&record) {
                return Err(HandshakeError::LastResortReplay);
            }
            if uses.len() >= MAX_LAST_RESORT_USES {
                return Err(HandshakeError::LastResortExhausted(pq_id));
            }
            consumed.last_resort_use = Some((pq_id, record));
            k
        } else if pq_id < self.next_pq_id && pq_id != 0 {
            return Err(HandshakeError::PqPreKeyReused(pq_id));
        } else {
            return Err(HandshakeError::UnknownPqPreKey(pq_id));
        };
        let keys =
            ResponderKeys { identity: &self.identity, signed_prekey: signed, one_time_prekey: one_time, pq_prekey: pq };
        let (secret, ad) = accept(&keys, header, trace)?;
        Ok((secret, ad, signed, consumed))
    }

    /// Consumes the prekeys of a session start that succeeded. When this fills the use
    /// records of the current last-resort prekey, a new one is generated (from `rng`) and
    /// the full one retired; its `retired_at` is stamped by the next `expire_prekeys`.
    /// The new key's `created_at` is the newest creation time the account knows (of the
    /// signed and last-resort prekeys), since this call has no clock.
    pub(crate) fn commit<R: CryptoRng + ?Sized>(&mut self, consumed: Consumed, rng: &mut R) {
        if let Some(id) = consumed.one_time {
            self.one_time.remove(&id);
        }
        if let Some(id) = consumed.pq_one_time {
            self.pq_one_time.remove(&id);
        }
        if let Some((id, record)) = consumed.last_resort_use {
            if self.last_resort.public().id == id {
                self.last_resort_uses.insert(record);
                if self.last_resort_uses.len() >= MAX_LAST_RESORT_USES {
                    // With the id space exhausted the full key stays current and refuses
                    // further uses (`LastResortExhausted`).
                    if let Ok(new_id) = next_id(&mut self.next_pq_id) {
                        let created_at = self.signed.public().created_at.max(self.last_resort.public().created_at);
                        let fresh =
                            PqPreKey::generate(&self.identity, new_id, PqPreKeyKind::LastResort, created_at, rng);
                        self.retire_last_resort(fresh, None);
                    }
                }
            } else if let Some(r) = self.retired_last_resort.iter_mut().find(|r| r.key.public().id == id) {
                r.uses.insert(record);
            }
        }
    }

    /// The exact length of [`Account::write`]'s output, computed without writing.
    pub(crate) fn encoded_len(&self) -> usize {
        let untimed = |i: &Issue| !matches!(i, Issue::Issued(Some(_)));
        let short = self.one_time.values().filter(|(_, i)| untimed(i)).count()
            + self.pq_one_time.values().filter(|(_, i)| untimed(i)).count()
            + self.retired_last_resort.iter().filter(|r| r.retired_at.is_none()).count();
        self.len_bound() - 8 * short
    }

    /// [`account_len_bound`] for this account's list lengths.
    fn len_bound(&self) -> usize {
        let uses = self.last_resort_uses.len() + self.retired_last_resort.iter().map(|r| r.uses.len()).sum::<usize>();
        account_len_bound(
            self.retired_signed.len(),
            self.one_time.len(),
            self.pq_one_time.len(),
            self.retired_last_resort.len(),
            uses,
        )
    }

    /// Calls `f` with every secret of the account (feature `testing`).
    #[cfg(feature = "testing")]
    pub(crate) fn for_each_secret(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        self.identity.for_each_secret(f);
        f("signed prekey", self.signed.secret.as_bytes());
        for r in &self.retired_signed {
            f("signed prekey", r.key.secret.as_bytes());
        }
        for (k, _) in self.one_time.values() {
            f("one-time prekey", k.secret.as_bytes());
        }
        for (k, _) in self.pq_one_time.values() {
            f("ML-KEM prekey seed", &k.seed[..]);
        }
        f("ML-KEM prekey seed", &self.last_resort.seed[..]);
        for r in &self.retired_last_resort {
            f("ML-KEM prekey seed", &r.key.seed[..]);
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let (seed, agreement) = self.identity.secret_bytes();
        w.bytes(seed).bytes(agreement);
        self.signed.write_secret(w);
        w.u32(self.retired_signed.len() as u32);
        for r in &self.retired_signed {
            w.u64(r.retired_at);
            r.key.write_secret(w);
        }
        w.u32(self.next_signed_id);
        w.u32(self.one_time.len() as u32);
        for (k, issue) in self.one_time.values() {
            issue.write(w);
            k.write_secret(w);
        }
        w.u32(self.next_one_time_id);
        w.u32(self.pq_one_time.len() as u32);
        for (k, issue) in self.pq_one_time.values() {
            issue.write(w);
            k.write_secret(w);
        }
        self.last_resort.write_secret(w);
        w.u32(self.retired_last_resort.len() as u32);
        for r in &self.retired_last_resort {
            w.flag(r.retired_at.is_some());
            if let Some(at) = r.retired_at {
                w.u64(at);
            }
            r.key.write_secret(w);
        }
        w.u32(self.next_pq_id);
        let uses = core::iter::once((self.last_resort.public().id, &self.last_resort_uses))
            .chain(self.retired_last_resort.iter().map(|r| (r.key.public().id, &r.uses)));
        let total: usize = uses.clone().map(|(_, u)| u.len()).sum();
        w.u32(total as u32);
        for (id, set) in uses {
            for u in set {
                w.u32(id).bytes(u);
            }
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let invalid = |what: &'static str| KeyError::from(DecodeError::InvalidValue(what));
        let seed = Zeroizing::new(r.array::<32>()?);
        let agreement = Zeroizing::new(r.array::<32>()?);
        let identity = IdentityKeyPair::from_secret_bytes(&seed, &agreement)?;
        let signed = SignedPreKey::read_secret(r)?;
        let n = r.count(MAX_RETIRED_PREKEYS, "retired signed prekey count")?;
        let mut retired_signed = Vec::with_capacity(n);
        for _ in 0..n {
            let retired_at = r.u64()?;
            retired_signed.push(Retired { retired_at, key: Box::new(SignedPreKey::read_secret(r)?) });
        }
        let next_signed_id = r.u32()?;
        let n = r.count(MAX_ONE_TIME_PREKEYS + MAX_ISSUED_PREKEYS, "one-time prekey count")?;
        let mut one_time = BTreeMap::new();
        for _ in 0..n {
            let issue = Issue::read(r)?;
            let k = Box::new(OneTimePreKey::read_secret(r)?);
            if one_time.insert(k.public().id, (k, issue)).is_some() {
                return Err(invalid("duplicate one-time prekey id"));
            }
        }
        let next_one_time_id = r.u32()?;
        let n = r.count(MAX_PQ_ONE_TIME_PREKEYS + MAX_ISSUED_PREKEYS, "pq prekey count")?;
        let mut pq_one_time = BTreeMap::new();
        for _ in 0..n {
            let issue = Issue::read(r)?;
            let k = PqPreKey::read_secret(r)?;
            if pq_one_time.insert(k.public().id, (k, issue)).is_some() {
                return Err(invalid("duplicate pq prekey id"));
            }
        }
        let last_resort = PqPreKey::read_secret(r)?;
        let n = r.count(MAX_RETIRED_PREKEYS, "retired last-resort count")?;
        let mut retired_last_resort = Vec::with_capacity(n);
        for _ in 0..n {
            let retired_at = if r.flag("retired_at flag")? { Some(r.u64()?) } else { None };
            let key = PqPreKey::read_secret(r)?;
            retired_last_resort.push(RetiredLastResort { key, retired_at, uses: BTreeSet::new() });
        }
        let next_pq_id = r.u32()?;
        let n = r.count((1 + MAX_RETIRED_PREKEYS) * MAX_LAST_RESORT_USES, "last-resort use count")?;
        let mut last_resort_uses = BTreeSet::new();
        for _ in 0..n {
            let id = r.u32()?;
            let record: [u8; 32] = r.array()?;
            let set = if id == last_resort.public().id {
                &mut last_resort_uses
            } else {
                &mut retired_last_resort
                    .iter_mut()
                    .find(|k| k.key.public().id == id)
                    .ok_or_else(|| invalid("last-resort use key id"))?
                    .uses
            };
            if !set.insert(record) || set.len() > MAX_LAST_RESORT_USES {
                return Err(invalid("last-resort use record"));
            }
        }
        // A full current key is retired at commit unless the id space is exhausted.
        if last_resort_uses.len() >= MAX_LAST_RESORT_USES && next_pq_id != u32::MAX {
            return Err(invalid("last-resort use count"));
        }
        let (unissued, issued) = pool_counts(&one_time);
        if unissued > MAX_ONE_TIME_PREKEYS || issued > MAX_ISSUED_PREKEYS {
            return Err(invalid("one-time prekey count"));
        }
        let (unissued, issued) = pool_counts(&pq_one_time);
        if unissued > MAX_PQ_ONE_TIME_PREKEYS || issued > MAX_ISSUED_PREKEYS {
            return Err(invalid("pq prekey count"));
        }
        // Ids: assigned from 1, each below its counter, never reused.
        let id_ok = |id: u32, next: u32| id != 0 && id < next;
        let mut signed_ids = BTreeSet::new();
        for k in core::iter::once(&signed).chain(retired_signed.iter().map(|r| &*r.key)) {
            if !id_ok(k.public().id, next_signed_id) || !signed_ids.insert(k.public().id) {
                return Err(invalid("signed prekey id"));
            }
        }
        if !one_time.keys().all(|id| id_ok(*id, next_one_time_id)) {
            return Err(invalid("one-time prekey id"));
        }
        let mut pq_ids = BTreeSet::new();
        for (k, kind) in pq_one_time
            .values()
            .map(|(k, _)| (k, PqPreKeyKind::OneTime))
            .chain(core::iter::once((&last_resort, PqPreKeyKind::LastResort)))
            .chain(retired_last_resort.iter().map(|r| (&r.key, PqPreKeyKind::LastResort)))
        {
            if !id_ok(k.public().id, next_pq_id) || !pq_ids.insert(k.public().id) {
                return Err(invalid("pq prekey id"));
            }
            if k.public().kind != kind {
                return Err(invalid("pq prekey kind"));
            }
            if !k.seed_matches_public() {
                return Err(invalid("pq prekey seed"));
            }
        }
        Ok(Account {
            identity,
            signed,
            retired_signed,
            next_signed_id,
            one_time,
            next_one_time_id,
            pq_one_time,
            last_resort,
            retired_last_resort,
            next_pq_id,
            last_resort_uses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const NOW: u64 = 1_700_000_000;

    fn account() -> Account {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut a = Account::new(NOW, &mut rng);
        a.generate_one_time_prekeys(3, &mut rng).unwrap();
        a.generate_pq_prekeys(2, NOW, &mut rng).unwrap();
        a.rotate_signed_prekey(NOW + 1, &mut rng).unwrap();
        a.rotate_last_resort_prekey(NOW + 1, &mut rng).unwrap();
        a.next_bundle().unwrap();
        a
    }

    fn encoded(a: &Account) -> Vec<u8> {
        let mut w = Writer::raw(4096);
        a.write(&mut w);
        w.into_bytes()
    }

    fn bound_of(a: &Account) -> (usize, usize) {
        let slack = 8 * (a.one_time.len() + a.pq_one_time.len() + a.retired_last_resort.len());
        (a.len_bound(), slack)
    }

    #[test]
    fn account_length_bound_is_tight_for_every_list() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let mut a = Account::new(NOW, &mut rng);
        let check = |a: &Account| {
            let len = encoded(a).len();
            assert_eq!(len, a.encoded_len());
            let (bound, slack) = bound_of(a);
            assert!(len <= bound && len + slack >= bound, "len {len}, bound {bound}, slack {slack}");
            assert!(len <= MAX_ACCOUNT_STATE_BYTES);
        };
        check(&a);
        a.generate_one_time_prekeys(5, &mut rng).unwrap();
        a.generate_pq_prekeys(3, NOW, &mut rng).unwrap();
        check(&a);
        a.next_bundle().unwrap();
        a.expire_prekeys(NOW + 5);
        check(&a);
        for i in 0..(MAX_RETIRED_PREKEYS as u64 + 2) {
            a.rotate_signed_prekey(NOW + i, &mut rng).unwrap();
            a.rotate_last_resort_prekey(NOW + i, &mut rng).unwrap();
            check(&a);
        }
        assert_eq!(a.retired_signed.len(), MAX_RETIRED_PREKEYS);
        a.last_resort_uses.insert([1; 32]);
        a.retired_last_resort[0].uses.insert([2; 32]);
        check(&a);
        const { assert!(MAX_ACCOUNT_STATE_BYTES < 4 * 1024 * 1024) };
    }

    fn round_trip(a: &Account) -> Result<Account, KeyError> {
        let mut w = Writer::raw(4096);
        a.write(&mut w);
        let bytes = w.into_bytes();
        let mut r = Reader::raw(&bytes);
        let out = Account::read(&mut r)?;
        r.finish()?;
        Ok(out)
    }

    fn refused(a: &Account, what: &'static str) {
        assert_eq!(round_trip(a).err(), Some(DecodeError::InvalidValue(what).into()));
    }

    #[test]
    fn a_written_account_reads_back() {
        let a = account();
        let b = round_trip(&a).unwrap();
        let (mut w1, mut w2) = (Writer::raw(0), Writer::raw(0));
        a.write(&mut w1);
        b.write(&mut w2);
        assert_eq!(w1.into_bytes(), w2.into_bytes());
    }

    #[test]
    fn ids_at_or_above_their_counters_are_refused() {
        let mut a = account();
        a.next_signed_id = a.signed.public().id;
        refused(&a, "signed prekey id");
        let mut a = account();
        a.next_one_time_id -= 1;
        refused(&a, "one-time prekey id");
        let mut a = account();
        a.next_pq_id = a.last_resort.public().id;
        refused(&a, "pq prekey id");
        // A retired key's id is checked too.
        let mut a = account();
        a.next_pq_id = a.retired_last_resort[0].key.public().id + 1;
        a.last_resort.public.id = 1;
        refused(&a, "pq prekey id");
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let mut a = account();
        *a.retired_signed[0].key = a.signed.clone();
        refused(&a, "signed prekey id");
        let mut a = account();
        a.retired_last_resort[0].key = a.last_resort.clone();
        refused(&a, "pq prekey id");
        // Two one-time entries with the same id (edited in the bytes: the map cannot hold them).
        let a = account();
        let mut w = Writer::raw(0);
        a.write(&mut w);
        let mut bytes = w.into_bytes();
        let first = a.one_time.values().next().unwrap().0.public().id.to_be_bytes();
        let second = a.one_time.values().nth(1).unwrap().0.public().id.to_be_bytes();
        // The second entry's secret and public fields, replaced by the first entry's.
        let entry = |k: &OneTimePreKey| {
            let mut w = Writer::raw(0);
            k.write_secret(&mut w);
            w.into_bytes()
        };
        let e1 = entry(&a.one_time.values().next().unwrap().0);
        let e2 = entry(&a.one_time.values().nth(1).unwrap().0);
        assert_ne!(first, second);
        let pos = bytes.windows(e2.len()).position(|w| w == e2.as_slice()).unwrap();
        bytes[pos..pos + e2.len()].copy_from_slice(&e1);
        let mut r = Reader::raw(&bytes);
        assert_eq!(Account::read(&mut r).err(), Some(DecodeError::InvalidValue("duplicate one-time prekey id").into()));
    }

    #[test]
    fn a_pq_seed_that_does_not_match_its_public_key_is_refused() {
        let mut a = account();
        let other = a.retired_last_resort[0].key.seed.clone();
        a.last_resort.seed = other;
        refused(&a, "pq prekey seed");
        let mut a = account();
        let (k, _) = a.pq_one_time.values_mut().next().unwrap();
        k.seed[0] ^= 1;
        refused(&a, "pq prekey seed");
    }

    #[test]
    fn use_records_are_checked() {
        let mut a = account();
        let id = a.last_resort.public().id;
        a.last_resort_uses.insert([1; 32]);
        let b = round_trip(&a).unwrap();
        assert!(b.last_resort_uses.contains(&[1; 32]));
        // A record naming no held last-resort key is refused.
        let mut w = Writer::raw(0);
        a.write(&mut w);
        let mut bytes = w.into_bytes();
        let tail = bytes.len() - 36;
        assert_eq!(&bytes[tail..tail + 4], &id.to_be_bytes());
        bytes[tail..tail + 4].copy_from_slice(&999u32.to_be_bytes());
        let mut r = Reader::raw(&bytes);
        assert_eq!(Account::read(&mut r).err(), Some(DecodeError::InvalidValue("last-resort use key id").into()));
        // A full current key cannot be produced (it is retired at commit).
        let mut a = account();
        for i in 0..MAX_LAST_RESORT_USES as u32 {
            let mut rec = [0; 32];
            rec[..4].copy_from_slice(&i.to_be_bytes());
            a.last_resort_uses.insert(rec);
        }
        refused(&a, "last-resort use count");
        // A full retired key can.
        let full = core::mem::take(&mut a.last_resort_uses);
        a.retired_last_resort[0].uses = full;
        round_trip(&a).unwrap();
    }

    #[test]
    fn commit_retires_a_full_last_resort_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let mut a = account();
        let id = a.last_resort.public().id;
        for i in 0..MAX_LAST_RESORT_USES as u32 {
            let mut rec = [0; 32];
            rec[..4].copy_from_slice(&i.to_be_bytes());
            a.commit(Consumed { one_time: None, pq_one_time: None, last_resort_use: Some((id, rec)) }, &mut rng);
        }
        assert_ne!(a.last_resort.public().id, id);
        assert!(a.last_resort_uses.is_empty());
        let retired = a.retired_last_resort.last().unwrap();
        assert_eq!((retired.key.public().id, retired.retired_at, retired.uses.len()), (id, None, MAX_LAST_RESORT_USES));
        a.expire_prekeys(NOW + 5);
        assert_eq!(a.retired_last_resort.last().unwrap().retired_at, Some(NOW + 5));
        round_trip(&a).unwrap();
    }
}
