"""Safety numbers through the Python bindings (protocol 15): the same 60 digits on both
sides; a scanned payload matches only the real identities."""

import re

import pytest

import gochat_e2ee_ffi as g

NOW = 1_700_000_000


def test_both_sides_see_the_same_number_and_a_scan_matches_only_the_real_identities():
    alice = g.Device("alice@agency.gov.my", NOW)
    bob = g.Device("bob@agency.gov.my", NOW)
    mallory = g.Device("bob@agency.gov.my", NOW)
    a = g.SafetyNumber("alice@agency.gov.my", alice.identity_key(), "bob@agency.gov.my", bob.identity_key())
    b = g.SafetyNumber("bob@agency.gov.my", bob.identity_key(), "alice@agency.gov.my", alice.identity_key())
    assert a.digits() == b.digits()
    assert re.fullmatch(r"[0-9]{60}", a.digits())
    assert len(a.grouped().split(" ")) == 12 and a.grouped().replace(" ", "") == a.digits()
    assert len(a.scannable()) == 66
    assert a.compare_scanned(b.scannable()) == g.ScanResult.MATCH()
    assert a.compare_scanned(a.scannable()) == g.ScanResult.MISMATCH()
    # The server put Mallory's key in Bob's place on Alice's side.
    m = g.SafetyNumber("alice@agency.gov.my", alice.identity_key(), "bob@agency.gov.my", mallory.identity_key())
    assert m.digits() != a.digits()
    assert m.compare_scanned(b.scannable()) == g.ScanResult.MISMATCH()
    v2 = bytearray(b.scannable())
    v2[1] = 2
    assert a.compare_scanned(bytes(v2)) == g.ScanResult.VERSION_MISMATCH(theirs=2)
    with pytest.raises(g.GoChatError.Malformed):
        a.compare_scanned(b"")
    with pytest.raises(g.GoChatError.Malformed):
        a.compare_scanned(b.scannable()[:65])
    with pytest.raises(g.GoChatError.WrongMessageType):
        a.compare_scanned(bytes([0x51]) * 66)
    with pytest.raises(g.GoChatError.Malformed):
        g.SafetyNumber("", alice.identity_key(), "bob", bob.identity_key())
