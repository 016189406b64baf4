package gov.gochat.e2ee

import java.io.File
import java.io.FileInputStream
import java.io.FileOutputStream
import java.security.MessageDigest
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test

/**
 * Not part of the test suite (excluded in the pom). scripts/bench-bindings.sh runs it
 * with `-Dtest=AttachmentBench` against the release cdylib. Same flows as
 * crates/gochat-e2ee-ffi/examples/attachment_baseline.rs: streaming encryption and
 * decryption of 1 MiB and 100 MiB files in 1 MiB chunks (64 KiB segments), one crossing
 * per chunk, through JNA (`kotlin`) and through the JNI fast path (`kotlin-fast`); prints `kotlin attachment_<encrypt|decrypt>_<size> <MB/s>` lines
 * (MB = 10^6 plaintext bytes; best of `gochat.bench.repeats` runs after one warm-up).
 */
class AttachmentBench {
    private val chunkSize = 1 shl 20

    /** The blob (as the encryptor returned it), the pointer, and the seconds taken. */
    private fun encrypt(chunk: ByteArray, chunks: Int, fast: Boolean): Triple<List<ByteArray>, ByteArray, Double> {
        val t = System.nanoTime()
        AttachmentEncryptor(chunk.size.toULong() * chunks.toULong(), "video/mp4")
            .let { if (fast) FastAttachmentEncryptor.of(it).also { _ -> it.close() } else it }.use { e ->
            val blob = ArrayList<ByteArray>(chunks + 2)
            repeat(chunks) { blob.add(e.update(chunk)) }
            var step = e.finishStep()
            while (step.pointer == null) {
                blob.add(step.ciphertext)
                step = e.finishStep()
            }
            return Triple(blob, step.pointer!!, (System.nanoTime() - t) / 1e9)
        }
    }

    /** Decrypts `pieces` (the blob cut into 1 MiB pieces); the seconds taken. */
    private fun decrypt(pointer: ByteArray, pieces: List<ByteArray>, fast: Boolean): Double {
        val t = System.nanoTime()
        var sink = 0
        AttachmentDecryptor(pointer).let { if (fast) FastAttachmentDecryptor.of(it).also { _ -> it.close() } else it }.use { d ->
            for (p in pieces) sink += d.update(p).size
            d.finish()
        }
        check(sink > 0)
        return (System.nanoTime() - t) / 1e9
    }

    private fun pieces(blob: List<ByteArray>): List<ByteArray> {
        val joined = ByteArray(blob.sumOf { it.size })
        var at = 0
        for (b in blob) { b.copyInto(joined, at); at += b.size }
        return (0 until joined.size step chunkSize).map { joined.copyOfRange(it, minOf(it + chunkSize, joined.size)) }
    }

    @Test
    fun bench() {
        val repeats = (System.getProperty("gochat.bench.repeats") ?: "5").toInt()
        val chunk = ByteArray(chunkSize) { (it * 31 + 7).toByte() }
        for (fast in listOf(false, true)) for ((name, chunks) in listOf("1MiB" to 1, "100MiB" to 100)) {
            val label = if (fast) "kotlin-fast" else "kotlin"
            val mb = chunkSize.toDouble() * chunks / 1e6
            var bestEnc = Double.MAX_VALUE
            var bestDec = Double.MAX_VALUE
            // A small file is timed over many rounds; run 0 is the warm-up (JIT).
            val rounds = if (chunks == 1) 20 else 1
            for (run in 0..repeats) {
                var enc = 0.0
                var dec = 0.0
                repeat(rounds) {
                    val (blob, pointer, secs) = encrypt(chunk, chunks, fast)
                    enc += secs
                    dec += decrypt(pointer, pieces(blob), fast)
                }
                if (run > 0) {
                    bestEnc = minOf(bestEnc, enc / rounds)
                    bestDec = minOf(bestDec, dec / rounds)
                }
            }
            println("$label attachment_encrypt_$name ${"%.0f".format(mb / bestEnc)}")
            println("$label attachment_decrypt_$name ${"%.0f".format(mb / bestDec)}")
        }
    }

    /** VmHWM (peak resident set) of this JVM, in KiB, from /proc/self/status. */
    private fun peakRssKiB(): Long =
        File("/proc/self/status").readLines().first { it.startsWith("VmHWM:") }
            .split(Regex("\\s+"))[1].toLong()

    /**
     * Peak memory of a streamed attachment of `gochat.bench.memoryMiB` MiB (skipped when the
     * property is absent): encrypted 1 MiB at a time into a temporary file, then decrypted
     * from it 1 MiB at a time, its plaintext hashed and discarded. Run it with a small heap
     * (e.g. `-Xmx64m`): finishing a 1 GiB stream in it shows memory does not grow with the
     * size. Prints the largest heap in use (sampled after every chunk) and VmHWM.
     */
    @Test
    fun memory() {
        val mib = System.getProperty("gochat.bench.memoryMiB")?.toInt()
        assumeTrue(mib != null, "set -Dgochat.bench.memoryMiB=N")
        val rt = Runtime.getRuntime()
        var maxHeap = 0L
        val sample = { maxHeap = maxOf(maxHeap, rt.totalMemory() - rt.freeMemory()) }
        val file = File.createTempFile("gochat-attachment-memory", ".blob")
        try {
            val chunk = ByteArray(chunkSize)
            val plain = MessageDigest.getInstance("SHA-256")
            val pointer = FileOutputStream(file).use { out ->
                AttachmentEncryptor(chunkSize.toULong() * mib!!.toULong(), "video/mp4").use { e ->
                    for (i in 0 until mib) {
                        chunk[0] = i.toByte()
                        plain.update(chunk)
                        out.write(e.update(chunk))
                        sample()
                    }
                    var step = e.finishStep()
                    while (step.pointer == null) {
                        out.write(step.ciphertext)
                        step = e.finishStep()
                    }
                    step.pointer!!
                }
            }
            val afterEncrypt = peakRssKiB()
            val back = MessageDigest.getInstance("SHA-256")
            FileInputStream(file).use { input ->
                AttachmentDecryptor(pointer).use { d ->
                    val buf = ByteArray(chunkSize)
                    while (true) {
                        val n = input.read(buf)
                        if (n < 0) break
                        back.update(d.update(if (n == buf.size) buf else buf.copyOf(n)))
                        sample()
                    }
                    d.finish()
                }
            }
            check(back.digest().contentEquals(plain.digest())) { "plaintext mismatch" }
            println(
                "kotlin attachment_memory ${mib}MiB: max heap used ${maxHeap / 1024} KiB, " +
                    "VmHWM after encrypt $afterEncrypt KiB, at the end ${peakRssKiB()} KiB (max heap ${rt.maxMemory() / 1024} KiB)",
            )
        } finally {
            file.delete()
        }
    }
}
