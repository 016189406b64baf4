package gov.gochat.e2ee

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.nio.file.Files
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

/**
 * The JNI fast path (`FastDevice`, docs/kotlin.md "Fast path") gives exactly what the
 * generated JNA methods give: the same results, the same typed errors, the same state.
 */
class FastPathTest {
    private fun pair(fast: Boolean): Pair<Device, Device> {
        val a = Device("alice", NOW).let { if (fast) FastDevice.of(it) else it }
        val b = Device("bob", NOW).let { if (fast) FastDevice.of(it) else it }
        b.generateOneTimePrekeys(2u)
        a.initiate("bob", b.nextBundle())
        return a to b
    }

    @Test
    fun aConversationOnTheFastPathMatchesTheGeneratedPath() {
        val (alice, bob) = pair(fast = true)
        assertTrue(alice is FastDevice)
        // A generated-path object on the same Rust device.
        val slowBob = Device(UniffiWithHandle, bob.uniffiCloneHandle())
        repeat(20) { i ->
            val m = alice.encrypt("bob", "to bob $i".toByteArray())
            val got = bob.decrypt("alice", m)
            assertEquals("to bob $i", got.plaintext.decodeToString())
            assertArrayEquals(alice.identityKey(), got.senderIdentity)
            assertEquals(if (i == 0) IdentityEvent.New else IdentityEvent.Same, got.identityEvent)
            assertArrayEquals(messageDigest(m), got.digest)
            assertFalse(got.redelivered)
            // The generated path reads the fast path's state and the other way round.
            val reply = if (i % 2 == 0) bob.encrypt("alice", "r$i".toByteArray()) else slowBob.encrypt("alice", "r$i".toByteArray())
            assertEquals("r$i", alice.decrypt("bob", reply).plaintext.decodeToString())
        }
    }

    @Test
    fun errorsAreTheSameTypedErrorsAndChangeNothing() {
        val bundleErrors = mutableListOf<Any>()
        for (fast in listOf(false, true)) {
            val (alice, bob) = pair(fast)
            val m = alice.encrypt("bob", "once".toByteArray())
            bob.decrypt("alice", m)
            val state = bob.stateLen()
            val dup = assertThrows<GoChatException.Duplicate> { bob.decrypt("alice", m) }
            assertFalse(dup.retryMayHelp)
            assertThrows<GoChatException.NoSession> { alice.encrypt("carol", "x".toByteArray()) }
            val forged = alice.encrypt("bob", "y".toByteArray())
            forged[forged.size - 1] = (forged[forged.size - 1].toInt() xor 1).toByte()
            assertThrows<GoChatException.AuthenticationFailed> { bob.decrypt("alice", forged) }
            assertThrows<GoChatException.Malformed> { bob.decrypt("alice", ByteArray(0)) }
            assertThrows<GoChatException.WrongMessageType> { bob.decrypt("alice", ByteArray(3)) }
            assertEquals(state, bob.stateLen(), "a refused message changes nothing (fast = $fast)")
            val bad = bob.nextBundle().also { it[it.size - 1] = (it[it.size - 1].toInt() xor 1).toByte() }
            bundleErrors += assertThrows<GoChatException> { alice.initiate("carol", bad) }::class
            bundleErrors += assertThrows<GoChatException> { alice.initiate("carol", ByteArray(5)) }::class
            assertThrows<GoChatException> { bob.receiveControl("alice", ByteArray(7)) }
        }
        assertEquals(bundleErrors.subList(0, 2), bundleErrors.subList(2, 4), "the same error types on both paths")
    }

    @Test
    fun groupsOnTheFastPath() {
        val net = Net("ana", "ben", "cai", fast = true)
        val gid = net.group("ana", "ben", "cai")
        for (round in 0 until 5) for (sender in listOf("ana", "ben", "cai")) {
            val sent = net[sender].groupEncrypt(gid, "$sender $round".toByteArray(), NOW)
            net.deliver(sender, sent.outgoing)
            for (r in listOf("ana", "ben", "cai") - sender) {
                val got = net[r].groupDecrypt(sender, sent.message)
                assertEquals("$sender $round", got.plaintext.decodeToString())
                assertEquals(sender, got.sender)
            }
        }
        val last = net["ana"].groupEncrypt(gid, "x".toByteArray(), NOW)
        net["ben"].groupDecrypt("ana", last.message)
        assertThrows<GoChatException.Duplicate> { net["ben"].groupDecrypt("ana", last.message) }
        assertThrows<GoChatException.UnknownGroup> { net["ana"].groupEncrypt(ByteArray(32), "x".toByteArray(), NOW) }
    }

    @Test
    fun aStoreBackedDeviceStaysStoreBackedOnTheFastPath() {
        val dir = Files.createTempDirectory("gochat-fast")
        val key = StoreUnlock.PlatformKey(ByteArray(32) { 7 })
        val alice = FastDevice.of(Device.createStored(dir.resolve("a.sqlite").toString(), key, "alice", NOW, null))
        val bob = Device("bob", NOW)
        alice.initiate("bob", bob.nextBundle())
        val before = alice.storeGeneration()
        bob.decrypt("alice", alice.encrypt("bob", "stored".toByteArray()))
        assertEquals(before + 1uL, alice.storeGeneration(), "the fast encrypt committed a transaction")
        val reply = bob.encrypt("alice", "back".toByteArray())
        val got = alice.decrypt("bob", reply)
        alice.close()
        val reopened = FastDevice.of(Device.openStored(dir.resolve("a.sqlite").toString(), key))
        val again = reopened.decrypt("bob", reply)
        assertTrue(again.redelivered)
        assertArrayEquals(got.digest, again.digest)
        assertTrue(reopened.ack(got.digest))
    }

    @Test
    fun closingWhileOtherThreadsCallIsSafe() {
        val (alice, bob) = pair(fast = true)
        bob.decrypt("alice", alice.encrypt("bob", "warm".toByteArray()))
        val pool = Executors.newFixedThreadPool(4)
        val results = (0 until 4).map {
            pool.submit<Int> {
                var ok = 0
                repeat(500) {
                    try {
                        alice.encrypt("bob", "x".toByteArray()); ok++
                    } catch (e: IllegalStateException) {
                        // closed under us: refused, never a crash
                    }
                }
                ok
            }
        }
        Thread.sleep(5)
        alice.close()
        pool.shutdown()
        assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS))
        results.forEach { it.get() }
        assertThrows<IllegalStateException> { alice.encrypt("bob", "after close".toByteArray()) }
        // The original, separately owned reference is unaffected by closing the fast view.
        bob.close()
    }
}
