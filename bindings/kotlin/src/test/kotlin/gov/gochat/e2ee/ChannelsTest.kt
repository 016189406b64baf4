package gov.gochat.e2ee

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * Official broadcast channels: public posts, replays, wrong signers, forwarded copies,
 * restricted channels with pairwise key fan-out and removal by rotation, and
 * signing-key rotation.
 */
class ChannelsTest {
    private fun b(s: String) = s.toByteArray()

    private fun announcement(r: ChannelReceivedRecord): AnnouncementRecord {
        assertTrue(r is ChannelReceivedRecord.Announcement, r.toString())
        return (r as ChannelReceivedRecord.Announcement).announcement
    }

    private class Public(val agency: Device, val cid: ByteArray, val key: ByteArray, val citizen: Device)

    private fun publicChannel(): Public {
        val agency = Device("agency", NOW)
        val cid = agency.channelCreate(ChannelKind.PUBLIC)
        val key = agency.channelPublicKey(cid)
        val citizen = Device("citizen", NOW)
        citizen.channelSubscribe(cid, key, ChannelKind.PUBLIC)
        return Public(agency, cid, key, citizen)
    }

    @Test
    fun publicAnnounceAndReceive() {
        val c = publicChannel()
        assertEquals(32, c.cid.size)
        assertEquals(32, c.key.size)
        val post = c.agency.channelAnnounce(c.cid, ContentType.TEXT, b("office closed on Monday"), NOW)
        val a = announcement(c.citizen.channelReceive(post, NOW))
        assertEquals("office closed on Monday", a.body.decodeToString())
        assertEquals(ContentType.TEXT, a.contentType)
        assertArrayEquals(c.cid, a.channelId)
        assertArrayEquals(c.key, a.signer)
        assertEquals(1uL, a.seq)
        assertEquals(NOW, a.timestamp)
        val second = c.agency.channelAnnounce(c.cid, ContentType.JSON, b("{\"k\":1}"), NOW + 1u)
        val third = c.agency.channelAnnounce(c.cid, ContentType.ATTACHMENT_POINTER, b("ptr"), NOW + 2u)
        assertEquals(ContentType.JSON, announcement(c.citizen.channelReceive(second, NOW + 2u)).contentType)
        assertEquals(3uL, announcement(c.citizen.channelReceive(third, NOW + 2u)).seq)
    }

    @Test
    fun replayIsRefusedAsStaleAndChangesNothing() {
        val c = publicChannel()
        val post = c.agency.channelAnnounce(c.cid, ContentType.TEXT, b("once"), NOW)
        announcement(c.citizen.channelReceive(post, NOW))
        val before = c.citizen.stateLen()
        val e = assertThrows<GoChatException.StaleSequence> { c.citizen.channelReceive(post, NOW) }
        assertFalse(e.retryMayHelp)
        assertEquals(before, c.citizen.stateLen())
        val late = c.agency.channelAnnounce(c.cid, ContentType.TEXT, b("from the future"), NOW + 3600u)
        assertThrows<GoChatException.FromFuture> { c.citizen.channelReceive(late, NOW) }
        assertEquals(before, c.citizen.stateLen())
        // Sequence numbers are strictly monotonic: a withheld post delivered after a
        // later one is a rollback.
        val withheld = c.agency.channelAnnounce(c.cid, ContentType.TEXT, b("withheld"), NOW)
        val newer = c.agency.channelAnnounce(c.cid, ContentType.TEXT, b("newer"), NOW)
        assertEquals(4uL, announcement(c.citizen.channelReceive(newer, NOW)).seq)
        assertThrows<GoChatException.StaleSequence> { c.citizen.channelReceive(withheld, NOW) }
    }

    @Test
    fun wrongSignerAndTamperingAreRefused() {
        val c = publicChannel()
        val impostor = Device("impostor", NOW)
        val fakeKey = impostor.channelPublicKey(impostor.channelCreate(ChannelKind.PUBLIC))
        val fooled = Device("fooled", NOW)
        fooled.channelSubscribe(c.cid, fakeKey, ChannelKind.PUBLIC)
        val post = c.agency.channelAnnounce(c.cid, ContentType.TEXT, b("real"), NOW)
        assertThrows<GoChatException.WrongSigner> { fooled.channelReceive(post, NOW) }
        val before = c.citizen.stateLen()
        val bad = post.copyOf().also { it[40] = (it[40].toInt() xor 1).toByte() }
        assertThrows<GoChatException.BadSignature> { c.citizen.channelReceive(bad, NOW) }
        val other = impostor.channelAnnounce(impostor.channelCreate(ChannelKind.PUBLIC), ContentType.TEXT, b("x"), NOW)
        assertThrows<GoChatException.UnknownGroup> { c.citizen.channelReceive(other, NOW) } // not subscribed
        assertEquals(before, c.citizen.stateLen())
        assertEquals("real", announcement(c.citizen.channelReceive(post, NOW)).body.decodeToString())
    }

    @Test
    fun verifyAnnouncementOnAForwardedCopy() {
        val c = publicChannel()
        val post = c.agency.channelAnnounce(c.cid, ContentType.TEXT, b("forward me"), NOW)
        val a = verifyAnnouncement(post, c.key)
        assertEquals("forward me", a.body.decodeToString())
        assertArrayEquals(c.cid, a.channelId)
        val again = verifyAnnouncement(post, c.key) // stateless: no replay check
        assertEquals(a.seq, again.seq)
        assertArrayEquals(a.body, again.body)
        val otherKey = c.agency.channelPublicKey(c.agency.channelCreate(ChannelKind.PUBLIC))
        assertThrows<GoChatException.WrongSigner> { verifyAnnouncement(post, otherKey) }
        val bad = post.copyOf().also { it[it.size - 1] = (it[it.size - 1].toInt() xor 1).toByte() }
        assertThrows<GoChatException.BadSignature> { verifyAnnouncement(bad, c.key) }
        assertThrows<GoChatException.InvalidKey> { verifyAnnouncement(post, c.key.copyOf(31)) }
    }

    @Test
    fun restrictedChannelKeyFanOutAndRemovalByRotation() {
        val net = Net("agency", "s1", "s2", sessions = false)
        net.connect("agency", "s1")
        net.connect("agency", "s2")
        val agency = net["agency"]
        val cid = agency.channelCreate(ChannelKind.RESTRICTED)
        val key = agency.channelPublicKey(cid)
        for (s in listOf("s1", "s2")) net[s].channelSubscribe(cid, key, ChannelKind.RESTRICTED)
        val early = agency.channelAnnounce(cid, ContentType.TEXT, b("for key holders"), NOW)
        assertThrows<GoChatException.MissingSenderKey> { net["s1"].channelReceive(early, NOW) }
        val fan = agency.channelSendKey(cid, listOf("s1", "s2", "nobody"))
        assertEquals(listOf("s1", "s2"), fan.outgoing.map { it.peer }.sorted())
        assertEquals(listOf(WithheldRecord("nobody", WithheldReason.NO_SESSION)), fan.withheld)
        val keyIds = net.deliver("agency", fan.outgoing).values.map {
            assertTrue(it is ControlReceived.ChannelKey, it.toString())
            val r = (it as ControlReceived.ChannelKey).received
            assertArrayEquals(cid, r.channelId)
            assertEquals("agency", r.sender)
            assertEquals(IdentityEvent.Same, r.identityEvent)
            r.keyId
        }.toSet()
        assertEquals(1, keyIds.size)
        val post0 = agency.channelAnnounce(cid, ContentType.TEXT, b("for key holders"), NOW)
        for (s in listOf("s1", "s2")) {
            // Sent before the key was shared: the shared key starts after it, never readable.
            assertThrows<GoChatException.MessageLost> { net[s].channelReceive(early, NOW) }
            assertEquals("for key holders", announcement(net[s].channelReceive(post0, NOW)).body.decodeToString())
        }
        // s2 is removed: a new content key, sent to s1 only.
        val rekey = agency.channelRotateContentKey(cid, listOf("s1"))
        assertFalse(rekey.keyId in keyIds)
        assertEquals(listOf("s1"), rekey.outgoing.map { it.peer })
        assertTrue(rekey.withheld.isEmpty())
        val got = net.deliver("agency", rekey.outgoing).getValue("s1") as ControlReceived.ChannelKey
        assertEquals(rekey.keyId, got.received.keyId)
        val post = agency.channelAnnounce(cid, ContentType.TEXT, b("after s2 left"), NOW)
        assertEquals("after s2 left", announcement(net["s1"].channelReceive(post, NOW)).body.decodeToString())
        val before = net["s2"].stateLen()
        assertThrows<GoChatException.MissingSenderKey> { net["s2"].channelReceive(post, NOW) }
        assertEquals(before, net["s2"].stateLen())
        assertThrows<GoChatException> { verifyAnnouncement(post, key) } // not a public post
    }

    @Test
    fun aRestoredRestrictedPublisherRotatesItsContentKeyBeforePosting() {
        val net = Net("agency", "s1")
        val agency = net["agency"]
        val cid = agency.channelCreate(ChannelKind.RESTRICTED)
        net["s1"].channelSubscribe(cid, agency.channelPublicKey(cid), ChannelKind.RESTRICTED)
        assertTrue(net.deliver("agency", agency.channelSendKey(cid, listOf("s1")).outgoing).getValue("s1") is ControlReceived.ChannelKey)
        val first = announcement(net["s1"].channelReceive(agency.channelAnnounce(cid, ContentType.TEXT, b("one"), NOW), NOW))
        val restored = Device.fromSnapshot(KEY, agency.export(KEY))
        // The snapshot may be older than what was posted: its content chain position may
        // have been used, so neither posting nor sending the key is allowed until replaced.
        val before = restored.stateLen()
        assertThrows<GoChatException.ChainExhausted> { restored.channelAnnounce(cid, ContentType.TEXT, b("two"), NOW) }
        assertThrows<GoChatException.ChainExhausted> { restored.channelSendKey(cid, listOf("s1")) }
        assertEquals(before, restored.stateLen())
        val rekey = restored.channelRotateContentKey(cid, listOf("s1"))
        assertEquals(listOf("s1"), rekey.outgoing.map { it.peer })
        assertTrue(rekey.withheld.isEmpty())
        val got = net.deliver("agency", rekey.outgoing).getValue("s1") as ControlReceived.ChannelKey
        assertEquals(rekey.keyId, got.received.keyId)
        val a = announcement(net["s1"].channelReceive(restored.channelAnnounce(cid, ContentType.TEXT, b("two"), NOW), NOW))
        assertEquals("two", a.body.decodeToString())
        // Its sequence number skips past everything the old copy may have issued.
        assertTrue(a.seq > first.seq + 1uL, a.seq.toString())
    }

    @Test
    fun signingKeyRotation() {
        val c = publicChannel()
        val late = Device("late", NOW)
        late.channelSubscribe(c.cid, c.key, ChannelKind.PUBLIC)
        announcement(c.citizen.channelReceive(c.agency.channelAnnounce(c.cid, ContentType.TEXT, b("before"), NOW), NOW))
        val rotation = c.agency.channelRotateSigningKey(c.cid, NOW)
        val newKey = c.agency.channelPublicKey(c.cid)
        assertFalse(newKey.contentEquals(c.key))
        val r = c.citizen.channelReceive(rotation, NOW)
        assertTrue(r is ChannelReceivedRecord.KeyRotated, r.toString())
        r as ChannelReceivedRecord.KeyRotated
        assertArrayEquals(c.key, r.old)
        assertArrayEquals(newKey, r.new)
        assertEquals(2uL, r.seq)
        // A replayed rotation: signed by the old key, which is no longer the channel's.
        assertThrows<GoChatException.WrongSigner> { c.citizen.channelReceive(rotation, NOW) }
        val post = c.agency.channelAnnounce(c.cid, ContentType.TEXT, b("after"), NOW)
        assertArrayEquals(newKey, announcement(c.citizen.channelReceive(post, NOW)).signer)
        assertEquals("after", verifyAnnouncement(post, newKey).body.decodeToString())
        assertThrows<GoChatException.WrongSigner> { verifyAnnouncement(post, c.key) }
        // A subscriber that missed the rotation refuses the new key's posts until it has it.
        assertThrows<GoChatException.WrongSigner> { late.channelReceive(post, NOW) }
        assertTrue(late.channelReceive(rotation, NOW) is ChannelReceivedRecord.KeyRotated)
        assertEquals("after", announcement(late.channelReceive(post, NOW)).body.decodeToString())
    }

    @Test
    fun byteArgumentsForgetAndLimits() {
        val c = publicChannel()
        assertThrows<GoChatException.Malformed> { c.agency.channelPublicKey(c.cid.copyOf(31)) }
        assertThrows<GoChatException.InvalidKey> {
            Device("x", NOW).channelSubscribe(c.cid, c.key + byteArrayOf(0), ChannelKind.PUBLIC)
        }
        assertThrows<GoChatException.Malformed> { c.agency.channelAnnounce(ByteArray(0), ContentType.TEXT, b("x"), NOW) }
        assertTrue(c.citizen.channelForget(c.cid))
        assertFalse(c.citizen.channelForget(c.cid))
        assertFalse(c.citizen.channelForget(ByteArray(3)))
        val gone = c.agency.channelAnnounce(c.cid, ContentType.TEXT, b("gone"), NOW)
        assertThrows<GoChatException> { c.citizen.channelReceive(gone, NOW) }
        val l = limits()
        assertEquals(300uL, l.maxAnnouncementFutureSecs)
        assertEquals(65_536u, l.maxAnnouncementBodyBytes)
        assertTrue(l.maxChannels >= 1u)
    }
}
