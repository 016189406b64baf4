"""Multi-device users through the Python bindings (protocol 15.8): a primary creates its
list and endorses a laptop, a peer processes the lists (new, updated, stale, foreign
master key), the fan-out reports per device, and a removed device gets nothing."""

import pytest

import gochat_e2ee_ffi as g

NOW = 1_700_000_000
BOB = "bob@mof.gov.my"


def test_lists_endorsement_fan_out_and_removal():
    phone = g.Device(BOB + "/phone", NOW)
    laptop = g.Device(BOB + "/laptop", NOW)
    ana = g.Device("ana@mof.gov.my/phone", NOW)
    v1 = phone.create_master_key("phone", NOW)
    assert phone.is_primary() and phone.own_address() == BOB + "/phone"
    with pytest.raises(g.GoChatError.Duplicate):
        phone.create_master_key("phone", NOW)
    endorsed = phone.endorse_device("laptop", laptop.identity_key(), NOW)
    info = g.decode_device_endorsement(endorsed.endorsement)
    assert (info.user, info.device_id, info.identity_key) == (BOB, "laptop", laptop.identity_key())
    laptop.adopt_own_device_list(endorsed.device_list, endorsed.endorsement)
    assert not laptop.is_primary() and laptop.own_device_list().version == 2
    with pytest.raises(g.GoChatError.NotPrimary):
        laptop.endorse_device("tablet", ana.identity_key(), NOW)

    first = ana.process_device_list(v1, NOW)
    assert isinstance(first.event, g.DeviceListEventRecord.NEW)
    update = ana.process_device_list(endorsed.device_list, NOW)
    assert isinstance(update.event, g.DeviceListEventRecord.UPDATED)
    assert [e.device_id for e in update.event.added] == ["laptop"]
    assert isinstance(ana.process_device_list(endorsed.device_list, NOW).event, g.DeviceListEventRecord.UNCHANGED)
    with pytest.raises(g.GoChatError.StaleDeviceList):
        ana.process_device_list(v1, NOW)
    bad = bytearray(endorsed.device_list)
    bad[-1] ^= 1
    with pytest.raises(g.GoChatError.BadSignature):
        ana.process_device_list(bytes(bad), NOW)

    # Fan-out: one new session per device from its bundle; both read the message.
    bundles = [
        g.AddressedBundle(address=BOB + "/phone", bundle=phone.next_bundle()),
        g.AddressedBundle(address=BOB + "/laptop", bundle=laptop.next_bundle()),
    ]
    out = ana.encrypt_for_user(BOB, b"to both", bundles)
    assert sorted(r.address for r in out.report if r.sent and r.new_session) == [BOB + "/laptop", BOB + "/phone"]
    devices = {BOB + "/phone": phone, BOB + "/laptop": laptop}
    for m in out.messages:
        assert devices[m.peer].decrypt("ana@mof.gov.my/phone", m.message).plaintext == b"to both"

    # Removal: the next list drops the laptop, and the fan-out never includes it again.
    removal = phone.remove_linked_device("laptop", NOW)
    assert g.decode_device_list(removal.device_list).version == 3
    update = ana.process_device_list(removal.device_list, NOW)
    assert [e.device_id for e in update.event.removed] == ["laptop"]
    out = ana.encrypt_for_user(BOB, b"after", [g.AddressedBundle(address=BOB + "/laptop", bundle=laptop.next_bundle())])
    assert [r.address for r in out.report] == [BOB + "/phone"]
    assert all(m.peer != BOB + "/laptop" for m in out.messages)


def test_a_foreign_master_key_is_surfaced_and_blocks_until_approved():
    phone = g.Device(BOB + "/phone", NOW)
    impostor = g.Device(BOB + "/phone", NOW)
    ana = g.Device("ana@mof.gov.my/phone", NOW)
    ana.process_device_list(phone.create_master_key("phone", NOW), NOW)
    foreign = impostor.create_master_key("phone", NOW)
    update = ana.process_device_list(foreign, NOW)
    assert isinstance(update.event, g.DeviceListEventRecord.MASTER_KEY_CHANGED)
    new_key = update.event.new
    assert ana.device_list(BOB).master_public_key != new_key
    assert ana.pending_device_list(BOB).bytes == foreign
    out = ana.encrypt_for_user(BOB, b"x", [])
    assert [r.missing for r in out.report] == ["MasterKeyChanged"] and not out.messages
    with pytest.raises(g.GoChatError.UnknownMasterKey):
        ana.approve_master_key(BOB, ana.device_list(BOB).master_public_key, NOW)
    approved = ana.approve_master_key(BOB, new_key, NOW)
    assert isinstance(approved.event, g.DeviceListEventRecord.UPDATED)
    assert ana.device_list(BOB).master_public_key == new_key
