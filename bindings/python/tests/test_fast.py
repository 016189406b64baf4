"""The ctypes fast path (gochat_e2ee_fast.FastDevice, docs/python.md "Fast path") gives
exactly what the generated methods give: results, typed errors and state."""

import pytest

import gochat_e2ee_ffi as g
import gochat_e2ee_fast as fast

NOW = 1_700_000_000


def pair(use_fast):
    a, b = g.Device("alice", NOW), g.Device("bob", NOW)
    if use_fast:
        a, b = fast.FastDevice.of(a), fast.FastDevice.of(b)
    a.initiate("bob", b.next_bundle())
    return a, b


def test_a_conversation_on_the_fast_path_matches_the_generated_one():
    alice, bob = pair(True)
    assert isinstance(alice, g.Device)
    slow_bob = g.Device._uniffi_make_instance(bob._uniffi_clone_handle())
    for i in range(10):
        m = alice.encrypt("bob", f"to bob {i}".encode())
        got = bob.decrypt("alice", m)
        assert got.plaintext == f"to bob {i}".encode()
        assert got.sender_identity == alice.identity_key()
        assert got.digest == g.message_digest(m) and not got.redelivered
        replier = bob if i % 2 == 0 else slow_bob
        assert alice.decrypt("bob", replier.encrypt("alice", f"r{i}".encode())).plaintext == f"r{i}".encode()


@pytest.mark.parametrize("use_fast", [False, True])
def test_errors_are_the_same_typed_errors_and_change_nothing(use_fast):
    alice, bob = pair(use_fast)
    m = alice.encrypt("bob", b"once")
    bob.decrypt("alice", m)
    state = bob.state_len()
    with pytest.raises(g.GoChatError.Duplicate):
        bob.decrypt("alice", m)
    with pytest.raises(g.GoChatError.NoSession):
        alice.encrypt("carol", b"x")
    forged = bytearray(alice.encrypt("bob", b"y"))
    forged[-1] ^= 1
    with pytest.raises(g.GoChatError.AuthenticationFailed):
        bob.decrypt("alice", bytes(forged))
    with pytest.raises(g.GoChatError.Malformed):
        bob.decrypt("alice", b"")
    assert bob.state_len() == state


def test_groups_on_the_fast_path():
    ana, ben = pair(True)
    ben.decrypt("alice", ana.encrypt("bob", b"hi"))
    ana.decrypt("bob", ben.encrypt("alice", b"hi"))
    created = ana.group_create([g.GroupMemberRecord(name="bob", identity_key=ben.identity_key(), admin=False)], NOW)
    joined = ben.group_join(created.welcome, NOW)
    for o in created.outgoing:
        ben.receive_control("alice", o.message)
    for o in joined.outgoing:
        ana.receive_control("bob", o.message)
    for i in range(5):
        sent = ana.group_encrypt(created.group_id, f"g{i}".encode(), NOW)
        for o in sent.outgoing:
            ben.receive_control("alice", o.message)
        got = ben.group_decrypt("alice", sent.message)
        assert got.plaintext == f"g{i}".encode() and got.sender == "alice"
    with pytest.raises(g.GoChatError.Duplicate):
        ben.group_decrypt("alice", sent.message)
    with pytest.raises(g.GoChatError.UnknownGroup):
        ana.group_encrypt(bytes(32), b"x", NOW)


def test_a_store_backed_device_stays_store_backed(tmp_path):
    key = g.StoreUnlock.PLATFORM_KEY(bytes([7]) * 32)
    alice = fast.FastDevice.of(g.Device.create_stored(str(tmp_path / "a.sqlite"), key, "alice", NOW, None))
    bob = g.Device("bob", NOW)
    alice.initiate("bob", bob.next_bundle())
    before = alice.store_generation()
    assert bob.decrypt("alice", alice.encrypt("bob", b"stored")).plaintext == b"stored"
    assert alice.store_generation() == before + 1
    reply = bob.encrypt("alice", b"back")
    got = alice.decrypt("bob", reply)
    assert alice.decrypt("bob", reply).redelivered
    assert alice.ack(got.digest)
