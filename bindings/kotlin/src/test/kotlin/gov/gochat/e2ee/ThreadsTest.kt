package gov.gochat.e2ee

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

class ThreadsTest {
    @Test
    fun eightThreadsEncryptOnOneDevice() {
        val (alice, bob) = pair()
        val threads = 8
        val perThread = 50
        // (ciphertext, plaintext), roughly in send order; the receiver's skipped keys
        // absorb the small reorderings between encrypt returning and the enqueue.
        val sent = ConcurrentLinkedQueue<Pair<ByteArray, String>>()
        val barrier = CyclicBarrier(threads)
        val pool = Executors.newFixedThreadPool(threads)
        val futures = (0 until threads).map { t ->
            pool.submit {
                barrier.await()
                repeat(perThread) { i ->
                    val p = "thread $t message $i"
                    sent.add(alice.encrypt("bob", p.toByteArray()) to p)
                }
            }
        }
        futures.forEach { it.get(60, TimeUnit.SECONDS) }
        pool.shutdown()
        assertEquals(threads * perThread, sent.size)
        // Every message decrypts exactly once, and each thread's messages arrive in the
        // order that thread sent them.
        val last = IntArray(threads) { -1 }
        for ((c, p) in sent) {
            assertEquals(p, bob.decrypt("alice", c).plaintext.decodeToString())
            val parts = p.split(" ")
            val t = parts[1].toInt()
            val i = parts[3].toInt()
            assertTrue(last[t] < i, "thread $t out of order")
            last[t] = i
        }
        assertTrue(last.all { it == perThread - 1 })
    }

    @Test
    fun concurrentEncryptAndDecryptOnBothSides() {
        val (alice, bob) = pair()
        val toBob = (0 until 80).map { i -> alice.encrypt("bob", "a$i".toByteArray()) to "a$i" }
        val toAlice = (0 until 80).map { i -> bob.encrypt("alice", "b$i".toByteArray()) to "b$i" }
        val errors = ConcurrentLinkedQueue<Throwable>()
        val pool = Executors.newFixedThreadPool(8)
        val jobs = (0 until 4).flatMap { k ->
            listOf(
                pool.submit { toBob.slice(k until toBob.size step 4).forEach { (c, p) -> if (bob.decrypt("alice", c).plaintext.decodeToString() != p) errors.add(AssertionError(p)) } },
                pool.submit { toAlice.slice(k until toAlice.size step 4).forEach { (c, p) -> if (alice.decrypt("bob", c).plaintext.decodeToString() != p) errors.add(AssertionError(p)) } },
            )
        }
        jobs.forEach { it.get(60, TimeUnit.SECONDS) }
        pool.shutdown()
        assertEquals(emptyList<Throwable>(), errors.toList())
        // Both still talk afterwards.
        assertEquals("after", bob.decrypt("alice", alice.encrypt("bob", "after".toByteArray())).plaintext.decodeToString())
    }
}
