// Mirrors bindings/kotlin/src/test/kotlin/gov/gochat/e2ee/DevicesTest.kt.
// Not run on the Linux CI machines (no Swift toolchain): run on a Mac with `swift test`
// (docs/ios.md).
import Foundation
import XCTest
@testable import GoChatE2EE

final class DevicesTests: XCTestCase {
    private let bob = "bob@mof.gov.my"

    func testListsEndorsementFanOutAndRemoval() throws {
        let phone = Device(userId: "\(bob)/phone", now: now)
        let laptop = Device(userId: "\(bob)/laptop", now: now)
        let ana = Device(userId: "ana@mof.gov.my/phone", now: now)
        let v1 = try phone.createMasterKey(deviceId: "phone", now: now)
        XCTAssertTrue(phone.isPrimary())
        let endorsed = try phone.endorseDevice(deviceId: "laptop", identityKey: laptop.identityKey(), now: now)
        let info = try decodeDeviceEndorsement(bytes: endorsed.endorsement)
        XCTAssertEqual(info.deviceId, "laptop")
        XCTAssertEqual(info.identityKey, laptop.identityKey())
        try laptop.adoptOwnDeviceList(deviceList: endorsed.deviceList, endorsement: endorsed.endorsement)
        XCTAssertFalse(laptop.isPrimary())
        XCTAssertEqual(laptop.ownDeviceList()?.version, 2)

        guard case .new = try ana.processDeviceList(deviceList: v1, now: now).event else { return XCTFail("new") }
        guard case let .updated(added, _) = try ana.processDeviceList(deviceList: endorsed.deviceList, now: now).event
        else { return XCTFail("updated") }
        XCTAssertEqual(added.map { $0.deviceId }, ["laptop"])
        assertThrowsCase(try ana.processDeviceList(deviceList: v1, now: now)) {
            if case .StaleDeviceList = $0 { return true }; return false
        }

        let bundles = [
            AddressedBundle(address: "\(bob)/phone", bundle: try phone.nextBundle()),
            AddressedBundle(address: "\(bob)/laptop", bundle: try laptop.nextBundle()),
        ]
        let out = try ana.encryptForUser(user: bob, plaintext: Data("to both".utf8), bundles: bundles)
        XCTAssertEqual(out.report.filter { $0.sent && $0.newSession }.count, 2)

        let removal = try phone.removeLinkedDevice(deviceId: "laptop", now: now)
        XCTAssertEqual(try decodeDeviceList(bytes: removal.deviceList).version, 3)
        _ = try ana.processDeviceList(deviceList: removal.deviceList, now: now)
        let after = try ana.encryptForUser(user: bob, plaintext: Data("after".utf8), bundles: [])
        XCTAssertEqual(after.report.map { $0.address }, ["\(bob)/phone"])
    }

    func testAForeignMasterKeyIsSurfacedAndBlocksUntilApproved() throws {
        let phone = Device(userId: "\(bob)/phone", now: now)
        let impostor = Device(userId: "\(bob)/phone", now: now)
        let ana = Device(userId: "ana@mof.gov.my/phone", now: now)
        _ = try ana.processDeviceList(deviceList: try phone.createMasterKey(deviceId: "phone", now: now), now: now)
        let foreign = try impostor.createMasterKey(deviceId: "phone", now: now)
        guard case let .masterKeyChanged(_, new) = try ana.processDeviceList(deviceList: foreign, now: now).event
        else { return XCTFail("master key changed") }
        let out = try ana.encryptForUser(user: bob, plaintext: Data("x".utf8), bundles: [])
        XCTAssertEqual(out.report.map { $0.missing }, ["MasterKeyChanged"])
        guard case .updated = try ana.approveMasterKey(user: bob, masterPublicKey: new, now: now).event
        else { return XCTFail("approved") }
    }
}
