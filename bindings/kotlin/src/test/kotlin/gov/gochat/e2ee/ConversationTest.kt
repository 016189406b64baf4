package gov.gochat.e2ee

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

class ConversationTest {
    private fun b(s: String) = s.toByteArray()
    private fun ByteArray.s() = decodeToString()

    @Test
    fun sessionSetupAndConversation() {
        val alice = Device("alice", NOW)
        val bob = Device("bob", NOW)
        bob.generateOneTimePrekeys(1u)
        bob.generatePqPrekeys(1u, NOW)
        val bundle = bob.nextBundle()
        val info = verifyBundle(bundle)
        assertArrayEquals(bob.identityKey(), info.identityKey)
        assertEquals(1u, info.oneTimePrekeyId)
        assertFalse(alice.hasSession("bob"))
        alice.initiate("bob", bundle)
        assertTrue(alice.hasSession("bob"))
        assertArrayEquals(bob.identityKey(), alice.peerIdentity("bob"))
        assertEquals("first", bob.decrypt("alice", alice.encrypt("bob", b("first"))).s())
        assertArrayEquals(alice.identityKey(), bob.peerIdentity("alice"))
        repeat(5) { i ->
            assertEquals("b$i", alice.decrypt("bob", bob.encrypt("alice", b("b$i"))).s())
            assertEquals("a$i", bob.decrypt("alice", alice.encrypt("bob", b("a$i"))).s())
        }
        alice.close()
        bob.close()
    }

    @Test
    fun outOfOrderDelivery() {
        val (alice, bob) = pair()
        val msgs = (0 until 10).map { alice.encrypt("bob", b("m$it")) }
        for (i in listOf(9, 0, 5, 1, 8, 2, 7, 3, 6, 4)) assertEquals("m$i", bob.decrypt("alice", msgs[i]).s())
        val late = alice.encrypt("bob", b("late"))
        assertEquals("reply", alice.decrypt("bob", bob.encrypt("alice", b("reply"))).s())
        assertEquals("newer", bob.decrypt("alice", alice.encrypt("bob", b("newer"))).s())
        assertEquals("late", bob.decrypt("alice", late).s())
    }

    @Test
    fun tamperingAndDuplicatesAreDistinctExceptions() {
        val (alice, bob) = pair()
        val m = alice.encrypt("bob", b("secret"))
        for (i in listOf(m.size - 1, m.size - 20, m.size / 2)) {
            val bad = m.copyOf()
            bad[i] = (bad[i].toInt() xor 0x80).toByte()
            val e = assertThrows<GoChatException.AuthenticationFailed> { bob.decrypt("alice", bad) }
            assertTrue(e.detail.isNotEmpty())
        }
        assertEquals("secret", bob.decrypt("alice", m).s()) // tampering left the session intact
        val dup = assertThrows<GoChatException.Duplicate> { bob.decrypt("alice", m) }
        assertFalse(dup.retryMayHelp)
        assertFalse((dup as GoChatException) is GoChatException.AuthenticationFailed)
        assertThrows<GoChatException.NoSession> { alice.encrypt("carol", b("x")) }
        assertThrows<GoChatException> { bob.decrypt("alice", ByteArray(0)) }
    }

    @Test
    fun snapshotRoundTrip() {
        val (alice, bob) = pair()
        val snap = bob.export(KEY)
        val bob2 = Device.fromSnapshot(KEY, snap)
        assertArrayEquals(bob.identityKey(), bob2.identityKey())
        assertEquals("bob", bob2.userId())
        assertEquals("to the restored device", bob2.decrypt("alice", alice.encrypt("bob", b("to the restored device"))).s())
        assertEquals("ok", alice.decrypt("bob", bob2.encrypt("alice", b("ok"))).s())
        assertThrows<GoChatException.SnapshotUndecryptable> { Device.fromSnapshot(ByteArray(32), snap) }
        val s = alice.exportSession("bob", KEY)
        assertThrows<GoChatException.SnapshotWrongKind> { Device.fromSnapshot(KEY, s) }
        val alice2 = Device.fromSnapshot(KEY, alice.export(KEY))
        alice2.importSession("bob", KEY, s)
        assertTrue(alice2.hasSession("bob"))
    }

    @Test
    fun retryFlow() {
        val (alice, bobBefore) = pair()
        val backup = bobBefore.export(KEY)
        repeat(3) { i ->
            assertEquals("a$i", bobBefore.decrypt("alice", alice.encrypt("bob", b("a$i"))).s())
            assertEquals("b$i", alice.decrypt("bob", bobBefore.encrypt("alice", b("b$i"))).s())
        }
        val bob = Device.fromSnapshot(KEY, backup) // restored from an old backup
        val failed = alice.encrypt("bob", b("please read me"))
        val e = assertThrows<GoChatException> { bob.decrypt("alice", failed) }
        assertTrue(retryMayHelp(e))
        val request = bob.retryRequest(alice.identityKey(), failed)
        assertThrows<GoChatException.NoSession> { alice.handleRetryRequest("carol", request) }
        assertArrayEquals(messageDigest(failed), alice.handleRetryRequest("bob", request))
        assertEquals("please read me", bob.decrypt("alice", alice.encrypt("bob", b("please read me"))).s())
        assertThrows<GoChatException.UnknownMessage> { alice.handleRetryRequest("bob", request) }
        assertEquals("got it", alice.decrypt("bob", bob.encrypt("alice", b("got it"))).s())
    }

    /** Every variant carries `retryMayHelp`; read it generically. */
    private fun retryMayHelp(e: GoChatException): Boolean =
        e.javaClass.getMethod("getRetryMayHelp").invoke(e) as Boolean
}
