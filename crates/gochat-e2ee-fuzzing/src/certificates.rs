//! The `certificate_chain` and `revocation_list` targets (`docs/protocol.md` §15.4–15.8).
//!
//! `certificate_chain`: [`CertificateChain::from_bytes`] then [`verify_chain`] under a
//! fixed root, with the agency's revocation list held, at a fixed time. Asserted: no
//! panic; an accepted chain re-encodes to its input; a verified chain is made of the
//! fixture's genuine agency certificate and one of the device certificates that agency
//! issued (nothing else can carry the signatures), and the proof names that device.
//!
//! `revocation_list`: [`Revocations::apply`] on a store that holds the agency's list of
//! seq 2. Asserted: no panic; a refused list changes nothing; `Unchanged` only for the
//! held bytes; `Applied` only for a genuine list with a higher seq.

use std::sync::OnceLock;

use gochat_e2ee::trust::address::DeviceAddress;
use gochat_e2ee::trust::certificate::{
    verify_chain, AgencyCertificate, AgencyKey, CertificateChain, DeviceCertificate, RevocationUpdate, Revocations,
    RootKey, TrustRoots,
};

use crate::fixtures::Seed;

const NOW: u64 = 1_800_000_000;

struct Fixture {
    roots: TrustRoots,
    agency_cert: AgencyCertificate,
    devices: Vec<DeviceCertificate>,
    revocations: Revocations,
    lists: Vec<Vec<u8>>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn get() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let root = RootKey::from_seed(&[1; 32]);
        let agency = AgencyKey::from_seed(&[2; 32]);
        let agency_cert = root
            .certify_agency(
                7,
                &agency.public_key(),
                "Ministry",
                &["mof.gov.my", "treasury.gov.my"],
                NOW - 1000,
                NOW + 1000,
            )
            .expect("fixture");
        let identity = *gochat_e2ee::Device::new("u", NOW, &mut crate::rng(1)).identity();
        let device = |serial, address: &str, nb, na| {
            agency
                .certify_device(serial, &DeviceAddress::parse(address).expect("fixture"), &identity, nb, na)
                .expect("fixture")
        };
        let devices = vec![
            device(42, "aminah@mof.gov.my/phone-1", NOW - 10, NOW + 10),
            device(43, "aminah@pmo.gov.my/phone-1", NOW - 10, NOW + 10),
            device(44, "aminah@mof.gov.my/phone-2", NOW - 10, NOW + 10),
            device(45, "aminah@mof.gov.my/old", NOW - 100, NOW - 10),
        ];
        let roots = TrustRoots::new(&[root.public_key()]).expect("fixture");
        let lists: Vec<Vec<u8>> = [(2, vec![44]), (3, vec![44, 45]), (1, vec![]), (2, vec![1])]
            .into_iter()
            .map(|(seq, serials)| agency.revocation_list(seq, NOW, &serials).expect("fixture").to_bytes())
            .collect();
        let mut revocations = Revocations::new();
        let _ = revocations.apply(&lists[0], &roots, Some(&agency_cert), NOW).expect("fixture");
        Fixture { roots, agency_cert, devices, revocations, lists }
    })
}

/// The seeds of both targets.
pub fn seeds() -> Vec<(&'static str, Seed)> {
    let f = get();
    let chain = |d: &DeviceCertificate| CertificateChain::new(d.clone(), f.agency_cert.clone()).to_bytes();
    let valid = chain(&f.devices[0]);
    let mut flipped = valid.clone();
    let n = flipped.len();
    flipped[n - 1] ^= 1;
    vec![
        ("certificate_chain", ("valid-chain", valid.clone())),
        ("certificate_chain", ("valid-wrong-domain", chain(&f.devices[1]))),
        ("certificate_chain", ("valid-revoked", chain(&f.devices[2]))),
        ("certificate_chain", ("valid-expired", chain(&f.devices[3]))),
        ("certificate_chain", ("valid-bad-agency-signature", flipped)),
        ("certificate_chain", ("invalid-truncated", valid[..n - 1].to_vec())),
        ("certificate_chain", ("invalid-trailing", [&valid[..], &[0]].concat())),
        ("certificate_chain", ("invalid-type", [&[0x52][..], &valid[1..]].concat())),
        ("revocation_list", ("valid-newer", f.lists[1].clone())),
        ("revocation_list", ("valid-same", f.lists[0].clone())),
        ("revocation_list", ("invalid-older", f.lists[2].clone())),
        ("revocation_list", ("invalid-conflicting", f.lists[3].clone())),
        ("revocation_list", ("invalid-truncated", f.lists[1][..f.lists[1].len() - 1].to_vec())),
    ]
}

/// `certificate_chain`: see the module documentation. Returns whether the chain decoded.
pub fn certificate_chain(data: &[u8]) -> bool {
    let f = get();
    let Ok(chain) = CertificateChain::from_bytes(data) else { return false };
    assert_eq!(chain.to_bytes(), data, "accepted chain does not re-encode to its input");
    if let Ok(v) = verify_chain(&chain, &f.roots, &f.revocations, NOW) {
        assert_eq!(chain.agency(), &f.agency_cert, "verified a chain with a forged agency certificate");
        assert!(f.devices.contains(chain.device()), "verified a forged device certificate");
        assert_eq!(v.address(), chain.device().address());
        assert_eq!(v.identity(), chain.device().identity());
    }
    true
}

/// `revocation_list`: see the module documentation. Returns whether the list was taken
/// (`Applied` or `Unchanged`).
pub fn revocation_list(data: &[u8]) -> bool {
    let f = get();
    let mut r = f.revocations.clone();
    match r.apply(data, &f.roots, Some(&f.agency_cert), NOW) {
        Ok(RevocationUpdate::Unchanged) => {
            assert_eq!(data, &f.lists[0][..], "Unchanged for a list that is not the held one");
            assert_eq!(r, f.revocations);
            true
        }
        Ok(RevocationUpdate::Applied) => {
            assert!(f.lists.iter().any(|l| l == data), "applied a forged list");
            let held = r.list(f.agency_cert.agency_key()).expect("held").seq();
            assert!(held > 2, "applied a list that is not newer");
            true
        }
        Err(_) => {
            assert_eq!(r, f.revocations, "a refused list changed the store");
            false
        }
    }
}
