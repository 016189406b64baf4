//! The account: a device's identity and its prekey stores, with bounded sizes.
//!
//! The account hands out bundles, and on an incoming prekey message looks up the
//! prekeys it names. Consuming them is a separate step (`Account::commit`) taken only
//! after the first message has decrypted, so a failed session start consumes nothing.

use std::collections::{BTreeMap, VecDeque};

use rand_core::CryptoRng;
use thiserror::Error;

use crate::crypto::sha256;
use crate::handshake::{accept, HandshakeError, KeyScheduleTrace, PreKeyHeader, ResponderKeys, SessionSecret};
use crate::keys::{
    IdentityKey, IdentityKeyPair, KeyError, OneTimePreKey, OneTimePreKeyPublic, PqPreKey, PqPreKeyKind, PqPreKeyPublic,
    PreKeyBundle, SignedPreKey,
};
use crate::labels;
use crate::wire::{DecodeError, Reader, Writer};

/// One-time X25519 prekeys held at most; generating more is refused.
pub const MAX_ONE_TIME_PREKEYS: usize = 200;
/// One-time ML-KEM-1024 prekeys held at most; generating more is refused.
pub const MAX_PQ_ONE_TIME_PREKEYS: usize = 200;
/// Retired signed prekeys (and retired last-resort PQ prekeys) kept for late session starts.
pub const MAX_RETIRED_PREKEYS: usize = 4;
/// How long a retired signed or last-resort prekey is kept after rotation: 30 days.
pub const PREKEY_GRACE_SECS: u64 = 30 * 24 * 60 * 60;
/// Last-resort uses remembered for replay refusal; beyond it the oldest is forgotten.
/// Rotating the last-resort prekey retires the old key together with its records.
pub const MAX_LAST_RESORT_USES: usize = 4_096;

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

/// A device's identity and prekeys.
#[derive(Clone)]
pub struct Account {
    identity: IdentityKeyPair,
    signed: SignedPreKey,
    retired_signed: Vec<Retired<SignedPreKey>>,
    next_signed_id: u32,
    one_time: BTreeMap<u32, (OneTimePreKey, bool)>,
    next_one_time_id: u32,
    pq_one_time: BTreeMap<u32, (PqPreKey, bool)>,
    last_resort: PqPreKey,
    retired_last_resort: Vec<Retired<PqPreKey>>,
    next_pq_id: u32,
    last_resort_uses: VecDeque<[u8; 32]>,
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
    last_resort_use: Option<[u8; 32]>,
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
            last_resort_uses: VecDeque::new(),
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
    /// for upload. Refused if the store would exceed `MAX_ONE_TIME_PREKEYS`.
    pub fn generate_one_time_prekeys<R: CryptoRng + ?Sized>(
        &mut self,
        count: usize,
        rng: &mut R,
    ) -> Result<Vec<OneTimePreKeyPublic>, AccountError> {
        let held = self.one_time.len();
        if held + count > MAX_ONE_TIME_PREKEYS {
            return Err(AccountError::PreKeyStoreFull { held, max: MAX_ONE_TIME_PREKEYS });
        }
        let ids = reserve_ids(&mut self.next_one_time_id, count)?;
        Ok(ids
            .map(|id| {
                let k = OneTimePreKey::generate(&self.identity, id, rng);
                let public = *k.public();
                self.one_time.insert(id, (k, false));
                public
            })
            .collect())
    }

    /// Generates `count` signed one-time ML-KEM-1024 prekeys. Refused if the store would
    /// exceed `MAX_PQ_ONE_TIME_PREKEYS`.
    pub fn generate_pq_prekeys<R: CryptoRng + ?Sized>(
        &mut self,
        count: usize,
        now: u64,
        rng: &mut R,
    ) -> Result<Vec<PqPreKeyPublic>, AccountError> {
        let held = self.pq_one_time.len();
        if held + count > MAX_PQ_ONE_TIME_PREKEYS {
            return Err(AccountError::PreKeyStoreFull { held, max: MAX_PQ_ONE_TIME_PREKEYS });
        }
        let ids = reserve_ids(&mut self.next_pq_id, count)?;
        Ok(ids
            .map(|id| {
                let k = PqPreKey::generate(&self.identity, id, PqPreKeyKind::OneTime, now, rng);
                let public = k.public().clone();
                self.pq_one_time.insert(id, (k, false));
                public
            })
            .collect())
    }

    /// Replaces the signed prekey. The old one is kept for `PREKEY_GRACE_SECS` (and at
    /// most `MAX_RETIRED_PREKEYS` are kept) so sessions started from old bundles work.
    pub fn rotate_signed_prekey<R: CryptoRng + ?Sized>(&mut self, now: u64, rng: &mut R) -> Result<(), AccountError> {
        let id = next_id(&mut self.next_signed_id)?;
        let old = core::mem::replace(&mut self.signed, SignedPreKey::generate(&self.identity, id, now, rng));
        self.retired_signed.push(Retired { key: old, retired_at: now });
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
        let old = core::mem::replace(&mut self.last_resort, fresh);
        self.retired_last_resort.push(Retired { key: old, retired_at: now });
        self.expire_prekeys(now);
        Ok(())
    }

    /// Drops retired prekeys older than the grace period, and all but the newest
    /// `MAX_RETIRED_PREKEYS`.
    pub fn expire_prekeys(&mut self, now: u64) {
        fn prune<T>(v: &mut Vec<Retired<T>>, now: u64) {
            v.retain(|r| now.saturating_sub(r.retired_at) <= PREKEY_GRACE_SECS);
            let excess = v.len().saturating_sub(MAX_RETIRED_PREKEYS);
            v.drain(..excess);
        }
        prune(&mut self.retired_signed, now);
        prune(&mut self.retired_last_resort, now);
    }

    /// Number of one-time X25519 and ML-KEM prekeys not yet handed out in a bundle.
    pub fn unissued_prekeys(&self) -> (usize, usize) {
        (
            self.one_time.values().filter(|(_, issued)| !issued).count(),
            self.pq_one_time.values().filter(|(_, issued)| !issued).count(),
        )
    }

    /// A bundle with the next unissued one-time X25519 and ML-KEM prekeys, marking them
    /// issued; without one-time keys left, the bundle has no one-time X25519 prekey and
    /// carries the last-resort ML-KEM prekey.
    pub fn next_bundle(&mut self) -> Result<PreKeyBundle, KeyError> {
        let opk = self.one_time.iter_mut().find(|(_, (_, issued))| !issued).map(|(_, (k, issued))| {
            *issued = true;
            *k.public()
        });
        let pq = self.pq_one_time.iter_mut().find(|(_, (_, issued))| !issued).map(|(_, (k, issued))| {
            *issued = true;
            k.public().clone()
        });
        let pq = pq.unwrap_or_else(|| self.last_resort.public().clone());
        PreKeyBundle::new(*self.identity.public(), *self.signed.public(), opk, pq)
    }

    fn find_signed(&self, id: u32) -> Option<&SignedPreKey> {
        if self.signed.public().id == id {
            return Some(&self.signed);
        }
        self.retired_signed.iter().map(|r| &r.key).find(|k| k.public().id == id)
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
                Some((k, _)) => Some(k),
                None if id < self.next_one_time_id && id != 0 => return Err(HandshakeError::OneTimePreKeyReused(id)),
                None => return Err(HandshakeError::UnknownOneTimePreKey(id)),
            },
        };
        let pq_id = header.pq_prekey_id;
        let mut consumed = Consumed { one_time: header.one_time_prekey_id, pq_one_time: None, last_resort_use: None };
        let pq = if let Some((k, _)) = self.pq_one_time.get(&pq_id) {
            consumed.pq_one_time = Some(pq_id);
            k
        } else if let Some(k) = core::iter::once(&self.last_resort)
            .chain(self.retired_last_resort.iter().map(|r| &r.key))
            .find(|k| k.public().id == pq_id)
        {
            let record = Self::last_resort_use(header);
            if self.last_resort_uses.contains(&record) {
                return Err(HandshakeError::LastResortReplay);
            }
            consumed.last_resort_use = Some(record);
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

    /// Consumes the prekeys of a session start that succeeded.
    pub(crate) fn commit(&mut self, consumed: Consumed) {
        if let Some(id) = consumed.one_time {
            self.one_time.remove(&id);
        }
        if let Some(id) = consumed.pq_one_time {
            self.pq_one_time.remove(&id);
        }
        if let Some(record) = consumed.last_resort_use {
            self.last_resort_uses.push_back(record);
            while self.last_resort_uses.len() > MAX_LAST_RESORT_USES {
                self.last_resort_uses.pop_front();
            }
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let (seed, agreement) = self.identity.secret_bytes();
        w.bytes(&seed).bytes(&agreement);
        self.signed.write_secret(w);
        w.u32(self.retired_signed.len() as u32);
        for r in &self.retired_signed {
            w.u64(r.retired_at);
            r.key.write_secret(w);
        }
        w.u32(self.next_signed_id);
        w.u32(self.one_time.len() as u32);
        for (k, issued) in self.one_time.values() {
            w.flag(*issued);
            k.write_secret(w);
        }
        w.u32(self.next_one_time_id);
        w.u32(self.pq_one_time.len() as u32);
        for (k, issued) in self.pq_one_time.values() {
            w.flag(*issued);
            k.write_secret(w);
        }
        self.last_resort.write_secret(w);
        w.u32(self.retired_last_resort.len() as u32);
        for r in &self.retired_last_resort {
            w.u64(r.retired_at);
            r.key.write_secret(w);
        }
        w.u32(self.next_pq_id);
        w.u32(self.last_resort_uses.len() as u32);
        for u in &self.last_resort_uses {
            w.bytes(u);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let seed: [u8; 32] = r.array()?;
        let agreement: [u8; 32] = r.array()?;
        let identity = IdentityKeyPair::from_secret_bytes(&seed, &agreement)?;
        let signed = SignedPreKey::read_secret(r)?;
        let n = r.count(MAX_RETIRED_PREKEYS, "retired signed prekey count")?;
        let mut retired_signed = Vec::with_capacity(n);
        for _ in 0..n {
            let retired_at = r.u64()?;
            retired_signed.push(Retired { retired_at, key: SignedPreKey::read_secret(r)? });
        }
        let next_signed_id = r.u32()?;
        let n = r.count(MAX_ONE_TIME_PREKEYS, "one-time prekey count")?;
        let mut one_time = BTreeMap::new();
        for _ in 0..n {
            let issued = r.flag("issued flag")?;
            let k = OneTimePreKey::read_secret(r)?;
            one_time.insert(k.public().id, (k, issued));
        }
        let next_one_time_id = r.u32()?;
        let n = r.count(MAX_PQ_ONE_TIME_PREKEYS, "pq prekey count")?;
        let mut pq_one_time = BTreeMap::new();
        for _ in 0..n {
            let issued = r.flag("issued flag")?;
            let k = PqPreKey::read_secret(r)?;
            pq_one_time.insert(k.public().id, (k, issued));
        }
        let last_resort = PqPreKey::read_secret(r)?;
        let n = r.count(MAX_RETIRED_PREKEYS, "retired last-resort count")?;
        let mut retired_last_resort = Vec::with_capacity(n);
        for _ in 0..n {
            let retired_at = r.u64()?;
            retired_last_resort.push(Retired { retired_at, key: PqPreKey::read_secret(r)? });
        }
        let next_pq_id = r.u32()?;
        let n = r.count(MAX_LAST_RESORT_USES, "last-resort use count")?;
        let mut last_resort_uses = VecDeque::with_capacity(n);
        for _ in 0..n {
            last_resort_uses.push_back(r.array()?);
        }
        if one_time.len() != one_time.keys().filter(|id| **id < next_one_time_id).count() {
            return Err(DecodeError::InvalidValue("one-time prekey id").into());
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
