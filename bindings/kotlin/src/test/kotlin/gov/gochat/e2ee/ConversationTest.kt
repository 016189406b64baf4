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
    private fun DecryptResult.s() = plaintext.decodeToString()

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
        assertEquals(null, alice.pinnedIdentity("bob"))
        assertEquals(IdentityEvent.New, alice.initiate("bob", bundle))
        assertTrue(alice.hasSession("bob"))
        assertArrayEquals(bob.identityKey(), alice.peerIdentity("bob"))
        assertArrayEquals(bob.identityKey(), alice.pinnedIdentity("bob"))
        assertEquals(null, alice.pendingIdentity("bob"))
        val first = bob.decrypt("alice", alice.encrypt("bob", b("first")))
        assertEquals("first", first.s())
        assertArrayEquals(alice.identityKey(), first.senderIdentity)
        assertEquals(IdentityEvent.New, first.identityEvent)
        assertArrayEquals(alice.identityKey(), bob.pinnedIdentity("alice"))
        assertArrayEquals(alice.identityKey(), bob.peerIdentity("alice"))
        val second = bob.decrypt("alice", alice.encrypt("bob", b("second")))
        assertEquals("second", second.s())
        assertEquals(IdentityEvent.Same, second.identityEvent)
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
        val request = bob.retryRequest("alice", alice.identityKey(), failed, NOW)
        assertThrows<GoChatException.UntrustedIdentity> { alice.handleRetryRequest("carol", request, NOW) } // not pinned for "carol"
        val expired = assertThrows<GoChatException.RetryExpired> { alice.handleRetryRequest("bob", request, NOW + 2uL * 86_400uL) }
        assertFalse(expired.retryMayHelp)
        assertArrayEquals(messageDigest(failed), alice.handleRetryRequest("bob", request, NOW + 60uL))
        assertEquals("please read me", bob.decrypt("alice", alice.encrypt("bob", b("please read me"))).s())
        assertThrows<GoChatException.UnknownMessage> { alice.handleRetryRequest("bob", request, NOW + 60uL) }
        assertEquals("got it", alice.decrypt("bob", bob.encrypt("alice", b("got it"))).s())
    }

    @Test
    fun retryRequestForAnAlreadyUsedCounterIsRefused() {
        val (alice, bob) = pair()
        val m = alice.encrypt("bob", b("read once"))
        assertEquals("read once", bob.decrypt("alice", m).s())
        // A replay must never be turned into a re-send.
        assertThrows<GoChatException.Duplicate> { bob.retryRequest("alice", alice.identityKey(), m, NOW) }
    }

    @Test
    fun restoredSenderStartsANewEpochAndReusedCountersAreReported() {
        val (alice, bob) = pair()
        val backup = alice.export(KEY) // saved before the next encrypt: the wrong order
        assertEquals("one", bob.decrypt("alice", alice.encrypt("bob", b("one"))).s())
        val alice2 = Device.fromSnapshot(KEY, backup)
        val again = alice2.encrypt("bob", b("one again")) // the counter "one" used
        val e = assertThrows<GoChatException.CounterReused> { bob.decrypt("alice", again) }
        assertTrue(e.retryMayHelp)
        assertFalse((e as GoChatException) is GoChatException.Duplicate)
    }

    @Test
    fun changedIdentityWaitsForApproval() {
        val (alice, bob) = pair()
        assertEquals(IdentityPolicy.REQUIRE_APPROVAL, alice.identityPolicy())
        // Bob reinstalls: a new device with a new identity under the same name.
        val bobNew = Device("bob", NOW)
        bobNew.generateOneTimePrekeys(1u)
        assertThrows<GoChatException.IdentityChanged> { alice.initiate("bob", bobNew.nextBundle()) }
        assertEquals(IdentityEvent.New, bobNew.initiate("alice", alice.nextBundle()))
        val got = alice.decrypt("bob", bobNew.encrypt("alice", b("new phone")))
        assertEquals("new phone", got.s())
        assertArrayEquals(bobNew.identityKey(), got.senderIdentity)
        val ev = got.identityEvent
        assertTrue(ev is IdentityEvent.Changed)
        ev as IdentityEvent.Changed
        assertArrayEquals(bob.identityKey(), ev.previous)
        assertFalse(ev.approved)
        assertArrayEquals(bob.identityKey(), alice.pinnedIdentity("bob"))
        assertArrayEquals(bobNew.identityKey(), alice.pendingIdentity("bob"))
        val blocked = assertThrows<GoChatException.IdentityChanged> { alice.encrypt("bob", b("to whom?")) }
        assertTrue(blocked.detail.isNotEmpty())
        // The user compared fingerprints and approves.
        alice.approveIdentity("bob", bobNew.identityKey())
        assertArrayEquals(bobNew.identityKey(), alice.pinnedIdentity("bob"))
        assertEquals(null, alice.pendingIdentity("bob"))
        val back = bobNew.decrypt("alice", alice.encrypt("bob", b("welcome back")))
        assertEquals("welcome back", back.s())
        assertEquals(IdentityEvent.Same, back.identityEvent)
        assertEquals(IdentityEvent.Same, alice.decrypt("bob", bobNew.encrypt("alice", b("thanks"))).identityEvent)
    }

    @Test
    fun notifyPolicyAcceptsAChangedIdentityAndReportsIt() {
        val (alice, bob) = pair()
        alice.setIdentityPolicy(IdentityPolicy.NOTIFY)
        assertEquals(IdentityPolicy.NOTIFY, alice.identityPolicy())
        val bobNew = Device("bob", NOW)
        bobNew.initiate("alice", alice.nextBundle())
        val got = alice.decrypt("bob", bobNew.encrypt("alice", b("new phone")))
        assertEquals("new phone", got.s())
        val ev = got.identityEvent as IdentityEvent.Changed
        assertArrayEquals(bob.identityKey(), ev.previous)
        assertTrue(ev.approved)
        assertArrayEquals(bobNew.identityKey(), alice.pinnedIdentity("bob"))
        assertEquals(null, alice.pendingIdentity("bob"))
        assertEquals("hello new bob", bobNew.decrypt("alice", alice.encrypt("bob", b("hello new bob"))).s())
    }

    @Test
    fun removeSessionsKeepsThePinAndForgetIdentityResetsIt() {
        val (alice, bob) = pair()
        assertEquals(bob.stateLen() + 51uL, bob.export(KEY).size.toULong())
        val before = bob.stateLen()
        assertTrue(bob.removeSessions("alice"))
        assertFalse(bob.removeSessions("alice"))
        assertTrue(bob.stateLen() < before)
        assertFalse(bob.hasSession("alice"))
        assertArrayEquals(alice.identityKey(), bob.pinnedIdentity("alice"))
        assertThrows<GoChatException.NoSession> { bob.encrypt("alice", b("x")) }
        assertTrue(bob.forgetIdentity("alice"))
        assertEquals(null, bob.pinnedIdentity("alice"))
        val again = Device("alice", NOW)
        assertEquals(IdentityEvent.New, bob.initiate("alice", again.nextBundle()))
        assertEquals(bob.stateLen() + 51uL, bob.export(KEY).size.toULong())
        assertTrue(GoChatException.StateFull::class.java.name.isNotEmpty())
        assertTrue(GoChatException.Internal::class.java.name.isNotEmpty())
    }

    /** Every variant carries `retryMayHelp`; read it generically. */
    private fun retryMayHelp(e: GoChatException): Boolean =
        e.javaClass.getMethod("getRetryMayHelp").invoke(e) as Boolean
}
