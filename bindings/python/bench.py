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
    def enc():
        alice.encrypt("bob", msg)
    n = max(iters // 5, 1000)
    best = min(timeit.repeat(enc, number=n, repeat=5)) / n
    print(f"python encrypt_100B {best * 1e9:.0f}")

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
