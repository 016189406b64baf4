"""Agency-certified identities through the Python bindings (protocol 15.4-15.10): issue,
verify, every failure reason, certified session start, certified identity changes."""

import pytest

import gochat_e2ee_ffi as g

NOW = 1_800_000_000
ROOT = g.RootKey.from_seed(bytes([1]) * 32)
AGENCY = g.AgencyKey.from_seed(bytes([2]) * 32)
AGENCY_CERT = ROOT.certify_agency(7, AGENCY.public_key(), "Ministry of Finance", ["mof.gov.my"], NOW - 1000, NOW + 1000)
PEER = "bob@mof.gov.my/laptop"
ALICE = "alice@mof.gov.my/phone"


def chain(address, identity, serial=42):
    return g.certificate_chain(AGENCY.certify_device(serial, address, identity, NOW - 100, NOW + 100), AGENCY_CERT)


def device(user):
    d = g.Device(user, NOW)
    d.generate_one_time_prekeys(2)
    d.generate_pq_prekeys(2, NOW)
    d.set_trust_roots([ROOT.public_key()])
    return d


def test_issue_verify_and_every_failure_reason():
    bob = device("bob@mof.gov.my")
    roots = [ROOT.public_key()]
    good = chain(PEER, bob.identity_key())
    v = g.verify_certificate_chain(good, roots, [], NOW)
    assert (v.peer(), v.identity_key(), v.agency_name(), v.serial()) == (PEER, bob.identity_key(), "Ministry of Finance", 42)
    with pytest.raises(g.GoChatError.CertificateExpired):
        g.verify_certificate_chain(good, roots, [], NOW + 100)
    with pytest.raises(g.GoChatError.CertificateNotYetValid):
        g.verify_certificate_chain(good, roots, [], NOW - 101)
    with pytest.raises(g.GoChatError.WrongDomain):
        g.verify_certificate_chain(chain("bob@pmo.gov.my/laptop", bob.identity_key()), roots, [], NOW)
    revoked = AGENCY.revocation_list(1, NOW, [42])
    with pytest.raises(g.GoChatError.CertificateRevoked):
        g.verify_certificate_chain(good, roots, [g.RevocationEntry(list=revoked, agency_certificate=AGENCY_CERT)], NOW)
    with pytest.raises(g.GoChatError.UnknownRoot):
        g.verify_certificate_chain(good, [g.RootKey.from_seed(bytes([9]) * 32).public_key()], [], NOW)
    bad = bytearray(good)
    bad[-1] ^= 1
    with pytest.raises(g.GoChatError.BadSignature):
        g.verify_certificate_chain(bytes(bad), roots, [], NOW)
    with pytest.raises(g.GoChatError.Malformed):
        g.verify_certificate_chain(good[:-1], roots, [], NOW)
    newer = AGENCY.revocation_list(2, NOW, [5])
    assert bob.apply_revocation_list(newer, AGENCY_CERT, NOW) == g.RevocationUpdate.APPLIED
    assert bob.apply_revocation_list(newer, AGENCY_CERT, NOW) == g.RevocationUpdate.UNCHANGED
    with pytest.raises(g.GoChatError.StaleRevocationList):
        bob.apply_revocation_list(revoked, AGENCY_CERT, NOW)


def test_certified_session_start_and_identity_changes():
    alice = device("alice@mof.gov.my")
    bob = device("bob@mof.gov.my")
    alice.set_require_certificate(True)
    alice.set_identity_policy(g.IdentityPolicy.CERTIFIED)
    bundle = bob.next_bundle()
    with pytest.raises(g.GoChatError.CertificateRequired):
        alice.initiate(PEER, bundle)
    eve = device("eve@mof.gov.my")
    with pytest.raises(g.GoChatError.CertificateMismatch):
        alice.initiate_certified(PEER, bundle, alice.verify_device(chain(PEER, eve.identity_key()), NOW))
    proof = alice.verify_device(chain(PEER, bob.identity_key()), NOW)
    assert alice.initiate_certified(PEER, bundle, proof) == g.IdentityEvent.NEW()
    assert bob.decrypt(ALICE, alice.encrypt(PEER, b"hi")).plaintext == b"hi"
    # Bob reinstalls: the uncertified change is blocked until a certified approval.
    bob2 = device("bob@mof.gov.my")
    bob2.initiate(ALICE, alice.next_bundle())
    m2 = bob2.encrypt(ALICE, b"new phone")
    # With certificates required, the uncertified new session is refused outright.
    with pytest.raises(g.GoChatError.CertificateRequired):
        alice.decrypt(PEER, m2)
    alice.set_require_certificate(False)
    ev = alice.decrypt(PEER, m2).identity_event
    assert ev.approved is False and ev.reason == g.ChangeReason.UNCERTIFIED
    with pytest.raises(g.GoChatError.IdentityChanged):
        alice.encrypt(PEER, b"x")
    alice.approve_certified(PEER, alice.verify_device(chain(PEER, bob2.identity_key(), 43), NOW))
    alice.encrypt(PEER, b"x")
    # A third install with its certificate: approved automatically.
    bob3 = device("bob@mof.gov.my")
    bob3.initiate(ALICE, alice.next_bundle())
    proof3 = alice.verify_device(chain(PEER, bob3.identity_key(), 44), NOW)
    ev = alice.decrypt_certified(PEER, bob3.encrypt(ALICE, b"third"), proof3).identity_event
    assert ev.approved is True and ev.reason == g.ChangeReason.CERTIFIED
