package gov.gochat.e2ee

import org.junit.jupiter.api.Test

/**
 * Not part of the test suite (excluded in the pom). scripts/bench-bindings.sh runs it
 * with `-Dtest=FfiBench` against the release cdylib. Same flows as
 * crates/gochat-e2ee-ffi/examples/ffi_baseline.rs, each through the generated JNA path
 * (`kotlin <flow> <ns>`) and through the JNI fast path, `FastDevice`
 * (`kotlin-fast <flow> <ns>`), plus the bare crossing of each (`bare_call`).
 */
class FfiBench {
    private val iters = (System.getProperty("gochat.bench.iters") ?: "20000").toInt()
    private val setups = (System.getProperty("gochat.bench.setups") ?: "200").toInt()
    private val msg = ByteArray(100) { 0x42 }
    private var sink = 0L

    /** The best of 3 timed runs of [n] rounds (load only adds time), after a warm-up. */
    private fun time(label: String, flow: String, n: Int, round: () -> Unit) {
        // Warm-up: JIT compilation of the generated code and the call path.
        repeat(maxOf(n / 2, 2000)) { round() }
        val best = (0 until 3).minOf {
            val t = System.nanoTime()
            repeat(n) { round() }
            (System.nanoTime() - t) / n
        }
        println("$label $flow $best")
    }

    private fun make(name: String, fast: Boolean): Device =
        Device(name, NOW).let { if (fast) FastDevice.of(it).also { _ -> it.close() } else it }

    private fun flows(fast: Boolean) {
        val label = if (fast) "kotlin-fast" else "kotlin"
        val alice = make("alice", fast)
        val bob = make("bob", fast)
        alice.initiate("bob", bob.nextBundle())
        bob.decrypt("alice", alice.encrypt("bob", "hello".toByteArray()))
        alice.decrypt("bob", bob.encrypt("alice", "hi".toByteArray())) // answered: ratchet messages from now on
        time(label, "encrypt_decrypt_100B", iters) {
            sink += bob.decrypt("alice", alice.encrypt("bob", msg)).plaintext.size
        }

        val created = alice.groupCreate(listOf(GroupMemberRecord("bob", bob.identityKey(), false)), NOW)
        val joined = bob.groupJoin(created.welcome!!, NOW)
        created.outgoing.forEach { bob.receiveControl("alice", it.message) }
        joined.outgoing.forEach { alice.receiveControl("bob", it.message) }
        val gid = created.groupId
        time(label, "group_encrypt_decrypt_100B", iters / 4) {
            val sent = alice.groupEncrypt(gid, msg, NOW)
            sent.outgoing.forEach { bob.receiveControl("alice", it.message) }
            sink += bob.groupDecrypt("alice", sent.message).plaintext.size
        }

        if (fast) {
            val f = alice as FastDevice
            time(label, "bare_call", iters) { sink += FastDevice.noop(f) }
        } else {
            time(label, "bare_call", iters) { sink += libraryVersion().length }
        }

        fun setup(): Long {
            val a = make("alice", fast)
            val b = make("bob", fast)
            val t0 = System.nanoTime()
            a.initiate("bob", b.nextBundle())
            sink += b.decrypt("alice", a.encrypt("bob", msg)).plaintext.size
            val dt = System.nanoTime() - t0
            a.close(); b.close()
            return dt
        }
        repeat(maxOf(setups / 4, 20)) { setup() }
        val best = (0 until 3).minOf { (0 until setups).sumOf { setup() } / setups }
        println("$label session_setup $best")
        alice.close(); bob.close()
    }

    @Test
    fun bench() {
        flows(fast = false)
        flows(fast = true)
        check(sink > 0)
    }
}
