package gov.gochat.e2ee

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.ValueSource

/** What the FFI can check of the shared test vectors (docs/test-vectors.md). */
class VectorsTest {
    @ParameterizedTest
    @ValueSource(strings = ["identity_and_bundle", "pqxdh_one_time_prekey", "pqxdh_last_resort", "ratchet_conversation", "padding", "snapshot"])
    fun bundleVerifies(name: String) {
        val v = Vectors.load(name)
        val out = v.obj("outputs")
        val bob = v.obj("inputs").obj("bob")
        val info = verifyBundle(out.str("bundle").hex())
        assertArrayEquals(out.str("bob_identity_key").hex(), info.identityKey)
        assertEquals(out.str("bob_fingerprint"), info.fingerprint)
        assertEquals(out.str("bob_fingerprint"), identityFingerprint(info.identityKey))
        assertEquals(1u, info.signedPrekeyId)
        assertEquals(v.obj("inputs").long("now").toULong(), info.signedPrekeyCreatedAt)
        assertEquals(bob.long("one_time_prekeys") > 0, info.oneTimePrekeyId != null)
        assertEquals(bob.long("pq_one_time_prekeys") == 0L, info.pqPrekeyIsLastResort)
    }

    @Test
    fun everyFlippedByteOfTheBundleIsRefused() {
        val bundle = Vectors.load("identity_and_bundle").obj("outputs").str("bundle").hex()
        val accepted = bundle.indices.filter { i ->
            val bad = bundle.copyOf()
            bad[i] = (bad[i].toInt() xor 1).toByte()
            try {
                verifyBundle(bad); true
            } catch (e: GoChatException) {
                false
            }
        }
        assertEquals(emptyList<Int>(), accepted)
        assertThrows<GoChatException> { verifyBundle(bundle.copyOf(bundle.size - 1)) }
        assertThrows<GoChatException> { verifyBundle(bundle + byteArrayOf(0)) }
    }

    @Test
    fun snapshotImportsWithTheVectorKey() {
        val v = Vectors.load("snapshot")
        val out = v.obj("outputs")
        val key = v.obj("inputs").obj("snapshot").str("key").hex()
        val snap = out.str("snapshot").hex()
        Device.fromSnapshot(key, snap).use { bob ->
            assertEquals("bob", bob.userId())
            assertArrayEquals(out.str("bob_identity_key").hex(), bob.identityKey())
            assertEquals(out.str("bob_fingerprint"), bob.fingerprint())
            assertTrue(bob.hasSession("alice"))
            // Alice's first message was delivered before the snapshot was taken: a replay.
            assertThrows<GoChatException.Duplicate> { bob.decrypt("alice", (out.list("messages")[0] as String).hex()) }
            assertTrue(bob.encrypt("alice", "still here".toByteArray()).isNotEmpty())
        }
        val wrong = ByteArray(32) { (key[it].toInt() xor 0xff).toByte() }
        assertThrows<GoChatException.SnapshotUndecryptable> { Device.fromSnapshot(wrong, snap) }
        assertThrows<GoChatException.InvalidSnapshotKey> { Device.fromSnapshot(key.copyOf(31), snap) }
    }

    @Test
    fun messageDigestsAreStableAndDistinct() {
        val msgs = Vectors.load("ratchet_conversation").obj("outputs").list("messages").map { (it as String).hex() }
        val digests = msgs.map { messageDigest(it).toList() }
        assertEquals(msgs.size, digests.toSet().size)
        assertEquals(digests, msgs.map { messageDigest(it).toList() })
    }

    @Test
    fun versionAndLimits() {
        assertTrue(libraryVersion().isNotEmpty())
        val l = limits()
        assertEquals(64u, l.paddingBlock)
        assertTrue(l.maxPlaintextBytes < l.maxMessageBytes)
        assertNotNull(l.maxForwardJump)
    }
}
