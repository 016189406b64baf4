// Mirrors bindings/kotlin/src/test/kotlin/gov/gochat/e2ee/SafetyNumberTest.kt.
// Not run on the Linux CI machines (no Swift toolchain): run on a Mac with `swift test`
// (docs/ios.md).
import Foundation
import XCTest
@testable import GoChatE2EE

final class SafetyNumberTests: XCTestCase {
    func testBothSidesSeeTheSameNumberAndAScanMatchesOnlyTheRealIdentities() throws {
        let alice = Device(userId: "alice@agency.gov.my", now: now)
        let bob = Device(userId: "bob@agency.gov.my", now: now)
        let mallory = Device(userId: "bob@agency.gov.my", now: now)
        let a = try SafetyNumber(localId: "alice@agency.gov.my", localIdentity: alice.identityKey(),
                                 remoteId: "bob@agency.gov.my", remoteIdentity: bob.identityKey())
        let b = try SafetyNumber(localId: "bob@agency.gov.my", localIdentity: bob.identityKey(),
                                 remoteId: "alice@agency.gov.my", remoteIdentity: alice.identityKey())
        XCTAssertEqual(a.digits(), b.digits())
        XCTAssertEqual(a.digits().count, 60)
        XCTAssertEqual(a.grouped().split(separator: " ").count, 12)
        XCTAssertEqual(a.scannable().count, 66)
        XCTAssertEqual(try a.compareScanned(scanned: b.scannable()), .match)
        XCTAssertEqual(try a.compareScanned(scanned: a.scannable()), .mismatch)
        let m = try SafetyNumber(localId: "alice@agency.gov.my", localIdentity: alice.identityKey(),
                                 remoteId: "bob@agency.gov.my", remoteIdentity: mallory.identityKey())
        XCTAssertNotEqual(m.digits(), a.digits())
        XCTAssertEqual(try m.compareScanned(scanned: b.scannable()), .mismatch)
        var v2 = b.scannable()
        v2[v2.startIndex + 1] = 2
        XCTAssertEqual(try a.compareScanned(scanned: v2), .versionMismatch(theirs: 2))
        assertThrowsCase(try a.compareScanned(scanned: Data())) { if case .Malformed = $0 { return true }; return false }
        assertThrowsCase(try a.compareScanned(scanned: Data(repeating: 0x51, count: 66))) {
            if case .WrongMessageType = $0 { return true }; return false
        }
    }
}
