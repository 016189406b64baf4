package gov.gochat.e2ee

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Devices by name with pairwise sessions, and the app's delivery of key messages. */
class Net(vararg names: String, sessions: Boolean = true, private val fast: Boolean = false) {
    val d = LinkedHashMap<String, Device>()

    init {
        names.forEach { add(it) }
        if (sessions) for (i in names.indices) for (j in i + 1 until names.size) connect(names[i], names[j])
    }

    fun add(name: String): Device = Device(name, NOW).let { if (fast) FastDevice.of(it).also { _ -> it.close() } else it }.also {
        it.generateOneTimePrekeys(8u)
        it.generatePqPrekeys(8u, NOW)
        d[name] = it
    }

    operator fun get(name: String): Device = d.getValue(name)

    /** A pairwise session both ways between [a] and [b] (identities pinned). */
    fun connect(a: String, b: String) {
        this[a].initiate(b, this[b].nextBundle())
        check(this[b].decrypt(a, this[a].encrypt(b, "hi".toByteArray())).plaintext.decodeToString() == "hi")
        check(this[a].decrypt(b, this[b].encrypt(a, "hi".toByteArray())).plaintext.decodeToString() == "hi")
    }

    fun member(name: String, admin: Boolean = false) = GroupMemberRecord(name, this[name].identityKey(), admin)

    /** Delivers [sender]'s pairwise control messages through `receiveControl`. */
    fun deliver(sender: String, outgoing: List<OutgoingRecord>): Map<String, ControlReceived> =
        outgoing.associate { it.peer to this[it.peer].receiveControl(sender, it.message) }

    /** [creator] makes a group with [others]; everyone joins and gets every key. */
    fun group(creator: String, vararg others: String): ByteArray {
        val ch = this[creator].groupCreate(others.map { member(it) }, NOW)
        check(ch.withheld.isEmpty())
        val joined = others.associateWith { this[it].groupJoin(ch.welcome!!, NOW) }
        deliver(creator, ch.outgoing)
        joined.forEach { (n, j) -> deliver(n, j.outgoing) }
        return ch.groupId
    }
}

class GroupsTest {
    private fun b(s: String) = s.toByteArray()

    @Test
    fun threeMembersReadEachOtherBothWays() {
        val net = Net("ana", "ben", "cai")
        val ch = net["ana"].groupCreate(listOf(net.member("ben"), net.member("cai")), NOW)
        val gid = ch.groupId
        assertEquals(32, gid.size)
        assertEquals(0uL, ch.epoch)
        assertEquals(null, ch.commit)
        assertEquals(listOf("ben", "cai"), ch.added.sorted())
        assertEquals(listOf("ben", "cai"), ch.outgoing.map { it.peer }.sorted())
        // A key that arrives before the welcome is refused, and can be retried.
        val toBen = ch.outgoing.first { it.peer == "ben" }
        assertThrows<GoChatException.UnknownGroup> { net["ben"].groupReceive("ana", toBen.message) }
        val joined = listOf("ben", "cai").associateWith { net[it].groupJoin(ch.welcome!!, NOW) }
        val got = net["ben"].groupReceive("ana", toBen.message)
        assertArrayEquals(gid, got.groupId)
        assertEquals("ana", got.sender)
        assertTrue(got.fresh)
        assertEquals(IdentityEvent.Same, got.identityEvent)
        net.deliver("ana", ch.outgoing.filter { it.peer != "ben" })
        joined.forEach { (n, j) -> net.deliver(n, j.outgoing) }
        for (sender in listOf("ana", "ben", "cai")) {
            val text = "hello from $sender"
            val sent = net[sender].groupEncrypt(gid, b(text), NOW)
            assertFalse(sent.rotated)
            for (reader in listOf("ana", "ben", "cai").filter { it != sender }) {
                val p = net[reader].groupDecrypt(sender, sent.message)
                assertEquals(text, p.plaintext.decodeToString())
                assertEquals(sender, p.sender)
                assertArrayEquals(net[sender].identityKey(), p.senderIdentity)
            }
        }
        val infos = listOf("ana", "ben", "cai").map { net[it].groupInfo(gid) }
        assertEquals(listOf("ana", "ben", "cai"), infos[0].members.map { it.name })
        assertEquals(listOf(true, false, false), infos[0].members.map { it.admin })
        assertTrue(infos.all { it.active && it.epoch == 0uL && it.ownKeyId != null })
        assertTrue(infos.all { it.membershipHash.contentEquals(infos[0].membershipHash) })
        assertArrayEquals(gid, net["cai"].groupIds().single())
    }

    @Test
    fun duplicateAndTamperedMessagesAreRefusedAndChangeNothing() {
        val net = Net("ana", "ben", "cai")
        val gid = net.group("ana", "ben", "cai")
        val m = net["ana"].groupEncrypt(gid, b("original"), NOW).message
        val ben = net["ben"]
        val before = ben.stateLen()
        for (i in listOf(m.size / 2, m.size - 70, m.size - 1)) {
            val bad = m.copyOf()
            bad[i] = (bad[i].toInt() xor 1).toByte()
            assertThrows<GoChatException.BadSignature> { ben.groupDecrypt("ana", bad) }
            assertEquals(before, ben.stateLen())
        }
        // The server names the wrong sender: Cai holds no key with that id.
        assertThrows<GoChatException.MissingSenderKey> { ben.groupDecrypt("cai", m) }
        assertThrows<GoChatException.NotMember> { ben.groupDecrypt("nobody", m) }
        assertEquals(before, ben.stateLen())
        assertEquals("original", ben.groupDecrypt("ana", m).plaintext.decodeToString())
        val after = ben.stateLen()
        val dup = assertThrows<GoChatException.Duplicate> { ben.groupDecrypt("ana", m) }
        assertFalse(dup.retryMayHelp)
        assertEquals(after, ben.stateLen())
    }

    @Test
    fun removedMemberCannotReadNewMessages() {
        val net = Net("ana", "ben", "cai")
        val gid = net.group("ana", "ben", "cai")
        net["cai"].groupDecrypt("ana", net["ana"].groupEncrypt(gid, b("warm up"), NOW).message)
        val caiCopy = Device.fromSnapshot(KEY, net["cai"].export(KEY)) // all its old state
        val rm = net["ana"].groupRemove(gid, listOf("cai"), NOW)
        assertEquals(1uL, rm.epoch)
        assertEquals(listOf("cai"), rm.removed)
        assertEquals(listOf("ben"), rm.outgoing.map { it.peer }) // nothing for the removed device
        val benChange = net["ben"].groupProcessCommit(rm.commit!!, NOW)
        assertEquals(listOf("ana"), benChange.outgoing.map { it.peer })
        assertTrue(net["cai"].groupProcessCommit(rm.commit!!, NOW).outgoing.isEmpty())
        assertFalse(net["cai"].groupInfo(gid).active)
        assertThrows<GoChatException.Duplicate> { net["ben"].groupProcessCommit(rm.commit!!, NOW) }
        net.deliver("ana", rm.outgoing)
        net.deliver("ben", benChange.outgoing)
        for ((s, r) in listOf("ana" to "ben", "ben" to "ana")) {
            val m = net[s].groupEncrypt(gid, b("after the removal"), NOW).message
            assertEquals("after the removal", net[r].groupDecrypt(s, m).plaintext.decodeToString())
            assertThrows<GoChatException.NotMember> { net["cai"].groupDecrypt(s, m) }
            val e = assertThrows<GoChatException> { caiCopy.groupDecrypt(s, m) }
            assertTrue(e is GoChatException.MissingSenderKey || e is GoChatException.EpochAhead, e.toString())
        }
        assertThrows<GoChatException.NotMember> { net["cai"].groupEncrypt(gid, b("still here?"), NOW) }
        assertTrue(net["cai"].groupForget(gid))
        assertFalse(net["cai"].groupForget(gid))
    }

    @Test
    fun missingSenderKeyIsRetryableAfterTheKeyArrives() {
        val net = Net("ana", "ben", "cai")
        val ch = net["ana"].groupCreate(listOf(net.member("ben"), net.member("cai")), NOW)
        val early = net["ana"].groupEncrypt(ch.groupId, b("early"), NOW).message
        val ben = net["ben"]
        ben.groupJoin(ch.welcome!!, NOW)
        val before = ben.stateLen()
        val e = assertThrows<GoChatException.MissingSenderKey> { ben.groupDecrypt("ana", early) }
        assertTrue(e.detail.isNotEmpty())
        assertEquals(before, ben.stateLen())
        val got = net.deliver("ana", ch.outgoing.filter { it.peer == "ben" })["ben"]
        assertTrue(got is ControlReceived.SenderKey && got.received.fresh)
        assertEquals("early", ben.groupDecrypt("ana", early).plaintext.decodeToString())
    }

    @Test
    fun withheldMemberGetsTheKeyOnceActedOn() {
        val net = Net("ana", "ben", "dan", sessions = false)
        net.connect("ana", "ben")
        val ch = net["ana"].groupCreate(listOf(net.member("ben"), net.member("dan")), NOW)
        assertEquals(listOf("ben"), ch.outgoing.map { it.peer })
        assertEquals(listOf(WithheldRecord("dan", WithheldReason.NO_SESSION)), ch.withheld)
        net.connect("ana", "dan")
        net["dan"].groupJoin(ch.welcome!!, NOW)
        val resent = net["ana"].groupResendKey(ch.groupId, "dan")
        assertEquals(listOf("dan"), resent.outgoing.map { it.peer })
        net.deliver("ana", resent.outgoing)
        val m = net["ana"].groupEncrypt(ch.groupId, b("for dan too"), NOW).message
        assertEquals("for dan too", net["dan"].groupDecrypt("ana", m).plaintext.decodeToString())
    }

    @Test
    fun addedMemberReadsNewMessagesAndOnlyAdminsAdd() {
        val net = Net("ana", "ben", "cai", "dan")
        val gid = net.group("ana", "ben", "cai")
        assertThrows<GoChatException.NotAdmin> { net["ben"].groupAdd(gid, listOf(net.member("dan")), NOW) }
        val add = net["ana"].groupAdd(gid, listOf(net.member("dan")), NOW)
        assertEquals(listOf("dan"), add.added)
        val applied = listOf("ben", "cai").associateWith { net[it].groupProcessCommit(add.commit!!, NOW) }
        val j = net["dan"].groupJoin(add.welcome!!, NOW)
        net.deliver("ana", add.outgoing)
        applied.forEach { (n, c) -> net.deliver(n, c.outgoing) }
        net.deliver("dan", j.outgoing)
        for (s in listOf("ana", "ben", "cai")) {
            val m = net[s].groupEncrypt(gid, b("welcome dan"), NOW).message
            assertEquals("welcome dan", net["dan"].groupDecrypt(s, m).plaintext.decodeToString())
        }
        val m = net["dan"].groupEncrypt(gid, b("thanks"), NOW).message
        assertEquals("thanks", net["cai"].groupDecrypt("dan", m).plaintext.decodeToString())
    }

    @Test
    fun rotationPolicyAndRestoreRotateTheSenderKey() {
        val net = Net("ana", "ben")
        val gid = net.group("ana", "ben")
        val ana = net["ana"]
        ana.groupSetRotationPolicy(gid, 2u, 0uL)
        val first = ana.groupInfo(gid)
        assertEquals(2u, first.rotationMaxMessages)
        val sends = (0 until 3).map { ana.groupEncrypt(gid, b("m$it"), NOW) }
        assertEquals(listOf(false, false, true), sends.map { it.rotated })
        net.deliver("ana", sends[2].outgoing)
        assertNotEquals(first.ownKeyId, ana.groupInfo(gid).ownKeyId)
        sends.forEachIndexed { i, s -> assertEquals("m$i", net["ben"].groupDecrypt("ana", s.message).plaintext.decodeToString()) }
        val restored = Device.fromSnapshot(KEY, ana.export(KEY))
        val s = restored.groupEncrypt(gid, b("after restore"), NOW)
        assertTrue(s.rotated)
        net.deliver("ana", s.outgoing)
        assertEquals("after restore", net["ben"].groupDecrypt("ana", s.message).plaintext.decodeToString())
    }

    @Test
    fun byteArgumentsAreChecked() {
        val ana = Device("ana", NOW)
        assertThrows<GoChatException.Malformed> { ana.groupInfo(ByteArray(31)) }
        assertThrows<GoChatException.UnknownGroup> { ana.groupInfo(ByteArray(32)) }
        assertThrows<GoChatException.Malformed> { ana.groupEncrypt(ByteArray(0), b("x"), NOW) }
        assertFalse(ana.groupForget(ByteArray(3)))
        assertThrows<GoChatException> { ana.groupCreate(listOf(GroupMemberRecord("ben", ByteArray(10), false)), NOW) }
        assertTrue(ana.groupIds().isEmpty())
        val l = limits()
        assertEquals(1000u, l.maxGroupMembers)
        assertTrue(l.maxGroupMessageBytes > l.maxPlaintextBytes)
    }
}
