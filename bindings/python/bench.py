"""Python side of scripts/bench-bindings.sh: the flows of
crates/gochat-e2ee-ffi/examples/ffi_baseline.rs through the uniffi module, timed with
timeit. Prints `python <flow> <ns>` lines.

    python bench.py [ITERS SETUPS]   (gochat_e2ee_ffi must be importable)
"""

import sys
import time
import timeit

import gochat_e2ee_ffi as g

NOW = 1_700_000_000


def main():
    iters = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    setups = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    msg = b"\x42" * 100

    alice, bob = g.Device("alice", NOW), g.Device("bob", NOW)
    alice.initiate("bob", bob.next_bundle())
    bob.decrypt("alice", alice.encrypt("bob", b"hello"))
    alice.decrypt("bob", bob.encrypt("alice", b"hi"))  # answered: ratchet messages from now on

    def round_trip():
        bob.decrypt("alice", alice.encrypt("bob", msg))

    timeit.timeit(round_trip, number=iters // 10)
    best = min(timeit.repeat(round_trip, number=iters // 5, repeat=5)) / (iters // 5)
    print(f"python encrypt_decrypt_100B {best * 1e9:.0f}")

    def member(d, name):
        return g.GroupMemberRecord(name=name, identity_key=d.identity_key(), admin=False)

    created = alice.group_create([member(bob, "bob")], NOW)
    joined = bob.group_join(created.welcome, NOW)
    for o in created.outgoing:
        bob.receive_control("alice", o.message)
    for o in joined.outgoing:
        alice.receive_control("bob", o.message)
    gid = created.group_id

    def group_round():
        sent = alice.group_encrypt(gid, msg, NOW)
        for o in sent.outgoing:
            bob.receive_control("alice", o.message)
        bob.group_decrypt("alice", sent.message)

    n = max(iters // 20, 100)
    timeit.timeit(group_round, number=n)
    best = min(timeit.repeat(group_round, number=n, repeat=5)) / n
    print(f"python group_encrypt_decrypt_100B {best * 1e9:.0f}")

    # The bare crossing: a call that does no work in Rust.
    n = max(iters // 5, 1000)
    best = min(timeit.repeat(g.library_version, number=n, repeat=5)) / n
    print(f"python bare_call {best * 1e9:.0f}")
    # One call each (a 1:1 round trip is two calls).
    carol, dave = g.Device("carol", NOW), g.Device("dave", NOW)
    carol.initiate("dave", dave.next_bundle())  # its own pair: never decrypted
    dave.decrypt("carol", carol.encrypt("dave", b"hello"))
    carol.decrypt("dave", dave.encrypt("carol", b"hi"))  # answered: ratchet messages

    def enc():
        carol.encrypt("dave", msg)
    n = max(iters // 5, 1000)
    best = min(timeit.repeat(enc, number=n, repeat=5)) / n
    print(f"python encrypt_100B {best * 1e9:.0f}")

    # A backlog: 100 messages decrypted with one decrypt_batch call (ns per message).
    def backlog():
        batch = [g.IncomingMessage(peer="alice", message=alice.encrypt("bob", msg)) for _ in range(100)]
        t = time.perf_counter_ns()
        out = bob.decrypt_batch(batch)
        dt = time.perf_counter_ns() - t
        assert all(isinstance(o, g.BatchOutcome.DECRYPTED) for o in out)
        return dt / 100

    n = max(iters // 500, 10)
    for _ in range(n):
        backlog()
    print(f"python decrypt_batch_100B {min(min(backlog() for _ in range(n)) for _ in range(3)):.0f}")

    # The same flows through the fast path (gochat_e2ee_fast.FastDevice).
    import gochat_e2ee_fast as fast

    fa, fb = fast.FastDevice.of(alice), fast.FastDevice.of(bob)

    def fast_round():
        fb.decrypt("alice", fa.encrypt("bob", msg))

    timeit.timeit(fast_round, number=iters // 10)
    best = min(timeit.repeat(fast_round, number=iters // 5, repeat=5)) / (iters // 5)
    print(f"python-fast encrypt_decrypt_100B {best * 1e9:.0f}")
    fc = fast.FastDevice.of(carol)

    def fast_enc():
        fc.encrypt("dave", msg)

    n = max(iters // 5, 1000)
    best = min(timeit.repeat(fast_enc, number=n, repeat=5)) / n
    print(f"python-fast encrypt_100B {best * 1e9:.0f}")

    def fast_group_round():
        sent = fa.group_encrypt(gid, msg, NOW)
        for o in sent.outgoing:
            bob.receive_control("alice", o.message)
        fb.group_decrypt("alice", sent.message)

    n = max(iters // 20, 100)
    timeit.timeit(fast_group_round, number=n)
    best = min(timeit.repeat(fast_group_round, number=n, repeat=5)) / n
    print(f"python-fast group_encrypt_decrypt_100B {best * 1e9:.0f}")

    def setup():
        a, b = g.Device("alice", NOW), g.Device("bob", NOW)
        t = time.perf_counter_ns()
        a.initiate("bob", b.next_bundle())
        b.decrypt("alice", a.encrypt("bob", msg))
        return time.perf_counter_ns() - t

    for _ in range(setups // 10):
        setup()
    best = min(sum(setup() for _ in range(setups)) / setups for _ in range(3))
    print(f"python session_setup {best:.0f}")


if __name__ == "__main__":
    main()
