// Mirrors bindings/kotlin/src/test/kotlin/gov/gochat/e2ee/ProvisioningTest.kt (the unit
// test; the Kotlin-JS end-to-end link runs on the JVM only).
// Not run on the Linux CI machines (no Swift toolchain): run on a Mac with `swift test`
// (docs/ios.md).
import Foundation
import XCTest
@testable import GoChatE2EE

final class ProvisioningTests: XCTestCase {
    private let user = "aminah@mof.gov.my"

    private func payload(_ master: Device) -> LinkPayload {
        let key = master.identityKey()
        return LinkPayload(user: user, masterPublic: key.subdata(in: (key.startIndex + 2)..<(key.startIndex + 34)),
                           endorsement: Data(repeating: 0x56, count: 100), deviceList: Data(repeating: 0x55, count: 200))
    }

    func testANewDeviceOpensOneMessageAndFailuresChangeNothing() throws {
        let web = Device(userId: user, now: now)
        let phone = Device(userId: user, now: now)
        let secret = try ProvisioningSecret(identity: web.identityKey(), deviceId: "web-1", now: now)
        let offer = secret.offer()
        XCTAssertLessThanOrEqual(offer.count, 173)
        let info = try inspectProvisioningOffer(offer: offer)
        XCTAssertEqual(info.deviceId, "web-1")
        XCTAssertEqual(info.createdAt, now)
        XCTAssertEqual(info.identity, web.identityKey())
        let p = payload(phone)
        assertThrowsCase(try provisioningSeal(offer: offer, payload: p, now: now + 601)) {
            if case .ProvisioningExpired = $0 { return true }; return false
        }
        var bad = p
        bad.masterPublic = Data(count: 32)
        assertThrowsCase(try provisioningSeal(offer: offer, payload: bad, now: now)) {
            if case .InvalidKey = $0 { return true }; return false
        }
        let message = try provisioningSeal(offer: offer, payload: p, now: now + 10)
        var tampered = message
        tampered[tampered.startIndex + 40] ^= 1
        assertThrowsCase(try secret.open(message: tampered)) {
            if case .AuthenticationFailed = $0 { return true }; return false
        }
        XCTAssertFalse(secret.isUsed())
        XCTAssertEqual(try secret.open(message: message), p)
        XCTAssertTrue(secret.isUsed())
        assertThrowsCase(try secret.open(message: message)) {
            if case .ProvisioningUsed = $0 { return true }; return false
        }
        assertThrowsCase(try ProvisioningSecret(identity: web.identityKey(), deviceId: "a/b", now: now)) {
            if case .Malformed = $0 { return true }; return false
        }
    }

    func testAPrimaryLinksADeviceThatCompletesTheLink() throws {
        let phone = Device(userId: "\(user)/phone", now: now)
        let web = Device(userId: user, now: now)
        let secret = try ProvisioningSecret(identity: web.identityKey(), deviceId: "web-1", now: now)
        assertThrowsCase(try phone.linkDevice(offer: secret.offer(), now: now)) {
            if case .NotPrimary = $0 { return true }; return false
        }
        _ = try phone.createMasterKey(deviceId: "phone", now: now)
        assertThrowsCase(try phone.linkDevice(offer: secret.offer(), now: now + 601)) {
            if case .ProvisioningExpired = $0 { return true }; return false
        }
        XCTAssertEqual(phone.ownDeviceList()?.version, 1)
        let link = try phone.linkDevice(offer: secret.offer(), now: now + 5)
        XCTAssertEqual(link.deviceList.devices.map { $0.deviceId }, ["phone", "web-1"])
        let stranger = Device(userId: user, now: now)
        assertThrowsCase(try stranger.completeLink(secret: secret, message: link.message)) {
            if case .DeviceListMismatch = $0 { return true }; return false
        }
        XCTAssertFalse(secret.isUsed())
        XCTAssertNil(web.ownDeviceList())
        let adopted = try web.completeLink(secret: secret, message: link.message)
        XCTAssertEqual(adopted.version, 2)
        XCTAssertEqual(adopted.bytes, link.deviceList.bytes)
        XCTAssertEqual(web.ownAddress(), "\(user)/web-1")
        XCTAssertFalse(web.isPrimary())
        assertThrowsCase(try web.completeLink(secret: secret, message: link.message)) {
            if case .ProvisioningUsed = $0 { return true }; return false
        }
    }
}
