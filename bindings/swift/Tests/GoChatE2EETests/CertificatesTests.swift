// Mirrors bindings/kotlin/src/test/kotlin/gov/gochat/e2ee/CertificatesTest.kt.
// Not run on the Linux CI machines (no Swift toolchain): run on a Mac with `swift test`
// (docs/ios.md).
import Foundation
import XCTest
@testable import GoChatE2EE

final class CertificatesTests: XCTestCase {
    let t: UInt64 = 1_800_000_000
    let peer = "bob@mof.gov.my/laptop"
    let aliceName = "alice@mof.gov.my/phone"

    func pki() throws -> (RootKey, AgencyKey, Data) {
        let root = try RootKey.fromSeed(seed: Data(repeating: 1, count: 32))
        let agency = try AgencyKey.fromSeed(seed: Data(repeating: 2, count: 32))
        let cert = try root.certifyAgency(serial: 7, agencyKey: agency.publicKey(), name: "Ministry of Finance",
                                          domains: ["mof.gov.my"], notBefore: t - 1000, notAfter: t + 1000)
        return (root, agency, cert)
    }

    func chain(_ agency: AgencyKey, _ agencyCert: Data, _ address: String, _ identity: Data, serial: UInt64 = 42) throws -> Data {
        try certificateChain(deviceCertificate: agency.certifyDevice(serial: serial, address: address, identityKey: identity,
                                                                     notBefore: t - 100, notAfter: t + 100),
                             agencyCertificate: agencyCert)
    }

    func device(_ user: String, _ root: RootKey) throws -> Device {
        let d = Device(userId: user, now: t)
        try d.generateOneTimePrekeys(count: 2)
        try d.generatePqPrekeys(count: 2, now: t)
        try d.setTrustRoots(roots: [root.publicKey()])
        return d
    }

    func testIssueVerifyAndEveryFailureReason() throws {
        let (root, agency, agencyCert) = try pki()
        let bob = try device("bob@mof.gov.my", root)
        let roots = [root.publicKey()]
        let good = try chain(agency, agencyCert, peer, bob.identityKey())
        let v = try verifyCertificateChain(chain: good, roots: roots, revocationLists: [], now: t)
        XCTAssertEqual(v.peer(), peer)
        XCTAssertEqual(v.identityKey(), bob.identityKey())
        XCTAssertEqual(v.agencyName(), "Ministry of Finance")
        XCTAssertEqual(v.serial(), 42)
        assertThrowsCase(try verifyCertificateChain(chain: good, roots: roots, revocationLists: [], now: t + 100)) {
            if case .CertificateExpired = $0 { return true }; return false }
        assertThrowsCase(try verifyCertificateChain(chain: good, roots: roots, revocationLists: [], now: t - 101)) {
            if case .CertificateNotYetValid = $0 { return true }; return false }
        let wrong = try chain(agency, agencyCert, "bob@pmo.gov.my/laptop", bob.identityKey())
        assertThrowsCase(try verifyCertificateChain(chain: wrong, roots: roots, revocationLists: [], now: t)) {
            if case .WrongDomain = $0 { return true }; return false }
        let revoked = try agency.revocationList(seq: 1, issuedAt: t, serials: [42])
        let entry = RevocationEntry(list: revoked, agencyCertificate: agencyCert)
        assertThrowsCase(try verifyCertificateChain(chain: good, roots: roots, revocationLists: [entry], now: t)) {
            if case .CertificateRevoked = $0 { return true }; return false }
        let other = try RootKey.fromSeed(seed: Data(repeating: 9, count: 32))
        assertThrowsCase(try verifyCertificateChain(chain: good, roots: [other.publicKey()], revocationLists: [], now: t)) {
            if case .UnknownRoot = $0 { return true }; return false }
        var bad = good
        bad[bad.endIndex - 1] ^= 1
        assertThrowsCase(try verifyCertificateChain(chain: bad, roots: roots, revocationLists: [], now: t)) {
            if case .BadSignature = $0 { return true }; return false }
        assertThrowsCase(try verifyCertificateChain(chain: good.dropLast(), roots: roots, revocationLists: [], now: t)) {
            if case .Malformed = $0 { return true }; return false }
        let newer = try agency.revocationList(seq: 2, issuedAt: t, serials: [5])
        XCTAssertEqual(try bob.applyRevocationList(list: newer, agencyCertificate: agencyCert, now: t), .applied)
        XCTAssertEqual(try bob.applyRevocationList(list: newer, agencyCertificate: agencyCert, now: t), .unchanged)
        assertThrowsCase(try bob.applyRevocationList(list: revoked, agencyCertificate: agencyCert, now: t)) {
            if case .StaleRevocationList = $0 { return true }; return false }
    }

    func testCertifiedSessionStartAndIdentityChanges() throws {
        let (root, agency, agencyCert) = try pki()
        let alice = try device("alice@mof.gov.my", root)
        let bob = try device("bob@mof.gov.my", root)
        try alice.setRequireCertificate(require: true)
        try alice.setIdentityPolicy(policy: .certified)
        let bundle = try bob.nextBundle()
        assertThrowsCase(try alice.initiate(peer: peer, bundle: bundle)) {
            if case .CertificateRequired = $0 { return true }; return false }
        let eve = try device("eve@mof.gov.my", root)
        let wrong = try alice.verifyDevice(chain: chain(agency, agencyCert, peer, eve.identityKey()), now: t)
        assertThrowsCase(try alice.initiateCertified(peer: peer, bundle: bundle, certificate: wrong)) {
            if case .CertificateMismatch = $0 { return true }; return false }
        let proof = try alice.verifyDevice(chain: chain(agency, agencyCert, peer, bob.identityKey()), now: t)
        XCTAssertEqual(try alice.initiateCertified(peer: peer, bundle: bundle, certificate: proof), .new)
        let m = try alice.encrypt(peer: peer, plaintext: Data("hi".utf8))
        XCTAssertEqual(try bob.decrypt(peer: aliceName, message: m).plaintext, Data("hi".utf8))
        let bob2 = try device("bob@mof.gov.my", root)
        _ = try bob2.initiate(peer: aliceName, bundle: alice.nextBundle())
        let m2 = try bob2.encrypt(peer: aliceName, plaintext: Data("new phone".utf8))
        // With certificates required, the uncertified new session is refused outright.
        assertThrowsCase(try alice.decrypt(peer: peer, message: m2)) {
            if case .CertificateRequired = $0 { return true }; return false }
        try alice.setRequireCertificate(require: false)
        let got = try alice.decrypt(peer: peer, message: m2)
        XCTAssertEqual(got.identityEvent, .changed(previous: bob.identityKey(), approved: false, reason: .uncertified))
        assertThrowsCase(try alice.encrypt(peer: peer, plaintext: Data("x".utf8))) {
            if case .IdentityChanged = $0 { return true }; return false }
        try alice.approveCertified(peer: peer, certificate: alice.verifyDevice(
            chain: chain(agency, agencyCert, peer, bob2.identityKey(), serial: 43), now: t))
        _ = try alice.encrypt(peer: peer, plaintext: Data("x".utf8))
        let bob3 = try device("bob@mof.gov.my", root)
        _ = try bob3.initiate(peer: aliceName, bundle: alice.nextBundle())
        let proof3 = try alice.verifyDevice(chain: chain(agency, agencyCert, peer, bob3.identityKey(), serial: 44), now: t)
        let got3 = try alice.decryptCertified(peer: peer, message: bob3.encrypt(peer: aliceName, plaintext: Data("third".utf8)),
                                              certificate: proof3)
        XCTAssertEqual(got3.identityEvent, .changed(previous: bob2.identityKey(), approved: true, reason: .certified))
    }
}
