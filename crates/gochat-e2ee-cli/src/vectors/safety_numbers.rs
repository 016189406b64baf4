//! `safety_numbers.json`: safety numbers and scannable payloads (`docs/protocol.md` §15)
//! for a few pairs of users, computed by the library; [`run_model`] re-derives them with
//! SHA-512 alone (never the library's trust code).

use gochat_e2ee::trust::safety_number::{SafetyNumber, ScanResult};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};

use super::{arr, hex_field, hv, str_field};

pub(crate) const NAME: &str = "safety_numbers";
pub(crate) const DESCRIPTION: &str = "Safety numbers (§15): for each pair of users (official email, identity key encoding), the 60-digit number both sides see, its grouped form, each side's scannable payload, the fingerprint of each user (SHA-512 iterated 5,200 times), and the comparison of each side's payload with the other's (Match), with its own (Mismatch) and with a payload of version 2 (VersionMismatch).";

/// §15.1.
const LABEL: &[u8] = b"GoChat-E2EE v1 safety number";
const ITERATIONS: u32 = 5_200;

fn key(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed)).collect()
}

fn pairs() -> Vec<(&'static str, Vec<u8>, &'static str, Vec<u8>)> {
    vec![
        ("alice@agency.gov.my", key(1, 66), "bob@agency.gov.my", key(2, 66)),
        ("bob@agency.gov.my", key(2, 66), "alice@agency.gov.my", key(1, 66)),
        ("alice@agency.gov.my", key(1, 66), "bob@agency.gov.my", key(3, 66)),
        ("menteri@jpm.gov.my", key(7, 32), "setiausaha@jpm.gov.my", key(9, 32)),
    ]
}

fn scan(r: ScanResult) -> Value {
    match r {
        ScanResult::Match => json!("Match"),
        ScanResult::Mismatch => json!("Mismatch"),
        ScanResult::VersionMismatch { theirs } => json!({"VersionMismatch": theirs}),
    }
}

pub(crate) fn run_library() -> Result<(Value, Value), String> {
    let mut ins = Vec::new();
    let mut outs = Vec::new();
    for (a, ka, b, kb) in pairs() {
        let ours = SafetyNumber::new(a, &ka, b, &kb).map_err(|e| format!("library: {e}"))?;
        let theirs = SafetyNumber::new(b, &kb, a, &ka).map_err(|e| format!("library: {e}"))?;
        let mut v2 = theirs.scannable();
        v2[1] = 2;
        let cmp = |p: &[u8]| ours.compare_scanned(p).map(scan).map_err(|e| format!("library: {e}"));
        ins.push(json!({"local_id": a, "local_identity": hv(&ka), "remote_id": b, "remote_identity": hv(&kb)}));
        outs.push(json!({
            "digits": ours.digits(),
            "grouped": ours.grouped(),
            "scannable_local": hv(&ours.scannable()),
            "scannable_remote": hv(&theirs.scannable()),
            "compare_remote": cmp(&theirs.scannable())?,
            "compare_own": cmp(&ours.scannable())?,
            "compare_version_2": cmp(&v2)?,
        }));
    }
    Ok((json!({"pairs": ins}), json!({"pairs": outs})))
}

/// §15.1: `F_0 = SHA-512(label || version || u16 len || id || u16 len || identity)`,
/// `F_i = SHA-512(F_{i-1} || identity)`, 5,200 in all.
fn fingerprint(id: &str, identity: &[u8]) -> [u8; 64] {
    let mut f: [u8; 64] = Sha512::new()
        .chain_update(LABEL)
        .chain_update([1u8])
        .chain_update((id.len() as u16).to_be_bytes())
        .chain_update(id.as_bytes())
        .chain_update((identity.len() as u16).to_be_bytes())
        .chain_update(identity)
        .finalize()
        .into();
    for _ in 1..ITERATIONS {
        f = Sha512::new().chain_update(f).chain_update(identity).finalize().into();
    }
    f
}

/// §15.1: six 5-byte big-endian integers mod 100,000, five digits each.
fn thirty(f: &[u8; 64]) -> String {
    (0..6)
        .map(|i| {
            let v = f[5 * i..5 * i + 5].iter().fold(0u64, |a, b| a * 256 + u64::from(*b));
            format!("{:05}", v % 100_000)
        })
        .collect()
}

/// §15.2: `0x50 || 0x01 || F_local[..32] || F_remote[..32]`; a scanned payload matches
/// if its first half is our remote's and its second ours.
pub(crate) fn run_model(inputs: &Value) -> Result<(Value, Value), String> {
    let mut inter = Vec::new();
    let mut outs = Vec::new();
    for p in arr(inputs, "pairs")? {
        let (a, b) = (str_field(p, "local_id")?, str_field(p, "remote_id")?);
        let (ka, kb) = (hex_field(p, "local_identity")?, hex_field(p, "remote_identity")?);
        let (fa, fb) = (fingerprint(a, &ka), fingerprint(b, &kb));
        let (da, db) = (thirty(&fa), thirty(&fb));
        let digits = if da <= db { format!("{da}{db}") } else { format!("{db}{da}") };
        let grouped: Vec<&str> = (0..12).map(|i| &digits[5 * i..5 * i + 5]).collect();
        let payload = |x: &[u8; 64], y: &[u8; 64]| [&[0x50, 0x01][..], &x[..32], &y[..32]].concat();
        let (ours, theirs) = (payload(&fa, &fb), payload(&fb, &fa));
        let compare = |q: &[u8]| {
            if q[1] != 1 {
                json!({"VersionMismatch": q[1]})
            } else if q[2..34] == fb[..32] && q[34..] == fa[..32] {
                json!("Match")
            } else {
                json!("Mismatch")
            }
        };
        let mut v2 = theirs.clone();
        v2[1] = 2;
        inter.push(json!({"local_fingerprint": hv(&fa), "remote_fingerprint": hv(&fb), "local_digits": da, "remote_digits": db}));
        outs.push(json!({
            "digits": digits,
            "grouped": grouped.join(" "),
            "scannable_local": hv(&ours),
            "scannable_remote": hv(&theirs),
            "compare_remote": compare(&theirs),
            "compare_own": compare(&ours),
            "compare_version_2": compare(&v2),
        }));
    }
    Ok((json!({"pairs": inter}), json!({"pairs": outs})))
}
