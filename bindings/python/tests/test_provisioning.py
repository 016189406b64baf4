"""Linking a device through the Python bindings (protocol 15.9): the new device's offer
opens one sealed message from the phone; failures change nothing; single use."""

import pytest

import gochat_e2ee_ffi as g

NOW = 1_700_000_000
USER = "aminah@mof.gov.my"
E = g.GoChatError


def payload(master):
    return g.LinkPayload(
        user=USER,
        master_public=master.identity_key()[2:34],
        endorsement=b"\x56" * 100,
        device_list=b"\x55" * 200,
    )


def test_a_new_device_opens_one_message_and_failures_change_nothing():
    web = g.Device(USER, NOW)
    phone = g.Device(USER, NOW)
    secret = g.ProvisioningSecret(web.identity_key(), "web-1", NOW)
    offer = secret.offer()
    assert len(offer) <= 173 and offer[0] == 0x57
    info = g.inspect_provisioning_offer(offer)
    assert (info.device_id, info.created_at, info.identity) == ("web-1", NOW, web.identity_key())
    p = payload(phone)
    with pytest.raises(E.ProvisioningExpired):
        g.provisioning_seal(offer, p, NOW + 601)
    with pytest.raises(E.ProvisioningExpired):
        g.provisioning_seal(offer, p, NOW - 61)
    with pytest.raises(E.InvalidKey):
        g.provisioning_seal(offer, g.LinkPayload(user=USER, master_public=b"\x00" * 32, endorsement=p.endorsement, device_list=p.device_list), NOW)
    with pytest.raises(E.Malformed):
        g.provisioning_seal(offer, g.LinkPayload(user=USER, master_public=p.master_public, endorsement=b"", device_list=p.device_list), NOW)
    message = g.provisioning_seal(offer, p, NOW + 10)
    tampered = bytearray(message)
    tampered[40] ^= 1
    with pytest.raises(E.AuthenticationFailed):
        secret.open(bytes(tampered))
    other = g.ProvisioningSecret(web.identity_key(), "web-2", NOW)
    with pytest.raises(E.AuthenticationFailed):
        other.open(message)
    assert not secret.is_used()
    assert secret.open(message) == p
    assert secret.is_used()
    with pytest.raises(E.ProvisioningUsed):
        secret.open(message)
    with pytest.raises(E.Malformed):
        g.ProvisioningSecret(web.identity_key(), "a/b", NOW)
