package gov.gochat.e2ee

import org.junit.jupiter.api.Test

/**
 * Not part of the test suite (excluded in the pom). scripts/bench-bindings.sh runs it
 * with `-Dtest=FfiBench` against the release cdylib. Same flows as
 * crates/gochat-e2ee-ffi/examples/ffi_baseline.rs; prints `kotlin <flow> <ns>` lines.
 */
class FfiBench {
    @Test
    fun bench() {
        val iters = (System.getProperty("gochat.bench.iters") ?: "20000").toInt()
        val setups = (System.getProperty("gochat.bench.setups") ?: "200").toInt()
        val msg = ByteArray(100) { 0x42 }

        val alice = Device("alice", NOW)
        val bob = Device("bob", NOW)
        alice.initiate("bob", bob.nextBundle())
        bob.decrypt("alice", alice.encrypt("bob", "hello".toByteArray()))
        alice.decrypt("bob", bob.encrypt("alice", "hi".toByteArray())) // answered: ratchet messages from now on
        var sink = 0
        fun round() {
            sink += bob.decrypt("alice", alice.encrypt("bob", msg)).plaintext.size
        }
        // Warm-up: JIT compilation of the generated code and JNA's call path.
        repeat(maxOf(iters / 2, 2000)) { round() }
        var t = System.nanoTime()
        repeat(iters) { round() }
        println("kotlin encrypt_decrypt_100B ${(System.nanoTime() - t) / iters}")

        fun setup(): Long {
            val a = Device("alice", NOW)
            val b = Device("bob", NOW)
            val t0 = System.nanoTime()
            a.initiate("bob", b.nextBundle())
            sink += b.decrypt("alice", a.encrypt("bob", msg)).plaintext.size
            val dt = System.nanoTime() - t0
            a.close(); b.close()
            return dt
        }
        repeat(maxOf(setups / 4, 20)) { setup() }
        var total = 0L
        repeat(setups) { total += setup() }
        println("kotlin session_setup ${total / setups}")
        check(sink > 0)
    }
}
