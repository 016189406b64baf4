//! `certificates.json`: agency and device certificates, a chain and revocation lists
//! (`docs/protocol.md` §15.4–15.8) issued from fixed seeds by the library, and
//! `verify_device` on the valid chain and on one chain per failure reason. [`run_model`]
//! re-derives every byte with ed25519-dalek alone (Ed25519 signatures are
//! deterministic) and every verification result with its own reading of the check
//! order, never the library's certificate code.

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use gochat_e2ee::trust::address::DeviceAddress;
use gochat_e2ee::trust::certificate::{
    verify_device, AgencyCertificate, AgencyKey, CertificateChain, DeviceCertificate, Revocations, RootKey, TrustRoots,
};
use gochat_e2ee::{Error, IdentityKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{json, Value};

use super::{arr, hex_field, hv, str_field, u64_field};

pub(crate) const NAME: &str = "certificates";
pub(crate) const DESCRIPTION: &str = "Agency-certified identities (§15.4–15.8): from fixed Ed25519 seeds, a root's agency certificate (two domains), an agency's device certificate, their chain, the agency's and the root's revocation lists, and verify_device at a fixed time for the valid chain and one case per failure reason (expired, not yet valid, wrong domain, revoked device, revoked agency, bad signature, unknown root, malformed), each with the chain bytes, the roots and the lists held, and the verified identity or the error code.";

const ROOT_SEED: [u8; 32] = [0x11; 32];
const AGENCY_SEED: [u8; 32] = [0x22; 32];
const OTHER_ROOT_SEED: [u8; 32] = [0x33; 32];
const NOW: u64 = 1_800_000_000;
const AGENCY_SERIAL: u64 = 7;
const DEVICE_SERIAL: u64 = 42;
const AGENCY_NAME: &str = "Kementerian Kewangan";
const DOMAINS: [&str; 2] = ["mof.gov.my", "treasury.gov.my"];
const AGENCY_VALIDITY: (u64, u64) = (NOW - 31_536_000, NOW + 31_536_000);
const DEVICE_VALIDITY: (u64, u64) = (NOW - 86_400, NOW + 86_400);
const ADDRESS: &str = "aminah@mof.gov.my/phone-1";
const WRONG_ADDRESS: &str = "aminah@pmo.gov.my/phone-1";

/// A verification case: name, chain bytes, `now`, roots, revocation lists held.
type Case<'a> = (&'a str, Vec<u8>, u64, &'a [[u8; 32]], Vec<Vec<u8>>);

fn lib<T, E: Into<Error>>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("library: {}", e.into()))
}

pub(crate) fn run_library() -> Result<(Value, Value), String> {
    let device = gochat_e2ee::Device::new("aminah", NOW, &mut ChaCha20Rng::from_seed([0x44; 32]));
    let identity = *device.identity();
    let root = RootKey::from_seed(&ROOT_SEED);
    let other = RootKey::from_seed(&OTHER_ROOT_SEED);
    let agency = AgencyKey::from_seed(&AGENCY_SEED);
    let (anb, ana) = AGENCY_VALIDITY;
    let (dnb, dna) = DEVICE_VALIDITY;
    let agency_cert = lib(root.certify_agency(AGENCY_SERIAL, &agency.public_key(), AGENCY_NAME, &DOMAINS, anb, ana))?;
    let cert = |address: &str| -> Result<DeviceCertificate, String> {
        let a = DeviceAddress::parse(address).map_err(|e| format!("library: {e}"))?;
        lib(agency.certify_device(DEVICE_SERIAL, &a, &identity, dnb, dna))
    };
    let device_cert = cert(ADDRESS)?;
    let chain = CertificateChain::new(device_cert.clone(), agency_cert.clone()).to_bytes();
    let wrong = CertificateChain::new(cert(WRONG_ADDRESS)?, agency_cert.clone()).to_bytes();
    let mut bad_sig = device_cert.to_bytes();
    if let Some(b) = bad_sig.last_mut() {
        *b ^= 0x01;
    }
    let bad_sig = lib(DeviceCertificate::from_bytes(&bad_sig))?;
    let bad_sig = CertificateChain::new(bad_sig, agency_cert.clone()).to_bytes();
    let agency_list = lib(agency.revocation_list(3, NOW - 3600, &[DEVICE_SERIAL, 5]))?.to_bytes();
    let root_list = lib(root.revocation_list(1, NOW - 7200, &[AGENCY_SERIAL]))?.to_bytes();

    let roots = [root.public_key()];
    let other_roots = [other.public_key()];
    let cases: Vec<Case<'_>> = vec![
        ("valid", chain.clone(), NOW, &roots, vec![]),
        ("valid_at_not_before", chain.clone(), dnb, &roots, vec![]),
        ("expired", chain.clone(), dna, &roots, vec![]),
        ("not_yet_valid", chain.clone(), dnb - 1, &roots, vec![]),
        ("agency_expired", chain.clone(), ana, &roots, vec![]),
        ("wrong_domain", wrong, NOW, &roots, vec![]),
        ("revoked_device", chain.clone(), NOW, &roots, vec![agency_list.clone()]),
        ("revoked_agency", chain.clone(), NOW, &roots, vec![root_list.clone(), agency_list.clone()]),
        ("bad_signature", bad_sig, NOW, &roots, vec![]),
        ("unknown_root", chain.clone(), NOW, &other_roots, vec![]),
        ("malformed", chain[..chain.len() - 1].to_vec(), NOW, &roots, vec![]),
    ];
    let mut ins = Vec::new();
    let mut outs = Vec::new();
    for (name, bytes, now, roots, lists) in cases {
        let trust = lib(TrustRoots::new(roots))?;
        let mut revocations = Revocations::new();
        for l in &lists {
            let _ = lib(revocations.apply(l, &trust, Some(&agency_cert), NOW))?;
        }
        let result = match verify_device(&bytes, &trust, &revocations, now) {
            Ok(v) => json!({
                "peer": v.address().peer_name(),
                "identity": hv(&v.identity().to_bytes()),
                "agency_name": v.agency_name(),
                "agency_key": hv(v.agency_key()),
                "serial": v.serial(),
                "not_after": v.not_after(),
            }),
            Err(e) => json!({ "error": Error::from(e).code().as_str() }),
        };
        ins.push(json!({
            "name": name,
            "chain": hv(&bytes),
            "now": now,
            "roots": roots.iter().map(|r| hv(r)).collect::<Vec<_>>(),
            "revocation_lists": lists.iter().map(|l| hv(l)).collect::<Vec<_>>(),
        }));
        outs.push(json!({ "name": name, "result": result }));
    }
    let inputs = json!({
        "root_seed": hv(&ROOT_SEED),
        "agency_seed": hv(&AGENCY_SEED),
        "other_root_seed": hv(&OTHER_ROOT_SEED),
        "identity": hv(&identity.to_bytes()),
        "agency_serial": AGENCY_SERIAL,
        "agency_name": AGENCY_NAME,
        "domains": DOMAINS,
        "agency_not_before": anb,
        "agency_not_after": ana,
        "device_serial": DEVICE_SERIAL,
        "address": ADDRESS,
        "wrong_address": WRONG_ADDRESS,
        "device_not_before": dnb,
        "device_not_after": dna,
        "agency_list": {"seq": 3, "issued_at": NOW - 3600, "serials": [DEVICE_SERIAL, 5]},
        "root_list": {"seq": 1, "issued_at": NOW - 7200, "serials": [AGENCY_SERIAL]},
        "cases": ins,
    });
    let outputs = json!({
        "root_public": hv(&root.public_key()),
        "agency_public": hv(&agency.public_key()),
        "agency_certificate": hv(&agency_cert.to_bytes()),
        "device_certificate": hv(&device_cert.to_bytes()),
        "chain": hv(&chain),
        "agency_revocation_list": hv(&agency_list),
        "root_revocation_list": hv(&root_list),
        "cases": outs,
    });
    // The library must decode what it issued.
    lib(AgencyCertificate::from_bytes(&agency_cert.to_bytes()))?;
    lib(IdentityKey::from_bytes(&identity.to_bytes()))?;
    Ok((inputs, outputs))
}

// ---------------------------------------------------------------------------------
// The model: §15.4–15.8 with ed25519-dalek alone.

const SIG_AGENCY: &[u8] = b"GoChat-E2EE v1 agency certificate";
const SIG_DEVICE: &[u8] = b"GoChat-E2EE v1 device certificate";
const SIG_LIST: &[u8] = b"GoChat-E2EE v1 revocation list";

fn seed32(v: &Value, name: &str) -> Result<[u8; 32], String> {
    hex_field(v, name)?.try_into().map_err(|_| format!("`{name}` is not 32 bytes"))
}

fn signed(key: &SigningKey, label: &[u8], mut body: Vec<u8>) -> Vec<u8> {
    let sig = key.sign(&[label, &body].concat()).to_bytes();
    body.extend_from_slice(&sig);
    body
}

fn short(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn list_bytes(key: &SigningKey, l: &Value) -> Result<Vec<u8>, String> {
    let mut serials: Vec<u64> = arr(l, "serials")?.iter().filter_map(Value::as_u64).collect();
    serials.sort_unstable();
    let mut b = vec![0x54, 0x01];
    b.extend_from_slice(&key.verifying_key().to_bytes());
    b.extend_from_slice(&u64_field(l, "seq")?.to_be_bytes());
    b.extend_from_slice(&u64_field(l, "issued_at")?.to_be_bytes());
    b.extend_from_slice(&(serials.len() as u16).to_be_bytes());
    for s in serials {
        b.extend_from_slice(&s.to_be_bytes());
    }
    Ok(signed(key, SIG_LIST, b))
}

/// A cursor that fails (None) past the end.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
    }
    fn key(&mut self) -> Option<[u8; 32]> {
        self.take(32).and_then(|b| b.try_into().ok())
    }
    fn short(&mut self) -> Option<String> {
        let n = usize::from(self.u8()?);
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

struct Cert {
    serial: u64,
    issuer: [u8; 32],
    subject: Vec<u8>,
    names: Vec<String>,
    not_before: u64,
    not_after: u64,
    signed: Vec<u8>,
    sig: [u8; 64],
}

/// Parses an agency (`0x51`) or device (`0x52`) certificate; `names` is the agency name
/// followed by the domains, or the user id and the device id.
fn parse_cert(b: &[u8], agency: bool) -> Option<Cert> {
    let mut c = Cur(b);
    if c.take(2)? != [if agency { 0x51 } else { 0x52 }, 0x01] {
        return None;
    }
    let serial = c.u64()?;
    let issuer = c.key()?;
    let (subject, names, not_before, not_after) = if agency {
        let key = c.take(32)?.to_vec();
        let name = c.short()?;
        let (nb, na) = (c.u64()?, c.u64()?);
        let mut names = vec![name];
        for _ in 0..c.u8()? {
            names.push(c.short()?);
        }
        (key, names, nb, na)
    } else {
        let user = c.short()?;
        let device = c.short()?;
        let identity = c.take(66)?.to_vec();
        (identity, vec![user, device], c.u64()?, c.u64()?)
    };
    let sig: [u8; 64] = c.take(64)?.try_into().ok()?;
    if !c.0.is_empty() || not_after <= not_before {
        return None;
    }
    Some(Cert { serial, issuer, subject, names, not_before, not_after, signed: b[..b.len() - 64].to_vec(), sig })
}

fn parse_chain(b: &[u8]) -> Option<(Cert, Cert)> {
    let mut c = Cur(b);
    if c.take(2)? != [0x53, 0x01] {
        return None;
    }
    let n = c.u16()?;
    let device = parse_cert(c.take(n)?, false)?;
    let n = c.u16()?;
    let agency = parse_cert(c.take(n)?, true)?;
    c.0.is_empty().then_some((device, agency))
}

/// A revocation list's issuer and serials, if its signature verifies.
fn parse_list(b: &[u8]) -> Option<([u8; 32], Vec<u64>)> {
    let mut c = Cur(b);
    if c.take(2)? != [0x54, 0x01] {
        return None;
    }
    let issuer = c.key()?;
    let (_seq, _issued) = (c.u64()?, c.u64()?);
    let serials: Vec<u64> = (0..c.u16()?).map(|_| c.u64()).collect::<Option<_>>()?;
    let sig: [u8; 64] = c.take(64)?.try_into().ok()?;
    c.0.is_empty().then_some(())?;
    verifies(&issuer, SIG_LIST, &b[..b.len() - 64], &sig).then_some((issuer, serials))
}

fn verifies(key: &[u8; 32], label: &[u8], body: &[u8], sig: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(key)
        .map(|vk| vk.verify(&[label, body].concat(), &ed25519_dalek::Signature::from_bytes(sig)).is_ok())
        .unwrap_or(false)
}

fn time(c: &Cert, now: u64) -> Option<&'static str> {
    if now < c.not_before {
        Some("CertificateNotYetValid")
    } else if now >= c.not_after {
        Some("CertificateExpired")
    } else {
        None
    }
}

/// §15.8, steps 1 to 9.
fn verify(chain: &[u8], roots: &[[u8; 32]], lists: &[([u8; 32], Vec<u64>)], now: u64) -> Value {
    let err = |code: &str| json!({ "error": code });
    let Some((d, a)) = parse_chain(chain) else { return err("Malformed") };
    let revoked = |issuer: &[u8; 32], serial| lists.iter().any(|(i, s)| i == issuer && s.contains(&serial));
    if !roots.contains(&a.issuer) {
        return err("UnknownRoot");
    }
    if !verifies(&a.issuer, SIG_AGENCY, &a.signed, &a.sig) {
        return err("BadSignature");
    }
    if let Some(e) = time(&a, now) {
        return err(e);
    }
    if revoked(&a.issuer, a.serial) {
        return err("CertificateRevoked");
    }
    if d.issuer[..] != a.subject[..] || !verifies(&d.issuer, SIG_DEVICE, &d.signed, &d.sig) {
        return err("BadSignature");
    }
    if let Some(e) = time(&d, now) {
        return err(e);
    }
    let domain = d.names[0].rsplit_once('@').map_or("", |(_, dom)| dom);
    if !a.names[1..].iter().any(|x| x == domain) {
        return err("WrongDomain");
    }
    if revoked(&d.issuer, d.serial) {
        return err("CertificateRevoked");
    }
    json!({
        "peer": format!("{}/{}", d.names[0], d.names[1]),
        "identity": hv(&d.subject),
        "agency_name": a.names[0],
        "agency_key": hv(&a.subject),
        "serial": d.serial,
        "not_after": d.not_after.min(a.not_after),
    })
}

pub(crate) fn run_model(inputs: &Value) -> Result<(Value, Value), String> {
    let root = SigningKey::from_bytes(&seed32(inputs, "root_seed")?);
    let agency = SigningKey::from_bytes(&seed32(inputs, "agency_seed")?);
    let identity = hex_field(inputs, "identity")?;
    // §15.4.
    let mut domains: Vec<&str> = arr(inputs, "domains")?.iter().filter_map(Value::as_str).collect();
    domains.sort_unstable();
    let mut a = vec![0x51, 0x01];
    a.extend_from_slice(&u64_field(inputs, "agency_serial")?.to_be_bytes());
    a.extend_from_slice(&root.verifying_key().to_bytes());
    a.extend_from_slice(&agency.verifying_key().to_bytes());
    short(&mut a, str_field(inputs, "agency_name")?);
    a.extend_from_slice(&u64_field(inputs, "agency_not_before")?.to_be_bytes());
    a.extend_from_slice(&u64_field(inputs, "agency_not_after")?.to_be_bytes());
    a.push(domains.len() as u8);
    for d in &domains {
        short(&mut a, d);
    }
    let agency_cert = signed(&root, SIG_AGENCY, a);
    // §15.5.
    let device_cert = |address: &str| -> Result<Vec<u8>, String> {
        let (user, device) = address.split_once('/').ok_or("address")?;
        let mut d = vec![0x52, 0x01];
        d.extend_from_slice(&u64_field(inputs, "device_serial")?.to_be_bytes());
        d.extend_from_slice(&agency.verifying_key().to_bytes());
        short(&mut d, user);
        short(&mut d, device);
        d.extend_from_slice(&identity);
        d.extend_from_slice(&u64_field(inputs, "device_not_before")?.to_be_bytes());
        d.extend_from_slice(&u64_field(inputs, "device_not_after")?.to_be_bytes());
        Ok(signed(&agency, SIG_DEVICE, d))
    };
    // §15.6.
    let chain_of = |d: &[u8]| {
        [&[0x53, 0x01][..], &(d.len() as u16).to_be_bytes(), d, &(agency_cert.len() as u16).to_be_bytes(), &agency_cert]
            .concat()
    };
    let device = device_cert(str_field(inputs, "address")?)?;
    let chain = chain_of(&device);
    let agency_list = list_bytes(&agency, super::field(inputs, "agency_list")?)?;
    let root_list = list_bytes(&root, super::field(inputs, "root_list")?)?;
    let wrong = chain_of(&device_cert(str_field(inputs, "wrong_address")?)?);
    let mut tampered = device.clone();
    if let Some(b) = tampered.last_mut() {
        *b ^= 0x01;
    }
    let bad_sig = chain_of(&tampered);

    let mut inter = Vec::new();
    let mut outs = Vec::new();
    for case in arr(inputs, "cases")? {
        let name = str_field(case, "name")?;
        let bytes = hex_field(case, "chain")?;
        // The chain each case is built from, re-derived here.
        let expected = match name {
            "wrong_domain" => wrong.clone(),
            "bad_signature" => bad_sig.clone(),
            "malformed" => chain[..chain.len() - 1].to_vec(),
            _ => chain.clone(),
        };
        if bytes != expected {
            return Err(format!("case {name}: the chain is not the one §15.4–15.6 gives"));
        }
        let roots: Vec<[u8; 32]> = arr(case, "roots")?
            .iter()
            .map(|r| r.as_str().and_then(crate::hex::decode).and_then(|b| b.try_into().ok()).ok_or("root"))
            .collect::<Result<_, _>>()?;
        let lists: Vec<([u8; 32], Vec<u64>)> = arr(case, "revocation_lists")?
            .iter()
            .map(|l| l.as_str().and_then(crate::hex::decode).and_then(|b| parse_list(&b)).ok_or("revocation list"))
            .collect::<Result<_, _>>()?;
        inter.push(json!({ "name": name, "revoked": lists.iter().map(|(i, s)| json!({"issuer": hv(i), "serials": s})).collect::<Vec<_>>() }));
        outs.push(json!({ "name": name, "result": verify(&bytes, &roots, &lists, u64_field(case, "now")?) }));
    }
    let outputs = json!({
        "root_public": hv(&root.verifying_key().to_bytes()),
        "agency_public": hv(&agency.verifying_key().to_bytes()),
        "agency_certificate": hv(&agency_cert),
        "device_certificate": hv(&device),
        "chain": hv(&chain),
        "agency_revocation_list": hv(&agency_list),
        "root_revocation_list": hv(&root_list),
        "cases": outs,
    });
    Ok((json!({ "cases": inter }), outputs))
}
