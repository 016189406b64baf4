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
    @JvmStatic external fun takeError(): ByteArray?
    @JvmStatic external fun noop(handle: Long): Long
    @JvmStatic external fun version(): ByteArray
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
    private val calls = AtomicLong(1)
    private val closed = AtomicBoolean(false)

    companion object {
        /** A fast view of [device]: the same Rust device (one more reference to it). */
        fun of(device: Device): FastDevice = FastDevice(device.uniffiCloneHandle())

        /** The bare JNI crossing on [device], for the benchmark (no work in Rust). */
        internal fun noop(device: FastDevice): Long = device.fast { GoChatJni.noop(it) }
    }

    override fun destroy() {
        if (closed.compareAndSet(false, true) && calls.decrementAndGet() == 0L) super.destroy()
    }

    /** Keeps the handle alive for [block] (the generated `callWithHandle`'s protocol). */
    private inline fun <R> fast(block: (Long) -> R): R {
        while (true) {
            val c = calls.get()
            check(c != 0L) { "FastDevice object has already been destroyed" }
            if (calls.compareAndSet(c, c + 1)) break
        }
        try {
            return block(handle)
        } finally {
            // Also keeps `this` reachable until the native call has returned, so the
            // Cleaner cannot free the Rust object under it (no reachabilityFence on API 24).
            if (calls.decrementAndGet() == 0L) super.destroy()
        }
    }

    /** The payload of a JNI call, or the typed error it kept (null = a protocol error). */
    private fun payload(r: ByteArray?): ByteArray {
        if (r != null) return r
        val e = checkNotNull(GoChatJni.takeError()) { "GoChat JNI call failed without an error" }
        throw FfiConverterTypeGoChatError.read(ByteBuffer.wrap(e))
    }

    /** Reads a uniffi-serialized value from a JNI response, then wipes the response. */
    private inline fun <T> read(r: ByteArray?, reader: (ByteBuffer) -> T): T {
        val bytes = payload(r)
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
        payload(fast { GoChatJni.encrypt(it, peer.encodeToByteArray(), plaintext) })

    @Throws(GoChatException::class)
    override fun decrypt(peer: String, message: ByteArray): DecryptResult =
        read(fast { GoChatJni.decrypt(it, peer.encodeToByteArray(), message) }, FfiConverterTypeDecryptResult::read)

    @Throws(GoChatException::class)
    override fun groupEncrypt(groupId: ByteArray, plaintext: ByteArray, now: ULong): GroupSentRecord =
        read(fast { GoChatJni.groupEncrypt(it, groupId, plaintext, now.toLong()) }, FfiConverterTypeGroupSentRecord::read)

    @Throws(GoChatException::class)
    override fun groupDecrypt(sender: String, message: ByteArray): GroupPlaintextRecord =
        read(fast { GoChatJni.groupDecrypt(it, sender.encodeToByteArray(), message) }, FfiConverterTypeGroupPlaintextRecord::read)

    @Throws(GoChatException::class)
    override fun nextBundle(): ByteArray = payload(fast { GoChatJni.nextBundle(it) })

    @Throws(GoChatException::class)
    override fun initiate(peer: String, bundle: ByteArray): IdentityEvent =
        read(fast { GoChatJni.initiate(it, peer.encodeToByteArray(), bundle) }, FfiConverterTypeIdentityEvent::read)

    @Throws(GoChatException::class)
    override fun receiveControl(peer: String, message: ByteArray): ControlReceived =
        read(fast { GoChatJni.receiveControl(it, peer.encodeToByteArray(), message) }, FfiConverterTypeControlReceived::read)
}
