package gov.gochat.e2ee

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * Multi-device users (protocol 15.8): list creation, endorsement, processing (new, updated,
 * stale, foreign master key), the fan-out report, removal.
 */
class DevicesTest {
    private val now = 1_700_000_000uL
    private val bob = "bob@mof.gov.my"

    @Test
    fun listsEndorsementFanOutAndRemoval() {
        val phone = Device("$bob/phone", now)
        val laptop = Device("$bob/laptop", now)
        val ana = Device("ana@mof.gov.my/phone", now)
        val v1 = phone.createMasterKey("phone", now)
        assertTrue(phone.isPrimary())
        val endorsed = phone.endorseDevice("laptop", laptop.identityKey(), now)
        val info = decodeDeviceEndorsement(endorsed.endorsement)
        assertEquals("laptop", info.deviceId)
        assertArrayEquals(laptop.identityKey(), info.identityKey)
        laptop.adoptOwnDeviceList(endorsed.deviceList, endorsed.endorsement)
        assertFalse(laptop.isPrimary())
        assertEquals(2uL, laptop.ownDeviceList()!!.version)
        assertThrows<GoChatException.NotPrimary> { laptop.endorseDevice("tablet", ana.identityKey(), now) }

        assertTrue(ana.processDeviceList(v1, now).event is DeviceListEventRecord.New)
        val update = ana.processDeviceList(endorsed.deviceList, now).event as DeviceListEventRecord.Updated
        assertEquals(listOf("laptop"), update.added.map { it.deviceId })
        assertTrue(ana.processDeviceList(endorsed.deviceList, now).event is DeviceListEventRecord.Unchanged)
        assertThrows<GoChatException.StaleDeviceList> { ana.processDeviceList(v1, now) }
        val bad = endorsed.deviceList.copyOf().also { it[it.size - 1] = (it[it.size - 1].toInt() xor 1).toByte() }
        assertThrows<GoChatException.BadSignature> { ana.processDeviceList(bad, now) }

        val bundles = listOf(
            AddressedBundle("$bob/phone", phone.nextBundle()),
            AddressedBundle("$bob/laptop", laptop.nextBundle()),
        )
        val out = ana.encryptForUser(bob, "to both".toByteArray(), bundles)
        assertEquals(2, out.report.count { it.sent && it.newSession })
        val devices = mapOf("$bob/phone" to phone, "$bob/laptop" to laptop)
        for (m in out.messages) {
            assertEquals("to both", String(devices[m.peer]!!.decrypt("ana@mof.gov.my/phone", m.message).plaintext))
        }

        val removal = phone.removeLinkedDevice("laptop", now)
        assertEquals(3uL, decodeDeviceList(removal.deviceList).version)
        val removed = ana.processDeviceList(removal.deviceList, now).event as DeviceListEventRecord.Updated
        assertEquals(listOf("laptop"), removed.removed.map { it.deviceId })
        val after = ana.encryptForUser(bob, "after".toByteArray(), listOf(AddressedBundle("$bob/laptop", laptop.nextBundle())))
        assertEquals(listOf("$bob/phone"), after.report.map { it.address })
        assertTrue(after.messages.none { it.peer == "$bob/laptop" })
    }

    @Test
    fun aForeignMasterKeyIsSurfacedAndBlocksUntilApproved() {
        val phone = Device("$bob/phone", now)
        val impostor = Device("$bob/phone", now)
        val ana = Device("ana@mof.gov.my/phone", now)
        ana.processDeviceList(phone.createMasterKey("phone", now), now)
        val foreign = impostor.createMasterKey("phone", now)
        val changed = ana.processDeviceList(foreign, now).event as DeviceListEventRecord.MasterKeyChanged
        assertArrayEquals(foreign, ana.pendingDeviceList(bob)!!.bytes)
        val out = ana.encryptForUser(bob, "x".toByteArray(), emptyList())
        assertEquals(listOf("MasterKeyChanged"), out.report.map { it.missing })
        assertTrue(out.messages.isEmpty())
        assertThrows<GoChatException.UnknownMasterKey> {
            ana.approveMasterKey(bob, ana.deviceList(bob)!!.masterPublicKey, now)
        }
        assertTrue(ana.approveMasterKey(bob, changed.new, now).event is DeviceListEventRecord.Updated)
        assertArrayEquals(changed.new, ana.deviceList(bob)!!.masterPublicKey)
    }
}
