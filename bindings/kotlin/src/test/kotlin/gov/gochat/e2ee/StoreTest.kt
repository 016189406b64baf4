package gov.gochat.e2ee

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.nio.file.Files

/** Store-backed devices: a file path and a key are all it takes (docs/store.md). */
class StoreTest {
    private val now = 1_700_000_000uL
    private val key = StoreUnlock.PlatformKey(ByteArray(32) { 7 })
    private val small = PasscodeCost(8u * 1024u, 1u, 1u)

    private fun start(path: String): Pair<Device, Device> {
        val alice = Device.createStored(path, key, "alice", now, null)
        val bob = Device("bob", now)
        bob.generateOneTimePrekeys(2u)
        bob.generatePqPrekeys(2u, now)
        alice.initiate("bob", bob.nextBundle())
        assertArrayEquals("hello".toByteArray(), bob.decrypt("alice", alice.encrypt("bob", "hello".toByteArray())).plaintext)
        return alice to bob
    }

    @Test
    fun aStoredDeviceSurvivesReopeningAndRedeliversUntilAck() {
        val dir = Files.createTempDirectory("gochat-store")
        val path = dir.resolve("alice.sqlite").toString()
        var (alice, bob) = start(path)
        assertTrue(alice.isStored())
        val reply = bob.encrypt("alice", "answer".toByteArray())
        val got = alice.decrypt("bob", reply)
        assertFalse(got.redelivered)
        alice.close()
        alice = Device.openStored(path, key)
        val again = alice.decrypt("bob", reply)
        assertTrue(again.redelivered)
        assertArrayEquals(got.plaintext, again.plaintext)
        assertTrue(alice.ack(got.digest))
        assertThrows<GoChatException.Duplicate> { alice.decrypt("bob", reply) }
        val m = alice.encrypt("bob", "after reopen".toByteArray())
        assertEquals("after reopen", bob.decrypt("alice", m).plaintext.decodeToString())
        assertThrows<GoChatException.StoreExists> { Device.createStored(path, key, "x", now, null) }
        assertThrows<GoChatException.NotSupported> { alice.export(ByteArray(32)) }
    }

    @Test
    fun wrongPasscodesAreCountedAndMovingRetiresTheStore() {
        val dir = Files.createTempDirectory("gochat-store")
        val path = dir.resolve("ana.sqlite").toString()
        val ana = Device.createStored(path, StoreUnlock.Passcode("correct horse"), "ana", now, small)
        ana.close()
        assertThrows<GoChatException.WrongKey> { Device.openStored(path, StoreUnlock.Passcode("wrong")) }
        assertEquals(1u, storeFailedAttempts(path))
        Device.openStored(path, StoreUnlock.Passcode("correct horse")).close()
        assertEquals(0u, storeFailedAttempts(path))
        val (alice, bob) = start(dir.resolve("old.sqlite").toString())
        val container = alice.moveOut("transfer", small)
        assertThrows<GoChatException.StoreRetired> { alice.encrypt("bob", "old phone".toByteArray()) }
        val moved = Device.importStored(dir.resolve("new.sqlite").toString(), key, container, "transfer", small)
        assertEquals("new phone", bob.decrypt("alice", moved.encrypt("bob", "new phone".toByteArray())).plaintext.decodeToString())
    }

    /** Alice (stored) and Bob with sessions both ways, in a group Bob made with Alice. */
    private fun inGroup(path: String): Triple<Device, Device, ByteArray> {
        val (alice, bob) = start(path)
        val hi = alice.decrypt("bob", bob.encrypt("alice", "hi".toByteArray()))
        assertTrue(alice.ack(hi.digest))
        val ch = bob.groupCreate(listOf(GroupMemberRecord("alice", alice.identityKey(), false)), now)
        alice.groupJoin(ch.welcome!!, now)
        ch.outgoing.forEach { alice.receiveControl("bob", it.message) }
        return Triple(alice, bob, ch.groupId)
    }

    @Test
    fun groupAndChannelResultsAreRedeliveredUntilAck() {
        val dir = Files.createTempDirectory("gochat-store")
        val path = dir.resolve("alice.sqlite").toString()
        var (alice, bob, gid) = inGroup(path)
        val sent = bob.groupEncrypt(gid, "to the group".toByteArray(), now)
        val got = alice.groupDecrypt("bob", sent.message)
        assertFalse(got.redelivered)
        assertEquals(32, got.digest.size)
        val agency = Device("agency", now)
        val cid = agency.channelCreate(ChannelKind.PUBLIC)
        alice.channelSubscribe(cid, agency.channelPublicKey(cid), ChannelKind.PUBLIC)
        val post = agency.channelAnnounce(cid, ContentType.TEXT, "notice".toByteArray(), now)
        val first = alice.channelReceive(post, now) as ChannelReceivedRecord.Announcement
        assertFalse(first.redelivered)
        // Moving the device now would lose both results: refused, nothing written.
        assertThrows<GoChatException.InboxNotEmpty> { alice.moveOut("transfer", small) }
        alice.close()
        alice = Device.openStored(path, key)
        val again = alice.groupDecrypt("bob", sent.message)
        assertTrue(again.redelivered)
        assertArrayEquals(got.plaintext, again.plaintext)
        assertArrayEquals(got.digest, again.digest)
        val second = alice.channelReceive(post, now) as ChannelReceivedRecord.Announcement
        assertTrue(second.redelivered)
        assertArrayEquals(first.announcement.body, second.announcement.body)
        assertTrue(alice.ack(got.digest))
        assertTrue(alice.ack(first.digest))
        assertThrows<GoChatException.Duplicate> { alice.groupDecrypt("bob", sent.message) }
        assertThrows<GoChatException.StaleSequence> { alice.channelReceive(post, now) }
        // Every result acknowledged: the move goes through.
        val container = alice.moveOut("transfer", small)
        val moved = Device.importStored(dir.resolve("new.sqlite").toString(), key, container, "transfer", small)
        val later = bob.groupEncrypt(gid, "after the move".toByteArray(), now)
        assertEquals("after the move", moved.groupDecrypt("bob", later.message).plaintext.decodeToString())
    }
}
