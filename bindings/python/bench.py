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

    def setup():
        a, b = g.Device("alice", NOW), g.Device("bob", NOW)
        t = time.perf_counter_ns()
        a.initiate("bob", b.next_bundle())
        b.decrypt("alice", a.encrypt("bob", msg))
        return time.perf_counter_ns() - t

    for _ in range(setups // 10):
        setup()
    print(f"python session_setup {sum(setup() for _ in range(setups)) / setups:.0f}")


if __name__ == "__main__":
    main()
