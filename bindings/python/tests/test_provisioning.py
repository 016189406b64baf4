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


def test_a_primary_links_a_device_that_completes_the_link():
    phone = g.Device(f"{USER}/phone", NOW)
    web = g.Device(USER, NOW)
    secret = g.ProvisioningSecret(web.identity_key(), "web-1", NOW)
    with pytest.raises(E.NotPrimary):
        phone.link_device(secret.offer(), NOW)
    phone.create_master_key("phone", NOW)
    with pytest.raises(E.ProvisioningExpired):
        phone.link_device(secret.offer(), NOW + 601)
    with pytest.raises(E.Malformed):
        phone.link_device(secret.offer()[:40], NOW)
    assert phone.own_device_list().version == 1
    link = phone.link_device(secret.offer(), NOW + 5)
    assert link.message[0] == 0x58
    assert [d.device_id for d in link.device_list.devices] == ["phone", "web-1"]
    with pytest.raises(E.Duplicate):
        phone.link_device(secret.offer(), NOW + 5)
    stranger = g.Device(USER, NOW)
    with pytest.raises(E.DeviceListMismatch):
        stranger.complete_link(secret, link.message)
    tampered = bytearray(link.message)
    tampered[40] ^= 1
    with pytest.raises(E.AuthenticationFailed):
        web.complete_link(secret, bytes(tampered))
    assert not secret.is_used() and web.own_device_list() is None
    adopted = web.complete_link(secret, link.message)
    assert (adopted.user, adopted.version, adopted.bytes) == (USER, 2, link.device_list.bytes)
    assert web.own_address() == f"{USER}/web-1" and not web.is_primary()
    with pytest.raises(E.ProvisioningUsed):
        web.complete_link(secret, link.message)

    # The phone fans a message out to its own other device.
    out = phone.encrypt_for_user(USER, b"hello web", [g.AddressedBundle(address=f"{USER}/web-1", bundle=web.next_bundle())])
    assert [(r.address, r.sent) for r in out.report] == [(f"{USER}/web-1", True)]
    assert web.decrypt(f"{USER}/phone", out.messages[0].message).plaintext == b"hello web"
