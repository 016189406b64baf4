//! The `safety_number` target: [`SafetyNumber::compare_scanned`] on a fixed pair of
//! users' safety number.
//!
//! Asserted: no panic; `Match` only for the other side's genuine payload (byte for
//! byte); every other 66-byte payload of version 1 and type 0x50 is `Mismatch`; a
//! payload of another version is `VersionMismatch` with that version; anything else is
//! refused (`Empty`, `WrongType`, `Truncated`, `TrailingBytes`).

use std::sync::OnceLock;

use gochat_e2ee::trust::safety_number::{SafetyNumber, ScanResult, SCANNABLE_BYTES, SCANNABLE_TYPE};

use crate::fixtures::Seed;

struct Fixture {
    ours: SafetyNumber,
    theirs: [u8; SCANNABLE_BYTES],
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn get() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let (a, b) = ([1u8; 66], [2u8; 66]);
        let ours = SafetyNumber::new("alice@agency.gov.my", &a, "bob@agency.gov.my", &b).expect("fixture");
        let theirs = SafetyNumber::new("bob@agency.gov.my", &b, "alice@agency.gov.my", &a).expect("fixture");
        Fixture { ours, theirs: theirs.scannable() }
    })
}

/// The seeds of the `safety_number` target.
pub fn seeds() -> Vec<(&'static str, Seed)> {
    let f = get();
    let mut flipped = f.theirs;
    flipped[40] ^= 1;
    let mut v2 = f.theirs;
    v2[1] = 2;
    vec![
        ("safety_number", ("valid-match", f.theirs.to_vec())),
        ("safety_number", ("valid-own-payload", f.ours.scannable().to_vec())),
        ("safety_number", ("valid-flipped", flipped.to_vec())),
        ("safety_number", ("valid-version-2", v2.to_vec())),
        ("safety_number", ("invalid-truncated", f.theirs[..65].to_vec())),
        ("safety_number", ("invalid-trailing", [&f.theirs[..], &[0]].concat())),
        ("safety_number", ("invalid-type", [&[0x51][..], &f.theirs[1..]].concat())),
    ]
}

/// `safety_number`: see the module documentation. Returns whether the payload was
/// accepted as a payload (any of the three results).
pub fn safety_number(data: &[u8]) -> bool {
    let f = get();
    match f.ours.compare_scanned(data) {
        Ok(ScanResult::Match) => {
            assert_eq!(data, &f.theirs[..], "Match for a payload that is not the other side's");
            true
        }
        Ok(ScanResult::Mismatch) => {
            assert!(data.len() == SCANNABLE_BYTES && data[0] == SCANNABLE_TYPE && data[1] == 1);
            assert_ne!(data, &f.theirs[..], "the genuine payload refused");
            true
        }
        Ok(ScanResult::VersionMismatch { theirs }) => {
            assert!(data.len() >= 2 && data[0] == SCANNABLE_TYPE && data[1] == theirs && theirs != 1);
            true
        }
        Err(_) => {
            assert!(data.len() != SCANNABLE_BYTES || data[0] != SCANNABLE_TYPE, "a well-formed payload refused");
            false
        }
    }
}
