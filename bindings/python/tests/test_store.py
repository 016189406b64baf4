"""Store-backed devices through the Python bindings: a file path and a key are all it
takes; every call commits before it returns; the inbox redelivers until ack; passcodes
are counted; moving a device retires its store."""

import os
import tempfile

import pytest

import gochat_e2ee_ffi as g

NOW = 1_700_000_000
KEY = g.StoreUnlock.PLATFORM_KEY(bytes([7]) * 32)
SMALL = g.PasscodeCost(memory_kib=8 * 1024, iterations=1, lanes=1)


def passcode(p):
    return g.StoreUnlock.PASSCODE(p)


def start(path):
    alice = g.Device.create_stored(path, KEY, "alice", NOW, None)
    bob = g.Device("bob", NOW)
    bob.generate_one_time_prekeys(2)
    bob.generate_pq_prekeys(2, NOW)
    alice.initiate("bob", bob.next_bundle())
    assert bob.decrypt("alice", alice.encrypt("bob", b"hello")).plaintext == b"hello"
    return alice, bob


def test_a_stored_device_survives_reopening_and_redelivers_until_ack():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "alice.sqlite")
        alice, bob = start(path)
        assert alice.is_stored()
        reply = bob.encrypt("alice", b"answer")
        got = alice.decrypt("bob", reply)
        assert got.plaintext == b"answer" and not got.redelivered and len(got.digest) == 32
        del alice
        alice = g.Device.open_stored(path, KEY)
        again = alice.decrypt("bob", reply)
        assert again.redelivered and again.plaintext == b"answer"
        assert alice.ack(got.digest)
        with pytest.raises(g.GoChatError.Duplicate):
            alice.decrypt("bob", reply)
        assert bob.decrypt("alice", alice.encrypt("bob", b"after reopen")).plaintext == b"after reopen"
        with pytest.raises(g.GoChatError.StoreExists):
            g.Device.create_stored(path, KEY, "x", NOW, None)
        with pytest.raises(g.GoChatError.NotSupported):
            alice.export(bytes(32))


def test_wrong_passcodes_are_counted_and_the_passcode_can_change():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ana.sqlite")
        ana = g.Device.create_stored(path, passcode("correct horse"), "ana", NOW, SMALL)
        ana.set_attempt_limit(2)
        del ana
        with pytest.raises(g.GoChatError.WrongKey):
            g.Device.open_stored(path, passcode("wrong"))
        assert g.store_failed_attempts(path) == 1
        ana = g.Device.open_stored(path, passcode("correct horse"))
        assert g.store_failed_attempts(path) == 0
        ana.change_passcode(passcode("correct horse"), passcode("battery staple"), SMALL)
        del ana
        with pytest.raises(g.GoChatError.WrongKey):
            g.Device.open_stored(path, passcode("correct horse"))
        with pytest.raises(g.GoChatError.AttemptLimitReached):
            g.Device.open_stored(path, passcode("still wrong"))
        with pytest.raises(g.GoChatError.AttemptLimitReached):
            g.Device.open_stored(path, passcode("battery staple"))


def test_moving_a_device_retires_the_old_store():
    with tempfile.TemporaryDirectory() as d:
        alice, bob = start(os.path.join(d, "old.sqlite"))
        container = alice.move_out("transfer", SMALL)
        with pytest.raises(g.GoChatError.StoreRetired):
            alice.encrypt("bob", b"from the old phone")
        moved = g.Device.import_stored(os.path.join(d, "new.sqlite"), KEY, container, "transfer", SMALL)
        assert bob.decrypt("alice", moved.encrypt("bob", b"new phone")).plaintext == b"new phone"


def in_group(path):
    """Alice (stored) and Bob with sessions both ways, in a group Bob made with Alice."""
    alice, bob = start(path)
    hi = alice.decrypt("bob", bob.encrypt("alice", b"hi"))
    assert alice.ack(hi.digest)
    member = g.GroupMemberRecord(name="alice", identity_key=alice.identity_key(), admin=False)
    ch = bob.group_create([member], NOW)
    alice.group_join(ch.welcome, NOW)
    for o in ch.outgoing:
        alice.group_receive("bob", o.message)
    return alice, bob, ch.group_id


def test_group_and_channel_results_are_redelivered_until_ack():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "alice.sqlite")
        alice, bob, gid = in_group(path)
        sent = bob.group_encrypt(gid, b"to the group", NOW)
        got = alice.group_decrypt("bob", sent.message)
        assert got.plaintext == b"to the group" and not got.redelivered and len(got.digest) == 32
        agency = g.Device("agency", NOW)
        cid = agency.channel_create(g.ChannelKind.PUBLIC)
        alice.channel_subscribe(cid, agency.channel_public_key(cid), g.ChannelKind.PUBLIC)
        post = agency.channel_announce(cid, g.ContentType.TEXT, b"notice", NOW)
        first = alice.channel_receive(post, NOW)
        assert first.is_announcement() and not first.redelivered
        # Moving now would lose both results: refused, and the store stays live.
        with pytest.raises(g.GoChatError.InboxNotEmpty):
            alice.move_out("transfer", SMALL)
        del alice
        alice = g.Device.open_stored(path, KEY)
        again = alice.group_decrypt("bob", sent.message)
        assert again.redelivered and again.plaintext == got.plaintext and again.digest == got.digest
        second = alice.channel_receive(post, NOW)
        assert second.redelivered and second.announcement.body == b"notice"
        assert alice.ack(got.digest) and alice.ack(first.digest)
        with pytest.raises(g.GoChatError.Duplicate):
            alice.group_decrypt("bob", sent.message)
        with pytest.raises(g.GoChatError.StaleSequence):
            alice.channel_receive(post, NOW)
        container = alice.move_out("transfer", SMALL)
        moved = g.Device.import_stored(os.path.join(d, "new.sqlite"), KEY, container, "transfer", SMALL)
        later = bob.group_encrypt(gid, b"after the move", NOW)
        assert moved.group_decrypt("bob", later.message).plaintext == b"after the move"
