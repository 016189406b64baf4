package gov.gochat.e2ee

import java.io.ByteArrayOutputStream
import java.lang.reflect.Modifier
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * Encrypted attachments (protocol chapter 14): one-shot and streaming round trips,
 * segment boundaries, every refusal a malicious server can cause (each a typed
 * exception that leaves the decryptor usable), random access, the pointer's metadata,
 * and the limits. Small files only: this suite is the slowest in CI.
 */
class AttachmentsTest {
    private val seg = 65_536

    private fun data(n: Int) = ByteArray(n) { (it * 31 + 7).toByte() }

    private fun ByteArrayOutputStream.put(b: ByteArray) = write(b, 0, b.size)

    /** Streams `plaintext` through an encryptor in `chunk`-byte writes: (blob, pointer). */
    private fun encryptStream(plaintext: ByteArray, chunk: Int, segmentSize: UInt? = null): Pair<ByteArray, ByteArray> {
        val size = plaintext.size.toULong()
        val enc = if (segmentSize == null) {
            AttachmentEncryptor(size, "application/pdf", "report.pdf")
        } else {
            AttachmentEncryptor.withSegmentSize(size, segmentSize, "application/pdf", "report.pdf")
        }
        val blob = ByteArrayOutputStream()
        return enc.use {
            for (start in 0 until plaintext.size step chunk) {
                blob.put(it.update(plaintext.copyOfRange(start, minOf(start + chunk, plaintext.size))))
            }
            var step = it.finishStep()
            while (step.pointer == null) {
                blob.put(step.ciphertext)
                step = it.finishStep()
            }
            assertEquals(0, step.ciphertext.size)
            blob.toByteArray() to step.pointer!!
        }
    }

    /** Feeds `blob` to a decryptor in `chunk`-byte reads and finishes it. */
    private fun decryptStream(pointer: ByteArray, blob: ByteArray, chunk: Int): ByteArray {
        val out = ByteArrayOutputStream()
        AttachmentDecryptor(pointer).use { d ->
            for (start in 0 until blob.size step chunk) {
                out.put(d.update(blob.copyOfRange(start, minOf(start + chunk, blob.size))))
            }
            d.finish()
            assertEquals(blob.size.toULong(), d.received())
        }
        return out.toByteArray()
    }

    private fun header(blob: ByteArray) = blob.copyOfRange(0, 53)

    /** A small two-segment attachment (1 KiB segments), streamed: (plaintext, blob, pointer). */
    private fun small(): Triple<ByteArray, ByteArray, ByteArray> {
        val plaintext = data(2_000)
        val (blob, pointer) = encryptStream(plaintext, 700, 1_024u)
        return Triple(plaintext, blob, pointer)
    }

    @Test
    fun oneShotRoundTrip() {
        val plaintext = "the minutes of the meeting".toByteArray()
        val a = attachmentEncrypt(plaintext, "text/plain", "minutes.txt")
        val info = attachmentHeaderInfo(header(a.blob))
        assertEquals(65_536u, info.segmentSize)
        assertEquals(1024uL, info.paddedLen)
        assertEquals(1u, info.segmentCount)
        assertEquals(a.blob.size.toULong(), info.ciphertextLen)
        assertEquals(53 + 1024 + 16, a.blob.size)
        assertArrayEquals(plaintext, attachmentDecrypt(a.pointer, a.blob))
        // No file name: the default argument.
        val b = attachmentEncrypt(plaintext, "text/plain")
        assertNull(attachmentPointerInfo(b.pointer).fileName)
        assertFalse(a.blob.contentEquals(b.blob), "a fresh key and nonce prefix for every attachment")
    }

    @Test
    fun streamingRoundTripOfAMultiSegmentFile() {
        val plaintext = data(300 * 1024)
        val (blob, pointer) = encryptStream(plaintext, seg)
        val info = attachmentHeaderInfo(header(blob))
        assertEquals(attachmentPaddedLen(plaintext.size.toULong()), info.paddedLen)
        assertEquals(5u, info.segmentCount)
        assertEquals(blob.size.toULong(), info.ciphertextLen)
        // Any chunking on either side: the same plaintext.
        assertArrayEquals(plaintext, decryptStream(pointer, blob, seg))
        assertArrayEquals(plaintext, decryptStream(pointer, blob, 10_007))
        // Odd plaintext chunks across small segments.
        val small = data(5_000)
        val (blob2, pointer2) = encryptStream(small, 333, 1_024u)
        assertEquals(5u, attachmentHeaderInfo(header(blob2)).segmentCount)
        assertArrayEquals(small, decryptStream(pointer2, blob2, 1_000))
    }

    @Test
    fun emptyFile() {
        AttachmentEncryptor(0uL, "application/octet-stream", null).use { enc ->
            // update never ran: the first step brings the header, then the one
            // segment of padding.
            val first = enc.finishStep()
            assertArrayEquals(enc.header(), header(first.ciphertext))
            assertEquals(53 + 1024 + 16, first.ciphertext.size)
            val done = enc.finishStep()
            assertEquals(0, done.ciphertext.size)
            val pointer = done.pointer!!
            assertEquals(0uL, attachmentPointerInfo(pointer).size)
            assertEquals(0, attachmentDecrypt(pointer, first.ciphertext).size)
            assertEquals(0, decryptStream(pointer, first.ciphertext, 100).size)
            assertThrows<GoChatException.StreamFinished> { enc.finishStep() }
            assertThrows<GoChatException.StreamFinished> { enc.update(ByteArray(0)) }
        }
        // An empty update still sends the header.
        AttachmentEncryptor(0uL, "application/octet-stream").use { enc ->
            assertArrayEquals(enc.header(), enc.update(ByteArray(0)))
        }
        val (blob, pointer) = encryptStream(ByteArray(0), 1)
        assertEquals(53 + 1024 + 16, blob.size)
        assertEquals(0, attachmentDecrypt(pointer, blob).size)
    }

    @Test
    fun exactSegmentBoundary() {
        // 128 KiB is its own padding bucket: exactly two full segments, no padding.
        val plaintext = data(2 * seg)
        assertEquals(plaintext.size.toULong(), attachmentPaddedLen(plaintext.size.toULong()))
        val (blob, pointer) = encryptStream(plaintext, seg)
        val info = attachmentHeaderInfo(header(blob))
        assertEquals(2u, info.segmentCount)
        assertEquals(53 + 2 * (seg + 16), blob.size)
        assertArrayEquals(plaintext, decryptStream(pointer, blob, seg + 16))
        // Cut at the segment boundary: the first segment was sealed as not-last.
        AttachmentDecryptor(pointer).use { d ->
            assertArrayEquals(plaintext.copyOfRange(0, seg), d.update(blob.copyOfRange(0, 53 + seg + 16)))
            val e = assertThrows<GoChatException.Truncated> { d.finish() }
            assertFalse(e.retryMayHelp)
        }
    }

    @Test
    fun anotherPointersKeyIsWrongKey() {
        val (_, blob, _) = small()
        val (_, _, otherPointer) = small()
        AttachmentDecryptor(otherPointer).use { d ->
            assertThrows<GoChatException.WrongKey> { d.update(blob) }
            assertEquals(0uL, d.received())
        }
        assertThrows<GoChatException.WrongKey> { attachmentDecrypt(otherPointer, blob) }
    }

    @Test
    fun oneFlippedByteIsTampered() {
        val (_, blob, pointer) = small()
        for (at in listOf(53, 53 + 1024 + 16 + 5, blob.size - 1)) {
            val bad = blob.copyOf().also { it[at] = (it[at].toInt() xor 1).toByte() }
            assertThrows<GoChatException.Tampered> { attachmentDecrypt(pointer, bad) }
        }
        // A header byte (the nonce prefix) is covered by every tag.
        val bad = blob.copyOf().also { it[20] = (it[20].toInt() xor 1).toByte() }
        assertThrows<GoChatException.Tampered> { attachmentDecrypt(pointer, bad) }
    }

    @Test
    fun truncatedIsTruncated() {
        val (_, blob, pointer) = small()
        assertThrows<GoChatException.Truncated> { attachmentDecrypt(pointer, blob.copyOf(blob.size - 1)) }
        assertThrows<GoChatException.Truncated> { attachmentDecrypt(pointer, blob.copyOf(40)) }
        AttachmentDecryptor(pointer).use { d -> assertThrows<GoChatException.Truncated> { d.finish() } }
    }

    @Test
    fun aTrailingByteIsTrailingData() {
        val (_, blob, pointer) = small()
        assertThrows<GoChatException.TrailingData> { attachmentDecrypt(pointer, blob + byteArrayOf(0)) }
    }

    @Test
    fun aPointerWithAnotherDigestIsDigestMismatch() {
        val (plaintext, blob, pointer) = small()
        // The digest is bytes 34..66 of the encoded pointer (protocol 14.4).
        val wrong = pointer.copyOf().also { it[34] = (it[34].toInt() xor 1).toByte() }
        AttachmentDecryptor(wrong).use { d ->
            assertArrayEquals(plaintext, d.update(blob), "segments are authentic under the key")
            assertThrows<GoChatException.DigestMismatch> { d.finish() }
        }
        assertThrows<GoChatException.DigestMismatch> { attachmentDecrypt(wrong, blob) }
    }

    @Test
    fun aRefusedUpdateLeavesTheDecryptorUsable() {
        val (plaintext, blob, pointer) = small()
        AttachmentDecryptor(pointer).use { d ->
            val out = ByteArrayOutputStream()
            out.put(d.update(blob.copyOfRange(0, 100)))
            val seg1 = blob.copyOfRange(100, blob.size)
            val tampered = seg1.copyOf().also { it[1_000] = (it[1_000].toInt() xor 0x40).toByte() }
            assertThrows<GoChatException.Tampered> { d.update(tampered) }
            assertThrows<GoChatException.TrailingData> { d.update(seg1 + byteArrayOf(1)) }
            assertEquals(100uL, d.received(), "refused bytes are not counted")
            assertThrows<GoChatException.Truncated> { d.finish() }
            // The genuine bytes, fetched again: the stream goes on from where it was.
            out.put(d.update(seg1))
            d.finish()
            assertArrayEquals(plaintext, out.toByteArray())
            assertThrows<GoChatException.StreamFinished> { d.update(ByteArray(1)) }
        }
    }

    @Test
    fun randomAccessToAMiddleSegment() {
        val plaintext = data(300 * 1024)
        val a = attachmentEncrypt(plaintext, "video/mp4", "clip.mp4")
        val h = header(a.blob)
        val offset = 150_000uL
        val index = attachmentSegmentForOffset(h, offset)
        assertEquals(2u, index)
        val r = attachmentSegmentRange(h, index)
        assertEquals((53 + 2 * (seg + 16)).toULong(), r.offset)
        assertEquals((seg + 16).toULong(), r.length)
        val segment = a.blob.copyOfRange(r.offset.toInt(), (r.offset + r.length).toInt())
        val got = attachmentDecryptSegment(a.pointer, h, index, segment)
        assertArrayEquals(plaintext.copyOfRange(2 * seg, 3 * seg), got)
        assertThrows<GoChatException.Tampered> { attachmentDecryptSegment(a.pointer, h, 1u, segment) }
        assertThrows<GoChatException.Truncated> { attachmentDecryptSegment(a.pointer, h, index, segment.copyOf(100)) }
        val count = attachmentHeaderInfo(h).segmentCount
        assertThrows<GoChatException.Malformed> { attachmentSegmentRange(h, count) }
        assertThrows<GoChatException.Malformed> { attachmentSegmentForOffset(h, count.toULong() * seg.toULong()) }
        assertThrows<GoChatException.Malformed> { attachmentHeaderInfo(h.copyOf(52)) }
    }

    @Test
    fun pointerInfoShowsTheMetadataAndNoKey() {
        val a = attachmentEncrypt(data(5_000), "image/jpeg", "photo.jpg")
        val info = attachmentPointerInfo(a.pointer)
        assertEquals(5_000uL, info.size)
        assertEquals("image/jpeg", info.contentType)
        assertEquals("photo.jpg", info.fileName)
        assertEquals(32, info.digest.size)
        assertArrayEquals(a.pointer.copyOfRange(34, 66), info.digest)
        val fields = AttachmentPointerInfo::class.java.declaredFields
            .filter { !Modifier.isStatic(it.modifiers) }.map { it.name }.toSet()
        assertEquals(setOf("size", "contentType", "fileName", "digest"), fields)
        assertEquals(2 + 32 + 32 + 8 + 1 + 10 + 2 + 9, a.pointer.size)
        assertThrows<GoChatException.Malformed> { attachmentPointerInfo(a.pointer + byteArrayOf(0)) }
        assertThrows<GoChatException.Malformed> { AttachmentDecryptor(a.pointer.copyOf(40)) }
    }

    @Test
    fun finishStepBeforeAllThePlaintextIsSizeMismatch() {
        val plaintext = data(3_000)
        AttachmentEncryptor.withSegmentSize(3_000uL, 1_024u, "text/csv", "table.csv").use { enc ->
            val blob = ByteArrayOutputStream()
            blob.put(enc.update(plaintext.copyOfRange(0, 1_000)))
            assertThrows<GoChatException.SizeMismatch> { enc.finishStep() }
            assertThrows<GoChatException.SizeMismatch> { enc.update(ByteArray(2_001)) }
            // Neither refusal changed anything: write the rest and finish.
            blob.put(enc.update(plaintext.copyOfRange(1_000, 3_000)))
            var pointer: ByteArray? = null
            while (pointer == null) {
                val step = enc.finishStep()
                blob.put(step.ciphertext)
                pointer = step.pointer
            }
            assertArrayEquals(plaintext, attachmentDecrypt(pointer, blob.toByteArray()))
        }
    }

    @Test
    fun aDecryptorIsSafeToShareAcrossThreads() {
        val (plaintext, blob, pointer) = small()
        AttachmentDecryptor(pointer).use { shared ->
            val stop = java.util.concurrent.atomic.AtomicBoolean(false)
            val readers = List(3) { Thread { while (!stop.get()) check(shared.received() <= blob.size.toULong()) } }
            readers.forEach { it.start() }
            val out = ByteArrayOutputStream()
            val feeder = Thread {
                for (start in 0 until blob.size step 100) {
                    out.put(shared.update(blob.copyOfRange(start, minOf(start + 100, blob.size))))
                }
            }
            feeder.start()
            feeder.join()
            stop.set(true)
            readers.forEach { it.join() }
            shared.finish() // on yet another thread
            assertArrayEquals(plaintext, out.toByteArray())
        }
    }

    @Test
    fun invalidArgumentsAreMalformedOrTooLarge() {
        assertThrows<GoChatException.Malformed> { AttachmentEncryptor(1uL, "", null) }
        assertThrows<GoChatException.Malformed> { AttachmentEncryptor(1uL, "text/plain", "../etc/passwd") }
        assertThrows<GoChatException.Malformed> { AttachmentEncryptor.withSegmentSize(1uL, 1_023u, "text/plain", null) }
        assertThrows<GoChatException.TooLarge> { AttachmentEncryptor((1uL shl 40) + 1uL, "text/plain", null) }
    }

    @Test
    fun limitsIncludeTheAttachmentConstants() {
        val l = limits()
        assertEquals(53u, l.headerBytes)
        assertEquals(65_536u, l.defaultSegmentSize)
        assertEquals(1_024u, l.minSegmentSize)
        assertEquals(1_048_576u, l.maxSegmentSize)
        assertEquals(1uL shl 40, l.maxAttachmentBytes)
        assertEquals(587u, l.maxPointerBytes)
        assertEquals(1_024uL, attachmentPaddedLen(0uL))
        assertEquals(1_088uL, attachmentPaddedLen(1_025uL))
        assertEquals(67_584uL, attachmentPaddedLen(65_537uL))
    }
}
