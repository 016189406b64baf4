"""decrypt_batch: a backlog decrypted in one call into the library, one outcome per
message (docs/benchmarks.md, "Kotlin crossing")."""

import pytest

import gochat_e2ee_ffi as g

NOW = 1_700_000_000


def test_decrypt_batch_decrypts_a_backlog_in_one_call_and_reports_each_failure():
    alice, bob = g.Device("alice", NOW), g.Device("bob", NOW)
    alice.initiate("bob", bob.next_bundle())
    sent = [alice.encrypt("bob", f"m{i}".encode()) for i in range(5)]
    batch = [g.IncomingMessage(peer="alice", message=m) for m in sent]
    batch.insert(2, g.IncomingMessage(peer="alice", message=b""))
    out = bob.decrypt_batch(batch)
    assert [o.result.plaintext for o in out if isinstance(o, g.BatchOutcome.DECRYPTED)] == [
        f"m{i}".encode() for i in range(5)
    ]
    assert isinstance(out[2], g.BatchOutcome.FAILED) and out[2].code == "Malformed"
    # The same messages again: each is a Duplicate, in order, nothing stops the batch.
    again = bob.decrypt_batch([g.IncomingMessage(peer="alice", message=m) for m in sent])
    assert [o.code for o in again] == ["Duplicate"] * 5
    with pytest.raises(g.GoChatError.TooLarge):
        bob.decrypt_batch([g.IncomingMessage(peer="alice", message=b"")] * 1001)  # MAX_BATCH_MESSAGES + 1


def test_a_stored_device_decrypts_a_batch_in_one_transaction(tmp_path):
    key = g.StoreUnlock.PLATFORM_KEY(bytes([7]) * 32)
    bob = g.Device.create_stored(str(tmp_path / "bob.sqlite"), key, "bob", NOW, None)
    alice = g.Device("alice", NOW)
    alice.initiate("bob", bob.next_bundle())
    sent = [alice.encrypt("bob", f"b{i}".encode()) for i in range(10)]
    before = bob.store_generation()
    out = bob.decrypt_batch([g.IncomingMessage(peer="alice", message=m) for m in sent])
    assert [o.result.plaintext for o in out] == [f"b{i}".encode() for i in range(10)]
    assert bob.store_generation() == before + 1  # one commit for the whole batch
    again = bob.decrypt_batch([g.IncomingMessage(peer="alice", message=sent[0])])
    assert again[0].result.redelivered
    gen = bob.store_generation()
    assert bob.ack_batch([o.result.digest for o in out]) == 10
    assert bob.store_generation() == gen + 1  # one commit for the whole ack
    assert bob.ack_batch([out[0].result.digest]) == 0
