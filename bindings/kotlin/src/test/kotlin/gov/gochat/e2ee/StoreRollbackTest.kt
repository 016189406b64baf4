package gov.gochat.e2ee

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.nio.file.Files
import java.nio.file.StandardCopyOption

/** The rollback anchor: a store file put back from a backup is refused (docs/store.md, "Rollback"). */
class StoreRollbackTest {
    private val now = 1_700_000_000uL
    private val key = StoreUnlock.PlatformKey(ByteArray(32) { 7 })

    @Test
    fun anOlderCopyOfTheStoreIsRefusedAgainstTheRecordedGeneration() {
        val dir = Files.createTempDirectory("gochat-rollback")
        val path = dir.resolve("alice.sqlite")
        val backup = dir.resolve("backup.sqlite")
        val alice = Device.createStored(path.toString(), key, "alice", now, null)
        val bob = Device("bob", now)
        alice.initiate("bob", bob.nextBundle())
        val old = alice.storeGeneration()
        alice.close()
        Files.copy(path, backup, StandardCopyOption.REPLACE_EXISTING)

        val reopened = Device.openStored(path.toString(), key, old)
        bob.decrypt("alice", reopened.encrypt("bob", "one".toByteArray()))
        bob.decrypt("alice", reopened.encrypt("bob", "two".toByteArray()))
        val anchor = reopened.storeGeneration()
        assertEquals(old + 2uL, anchor)
        reopened.close()

        Files.copy(backup, path, StandardCopyOption.REPLACE_EXISTING)
        assertThrows<GoChatException.StoreRolledBack> { Device.openStored(path.toString(), key, anchor) }
        // Without the anchor the older copy cannot be told apart.
        Device.openStored(path.toString(), key).use { assertEquals(old, it.storeGeneration()) }
        assertThrows<GoChatException.NotSupported> { bob.storeGeneration() }
    }
}
