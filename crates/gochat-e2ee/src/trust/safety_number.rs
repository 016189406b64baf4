//! Safety numbers: a 60-digit number and a scannable payload that two users compare to
//! check that each holds the other's real identity key (`docs/protocol.md` §15).
//!
//! In the style of Signal's numeric fingerprints: each user's half is an iterated
//! SHA-512 (5,200 rounds) over a label, the version, the user id and the identity key;
//! 30 digits come from the first 30 bytes of it. The number shows the two halves in a
//! fixed order (the smaller first), so both users see the same 60 digits whatever the
//! order of the arguments. The scannable payload carries both users' 32-byte halves;
//! comparing a scanned payload with one's own is constant time and says match,
//! mismatch, or another version.

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::labels::SAFETY_NUMBER as LABEL;
use crate::wire::DecodeError;

/// The safety-number version this library computes and compares.
pub const SAFETY_NUMBER_VERSION: u8 = 0x01;
/// SHA-512 rounds per user (as Signal's fingerprints).
pub const FINGERPRINT_ITERATIONS: u32 = 5_200;
/// Digits in a safety number (30 per user).
pub const SAFETY_NUMBER_DIGITS: usize = 60;
/// Length of a scannable payload: type, version, two 32-byte halves.
pub const SCANNABLE_BYTES: usize = 2 + 32 + 32;
/// Longest user id (UTF-8 bytes) a safety number is computed for.
pub const MAX_USER_ID_BYTES: usize = 256;
/// Longest identity key encoding a safety number is computed for.
pub const MAX_IDENTITY_BYTES: usize = 256;
/// Type byte of a scannable payload.
pub const SCANNABLE_TYPE: u8 = crate::wire::type_byte::SAFETY_NUMBER_QR;

/// The result of comparing a scanned payload with one's own.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanResult {
    /// The scanned payload names exactly the two identities this safety number was
    /// computed for: the other user holds our key and we hold theirs.
    Match,
    /// Another identity on one side or both: do not trust the conversation.
    Mismatch,
    /// The scanned payload is of another safety-number version (the other app is older
    /// or newer): nothing can be concluded; ask the user to update and compare again.
    VersionMismatch {
        /// The version the scanned payload has.
        theirs: u8,
    },
}

/// One user's fingerprint: `SHA-512^5200` as specified (§15.1).
fn fingerprint(user_id: &str, identity: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(LABEL);
    h.update([SAFETY_NUMBER_VERSION]);
    h.update((user_id.len() as u16).to_be_bytes());
    h.update(user_id.as_bytes());
    h.update((identity.len() as u16).to_be_bytes());
    h.update(identity);
    let mut out: [u8; 64] = h.finalize().into();
    for _ in 1..FINGERPRINT_ITERATIONS {
        let mut h = Sha512::new();
        h.update(out);
        h.update(identity);
        out = h.finalize().into();
    }
    out
}

/// 30 digits from the first 30 bytes: six 5-byte big-endian integers, each mod 100,000,
/// written with 5 digits.
fn digits(fp: &[u8; 64]) -> String {
    let mut s = String::with_capacity(30);
    for chunk in fp[..30].chunks_exact(5) {
        let v = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        s.push_str(&format!("{:05}", v % 100_000));
    }
    s
}

/// The safety number of a conversation between a local and a remote user.
#[derive(Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    local: [u8; 64],
    remote: [u8; 64],
    number: String,
}

impl core::fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("SafetyNumber").field(&self.grouped()).finish()
    }
}

impl SafetyNumber {
    /// Computes the safety number for `local_id` holding `local_identity` and
    /// `remote_id` holding `remote_identity` (identity key encodings, e.g. the 66 bytes
    /// of an `IdentityKey`). The number is the same on both sides; the scannable payload
    /// is each side's own (its half first). Refuses an empty or too long user id or
    /// identity (`InvalidValue`), and the same user on both sides (`InvalidValue`).
    pub fn new(
        local_id: &str,
        local_identity: &[u8],
        remote_id: &str,
        remote_identity: &[u8],
    ) -> Result<Self, DecodeError> {
        for id in [local_id, remote_id] {
            if id.is_empty() || id.len() > MAX_USER_ID_BYTES {
                return Err(DecodeError::InvalidValue("user id"));
            }
        }
        for key in [local_identity, remote_identity] {
            if key.is_empty() || key.len() > MAX_IDENTITY_BYTES {
                return Err(DecodeError::InvalidValue("identity"));
            }
        }
        if local_id == remote_id && local_identity == remote_identity {
            return Err(DecodeError::InvalidValue("same user on both sides"));
        }
        let local = fingerprint(local_id, local_identity);
        let remote = fingerprint(remote_id, remote_identity);
        let (a, b) = (digits(&local), digits(&remote));
        let number = if a <= b { a + &b } else { b + &a };
        Ok(SafetyNumber { local, remote, number })
    }

    /// The 60 digits, without spaces.
    pub fn digits(&self) -> &str {
        &self.number
    }

    /// The 60 digits in twelve groups of five, separated by single spaces.
    pub fn grouped(&self) -> String {
        let groups: Vec<&str> = (0..SAFETY_NUMBER_DIGITS / 5).map(|i| &self.number[5 * i..5 * i + 5]).collect();
        groups.join(" ")
    }

    /// The payload to show as a QR code: `0x50 || version || local[..32] || remote[..32]`.
    pub fn scannable(&self) -> [u8; SCANNABLE_BYTES] {
        let mut out = [0u8; SCANNABLE_BYTES];
        out[0] = SCANNABLE_TYPE;
        out[1] = SAFETY_NUMBER_VERSION;
        out[2..34].copy_from_slice(&self.local[..32]);
        out[34..].copy_from_slice(&self.remote[..32]);
        out
    }

    /// Compares a payload scanned from the other user's screen with this one, in
    /// constant time over both halves: it must name the other user's identity first and
    /// ours second. Refuses a payload of the wrong length or type (`Decode`); another
    /// version is [`ScanResult::VersionMismatch`], not a mismatch.
    pub fn compare_scanned(&self, scanned: &[u8]) -> Result<ScanResult, DecodeError> {
        match scanned.first() {
            None => return Err(DecodeError::Empty),
            Some(&t) if t != SCANNABLE_TYPE => {
                return Err(DecodeError::WrongType { expected: SCANNABLE_TYPE, found: t });
            }
            Some(_) => {}
        }
        let version = *scanned.get(1).ok_or(DecodeError::Truncated)?;
        if version != SAFETY_NUMBER_VERSION {
            return Ok(ScanResult::VersionMismatch { theirs: version });
        }
        if scanned.len() < SCANNABLE_BYTES {
            return Err(DecodeError::Truncated);
        }
        if scanned.len() > SCANNABLE_BYTES {
            return Err(DecodeError::TrailingBytes(scanned.len() - SCANNABLE_BYTES));
        }
        let theirs_is_remote = scanned[2..34].ct_eq(&self.remote[..32]);
        let ours_is_local = scanned[34..].ct_eq(&self.local[..32]);
        Ok(if bool::from(theirs_is_remote & ours_is_local) { ScanResult::Match } else { ScanResult::Mismatch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &[u8] = &[1; 66];
    const BOB: &[u8] = &[2; 66];

    fn sn(a: &str, ka: &[u8], b: &str, kb: &[u8]) -> SafetyNumber {
        SafetyNumber::new(a, ka, b, kb).unwrap()
    }

    #[test]
    fn both_sides_see_the_same_sixty_digits_in_groups_of_five() {
        let a = sn("alice@agency.gov.my", ALICE, "bob@agency.gov.my", BOB);
        let b = sn("bob@agency.gov.my", BOB, "alice@agency.gov.my", ALICE);
        assert_eq!(a.digits(), b.digits());
        assert_eq!(a.digits().len(), 60);
        assert!(a.digits().bytes().all(|c| c.is_ascii_digit()));
        let g = a.grouped();
        assert_eq!(g.len(), 60 + 11);
        assert_eq!(g.split(' ').count(), 12);
        assert_eq!(g.replace(' ', ""), a.digits());
        assert_eq!(format!("{a:?}"), format!("SafetyNumber({g:?})"));
    }

    #[test]
    fn another_key_or_user_id_changes_the_number() {
        let base = sn("alice", ALICE, "bob", BOB);
        let mut other = BOB.to_vec();
        other[65] ^= 1;
        assert_ne!(base.digits(), sn("alice", ALICE, "bob", &other).digits());
        assert_ne!(base.digits(), sn("alice", ALICE, "bob2", BOB).digits());
        // Only one half changes: the other 30 digits stay.
        let changed = sn("alice", ALICE, "bob", &other);
        let halves = |s: &SafetyNumber| [s.digits()[..30].to_owned(), s.digits()[30..].to_owned()];
        let (x, y) = (halves(&base), halves(&changed));
        assert!(x.iter().any(|h| y.contains(h)));
    }

    #[test]
    fn scanned_payloads_match_only_for_the_same_two_identities() {
        let a = sn("alice", ALICE, "bob", BOB);
        let b = sn("bob", BOB, "alice", ALICE);
        assert_eq!(a.compare_scanned(&b.scannable()), Ok(ScanResult::Match));
        assert_eq!(b.compare_scanned(&a.scannable()), Ok(ScanResult::Match));
        // Our own payload is not the other's (the halves are in the other order).
        assert_eq!(a.compare_scanned(&a.scannable()), Ok(ScanResult::Mismatch));
        // Mallory's key in Bob's place, on either side.
        let mallory = [3u8; 66];
        let m = sn("bob", &mallory, "alice", ALICE);
        assert_eq!(a.compare_scanned(&m.scannable()), Ok(ScanResult::Mismatch));
        let a_m = sn("alice", ALICE, "bob", &mallory);
        assert_eq!(a_m.compare_scanned(&b.scannable()), Ok(ScanResult::Mismatch));
        for i in 2..SCANNABLE_BYTES {
            let mut p = b.scannable();
            p[i] ^= 1;
            assert_eq!(a.compare_scanned(&p), Ok(ScanResult::Mismatch), "byte {i}");
        }
        let mut v2 = b.scannable();
        v2[1] = 2;
        assert_eq!(a.compare_scanned(&v2), Ok(ScanResult::VersionMismatch { theirs: 2 }));
        assert_eq!(a.compare_scanned(&[]), Err(DecodeError::Empty));
        assert!(matches!(a.compare_scanned(&[0x51; 66]), Err(DecodeError::WrongType { .. })));
        assert_eq!(a.compare_scanned(&b.scannable()[..65]), Err(DecodeError::Truncated));
        assert_eq!(a.compare_scanned(&[&b.scannable()[..], &[0]].concat()), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(SafetyNumber::new("", ALICE, "bob", BOB).is_err());
        assert!(SafetyNumber::new("alice", &[], "bob", BOB).is_err());
        assert!(SafetyNumber::new(&"a".repeat(257), ALICE, "bob", BOB).is_err());
        assert!(SafetyNumber::new("alice", ALICE, "bob", &[0; 257]).is_err());
        assert!(SafetyNumber::new("alice", ALICE, "alice", ALICE).is_err());
    }

    #[test]
    fn digits_are_five_byte_integers_mod_100000() {
        let mut fp = [0u8; 64];
        fp[..5].copy_from_slice(&[0xff; 5]); // 2^40 - 1 = 1099511627775
        fp[5..10].copy_from_slice(&[0, 0, 0, 0, 7]);
        assert_eq!(&digits(&fp)[..10], "2777500007");
    }
}
