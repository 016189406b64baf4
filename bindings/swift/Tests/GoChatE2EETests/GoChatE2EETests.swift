// Mirrors bindings/kotlin/src/test/kotlin (vectors, conversations, tampering, snapshots,
// retries, threads). Not run on the Linux CI machines (no Swift toolchain): run on a Mac
// with `swift test` (docs/ios.md).
import Foundation
import XCTest
@testable import GoChatE2EE

let now: UInt64 = 1_700_000_000
let key = Data((0..<32).map { UInt8($0) })
let vectorsDir = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("test-vectors")

func loadVector(_ name: String) throws -> [String: Any] {
    let data = try Data(contentsOf: vectorsDir.appendingPathComponent("\(name).json"))
    return try JSONSerialization.jsonObject(with: data) as! [String: Any]
}

extension Data {
    init(hex: String) {
        var bytes = [UInt8]()
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            bytes.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        self.init(bytes)
    }
}

func utf8(_ s: String) -> Data { Data(s.utf8) }
func str(_ d: Data) -> String { String(decoding: d, as: UTF8.self) }
func str(_ r: DecryptResult) -> String { str(r.plaintext) }

/// Alice has a session with Bob and Bob has answered.
func pair() throws -> (Device, Device) {
    let alice = Device(userId: "alice", now: now)
    let bob = Device(userId: "bob", now: now)
    try bob.generateOneTimePrekeys(count: 2)
    try bob.generatePqPrekeys(count: 2, now: now)
    XCTAssertEqual(try alice.initiate(peer: "bob", bundle: try bob.nextBundle()), .new)
    XCTAssertEqual(str(try bob.decrypt(peer: "alice", message: try alice.encrypt(peer: "bob", plaintext: utf8("hello")))), "hello")
    XCTAssertEqual(str(try alice.decrypt(peer: "bob", message: try bob.encrypt(peer: "alice", plaintext: utf8("hi")))), "hi")
    return (alice, bob)
}

func assertThrowsCase(_ body: @autoclosure () throws -> Any, _ matches: (GoChatError) -> Bool,
                      file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        guard let e = error as? GoChatError else { return XCTFail("not a GoChatError: \(error)", file: file, line: line) }
        XCTAssertTrue(matches(e), "unexpected \(e)", file: file, line: line)
    }
}

final class VectorsTests: XCTestCase {
    let names = ["identity_and_bundle", "pqxdh_one_time_prekey", "pqxdh_last_resort", "ratchet_conversation", "padding", "snapshot"]

    func testBundlesVerify() throws {
        for name in names {
            let v = try loadVector(name)
            let out = v["outputs"] as! [String: Any]
            let inputs = v["inputs"] as! [String: Any]
            let bob = inputs["bob"] as! [String: Any]
            let info = try verifyBundle(bundle: Data(hex: out["bundle"] as! String))
            XCTAssertEqual(info.identityKey, Data(hex: out["bob_identity_key"] as! String))
            XCTAssertEqual(info.fingerprint, out["bob_fingerprint"] as! String)
            XCTAssertEqual(try identityFingerprint(identityKey: info.identityKey), out["bob_fingerprint"] as! String)
            XCTAssertEqual(info.signedPrekeyId, 1)
            XCTAssertEqual(info.signedPrekeyCreatedAt, (inputs["now"] as! NSNumber).uint64Value)
            XCTAssertEqual(info.oneTimePrekeyId != nil, (bob["one_time_prekeys"] as! Int) > 0)
            XCTAssertEqual(info.pqPrekeyIsLastResort, (bob["pq_one_time_prekeys"] as! Int) == 0)
        }
    }

    func testEveryFlippedByteOfTheBundleIsRefused() throws {
        let out = try loadVector("identity_and_bundle")["outputs"] as! [String: Any]
        let bundle = Data(hex: out["bundle"] as! String)
        var accepted = [Int]()
        for i in 0..<bundle.count {
            var bad = bundle
            bad[i] ^= 1
            if (try? verifyBundle(bundle: bad)) != nil { accepted.append(i) }
        }
        XCTAssertEqual(accepted, [])
        XCTAssertThrowsError(try verifyBundle(bundle: bundle.dropLast()))
        XCTAssertThrowsError(try verifyBundle(bundle: bundle + Data([0])))
    }

    func testSnapshotImportsWithTheVectorKey() throws {
        let v = try loadVector("snapshot")
        let out = v["outputs"] as! [String: Any]
        let vkey = Data(hex: ((v["inputs"] as! [String: Any])["snapshot"] as! [String: Any])["key"] as! String)
        let snap = Data(hex: out["snapshot"] as! String)
        let bob = try Device.fromSnapshot(key: vkey, snapshot: snap)
        XCTAssertEqual(bob.userId(), "bob")
        XCTAssertEqual(bob.identityKey(), Data(hex: out["bob_identity_key"] as! String))
        XCTAssertEqual(bob.fingerprint(), out["bob_fingerprint"] as! String)
        XCTAssertTrue(bob.hasSession(peer: "alice"))
        let first = Data(hex: (out["messages"] as! [String])[0])
        assertThrowsCase(try bob.decrypt(peer: "alice", message: first)) { if case .Duplicate = $0 { return true }; return false }
        XCTAssertFalse(try bob.encrypt(peer: "alice", plaintext: utf8("still here")).isEmpty)
        let wrong = Data(vkey.map { $0 ^ 0xff })
        assertThrowsCase(try Device.fromSnapshot(key: wrong, snapshot: snap)) { if case .SnapshotUndecryptable = $0 { return true }; return false }
        assertThrowsCase(try Device.fromSnapshot(key: vkey.prefix(31), snapshot: snap)) { if case .InvalidSnapshotKey = $0 { return true }; return false }
    }

    func testVersionAndLimits() {
        XCTAssertFalse(libraryVersion().isEmpty)
        XCTAssertEqual(limits().paddingBlock, 64)
        XCTAssertLessThan(limits().maxPlaintextBytes, limits().maxMessageBytes)
    }
}

final class ConversationTests: XCTestCase {
    func testSessionSetupAndConversation() throws {
        let alice = Device(userId: "alice", now: now)
        let bob = Device(userId: "bob", now: now)
        try bob.generateOneTimePrekeys(count: 1)
        try bob.generatePqPrekeys(count: 1, now: now)
        let bundle = try bob.nextBundle()
        let info = try verifyBundle(bundle: bundle)
        XCTAssertEqual(info.identityKey, bob.identityKey())
        XCTAssertEqual(info.oneTimePrekeyId, 1)
        XCTAssertFalse(alice.hasSession(peer: "bob"))
        XCTAssertNil(alice.pinnedIdentity(peer: "bob"))
        XCTAssertEqual(try alice.initiate(peer: "bob", bundle: bundle), .new)
        XCTAssertEqual(alice.pinnedIdentity(peer: "bob"), bob.identityKey())
        XCTAssertNil(alice.pendingIdentity(peer: "bob"))
        XCTAssertEqual(alice.peerIdentity(peer: "bob"), bob.identityKey())
        XCTAssertEqual(str(try bob.decrypt(peer: "alice", message: try alice.encrypt(peer: "bob", plaintext: utf8("first")))), "first")
        for i in 0..<5 {
            XCTAssertEqual(str(try alice.decrypt(peer: "bob", message: try bob.encrypt(peer: "alice", plaintext: utf8("b\(i)")))), "b\(i)")
            XCTAssertEqual(str(try bob.decrypt(peer: "alice", message: try alice.encrypt(peer: "bob", plaintext: utf8("a\(i)")))), "a\(i)")
        }
    }

    func testOutOfOrderDelivery() throws {
        let (alice, bob) = try pair()
        let msgs = try (0..<10).map { try alice.encrypt(peer: "bob", plaintext: utf8("m\($0)")) }
        for i in [9, 0, 5, 1, 8, 2, 7, 3, 6, 4] {
            XCTAssertEqual(str(try bob.decrypt(peer: "alice", message: msgs[i])), "m\(i)")
        }
        let late = try alice.encrypt(peer: "bob", plaintext: utf8("late"))
        XCTAssertEqual(str(try alice.decrypt(peer: "bob", message: try bob.encrypt(peer: "alice", plaintext: utf8("reply")))), "reply")
        XCTAssertEqual(str(try bob.decrypt(peer: "alice", message: try alice.encrypt(peer: "bob", plaintext: utf8("newer")))), "newer")
        XCTAssertEqual(str(try bob.decrypt(peer: "alice", message: late)), "late")
    }

    func testTamperingAndDuplicatesAreDistinctErrors() throws {
        let (alice, bob) = try pair()
        let m = try alice.encrypt(peer: "bob", plaintext: utf8("secret"))
        for i in [m.count - 1, m.count - 20, m.count / 2] {
            var bad = m
            bad[i] ^= 0x80
            assertThrowsCase(try bob.decrypt(peer: "alice", message: bad)) { if case .AuthenticationFailed = $0 { return true }; return false }
        }
        XCTAssertEqual(str(try bob.decrypt(peer: "alice", message: m)), "secret")
        assertThrowsCase(try bob.decrypt(peer: "alice", message: m)) { if case .Duplicate(_, let retry) = $0 { return !retry }; return false }
        assertThrowsCase(try alice.encrypt(peer: "carol", plaintext: utf8("x"))) { if case .NoSession = $0 { return true }; return false }
    }

    func testSnapshotRoundTrip() throws {
        let (alice, bob) = try pair()
        let snap = try bob.export(key: key)
        let bob2 = try Device.fromSnapshot(key: key, snapshot: snap)
        XCTAssertEqual(bob2.identityKey(), bob.identityKey())
        XCTAssertEqual(str(try bob2.decrypt(peer: "alice", message: try alice.encrypt(peer: "bob", plaintext: utf8("restored")))), "restored")
        assertThrowsCase(try Device.fromSnapshot(key: Data(count: 32), snapshot: snap)) { if case .SnapshotUndecryptable = $0 { return true }; return false }
        let s = try alice.exportSession(peer: "bob", key: key)
        assertThrowsCase(try Device.fromSnapshot(key: key, snapshot: s)) { if case .SnapshotWrongKind = $0 { return true }; return false }
        let alice2 = try Device.fromSnapshot(key: key, snapshot: try alice.export(key: key))
        try alice2.importSession(peer: "bob", key: key, snapshot: s)
        XCTAssertTrue(alice2.hasSession(peer: "bob"))
    }

    func testRetryFlow() throws {
        let (alice, bobBefore) = try pair()
        let backup = try bobBefore.export(key: key)
        for i in 0..<3 {
            _ = try bobBefore.decrypt(peer: "alice", message: try alice.encrypt(peer: "bob", plaintext: utf8("a\(i)")))
            _ = try alice.decrypt(peer: "bob", message: try bobBefore.encrypt(peer: "alice", plaintext: utf8("b\(i)")))
        }
        let bob = try Device.fromSnapshot(key: key, snapshot: backup)
        let failed = try alice.encrypt(peer: "bob", plaintext: utf8("please read me"))
        XCTAssertThrowsError(try bob.decrypt(peer: "alice", message: failed))
        let request = try bob.retryRequest(peer: "alice", recipientIdentity: alice.identityKey(), failedMessage: failed, now: now)
        // Bob's key is not pinned for "carol".
        assertThrowsCase(try alice.handleRetryRequest(peer: "carol", request: request, now: now)) { if case .UntrustedIdentity = $0 { return true }; return false }
        assertThrowsCase(try alice.handleRetryRequest(peer: "bob", request: request, now: now + 2 * 86_400)) { if case .RetryExpired(_, let retry) = $0 { return !retry }; return false }
        XCTAssertEqual(try alice.handleRetryRequest(peer: "bob", request: request, now: now + 60), messageDigest(message: failed))
        XCTAssertEqual(str(try bob.decrypt(peer: "alice", message: try alice.encrypt(peer: "bob", plaintext: utf8("please read me")))), "please read me")
        assertThrowsCase(try alice.handleRetryRequest(peer: "bob", request: request, now: now + 60)) { if case .UnknownMessage = $0 { return true }; return false }
    }

    func testRetryRequestForAnAlreadyUsedCounterIsRefused() throws {
        let (alice, bob) = try pair()
        let m = try alice.encrypt(peer: "bob", plaintext: utf8("read once"))
        XCTAssertEqual(str(try bob.decrypt(peer: "alice", message: m)), "read once")
        assertThrowsCase(try bob.retryRequest(peer: "alice", recipientIdentity: alice.identityKey(), failedMessage: m, now: now)) { if case .Duplicate = $0 { return true }; return false }
    }

    func testRestoredSenderReusedCounterIsCounterReused() throws {
        let (alice, bob) = try pair()
        let backup = try alice.export(key: key) // saved before the next encrypt: the wrong order
        XCTAssertEqual(str(try bob.decrypt(peer: "alice", message: try alice.encrypt(peer: "bob", plaintext: utf8("one")))), "one")
        let alice2 = try Device.fromSnapshot(key: key, snapshot: backup)
        let again = try alice2.encrypt(peer: "bob", plaintext: utf8("one again"))
        assertThrowsCase(try bob.decrypt(peer: "alice", message: again)) { if case .CounterReused(_, let retry) = $0 { return retry }; return false }
    }

    func testChangedIdentityWaitsForApproval() throws {
        let (alice, bob) = try pair()
        XCTAssertEqual(alice.identityPolicy(), .requireApproval)
        let bobNew = Device(userId: "bob", now: now) // Bob reinstalls: new identity, same name
        try bobNew.generateOneTimePrekeys(count: 1)
        assertThrowsCase(try alice.initiate(peer: "bob", bundle: try bobNew.nextBundle())) { if case .IdentityChanged = $0 { return true }; return false }
        XCTAssertEqual(try bobNew.initiate(peer: "alice", bundle: try alice.nextBundle()), .new)
        let got = try alice.decrypt(peer: "bob", message: try bobNew.encrypt(peer: "alice", plaintext: utf8("new phone")))
        XCTAssertEqual(str(got), "new phone")
        XCTAssertEqual(got.senderIdentity, bobNew.identityKey())
        XCTAssertEqual(got.identityEvent, .changed(previous: bob.identityKey(), approved: false, reason: .awaitingApproval))
        XCTAssertEqual(alice.pinnedIdentity(peer: "bob"), bob.identityKey())
        XCTAssertEqual(alice.pendingIdentity(peer: "bob"), bobNew.identityKey())
        assertThrowsCase(try alice.encrypt(peer: "bob", plaintext: utf8("to whom?"))) { if case .IdentityChanged = $0 { return true }; return false }
        try alice.approveIdentity(peer: "bob", identityKey: bobNew.identityKey())
        XCTAssertEqual(alice.pinnedIdentity(peer: "bob"), bobNew.identityKey())
        XCTAssertNil(alice.pendingIdentity(peer: "bob"))
        let back = try bobNew.decrypt(peer: "alice", message: try alice.encrypt(peer: "bob", plaintext: utf8("welcome back")))
        XCTAssertEqual(str(back), "welcome back")
        XCTAssertEqual(back.identityEvent, .same)
    }

    func testNotifyPolicyAcceptsAChangedIdentity() throws {
        let (alice, bob) = try pair()
        try alice.setIdentityPolicy(policy: .notify)
        XCTAssertEqual(alice.identityPolicy(), .notify)
        let bobNew = Device(userId: "bob", now: now)
        _ = try bobNew.initiate(peer: "alice", bundle: try alice.nextBundle())
        let got = try alice.decrypt(peer: "bob", message: try bobNew.encrypt(peer: "alice", plaintext: utf8("new phone")))
        XCTAssertEqual(got.identityEvent, .changed(previous: bob.identityKey(), approved: true, reason: .notify))
        XCTAssertEqual(alice.pinnedIdentity(peer: "bob"), bobNew.identityKey())
        XCTAssertNil(alice.pendingIdentity(peer: "bob"))
        XCTAssertEqual(str(try bobNew.decrypt(peer: "alice", message: try alice.encrypt(peer: "bob", plaintext: utf8("hello new bob")))), "hello new bob")
    }
}

final class ThreadsTests: XCTestCase {
    func testEightThreadsEncryptOnOneDevice() throws {
        let (alice, bob) = try pair()
        let threads = 8, perThread = 50
        let lock = NSLock()
        var sent = [(Data, String)]()
        var failures = 0
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in 0..<perThread {
                let p = "thread \(t) message \(i)"
                do {
                    let c = try alice.encrypt(peer: "bob", plaintext: utf8(p))
                    lock.lock(); sent.append((c, p)); lock.unlock()
                } catch {
                    lock.lock(); failures += 1; lock.unlock()
                }
            }
        }
        XCTAssertEqual(failures, 0)
        XCTAssertEqual(sent.count, threads * perThread)
        var last = [Int](repeating: -1, count: threads)
        for (c, p) in sent {
            XCTAssertEqual(str(try bob.decrypt(peer: "alice", message: c)), p)
            let parts = p.split(separator: " ")
            let t = Int(parts[1])!, i = Int(parts[3])!
            XCTAssertLessThan(last[t], i)
            last[t] = i
        }
        XCTAssertEqual(last, [Int](repeating: perThread - 1, count: threads))
    }
}
