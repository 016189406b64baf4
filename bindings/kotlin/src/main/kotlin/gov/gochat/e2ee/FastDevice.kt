package gov.gochat.e2ee

import java.nio.ByteBuffer
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicLong

/**
 * The JNI entry points of `crates/gochat-e2ee-ffi/src/jni.rs`: the same Rust methods the
 * generated (JNA) `Device` calls, reached with one JNI call instead of several JNA calls
 * that each allocate native `Structure`s. Loaded from the very file JNA loaded, so both
 * paths share one library instance (checked by [version] at load).
 */
internal object GoChatJni {
    init {
        val name = "gochat_e2ee_ffi"
        // The file JNA resolved (desktop JVM: jna.library.path); on Android JNA reports no
        // file and the library is in the APK's lib/<abi>/, found by System.loadLibrary.
        val file = runCatching { com.sun.jna.NativeLibrary.getInstance(name).file }.getOrNull()
        if (file != null) System.load(file.absolutePath) else System.loadLibrary(name)
        val jni = version().decodeToString()
        check(jni == libraryVersion()) { "GoChat JNI layer $jni does not match the uniffi library ${libraryVersion()}" }
    }

    @JvmStatic external fun encrypt(handle: Long, peer: ByteArray, plaintext: ByteArray): ByteArray?
    @JvmStatic external fun decrypt(handle: Long, peer: ByteArray, message: ByteArray): ByteArray?
    @JvmStatic external fun groupEncrypt(handle: Long, groupId: ByteArray, plaintext: ByteArray, now: Long): ByteArray?
    @JvmStatic external fun groupDecrypt(handle: Long, sender: ByteArray, message: ByteArray): ByteArray?
    @JvmStatic external fun nextBundle(handle: Long): ByteArray?
    @JvmStatic external fun initiate(handle: Long, peer: ByteArray, bundle: ByteArray): ByteArray?
    @JvmStatic external fun receiveControl(handle: Long, peer: ByteArray, message: ByteArray): ByteArray?
    @JvmStatic external fun attachmentEncryptUpdate(handle: Long, plaintext: ByteArray): ByteArray?
    @JvmStatic external fun attachmentDecryptUpdate(handle: Long, ciphertext: ByteArray): ByteArray?
    @JvmStatic external fun takeError(): ByteArray?
    @JvmStatic external fun noop(handle: Long): Long
    @JvmStatic external fun version(): ByteArray
}

/**
 * The call counter of a fast object: keeps its uniffi handle alive for the whole of each
 * JNI call (the protocol of the generated `callWithHandle`), and frees the Rust object
 * (`free`, the generated `destroy`) once the object is closed and the last call returned.
 */
internal class HandleGuard(private val free: () -> Unit) {
    private val calls = AtomicLong(1)
    private val closed = AtomicBoolean(false)

    fun close() {
        if (closed.compareAndSet(false, true) && calls.decrementAndGet() == 0L) free()
    }

    inline fun <R> call(handle: Long, block: (Long) -> R): R {
        enter()
        try {
            return block(handle)
        } finally {
            // `leave` runs on this guard after the native call returns, so the guard is
            // live for the whole call, and with it the owner (`free` captures the owner):
            // the owner's Cleaner cannot free the Rust object under a running call, with
            // no `reachabilityFence` (not on API 24).
            leave()
        }
    }

    fun enter() {
        while (true) {
            val c = calls.get()
            check(c != 0L) { "object has already been destroyed" }
            if (calls.compareAndSet(c, c + 1)) return
        }
    }

    fun leave() {
        if (calls.decrementAndGet() == 0L) free()
    }
}

/** The payload of a JNI call, or the typed error it kept (null = a protocol error). */
internal fun jniPayload(r: ByteArray?): ByteArray {
    if (r != null) return r
    val e = checkNotNull(GoChatJni.takeError()) { "GoChat JNI call failed without an error" }
    throw FfiConverterTypeGoChatError.read(ByteBuffer.wrap(e))
}

/**
 * A [Device] whose hot calls ([encrypt], [decrypt], [groupEncrypt], [groupDecrypt],
 * [receiveControl], and session setup: [nextBundle], [initiate]) cross
 * into Rust through JNI: one call, no JNA structures (`docs/kotlin.md`, "Fast path").
 * Every other method is the generated one. Behaviour, results and errors are exactly the
 * generated methods': both run the same Rust code, and results and errors are written and
 * read with uniffi's own serializers.
 *
 * Make one from any device with [FastDevice.of]; it shares the device's Rust state (a
 * store-backed device stays store-backed), and either object may be closed independently.
 * Thread safe like [Device]; [close] waits for no call but frees the Rust object only
 * after the last running call returns.
 */
class FastDevice private constructor(handle: Long) : Device(UniffiWithHandle, handle) {
    private val guard = HandleGuard { super.destroy() }

    companion object {
        /** A fast view of [device]: the same Rust device (one more reference to it). */
        fun of(device: Device): FastDevice = FastDevice(device.uniffiCloneHandle())

        /** The bare JNI crossing on [device], for the benchmark (no work in Rust). */
        internal fun noop(device: FastDevice): Long = device.fast { GoChatJni.noop(it) }
    }

    override fun destroy() = guard.close()

    private inline fun <R> fast(block: (Long) -> R): R = guard.call(handle, block)

    /** A name as UTF-8, with the generated converter's encoder (it refuses what it refuses). */
    private fun utf8(name: String): ByteArray {
        val buf = FfiConverterString.toUtf8(name)
        return ByteArray(buf.remaining()).also { buf.get(it) }
    }

    /** Reads a uniffi-serialized value from a JNI response, then wipes the response. */
    private inline fun <T> read(r: ByteArray?, reader: (ByteBuffer) -> T): T {
        val bytes = jniPayload(r)
        try {
            val buf = ByteBuffer.wrap(bytes)
            val value = reader(buf)
            check(!buf.hasRemaining()) { "junk after a GoChat JNI response" }
            return value
        } finally {
            bytes.fill(0) // it may hold a plaintext
        }
    }

    @Throws(GoChatException::class)
    override fun encrypt(peer: String, plaintext: ByteArray): ByteArray =
        jniPayload(fast { GoChatJni.encrypt(it, utf8(peer), plaintext) })

    @Throws(GoChatException::class)
    override fun decrypt(peer: String, message: ByteArray): DecryptResult =
        read(fast { GoChatJni.decrypt(it, utf8(peer), message) }, FfiConverterTypeDecryptResult::read)

    @Throws(GoChatException::class)
    override fun groupEncrypt(groupId: ByteArray, plaintext: ByteArray, now: ULong): GroupSentRecord =
        read(fast { GoChatJni.groupEncrypt(it, groupId, plaintext, now.toLong()) }, FfiConverterTypeGroupSentRecord::read)

    @Throws(GoChatException::class)
    override fun groupDecrypt(sender: String, message: ByteArray): GroupPlaintextRecord =
        read(fast { GoChatJni.groupDecrypt(it, utf8(sender), message) }, FfiConverterTypeGroupPlaintextRecord::read)

    @Throws(GoChatException::class)
    override fun nextBundle(): ByteArray = jniPayload(fast { GoChatJni.nextBundle(it) })

    @Throws(GoChatException::class)
    override fun initiate(peer: String, bundle: ByteArray): IdentityEvent =
        read(fast { GoChatJni.initiate(it, utf8(peer), bundle) }, FfiConverterTypeIdentityEvent::read)

    @Throws(GoChatException::class)
    override fun receiveControl(peer: String, message: ByteArray): ControlReceived =
        read(fast { GoChatJni.receiveControl(it, utf8(peer), message) }, FfiConverterTypeControlReceived::read)
}

/**
 * An [AttachmentEncryptor] whose [update] crosses through JNI (one call, two copies of the
 * chunk) instead of JNA (`docs/kotlin.md`, "Fast path"). Make one with [of]; the rest is the
 * generated class.
 */
class FastAttachmentEncryptor private constructor(handle: Long) : AttachmentEncryptor(UniffiWithHandle, handle) {
    private val guard = HandleGuard { super.destroy() }

    companion object {
        /** A fast view of [encryptor] (the same Rust stream). */
        fun of(encryptor: AttachmentEncryptor) = FastAttachmentEncryptor(encryptor.uniffiCloneHandle())
    }

    override fun destroy() = guard.close()

    @Throws(GoChatException::class)
    override fun update(plaintext: ByteArray): ByteArray =
        jniPayload(guard.call(handle) { GoChatJni.attachmentEncryptUpdate(it, plaintext) })
}

/** An [AttachmentDecryptor] whose [update] crosses through JNI; see [FastAttachmentEncryptor]. */
class FastAttachmentDecryptor private constructor(handle: Long) : AttachmentDecryptor(UniffiWithHandle, handle) {
    private val guard = HandleGuard { super.destroy() }

    companion object {
        /** A fast view of [decryptor] (the same Rust stream). */
        fun of(decryptor: AttachmentDecryptor) = FastAttachmentDecryptor(decryptor.uniffiCloneHandle())
    }

    override fun destroy() = guard.close()

    @Throws(GoChatException::class)
    override fun update(ciphertext: ByteArray): ByteArray =
        jniPayload(guard.call(handle) { GoChatJni.attachmentDecryptUpdate(it, ciphertext) })
}
