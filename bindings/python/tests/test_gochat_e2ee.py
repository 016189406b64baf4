"""GoChat E2EE through the Python bindings: vectors, conversations, tampering, snapshots,
retries and concurrent calls."""

import queue
import threading

import pytest

import gochat_e2ee_ffi as g
from conftest import load_vector

NOW = 1_700_000_000
KEY = bytes(range(32))
VECTORS_WITH_BUNDLES = [
    "identity_and_bundle",
    "pqxdh_one_time_prekey",
    "pqxdh_last_resort",
    "ratchet_conversation",
    "padding",
    "snapshot",
]


def pair():
    """Alice has a session with Bob and Bob has answered: both sides are established."""
    alice = g.Device("alice", NOW)
    bob = g.Device("bob", NOW)
    bob.generate_one_time_prekeys(2)
    bob.generate_pq_prekeys(2, NOW)
    alice.initiate("bob", bob.next_bundle())
    assert bob.decrypt("alice", alice.encrypt("bob", b"hello")).plaintext == b"hello"
    assert alice.decrypt("bob", bob.encrypt("alice", b"hi")).plaintext == b"hi"
    return alice, bob


# ------------------------------------------------------------------ vectors


@pytest.mark.parametrize("name", VECTORS_WITH_BUNDLES)
def test_vector_bundle_verifies(name):
    out = load_vector(name)["outputs"]
    info = g.verify_bundle(bytes.fromhex(out["bundle"]))
    assert info.identity_key == bytes.fromhex(out["bob_identity_key"])
    assert info.fingerprint == out["bob_fingerprint"]
    assert g.identity_fingerprint(info.identity_key) == out["bob_fingerprint"]
    assert info.signed_prekey_id == 1
    assert info.signed_prekey_created_at == load_vector(name)["inputs"]["now"]
    bob = load_vector(name)["inputs"]["bob"]
    assert (info.one_time_prekey_id is not None) == (bob["one_time_prekeys"] > 0)
    assert info.pq_prekey_is_last_resort == (bob["pq_one_time_prekeys"] == 0)


def test_vector_bundle_every_flipped_byte_is_refused():
    bundle = bytes.fromhex(load_vector("identity_and_bundle")["outputs"]["bundle"])
    accepted = []
    for i in range(len(bundle)):
        bad = bytearray(bundle)
        bad[i] ^= 0x01
        try:
            g.verify_bundle(bytes(bad))
            accepted.append(i)
        except g.GoChatError:
            pass
    assert accepted == []
    with pytest.raises(g.GoChatError):
        g.verify_bundle(bundle[:-1])
    with pytest.raises(g.GoChatError):
        g.verify_bundle(bundle + b"\x00")


def test_vector_identity_fingerprints():
    for name in VECTORS_WITH_BUNDLES:
        out = load_vector(name)["outputs"]
        assert g.identity_fingerprint(bytes.fromhex(out["bob_identity_key"])) == out["bob_fingerprint"]
    with pytest.raises(g.GoChatError):
        g.identity_fingerprint(b"\x01\x01" + bytes(64))  # all-zero keys are not valid


def test_vector_snapshot_imports_with_the_vector_key():
    v = load_vector("snapshot")
    out = v["outputs"]
    key = bytes.fromhex(v["inputs"]["snapshot"]["key"])
    snap = bytes.fromhex(out["snapshot"])
    bob = g.Device.from_snapshot(key, snap)
    assert bob.user_id() == "bob"
    assert bob.identity_key() == bytes.fromhex(out["bob_identity_key"])
    assert bob.fingerprint() == out["bob_fingerprint"]
    assert bob.has_session("alice")
    # Alice's first message was already delivered before the snapshot: a replay.
    with pytest.raises(g.GoChatError.Duplicate):
        bob.decrypt("alice", bytes.fromhex(out["messages"][0]))
    # Bob can still send on the session.
    assert len(bob.encrypt("alice", b"still here")) > 0
    wrong = bytes([k ^ 0xFF for k in key])
    with pytest.raises(g.GoChatError.SnapshotUndecryptable):
        g.Device.from_snapshot(wrong, snap)
    with pytest.raises(g.GoChatError.InvalidSnapshotKey):
        g.Device.from_snapshot(key[:31], snap)


def test_vector_message_digest_is_stable():
    msgs = [bytes.fromhex(m) for m in load_vector("ratchet_conversation")["outputs"]["messages"]]
    digests = [g.message_digest(m) for m in msgs]
    assert len(set(digests)) == len(msgs)
    assert digests == [g.message_digest(m) for m in msgs]


def test_library_version_and_limits():
    assert g.library_version()
    limits = g.limits()
    assert limits.padding_block == 64
    assert limits.max_plaintext_bytes < limits.max_message_bytes


# ------------------------------------------------------------------ conversations


def test_session_setup_and_conversation():
    alice = g.Device("alice", NOW)
    bob = g.Device("bob", NOW)
    bob.generate_one_time_prekeys(1)
    bob.generate_pq_prekeys(1, NOW)
    bundle = bob.next_bundle()
    info = g.verify_bundle(bundle)
    assert info.identity_key == bob.identity_key()
    assert info.one_time_prekey_id == 1
    assert not alice.has_session("bob")
    assert alice.pinned_identity("bob") is None
    assert alice.initiate("bob", bundle) == g.IdentityEvent.NEW()
    assert alice.has_session("bob")
    assert alice.peer_identity("bob") == bob.identity_key()
    assert alice.pinned_identity("bob") == bob.identity_key()
    assert alice.pending_identity("bob") is None
    m = alice.encrypt("bob", b"first")
    first = bob.decrypt("alice", m)
    assert first.plaintext == b"first"
    assert first.sender_identity == alice.identity_key()
    assert first.identity_event.is_new()
    assert first.identity_event == g.IdentityEvent.NEW()
    assert bob.pinned_identity("alice") == alice.identity_key()
    assert bob.peer_identity("alice") == alice.identity_key()
    second = bob.decrypt("alice", alice.encrypt("bob", b"second"))
    assert second.plaintext == b"second"
    assert second.identity_event == g.IdentityEvent.SAME()
    for i in range(5):
        assert alice.decrypt("bob", bob.encrypt("alice", b"b%d" % i)).plaintext == b"b%d" % i
        assert bob.decrypt("alice", alice.encrypt("bob", b"a%d" % i)).plaintext == b"a%d" % i


def test_out_of_order_delivery():
    alice, bob = pair()
    msgs = [alice.encrypt("bob", b"m%d" % i) for i in range(10)]
    order = [9, 0, 5, 1, 8, 2, 7, 3, 6, 4]
    for i in order:
        assert bob.decrypt("alice", msgs[i]).plaintext == b"m%d" % i
    # Crossing sends, then late delivery from an older chain.
    late = alice.encrypt("bob", b"late")
    reply = bob.encrypt("alice", b"reply")
    assert alice.decrypt("bob", reply).plaintext == b"reply"
    newer = alice.encrypt("bob", b"newer")
    assert bob.decrypt("alice", newer).plaintext == b"newer"
    assert bob.decrypt("alice", late).plaintext == b"late"


def test_tampering_and_duplicates_are_distinct_errors():
    alice, bob = pair()
    m = alice.encrypt("bob", b"secret")
    for i in (len(m) - 1, len(m) - 20, len(m) // 2):
        bad = bytearray(m)
        bad[i] ^= 0x80
        with pytest.raises(g.GoChatError.AuthenticationFailed) as ei:
            bob.decrypt("alice", bytes(bad))
        assert isinstance(ei.value, g.GoChatError)
        assert ei.value.detail
    assert bob.decrypt("alice", m).plaintext == b"secret"  # tampering left the session intact
    with pytest.raises(g.GoChatError.Duplicate) as ei:
        bob.decrypt("alice", m)
    assert not isinstance(ei.value, g.GoChatError.AuthenticationFailed)
    assert ei.value.retry_may_help is False
    with pytest.raises(g.GoChatError.NoSession):
        alice.encrypt("carol", b"x")
    with pytest.raises(g.GoChatError):
        bob.decrypt("alice", b"")


def test_snapshot_round_trip():
    alice, bob = pair()
    snap = bob.export(KEY)
    bob2 = g.Device.from_snapshot(KEY, snap)
    assert bob2.identity_key() == bob.identity_key()
    assert bob2.user_id() == "bob"
    m = alice.encrypt("bob", b"to the restored device")
    assert bob2.decrypt("alice", m).plaintext == b"to the restored device"
    assert alice.decrypt("bob", bob2.encrypt("alice", b"ok")).plaintext == b"ok"
    with pytest.raises(g.GoChatError.SnapshotUndecryptable):
        g.Device.from_snapshot(bytes(32), snap)
    # Session snapshots.
    s = alice.export_session("bob", KEY)
    with pytest.raises(g.GoChatError.SnapshotWrongKind):
        g.Device.from_snapshot(KEY, s)
    alice2 = g.Device.from_snapshot(KEY, alice.export(KEY))
    alice2.import_session("bob", KEY, s)
    assert alice2.has_session("bob")


def test_retry_flow():
    alice, bob = pair()
    backup = bob.export(KEY)
    for i in range(3):
        assert bob.decrypt("alice", alice.encrypt("bob", b"a%d" % i)).plaintext == b"a%d" % i
        assert alice.decrypt("bob", bob.encrypt("alice", b"b%d" % i)).plaintext == b"b%d" % i
    bob = g.Device.from_snapshot(KEY, backup)  # Bob restored from an old backup
    failed = alice.encrypt("bob", b"please read me")
    with pytest.raises(g.GoChatError) as ei:
        bob.decrypt("alice", failed)
    assert ei.value.retry_may_help
    request = bob.retry_request("alice", alice.identity_key(), failed, NOW)
    with pytest.raises(g.GoChatError.UntrustedIdentity):  # bob's key is not pinned for "carol"
        alice.handle_retry_request("carol", request, NOW)
    with pytest.raises(g.GoChatError.RetryExpired) as ee:
        alice.handle_retry_request("bob", request, NOW + 2 * 86_400)
    assert ee.value.retry_may_help is False
    digest = alice.handle_retry_request("bob", request, NOW + 60)
    assert digest == g.message_digest(failed)
    resent = alice.encrypt("bob", b"please read me")
    assert bob.decrypt("alice", resent).plaintext == b"please read me"
    with pytest.raises(g.GoChatError.UnknownMessage):
        alice.handle_retry_request("bob", request, NOW + 60)
    assert alice.decrypt("bob", bob.encrypt("alice", b"got it")).plaintext == b"got it"


def test_retry_request_for_an_already_used_counter_is_refused():
    alice, bob = pair()
    m = alice.encrypt("bob", b"read once")
    assert bob.decrypt("alice", m).plaintext == b"read once"
    # A replay must never be turned into a re-send.
    with pytest.raises(g.GoChatError.Duplicate):
        bob.retry_request("alice", alice.identity_key(), m, NOW)


def test_restored_sender_starts_a_new_epoch_and_reused_counters_are_reported():
    alice, bob = pair()
    backup = alice.export(KEY)  # saved before the next encrypt: the wrong order
    assert bob.decrypt("alice", alice.encrypt("bob", b"one")).plaintext == b"one"
    alice2 = g.Device.from_snapshot(KEY, backup)
    again = alice2.encrypt("bob", b"one again")  # re-uses the counter of "one"
    with pytest.raises(g.GoChatError.CounterReused) as ei:
        bob.decrypt("alice", again)
    assert ei.value.retry_may_help is True
    assert not isinstance(ei.value, g.GoChatError.Duplicate)


# ------------------------------------------------------------------ identities


def test_changed_identity_waits_for_approval():
    alice, bob = pair()
    assert alice.identity_policy() == g.IdentityPolicy.REQUIRE_APPROVAL
    bob_new = g.Device("bob", NOW)  # Bob reinstalls: new identity, same name
    bob_new.generate_one_time_prekeys(1)
    with pytest.raises(g.GoChatError.IdentityChanged):
        alice.initiate("bob", bob_new.next_bundle())
    assert bob_new.initiate("alice", alice.next_bundle()) == g.IdentityEvent.NEW()
    got = alice.decrypt("bob", bob_new.encrypt("alice", b"new phone"))
    assert got.plaintext == b"new phone"
    assert got.sender_identity == bob_new.identity_key()
    ev = got.identity_event
    assert ev.is_changed()
    assert ev == g.IdentityEvent.CHANGED(previous=bob.identity_key(), approved=False, reason=g.ChangeReason.AWAITING_APPROVAL)
    assert ev.previous == bob.identity_key()
    assert ev.approved is False
    assert alice.pinned_identity("bob") == bob.identity_key()
    assert alice.pending_identity("bob") == bob_new.identity_key()
    with pytest.raises(g.GoChatError.IdentityChanged) as ei:
        alice.encrypt("bob", b"to whom?")
    assert ei.value.detail
    # The user compared fingerprints and approves.
    alice.approve_identity("bob", bob_new.identity_key())
    assert alice.pinned_identity("bob") == bob_new.identity_key()
    assert alice.pending_identity("bob") is None
    back = bob_new.decrypt("alice", alice.encrypt("bob", b"welcome back"))
    assert back.plaintext == b"welcome back"
    assert back.identity_event == g.IdentityEvent.SAME()
    assert alice.decrypt("bob", bob_new.encrypt("alice", b"thanks")).identity_event.is_same()


def test_notify_policy_accepts_a_changed_identity_and_reports_it():
    alice, bob = pair()
    alice.set_identity_policy(g.IdentityPolicy.NOTIFY)
    assert alice.identity_policy() == g.IdentityPolicy.NOTIFY
    bob_new = g.Device("bob", NOW)
    bob_new.initiate("alice", alice.next_bundle())
    got = alice.decrypt("bob", bob_new.encrypt("alice", b"new phone"))
    assert got.plaintext == b"new phone"
    assert got.identity_event == g.IdentityEvent.CHANGED(previous=bob.identity_key(), approved=True, reason=g.ChangeReason.NOTIFY)
    assert alice.pinned_identity("bob") == bob_new.identity_key()
    assert alice.pending_identity("bob") is None
    assert bob_new.decrypt("alice", alice.encrypt("bob", b"hello new bob")).plaintext == b"hello new bob"


def test_remove_sessions_keeps_the_pin_and_forget_identity_resets_it():
    alice, bob = pair()
    assert len(bob.export(KEY)) == bob.state_len() + 51
    before = bob.state_len()
    assert bob.remove_sessions("alice") is True
    assert bob.remove_sessions("alice") is False
    assert bob.state_len() < before
    assert not bob.has_session("alice")
    assert bob.pinned_identity("alice") == alice.identity_key()
    with pytest.raises(g.GoChatError.NoSession):
        bob.encrypt("alice", b"x")
    assert bob.forget_identity("alice") is True
    assert bob.pinned_identity("alice") is None
    again = g.Device("alice", NOW)
    assert bob.initiate("alice", again.next_bundle()) == g.IdentityEvent.NEW()
    assert len(bob.export(KEY)) == bob.state_len() + 51


def test_error_codes_include_state_full_and_internal():
    assert hasattr(g.GoChatError, "StateFull") and hasattr(g.GoChatError, "Internal")


# ------------------------------------------------------------------ threads


def test_eight_threads_encrypt_on_one_device():
    alice, bob = pair()
    n_threads, per_thread = 8, 25
    sent = queue.Queue()  # (ciphertext, plaintext), roughly in send order
    errors = []
    barrier = threading.Barrier(n_threads)

    def worker(t):
        try:
            barrier.wait()
            for i in range(per_thread):
                p = b"thread %d message %d" % (t, i)
                sent.put((alice.encrypt("bob", p), p))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    items = [sent.get_nowait() for _ in range(n_threads * per_thread)]
    # Delivered in queue order (which may differ slightly from the counter order: the
    # receiver's skipped keys absorb that), every message decrypts exactly once, and each
    # thread's messages arrive in the order that thread sent them.
    last = {}
    for c, p in items:
        assert bob.decrypt("alice", c).plaintext == p
        t, i = int(p.split()[1]), int(p.split()[3])
        assert last.get(t, -1) < i
        last[t] = i
    assert all(last[t] == per_thread - 1 for t in range(n_threads))


def test_concurrent_encrypt_without_ordering_all_decrypt_in_any_order():
    alice, bob = pair()
    results = []
    res_lock = threading.Lock()

    def worker(t):
        for i in range(20):
            p = b"%d-%d" % (t, i)
            c = alice.encrypt("bob", p)
            with res_lock:
                results.append((c, p))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 160
    # Deliver in reverse (all out of order within one chain): every one decrypts once.
    out = set()
    for c, p in reversed(results):
        assert bob.decrypt("alice", c).plaintext == p
        out.add(p)
    assert len(out) == 160
    # Concurrent decrypts on the receiver of fresh messages.
    msgs = [(alice.encrypt("bob", b"r%d" % i), b"r%d" % i) for i in range(40)]
    errs = []

    def rx(chunk):
        for c, p in chunk:
            try:
                assert bob.decrypt("alice", c).plaintext == p
            except Exception as e:  # noqa: BLE001
                errs.append(e)

    ts = [threading.Thread(target=rx, args=(msgs[k::4],)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errs == []
