package gov.gochat.e2ee

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Agency-certified identities (protocol 15.4-15.10): issue, verify, every failure reason, certified sessions and changes. */
class CertificatesTest {
    private val now = 1_800_000_000uL
    private val root = RootKey.fromSeed(ByteArray(32) { 1 })
    private val agency = AgencyKey.fromSeed(ByteArray(32) { 2 })
    private val agencyCert =
        root.certifyAgency(7uL, agency.publicKey(), "Ministry of Finance", listOf("mof.gov.my"), now - 1000uL, now + 1000uL)

    private fun chain(address: String, identity: ByteArray, serial: ULong = 42uL, nb: ULong = now - 100uL, na: ULong = now + 100uL) =
        certificateChain(agency.certifyDevice(serial, address, identity, nb, na), agencyCert)

    private fun device(user: String): Device = Device(user, now).also {
        it.generateOneTimePrekeys(2u)
        it.generatePqPrekeys(2u, now)
        it.setTrustRoots(listOf(root.publicKey()))
    }

    @Test
    fun issueVerifyAndEveryFailureReason() {
        val bob = device("bob@mof.gov.my")
        val roots = listOf(root.publicKey())
        val v = verifyCertificateChain(chain("bob@mof.gov.my/laptop", bob.identityKey()), roots, listOf(), now)
        assertEquals("bob@mof.gov.my/laptop", v.peer())
        assertTrue(v.identityKey().contentEquals(bob.identityKey()))
        assertEquals("Ministry of Finance", v.agencyName())
        assertEquals(42uL, v.serial())
        val good = chain("bob@mof.gov.my/laptop", bob.identityKey())
        assertThrows<GoChatException.CertificateExpired> { verifyCertificateChain(good, roots, listOf(), now + 100uL) }
        assertThrows<GoChatException.CertificateNotYetValid> { verifyCertificateChain(good, roots, listOf(), now - 101uL) }
        assertThrows<GoChatException.WrongDomain> {
            verifyCertificateChain(chain("bob@pmo.gov.my/laptop", bob.identityKey()), roots, listOf(), now)
        }
        val list = agency.revocationList(1uL, now, listOf(42uL))
        assertThrows<GoChatException.CertificateRevoked> {
            verifyCertificateChain(good, roots, listOf(RevocationEntry(list, agencyCert)), now)
        }
        assertThrows<GoChatException.UnknownRoot> {
            verifyCertificateChain(good, listOf(RootKey.fromSeed(ByteArray(32) { 9 }).publicKey()), listOf(), now)
        }
        val bad = good.copyOf().also { it[it.size - 1] = (it[it.size - 1].toInt() xor 1).toByte() }
        assertThrows<GoChatException.BadSignature> { verifyCertificateChain(bad, roots, listOf(), now) }
        assertThrows<GoChatException.Malformed> { verifyCertificateChain(good.copyOf(good.size - 1), roots, listOf(), now) }
        // Held lists on a device: applied once, then unchanged; an older one is stale.
        assertEquals(RevocationUpdate.APPLIED, bob.applyRevocationList(agency.revocationList(2uL, now, listOf(5uL)), agencyCert, now))
        assertEquals(RevocationUpdate.UNCHANGED, bob.applyRevocationList(agency.revocationList(2uL, now, listOf(5uL)), agencyCert, now))
        assertThrows<GoChatException.StaleRevocationList> { bob.applyRevocationList(list, agencyCert, now) }
    }

    @Test
    fun certifiedSessionStartAndIdentityChanges() {
        val alice = device("alice@mof.gov.my")
        val bob = device("bob@mof.gov.my")
        alice.setRequireCertificate(true)
        alice.setIdentityPolicy(IdentityPolicy.CERTIFIED)
        val peer = "bob@mof.gov.my/laptop"
        val bundle = bob.nextBundle()
        assertThrows<GoChatException.CertificateRequired> { alice.initiate(peer, bundle) }
        val eve = device("eve@mof.gov.my")
        val wrong = alice.verifyDevice(chain(peer, eve.identityKey()), now)
        assertThrows<GoChatException.CertificateMismatch> { alice.initiateCertified(peer, bundle, wrong) }
        val proof = alice.verifyDevice(chain(peer, bob.identityKey()), now)
        assertEquals(IdentityEvent.New, alice.initiateCertified(peer, bundle, proof))
        val m = alice.encrypt(peer, "hi".toByteArray())
        assertEquals("hi", String(bob.decrypt("alice@mof.gov.my/phone", m).plaintext))
        // Bob reinstalls: an uncertified change is blocked, a certified one approved.
        val bob2 = device("bob@mof.gov.my")
        bob2.initiate("alice@mof.gov.my/phone", alice.nextBundle())
        val m2 = bob2.encrypt("alice@mof.gov.my/phone", "new phone".toByteArray())
        // With certificates required, the uncertified new session is refused outright.
        assertThrows<GoChatException.CertificateRequired> { alice.decrypt(peer, m2) }
        alice.setRequireCertificate(false)
        val got = alice.decrypt(peer, m2)
        val ev = got.identityEvent as IdentityEvent.Changed
        assertEquals(false, ev.approved)
        assertEquals(ChangeReason.UNCERTIFIED, ev.reason)
        assertThrows<GoChatException.IdentityChanged> { alice.encrypt(peer, "x".toByteArray()) }
        alice.approveCertified(peer, alice.verifyDevice(chain(peer, bob2.identityKey(), 43uL), now))
        alice.encrypt(peer, "x".toByteArray())
        // A third install, with its certificate at once: approved automatically.
        val bob3 = device("bob@mof.gov.my")
        bob3.initiate("alice@mof.gov.my/phone", alice.nextBundle())
        val m3 = bob3.encrypt("alice@mof.gov.my/phone", "third".toByteArray())
        val got3 = alice.decryptCertified(peer, m3, alice.verifyDevice(chain(peer, bob3.identityKey(), 44uL), now))
        val ev3 = got3.identityEvent as IdentityEvent.Changed
        assertEquals(true, ev3.approved)
        assertEquals(ChangeReason.CERTIFIED, ev3.reason)
    }
}
