use super::*;
use crate::keys::IdentityKeyPair;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_800_000_000;
const YEAR: u64 = 365 * 24 * 3600;

/// A root, an agency for `mof.gov.my` and `treasury.gov.my`, and one device of
/// `aminah@mof.gov.my`.
struct Pki {
    root: RootKey,
    agency: AgencyKey,
    agency_cert: AgencyCertificate,
    device_cert: DeviceCertificate,
    identity: IdentityKey,
    roots: TrustRoots,
}

fn address(s: &str) -> DeviceAddress {
    DeviceAddress::parse(s).unwrap()
}

fn pki() -> Pki {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let root = RootKey::from_seed(&[1; 32]);
    let agency = AgencyKey::from_seed(&[2; 32]);
    let agency_cert = root
        .certify_agency(
            7,
            &agency.public_key(),
            "Ministry of Finance",
            &["treasury.gov.my", "mof.gov.my"],
            NOW - YEAR,
            NOW + YEAR,
        )
        .unwrap();
    let identity = *IdentityKeyPair::generate(&mut rng).public();
    let device_cert =
        agency.certify_device(42, &address("aminah@mof.gov.my/phone-1"), &identity, NOW - 10, NOW + 100).unwrap();
    let roots = TrustRoots::new(&[root.public_key()]).unwrap();
    Pki { root, agency, agency_cert, device_cert, identity, roots }
}

impl Pki {
    fn chain(&self) -> Vec<u8> {
        CertificateChain::new(self.device_cert.clone(), self.agency_cert.clone()).to_bytes()
    }

    fn chain_with(&self, device: &DeviceCertificate, agency: &AgencyCertificate) -> Vec<u8> {
        CertificateChain::new(device.clone(), agency.clone()).to_bytes()
    }

    fn verify(&self, chain: &[u8], revocations: &Revocations, now: u64) -> Result<VerifiedDevice, CertificateError> {
        verify_device(chain, &self.roots, revocations, now)
    }
}

#[test]
fn a_valid_chain_verifies_and_names_the_device() {
    let p = pki();
    let v = p.verify(&p.chain(), &Revocations::new(), NOW).unwrap();
    assert_eq!(v.address().peer_name(), "aminah@mof.gov.my/phone-1");
    assert_eq!(v.identity(), &p.identity);
    assert_eq!(v.agency_name(), "Ministry of Finance");
    assert_eq!(v.agency_key(), &p.agency.public_key());
    assert_eq!(v.serial(), 42);
    assert_eq!(v.not_after(), NOW + 100);
    assert!(v.certifies("aminah@mof.gov.my/phone-1", &p.identity));
    assert!(!v.certifies("aminah@mof.gov.my/phone-2", &p.identity));
    // Domains are stored sorted, whatever order the issuer gave.
    assert_eq!(p.agency_cert.domains(), ["mof.gov.my", "treasury.gov.my"]);
}

#[test]
fn every_object_round_trips_byte_for_byte() {
    let p = pki();
    let a = AgencyCertificate::from_bytes(&p.agency_cert.to_bytes()).unwrap();
    assert_eq!(a, p.agency_cert);
    let d = DeviceCertificate::from_bytes(&p.device_cert.to_bytes()).unwrap();
    assert_eq!(d, p.device_cert);
    let chain = p.chain();
    let c = CertificateChain::from_bytes(&chain).unwrap();
    assert_eq!(c.to_bytes(), chain);
    assert_eq!((c.device(), c.agency()), (&p.device_cert, &p.agency_cert));
    let l = p.agency.revocation_list(3, NOW, &[9, 1, 5, 5]).unwrap();
    assert_eq!(l.serials(), [1, 5, 9]);
    assert_eq!(RevocationList::from_bytes(&l.to_bytes()).unwrap(), l);
    // Header bytes and exact sizes.
    let bytes = p.agency_cert.to_bytes();
    assert_eq!(&bytes[..2], &[0x51, 0x01]);
    assert_eq!(bytes.len(), 2 + 8 + 64 + 1 + 19 + 16 + 1 + 11 + 16 + 64);
    assert_eq!(&p.device_cert.to_bytes()[..2], &[0x52, 0x01]);
    assert_eq!(p.device_cert.to_bytes().len(), 2 + 8 + 32 + 1 + 17 + 1 + 7 + 66 + 16 + 64);
    assert_eq!(&chain[..2], &[0x53, 0x01]);
    assert_eq!(&l.to_bytes()[..2], &[0x54, 0x01]);
    assert_eq!(l.to_bytes().len(), 2 + 32 + 16 + 2 + 24 + 64);
}

#[test]
fn validity_is_not_before_inclusive_not_after_exclusive() {
    let p = pki();
    let r = Revocations::new();
    assert!(p.verify(&p.chain(), &r, NOW - 10).is_ok());
    assert_eq!(
        p.verify(&p.chain(), &r, NOW - 11),
        Err(CertificateError::NotYetValid { kind: CertificateKind::Device, not_before: NOW - 10 })
    );
    assert!(p.verify(&p.chain(), &r, NOW + 99).is_ok());
    assert_eq!(
        p.verify(&p.chain(), &r, NOW + 100),
        Err(CertificateError::Expired { kind: CertificateKind::Device, not_after: NOW + 100 })
    );
    // The agency's validity is checked first.
    assert_eq!(
        p.verify(&p.chain(), &r, NOW - YEAR - 1),
        Err(CertificateError::NotYetValid { kind: CertificateKind::Agency, not_before: NOW - YEAR })
    );
    assert_eq!(
        p.verify(&p.chain(), &r, NOW + YEAR),
        Err(CertificateError::Expired { kind: CertificateKind::Agency, not_after: NOW + YEAR })
    );
}

#[test]
fn an_unknown_root_is_refused() {
    let p = pki();
    let other = TrustRoots::new(&[RootKey::from_seed(&[9; 32]).public_key()]).unwrap();
    assert_eq!(verify_device(&p.chain(), &other, &Revocations::new(), NOW), Err(CertificateError::UnknownRoot));
    assert_eq!(
        verify_device(&p.chain(), &TrustRoots::default(), &Revocations::new(), NOW),
        Err(CertificateError::UnknownRoot)
    );
}

#[test]
fn bad_signatures_are_refused() {
    let p = pki();
    let r = Revocations::new();
    // A flipped signature bit on the agency certificate.
    let mut a = p.agency_cert.to_bytes();
    *a.last_mut().unwrap() ^= 1;
    let a = AgencyCertificate::from_bytes(&a).unwrap();
    assert_eq!(
        p.verify(&p.chain_with(&p.device_cert, &a), &r, NOW),
        Err(CertificateError::BadSignature(CertificateKind::Agency))
    );
    // A flipped signature bit on the device certificate.
    let mut d = p.device_cert.to_bytes();
    *d.last_mut().unwrap() ^= 1;
    let d = DeviceCertificate::from_bytes(&d).unwrap();
    assert_eq!(
        p.verify(&p.chain_with(&d, &p.agency_cert), &r, NOW),
        Err(CertificateError::BadSignature(CertificateKind::Device))
    );
    // A device certificate from another agency (validly signed by it).
    let rogue = AgencyKey::from_seed(&[3; 32]);
    let d = rogue.certify_device(1, p.device_cert.address(), &p.identity, NOW - 1, NOW + 1).unwrap();
    assert_eq!(
        p.verify(&p.chain_with(&d, &p.agency_cert), &r, NOW),
        Err(CertificateError::BadSignature(CertificateKind::Device))
    );
    // An agency certificate signed by a non-root that claims the root as issuer.
    let mut forged = p.agency_cert.to_bytes();
    let fake_root = RootKey::from_seed(&[4; 32]);
    let real = fake_root
        .certify_agency(
            7,
            &p.agency.public_key(),
            "Ministry of Finance",
            &["mof.gov.my", "treasury.gov.my"],
            NOW - YEAR,
            NOW + YEAR,
        )
        .unwrap()
        .to_bytes();
    let n = forged.len();
    forged[n - 64..].copy_from_slice(&real[n - 64..]);
    let forged = AgencyCertificate::from_bytes(&forged).unwrap();
    assert_eq!(
        p.verify(&p.chain_with(&p.device_cert, &forged), &r, NOW),
        Err(CertificateError::BadSignature(CertificateKind::Agency))
    );
}

#[test]
fn the_user_domain_must_be_exactly_one_of_the_agency_domains() {
    let p = pki();
    let r = Revocations::new();
    for user in ["a@gov.my", "a@x.mof.gov.my", "a@mof.gov.my.evil.com", "a@evilmof.gov.my", "a@pmo.gov.my"] {
        let d = p.agency.certify_device(1, &address(&format!("{user}/d")), &p.identity, NOW - 1, NOW + 1).unwrap();
        assert_eq!(p.verify(&p.chain_with(&d, &p.agency_cert), &r, NOW), Err(CertificateError::WrongDomain), "{user}");
    }
    let d = p.agency.certify_device(1, &address("b@treasury.gov.my/d"), &p.identity, NOW - 1, NOW + 1).unwrap();
    assert!(p.verify(&p.chain_with(&d, &p.agency_cert), &r, NOW).is_ok());
}

#[test]
fn revoked_certificates_are_refused() {
    let p = pki();
    let mut r = Revocations::new();
    let list = p.agency.revocation_list(1, NOW, &[41, 43]).unwrap();
    assert_eq!(r.apply(&list.to_bytes(), &p.roots, Some(&p.agency_cert), NOW), Ok(RevocationUpdate::Applied));
    assert!(p.verify(&p.chain(), &r, NOW).is_ok());
    let list = p.agency.revocation_list(2, NOW, &[41, 42]).unwrap();
    assert_eq!(r.apply(&list.to_bytes(), &p.roots, Some(&p.agency_cert), NOW), Ok(RevocationUpdate::Applied));
    assert_eq!(
        p.verify(&p.chain(), &r, NOW),
        Err(CertificateError::Revoked { kind: CertificateKind::Device, serial: 42 })
    );
    // The root revokes the agency certificate: checked before the device.
    let list = p.root.revocation_list(1, NOW, &[7]).unwrap();
    assert_eq!(r.apply(&list.to_bytes(), &p.roots, None, NOW), Ok(RevocationUpdate::Applied));
    assert_eq!(
        p.verify(&p.chain(), &r, NOW),
        Err(CertificateError::Revoked { kind: CertificateKind::Agency, serial: 7 })
    );
    // Serials are scoped to their issuer: the agency's serial 7 is not the root's.
    let d = p.agency.certify_device(7, p.device_cert.address(), &p.identity, NOW - 1, NOW + 1).unwrap();
    let mut r2 = Revocations::new();
    let list = p.root.revocation_list(1, NOW, &[42]).unwrap();
    assert_eq!(r2.apply(&list.to_bytes(), &p.roots, None, NOW), Ok(RevocationUpdate::Applied));
    assert!(p.verify(&p.chain(), &r2, NOW).is_ok());
    assert!(p.verify(&p.chain_with(&d, &p.agency_cert), &r2, NOW).is_ok());
}

#[test]
fn revocation_lists_are_monotonic_and_failures_change_nothing() {
    let p = pki();
    let mut r = Revocations::new();
    let l2 = p.agency.revocation_list(2, NOW, &[1]).unwrap().to_bytes();
    assert_eq!(r.apply(&l2, &p.roots, Some(&p.agency_cert), NOW), Ok(RevocationUpdate::Applied));
    let before = r.clone();
    let expect = |r: &mut Revocations, bytes: &[u8], agency: Option<&AgencyCertificate>, now, e| {
        assert_eq!(r.apply(bytes, &p.roots, agency, now), Err(e));
        assert_eq!(*r, before);
    };
    // The same bytes again: unchanged.
    assert_eq!(r.apply(&l2, &p.roots, Some(&p.agency_cert), NOW), Ok(RevocationUpdate::Unchanged));
    // Older, or the same seq with other contents: stale.
    let l1 = p.agency.revocation_list(1, NOW, &[1, 2]).unwrap().to_bytes();
    expect(&mut r, &l1, Some(&p.agency_cert), NOW, CertificateError::StaleRevocationList { seq: 1, held: 2 });
    let l2b = p.agency.revocation_list(2, NOW + 1, &[1]).unwrap().to_bytes();
    expect(&mut r, &l2b, Some(&p.agency_cert), NOW, CertificateError::StaleRevocationList { seq: 2, held: 2 });
    // An agency list needs a verifying certificate for that agency.
    let l3 = p.agency.revocation_list(3, NOW, &[]).unwrap().to_bytes();
    expect(&mut r, &l3, None, NOW, CertificateError::UnknownIssuer);
    let other = AgencyKey::from_seed(&[5; 32]);
    let other_cert = p.root.certify_agency(8, &other.public_key(), "Other", &["x.gov.my"], NOW - 1, NOW + 1).unwrap();
    expect(&mut r, &l3, Some(&other_cert), NOW, CertificateError::UnknownIssuer);
    expect(
        &mut r,
        &l3,
        Some(&p.agency_cert),
        NOW + YEAR,
        CertificateError::Expired { kind: CertificateKind::Agency, not_after: NOW + YEAR },
    );
    let other_roots = TrustRoots::new(&[RootKey::from_seed(&[6; 32]).public_key()]).unwrap();
    assert_eq!(r.apply(&l3, &other_roots, Some(&p.agency_cert), NOW), Err(CertificateError::UnknownRoot));
    // A bad list signature.
    let mut bad = l3.clone();
    *bad.last_mut().unwrap() ^= 1;
    expect(&mut r, &bad, Some(&p.agency_cert), NOW, CertificateError::BadListSignature);
    // Malformed.
    expect(&mut r, &l3[..l3.len() - 1], Some(&p.agency_cert), NOW, CertificateError::Malformed(DecodeError::Truncated));
    assert_eq!(r.apply(&l3, &p.roots, Some(&p.agency_cert), NOW), Ok(RevocationUpdate::Applied));
    assert_eq!(r.list(&p.agency.public_key()).unwrap().seq(), 3);
}

#[test]
fn revocations_hold_a_bounded_number_of_issuers() {
    let p = pki();
    let mut r = Revocations::new();
    for i in 0..MAX_REVOCATION_ISSUERS {
        let mut seed = [7u8; 32];
        seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let root = RootKey::from_seed(&seed);
        let roots = TrustRoots::new(&[root.public_key()]).unwrap();
        let l = root.revocation_list(1, NOW, &[]).unwrap().to_bytes();
        assert_eq!(r.apply(&l, &roots, None, NOW), Ok(RevocationUpdate::Applied));
    }
    let before = r.clone();
    let l = p.root.revocation_list(1, NOW, &[]).unwrap().to_bytes();
    assert_eq!(r.apply(&l, &p.roots, None, NOW), Err(CertificateError::TrustAnchorsFull));
    assert_eq!(r, before);
}

#[test]
fn trust_roots_are_bounded_and_valid() {
    let keys: Vec<[u8; 32]> = (0..=MAX_TRUST_ROOTS as u8).map(|i| RootKey::from_seed(&[i; 32]).public_key()).collect();
    assert!(TrustRoots::new(&keys[..MAX_TRUST_ROOTS]).is_ok());
    assert_eq!(TrustRoots::new(&keys), Err(CertificateError::TrustAnchorsFull));
    // The identity point is weak (small order); 2^255-1 is not a point encoding.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    assert_eq!(TrustRoots::new(&[weak]), Err(CertificateError::InvalidKey));
    let dup = TrustRoots::new(&[keys[0], keys[0]]).unwrap();
    assert_eq!(dup.len(), 1);
}

#[test]
fn issuing_refuses_what_the_layout_cannot_hold() {
    let p = pki();
    let key = p.agency.public_key();
    let issue = |name: &str, domains: &[&str], nb, na| p.root.certify_agency(1, &key, name, domains, nb, na);
    fn req<T>(s: &'static str) -> Result<T, CertificateError> {
        Err(CertificateError::InvalidRequest(s))
    }
    assert_eq!(issue("A", &[], 0, 1), req("domain count"));
    let many: Vec<String> = (0..17).map(|i| format!("d{i}.gov.my")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(issue("A", &many, 0, 1), req("domain count"));
    assert!(issue("A", &many[..16], 0, 1).is_ok());
    assert_eq!(issue("A", &["a.gov.my", "a.gov.my"], 0, 1), req("domains not strictly ascending"));
    assert_eq!(issue("A", &["Gov.my"], 0, 1), req("domain character"));
    assert_eq!(issue("A", &["my"], 0, 1), req("domain needs two labels"));
    assert_eq!(issue("", &["a.gov.my"], 0, 1), req("agency name length"));
    assert_eq!(issue(&"n".repeat(65), &["a.gov.my"], 0, 1), req("agency name length"));
    assert_eq!(issue("A\nB", &["a.gov.my"], 0, 1), req("agency name control character"));
    assert_eq!(issue("A", &["a.gov.my"], 5, 5), req("not_after must be after not_before"));
    assert!(issue(&"é".repeat(32), &["a.gov.my"], 0, 1).is_ok());
    let mut weak = [0u8; 32];
    weak[0] = 1;
    assert_eq!(p.root.certify_agency(1, &weak, "A", &["a.gov.my"], 0, 1), Err(CertificateError::InvalidKey));
    assert_eq!(
        p.agency.certify_device(1, p.device_cert.address(), &p.identity, 9, 3),
        req("not_after must be after not_before")
    );
    assert_eq!(p.agency.revocation_list(0, NOW, &[]), req("seq must be at least 1"));
    let serials: Vec<u64> = (0..=MAX_REVOKED_SERIALS as u64).collect();
    assert_eq!(p.root.revocation_list(1, NOW, &serials), req("too many serials"));
    let full = p.root.revocation_list(1, NOW, &serials[..MAX_REVOKED_SERIALS]).unwrap();
    assert_eq!(full.to_bytes().len(), MAX_REVOCATION_LIST_BYTES);
}

#[test]
fn decoders_refuse_non_canonical_and_malformed_input() {
    let p = pki();
    let bad = |e: &'static str| CertificateError::Malformed(DecodeError::InvalidValue(e));
    let a = p.agency_cert.to_bytes();
    // Truncated, trailing bytes, wrong type, unsupported version.
    assert_eq!(AgencyCertificate::from_bytes(&a[..a.len() - 1]), Err(DecodeError::Truncated.into()));
    let mut t = a.clone();
    t.push(0);
    assert_eq!(AgencyCertificate::from_bytes(&t), Err(DecodeError::TrailingBytes(1).into()));
    assert_eq!(DeviceCertificate::from_bytes(&a), Err(DecodeError::WrongType { expected: 0x52, found: 0x51 }.into()));
    let mut v = a.clone();
    v[1] = 2;
    assert_eq!(AgencyCertificate::from_bytes(&v), Err(DecodeError::UnsupportedVersion(2).into()));
    assert_eq!(AgencyCertificate::from_bytes(&[]), Err(DecodeError::Empty.into()));
    let huge = vec![0x51; MAX_AGENCY_CERTIFICATE_BYTES + 1];
    assert!(matches!(
        AgencyCertificate::from_bytes(&huge),
        Err(CertificateError::Malformed(DecodeError::TooLarge { .. }))
    ));
    // Domains out of order: swap the two domain entries of the encoding.
    // Layout: 2 + 8 + 64 + (1 + 19) + 16 = 110, then count (1), "mof.gov.my" (1 + 10), "treasury.gov.my" (1 + 15).
    assert_eq!(a[110], 2);
    let mut swapped = a[..111].to_vec();
    swapped.extend_from_slice(&a[122..138]);
    swapped.extend_from_slice(&a[111..122]);
    swapped.extend_from_slice(&a[138..]);
    assert_eq!(AgencyCertificate::from_bytes(&swapped), Err(bad("domains not strictly ascending")));
    let mut zero = a.clone();
    zero[110] = 0;
    assert_eq!(AgencyCertificate::from_bytes(&zero), Err(bad("domain count")));
    let mut ctl = a.clone();
    ctl[76] = b'\n';
    assert_eq!(AgencyCertificate::from_bytes(&ctl), Err(bad("agency name control character")));
    let mut upper = a.clone();
    upper[112] = b'M';
    assert_eq!(AgencyCertificate::from_bytes(&upper), Err(bad("domain character")));
    let mut validity = a.clone();
    let not_after = validity[102..110].to_vec();
    validity[94..102].copy_from_slice(&not_after);
    assert_eq!(AgencyCertificate::from_bytes(&validity), Err(bad("agency validity")));

    let d = p.device_cert.to_bytes();
    // User id at 42: len 17 then "aminah@mof.gov.my".
    assert_eq!(usize::from(d[42]), 17);
    let mut upper = d.clone();
    upper[43] = b'A';
    assert_eq!(DeviceCertificate::from_bytes(&upper), Err(bad("user id")));
    let mut dev = d.clone();
    dev[62] = b'/';
    assert_eq!(DeviceCertificate::from_bytes(&dev), Err(bad("device id")));
    let mut key = d.clone();
    key[70..102].copy_from_slice(&[0xff; 32]);
    assert_eq!(DeviceCertificate::from_bytes(&key), Err(bad("identity key")));

    let l = p.agency.revocation_list(1, NOW, &[1, 2]).unwrap().to_bytes();
    let mut seq0 = l.clone();
    seq0[34..42].copy_from_slice(&[0; 8]);
    assert_eq!(RevocationList::from_bytes(&seq0), Err(bad("revocation list seq")));
    let mut unsorted = l.clone();
    unsorted[60..68].copy_from_slice(&1u64.to_be_bytes());
    assert_eq!(RevocationList::from_bytes(&unsorted), Err(bad("revoked serials not strictly ascending")));
    let mut count = l.clone();
    count[50..52].copy_from_slice(&4097u16.to_be_bytes());
    assert_eq!(RevocationList::from_bytes(&count), Err(bad("revoked serial count")));

    let c = p.chain();
    assert_eq!(CertificateChain::from_bytes(&c[..c.len() - 1]), Err(DecodeError::Truncated.into()));
    let mut t = c.clone();
    t.push(1);
    assert_eq!(CertificateChain::from_bytes(&t), Err(DecodeError::TrailingBytes(1).into()));
    assert!(matches!(p.verify(&c[..3], &Revocations::new(), NOW), Err(CertificateError::Malformed(_))));
}

#[test]
fn every_bit_flip_of_a_chain_is_refused() {
    let p = pki();
    let chain = p.chain();
    let r = Revocations::new();
    for i in 0..chain.len() {
        let mut c = chain.clone();
        c[i] ^= 0x01;
        assert!(p.verify(&c, &r, NOW).is_err(), "flip at {i} verified");
    }
}

#[test]
fn issuing_keys_never_print_their_seed() {
    let root = RootKey::from_seed(&[0xab; 32]);
    let agency = AgencyKey::from_seed(&[0xcd; 32]);
    let s = format!("{root:?} {agency:?}");
    assert!(s.contains("<redacted>"));
    assert!(!s.contains("ab, ab") && !s.contains("cd, cd"), "{s}");
}

#[test]
fn trust_anchors_round_trip_in_state() {
    let p = pki();
    let mut anchors = TrustAnchors { roots: p.roots.clone(), require_certificate: true, ..TrustAnchors::default() };
    let l = p.agency.revocation_list(1, NOW, &[3]).unwrap().to_bytes();
    assert_eq!(anchors.revocations.apply(&l, &p.roots, Some(&p.agency_cert), NOW), Ok(RevocationUpdate::Applied));
    let mut w = Writer::raw(0);
    anchors.write(&mut w);
    let bytes = w.into_bytes();
    assert_eq!(bytes.len(), anchors.encoded_len());
    let mut r = Reader::raw(&bytes);
    assert_eq!(TrustAnchors::read(&mut r).unwrap(), anchors);
    r.finish().unwrap();
}
