package gov.gochat.e2ee

import java.io.File
import java.util.Base64
import java.util.concurrent.TimeUnit
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions.assumeFalse
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Linking a device from the phone (protocol 15.9): one offer, one sealed message, single use. */
class ProvisioningTest {
    private val now = 1_700_000_000uL
    private val user = "aminah@mof.gov.my"

    private fun payload(master: Device) = LinkPayload(
        user = user,
        masterPublic = master.identityKey().copyOfRange(2, 34),
        endorsement = ByteArray(100) { 0x56 },
        deviceList = ByteArray(200) { 0x55 },
    )

    @Test
    fun aNewDeviceOpensOneMessageAndFailuresChangeNothing() {
        val web = Device(user, now)
        val phone = Device(user, now)
        val secret = ProvisioningSecret(web.identityKey(), "web-1", now)
        val offer = secret.offer()
        assertTrue(offer.size <= 173)
        assertEquals(0x57.toByte(), offer[0])
        val info = inspectProvisioningOffer(offer)
        assertEquals("web-1", info.deviceId)
        assertEquals(now, info.createdAt)
        assertArrayEquals(web.identityKey(), info.identity)
        val p = payload(phone)
        assertThrows<GoChatException.ProvisioningExpired> { provisioningSeal(offer, p, now + 601uL) }
        assertThrows<GoChatException.ProvisioningExpired> { provisioningSeal(offer, p, now - 61uL) }
        assertThrows<GoChatException.InvalidKey> { provisioningSeal(offer, p.copy(masterPublic = ByteArray(32)), now) }
        assertThrows<GoChatException.Malformed> { provisioningSeal(offer, p.copy(user = "Aminah@mof.gov.my"), now) }
        val message = provisioningSeal(offer, p, now + 10uL)
        val tampered = message.copyOf().also { it[40] = (it[40].toInt() xor 1).toByte() }
        assertThrows<GoChatException.AuthenticationFailed> { secret.open(tampered) }
        assertThrows<GoChatException.Malformed> { secret.open(byteArrayOf(0x58, 1)) }
        assertFalse(secret.isUsed())
        val got = secret.open(message)
        assertEquals(user, got.user)
        assertArrayEquals(p.masterPublic, got.masterPublic)
        assertArrayEquals(p.endorsement, got.endorsement)
        assertArrayEquals(p.deviceList, got.deviceList)
        assertTrue(secret.isUsed())
        assertThrows<GoChatException.ProvisioningUsed> { secret.open(message) }
        assertThrows<GoChatException.Malformed> { ProvisioningSecret(web.identityKey(), "a/b", now) }
    }

    @Test
    fun aPrimaryLinksADeviceThatCompletesTheLink() {
        val phone = Device("$user/phone", now)
        val web = Device(user, now)
        val secret = ProvisioningSecret(web.identityKey(), "web-1", now)
        assertThrows<GoChatException.NotPrimary> { phone.linkDevice(secret.offer(), now) }
        phone.createMasterKey("phone", now)
        assertThrows<GoChatException.ProvisioningExpired> { phone.linkDevice(secret.offer(), now + 601uL) }
        assertThrows<GoChatException.Malformed> { phone.linkDevice(secret.offer().copyOfRange(0, 40), now) }
        assertEquals(1uL, phone.ownDeviceList()!!.version)
        val link = phone.linkDevice(secret.offer(), now + 5uL)
        assertEquals(0x58.toByte(), link.message[0])
        assertEquals(listOf("phone", "web-1"), link.deviceList.devices.map { it.deviceId })
        assertThrows<GoChatException.Duplicate> { phone.linkDevice(secret.offer(), now + 5uL) }
        val stranger = Device(user, now)
        assertThrows<GoChatException.DeviceListMismatch> { stranger.completeLink(secret, link.message) }
        val tampered = link.message.copyOf().also { it[40] = (it[40].toInt() xor 1).toByte() }
        assertThrows<GoChatException.AuthenticationFailed> { web.completeLink(secret, tampered) }
        assertFalse(secret.isUsed())
        assertEquals(null, web.ownDeviceList())
        val adopted = web.completeLink(secret, link.message)
        assertEquals(2uL, adopted.version)
        assertArrayEquals(link.deviceList.bytes, adopted.bytes)
        assertEquals("$user/web-1", web.ownAddress())
        assertFalse(web.isPrimary())
        assertThrows<GoChatException.ProvisioningUsed> { web.completeLink(secret, link.message) }
    }

    /**
     * End to end across bindings: this JVM is the phone, a Node process running the npm
     * package is the web device (bindings/js/test/link-web-device.mjs). JS makes the offer,
     * the Kotlin phone (a primary Device) links it, JS completes the link and reports the
     * list it adopted (garbage and a second open refused), then the phone fans a message
     * out to its own devices and JS decrypts it.
     *
     * Fails (never skips) when node or the built package is missing; set
     * GOCHAT_SKIP_JS_LINK=1 to skip it on a machine without them.
     */
    @Test
    fun aKotlinPhoneLinksAJsWebDevice() {
        assumeFalse(System.getenv("GOCHAT_SKIP_JS_LINK") == "1", "GOCHAT_SKIP_JS_LINK=1")
        val jsDir = File(System.getProperty("gochat.js.dir") ?: "../js").absoluteFile
        val wasm = File(jsDir, "pkg/gochat_e2ee_wasm_bg.wasm")
        assertTrue(wasm.isFile, "$wasm missing: build the npm package first (bash bindings/js/build.sh)")
        val proc = ProcessBuilder("node", "test/link-web-device.mjs", user, "web-1", now.toString())
            .directory(jsDir)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        try {
            val out = proc.inputStream.bufferedReader()
            val inp = proc.outputStream.bufferedWriter()
            val b64 = Base64.getEncoder()
            val unb64 = Base64.getDecoder()
            fun ask(line: String): String {
                inp.write(line + "\n")
                inp.flush()
                return out.readLine() ?: error("the web device exited")
            }
            val first = (out.readLine() ?: error("the web device printed nothing")).split(" ")
            assertEquals("offer", first[0])
            val offer = unb64.decode(first[1])
            val webIdentity = unb64.decode(first[2])

            // The phone shows what it is about to link, then links it as the primary.
            val info = inspectProvisioningOffer(offer)
            assertEquals("web-1", info.deviceId)
            assertArrayEquals(webIdentity, info.identity)
            val phone = Device("$user/phone", now)
            phone.createMasterKey("phone", now)
            val link = phone.linkDevice(offer, now + 5uL)
            assertEquals(2uL, link.deviceList.version)
            assertEquals(listOf("phone", "web-1"), link.deviceList.devices.map { it.deviceId })
            val message = link.message

            // Garbage from the server first: refused, and the web device's secret survives.
            val tampered = message.copyOf().also { it[it.size - 1] = (it[it.size - 1].toInt() xor 1).toByte() }
            assertEquals("err AuthenticationFailed", ask("open " + b64.encodeToString(tampered)))
            assertEquals("err Malformed", ask("open " + b64.encodeToString(byteArrayOf(0x58, 1))))

            // The web device completes the link and reports the list it adopted.
            val ok = ask("open " + b64.encodeToString(message))
            assertTrue(ok.startsWith("ok "), ok)
            val got = Json.parse(ok.removePrefix("ok ")) as Map<*, *>
            assertEquals(user, got["user"])
            assertEquals(2, (got["version"] as Number).toInt())
            assertEquals(listOf("phone", "web-1"), got["devices"])
            assertArrayEquals(link.deviceList.bytes, unb64.decode(got["deviceList"] as String))
            assertEquals(true, got["used"])
            assertEquals("$user/web-1", got["address"])

            // Single use: the same message again is refused.
            assertEquals("err ProvisioningUsed", ask("open " + b64.encodeToString(message)))

            // The phone fans a message out to its own other device; the web device reads it.
            val bundle = ask("bundle").split(" ")
            assertEquals("bundle", bundle[0])
            val fanOut = phone.encryptForUser(user, "hello web".toByteArray(), listOf(AddressedBundle("$user/web-1", unb64.decode(bundle[1]))))
            assertEquals(listOf("$user/web-1"), fanOut.report.filter { it.sent }.map { it.address })
            val sent = fanOut.messages.single()
            assertEquals("$user/web-1", sent.peer)
            val plain = ask("decrypt $user/phone " + b64.encodeToString(sent.message))
            assertEquals("plain " + b64.encodeToString("hello web".toByteArray()), plain)
            inp.write("quit\n")
            inp.close()
            assertTrue(proc.waitFor(20, TimeUnit.SECONDS), "the web device did not exit")
            assertEquals(0, proc.exitValue())
        } finally {
            proc.destroyForcibly()
        }
    }
}
