package gov.gochat.e2ee

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Safety numbers (protocol 15): the same 60 digits on both sides; a scan matches only the real identities. */
class SafetyNumberTest {
    private val now = 1_700_000_000uL

    @Test
    fun bothSidesSeeTheSameNumberAndAScanMatchesOnlyTheRealIdentities() {
        val alice = Device("alice@agency.gov.my", now)
        val bob = Device("bob@agency.gov.my", now)
        val mallory = Device("bob@agency.gov.my", now)
        val a = SafetyNumber("alice@agency.gov.my", alice.identityKey(), "bob@agency.gov.my", bob.identityKey())
        val b = SafetyNumber("bob@agency.gov.my", bob.identityKey(), "alice@agency.gov.my", alice.identityKey())
        assertEquals(a.digits(), b.digits())
        assertTrue(Regex("[0-9]{60}").matches(a.digits()))
        assertEquals(12, a.grouped().split(" ").size)
        assertEquals(a.digits(), a.grouped().replace(" ", ""))
        assertEquals(66, a.scannable().size)
        assertEquals(ScanResult.Match, a.compareScanned(b.scannable()))
        assertEquals(ScanResult.Mismatch, a.compareScanned(a.scannable()))
        // The server put Mallory's key in Bob's place on Alice's side.
        val m = SafetyNumber("alice@agency.gov.my", alice.identityKey(), "bob@agency.gov.my", mallory.identityKey())
        assertNotEquals(a.digits(), m.digits())
        assertEquals(ScanResult.Mismatch, m.compareScanned(b.scannable()))
        val v2 = b.scannable().also { it[1] = 2 }
        assertEquals(ScanResult.VersionMismatch(2u.toUByte()), a.compareScanned(v2))
        assertThrows<GoChatException.Malformed> { a.compareScanned(ByteArray(0)) }
        assertThrows<GoChatException.Malformed> { a.compareScanned(b.scannable().copyOf(65)) }
        assertThrows<GoChatException.WrongMessageType> { a.compareScanned(ByteArray(66) { 0x51 }) }
        assertThrows<GoChatException.Malformed> { SafetyNumber("", alice.identityKey(), "bob", bob.identityKey()) }
        assertThrows<GoChatException.Malformed> { SafetyNumber("a", alice.identityKey(), "a", alice.identityKey()) }
    }
}
