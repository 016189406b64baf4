// Mirrors bindings/kotlin/src/test/kotlin/gov/gochat/e2ee/GroupsTest.kt and ChannelsTest.kt.
// Not run on the Linux CI machines (no Swift toolchain): run on a Mac with `swift test`
// (docs/ios.md).
import Foundation
import XCTest
@testable import GoChatE2EE

/// Devices by name with pairwise sessions, and the app's delivery of key messages.
final class Net {
    var d = [String: Device]()

    init(_ names: [String], sessions: Bool = true) throws {
        for n in names { try add(n) }
        if sessions {
            for i in names.indices { for j in names.indices where j > i { try connect(names[i], names[j]) } }
        }
    }

    @discardableResult
    func add(_ name: String) throws -> Device {
        let dev = Device(userId: name, now: now)
        try dev.generateOneTimePrekeys(count: 8)
        try dev.generatePqPrekeys(count: 8, now: now)
        d[name] = dev
        return dev
    }

    subscript(_ name: String) -> Device { d[name]! }

    /// A pairwise session both ways between `a` and `b` (identities pinned).
    func connect(_ a: String, _ b: String) throws {
        _ = try self[a].initiate(peer: b, bundle: try self[b].nextBundle())
        XCTAssertEqual(str(try self[b].decrypt(peer: a, message: try self[a].encrypt(peer: b, plaintext: utf8("hi")))), "hi")
        XCTAssertEqual(str(try self[a].decrypt(peer: b, message: try self[b].encrypt(peer: a, plaintext: utf8("hi")))), "hi")
    }

    func member(_ name: String, admin: Bool = false) -> GroupMemberRecord {
        GroupMemberRecord(name: name, identityKey: self[name].identityKey(), admin: admin)
    }

    /// Delivers `sender`'s pairwise control messages through `receiveControl`.
    @discardableResult
    func deliver(_ sender: String, _ outgoing: [OutgoingRecord]) throws -> [String: ControlReceived] {
        var got = [String: ControlReceived]()
        for o in outgoing { got[o.peer] = try self[o.peer].receiveControl(peer: sender, message: o.message) }
        return got
    }

    /// `creator` makes a group with `others`; everyone joins and gets every key.
    func group(_ creator: String, _ others: [String]) throws -> Data {
        let ch = try self[creator].groupCreate(others: others.map { member($0) }, now: now)
        XCTAssertTrue(ch.withheld.isEmpty)
        var joined = [String: GroupChangeRecord]()
        for n in others { joined[n] = try self[n].groupJoin(welcome: ch.welcome!, now: now) }
        try deliver(creator, ch.outgoing)
        for (n, j) in joined { try deliver(n, j.outgoing) }
        return ch.groupId
    }
}

func announcement(_ r: ChannelReceivedRecord, file: StaticString = #filePath, line: UInt = #line) -> AnnouncementRecord? {
    if case .announcement(let a) = r { return a }
    XCTFail("not an announcement: \(r)", file: file, line: line)
    return nil
}

final class GroupsTests: XCTestCase {
    func testThreeMembersReadEachOtherBothWays() throws {
        let net = try Net(["ana", "ben", "cai"])
        let ch = try net["ana"].groupCreate(others: [net.member("ben"), net.member("cai")], now: now)
        XCTAssertEqual(ch.groupId.count, 32)
        XCTAssertEqual(ch.epoch, 0)
        XCTAssertNil(ch.commit)
        XCTAssertEqual(ch.added.sorted(), ["ben", "cai"])
        let toBen = ch.outgoing.first { $0.peer == "ben" }!
        // A key that arrives before the welcome is refused, and can be retried.
        assertThrowsCase(try net["ben"].groupReceive(peer: "ana", message: toBen.message)) { if case .UnknownGroup = $0 { return true }; return false }
        var joined = [String: GroupChangeRecord]()
        for n in ["ben", "cai"] { joined[n] = try net[n].groupJoin(welcome: ch.welcome!, now: now) }
        let got = try net["ben"].groupReceive(peer: "ana", message: toBen.message)
        XCTAssertEqual(got.groupId, ch.groupId)
        XCTAssertEqual(got.sender, "ana")
        XCTAssertTrue(got.fresh)
        XCTAssertEqual(got.identityEvent, .same)
        try net.deliver("ana", ch.outgoing.filter { $0.peer != "ben" })
        for (n, j) in joined { try net.deliver(n, j.outgoing) }
        for sender in ["ana", "ben", "cai"] {
            let sent = try net[sender].groupEncrypt(groupId: ch.groupId, plaintext: utf8("hello from \(sender)"), now: now)
            XCTAssertFalse(sent.rotated)
            for reader in ["ana", "ben", "cai"] where reader != sender {
                let p = try net[reader].groupDecrypt(sender: sender, message: sent.message)
                XCTAssertEqual(str(p.plaintext), "hello from \(sender)")
                XCTAssertEqual(p.sender, sender)
                XCTAssertEqual(p.senderIdentity, net[sender].identityKey())
            }
        }
        let infos = try ["ana", "ben", "cai"].map { try net[$0].groupInfo(groupId: ch.groupId) }
        XCTAssertEqual(infos[0].members.map { $0.name }, ["ana", "ben", "cai"])
        XCTAssertEqual(infos[0].members.map { $0.admin }, [true, false, false])
        XCTAssertTrue(infos.allSatisfy { $0.active && $0.epoch == 0 && $0.ownKeyId != nil })
        XCTAssertTrue(infos.allSatisfy { $0.membershipHash == infos[0].membershipHash })
        XCTAssertEqual(net["cai"].groupIds(), [ch.groupId])
    }

    func testDuplicateAndTamperedMessagesAreRefusedAndChangeNothing() throws {
        let net = try Net(["ana", "ben", "cai"])
        let gid = try net.group("ana", ["ben", "cai"])
        let m = try net["ana"].groupEncrypt(groupId: gid, plaintext: utf8("original"), now: now).message
        let ben = net["ben"]
        let before = ben.stateLen()
        for i in [m.count / 2, m.count - 70, m.count - 1] {
            var bad = m
            bad[i] ^= 1
            assertThrowsCase(try ben.groupDecrypt(sender: "ana", message: bad)) { if case .BadSignature = $0 { return true }; return false }
            XCTAssertEqual(ben.stateLen(), before)
        }
        // The server names the wrong sender: Cai holds no key with that id.
        assertThrowsCase(try ben.groupDecrypt(sender: "cai", message: m)) { if case .MissingSenderKey = $0 { return true }; return false }
        assertThrowsCase(try ben.groupDecrypt(sender: "nobody", message: m)) { if case .NotMember = $0 { return true }; return false }
        XCTAssertEqual(ben.stateLen(), before)
        XCTAssertEqual(str(try ben.groupDecrypt(sender: "ana", message: m).plaintext), "original")
        let after = ben.stateLen()
        assertThrowsCase(try ben.groupDecrypt(sender: "ana", message: m)) { if case .Duplicate(_, let retry) = $0 { return !retry }; return false }
        XCTAssertEqual(ben.stateLen(), after)
    }

    func testRemovedMemberCannotReadNewMessages() throws {
        let net = try Net(["ana", "ben", "cai"])
        let gid = try net.group("ana", ["ben", "cai"])
        _ = try net["cai"].groupDecrypt(sender: "ana", message: try net["ana"].groupEncrypt(groupId: gid, plaintext: utf8("warm up"), now: now).message)
        let rm = try net["ana"].groupRemove(groupId: gid, names: ["cai"], now: now)
        XCTAssertEqual(rm.epoch, 1)
        XCTAssertEqual(rm.removed, ["cai"])
        XCTAssertEqual(rm.outgoing.map { $0.peer }, ["ben"]) // nothing for the removed device
        let benChange = try net["ben"].groupProcessCommit(commit: rm.commit!, now: now)
        XCTAssertEqual(benChange.outgoing.map { $0.peer }, ["ana"])
        XCTAssertTrue(try net["cai"].groupProcessCommit(commit: rm.commit!, now: now).outgoing.isEmpty)
        XCTAssertFalse(try net["cai"].groupInfo(groupId: gid).active)
        try net.deliver("ana", rm.outgoing)
        try net.deliver("ben", benChange.outgoing)
        for (s, r) in [("ana", "ben"), ("ben", "ana")] {
            let m = try net[s].groupEncrypt(groupId: gid, plaintext: utf8("after the removal"), now: now).message
            XCTAssertEqual(str(try net[r].groupDecrypt(sender: s, message: m).plaintext), "after the removal")
            assertThrowsCase(try net["cai"].groupDecrypt(sender: s, message: m)) { if case .NotMember = $0 { return true }; return false }
        }
        assertThrowsCase(try net["cai"].groupEncrypt(groupId: gid, plaintext: utf8("still here?"), now: now)) { if case .NotMember = $0 { return true }; return false }
        XCTAssertTrue(try net["cai"].groupForget(groupId: gid))
        XCTAssertFalse(try net["cai"].groupForget(groupId: gid))
    }

    func testMissingSenderKeyIsRetryableAfterTheKeyArrives() throws {
        let net = try Net(["ana", "ben", "cai"])
        let ch = try net["ana"].groupCreate(others: [net.member("ben"), net.member("cai")], now: now)
        let early = try net["ana"].groupEncrypt(groupId: ch.groupId, plaintext: utf8("early"), now: now).message
        let ben = net["ben"]
        _ = try ben.groupJoin(welcome: ch.welcome!, now: now)
        let before = ben.stateLen()
        assertThrowsCase(try ben.groupDecrypt(sender: "ana", message: early)) { if case .MissingSenderKey = $0 { return true }; return false }
        XCTAssertEqual(ben.stateLen(), before)
        let got = try net.deliver("ana", ch.outgoing.filter { $0.peer == "ben" })["ben"]!
        guard case .senderKey(let received) = got else { return XCTFail("not a sender key: \(got)") }
        XCTAssertTrue(received.fresh)
        XCTAssertEqual(str(try ben.groupDecrypt(sender: "ana", message: early).plaintext), "early")
    }

    func testWithheldMemberGetsTheKeyOnceActedOn() throws {
        let net = try Net(["ana", "ben", "dan"], sessions: false)
        try net.connect("ana", "ben")
        let ch = try net["ana"].groupCreate(others: [net.member("ben"), net.member("dan")], now: now)
        XCTAssertEqual(ch.outgoing.map { $0.peer }, ["ben"])
        XCTAssertEqual(ch.withheld, [WithheldRecord(peer: "dan", reason: .noSession)])
        try net.connect("ana", "dan")
        _ = try net["dan"].groupJoin(welcome: ch.welcome!, now: now)
        let resent = try net["ana"].groupResendKey(groupId: ch.groupId, peer: "dan")
        XCTAssertEqual(resent.outgoing.map { $0.peer }, ["dan"])
        try net.deliver("ana", resent.outgoing)
        let m = try net["ana"].groupEncrypt(groupId: ch.groupId, plaintext: utf8("for dan too"), now: now).message
        XCTAssertEqual(str(try net["dan"].groupDecrypt(sender: "ana", message: m).plaintext), "for dan too")
    }

    func testByteArgumentsAreChecked() throws {
        let ana = Device(userId: "ana", now: now)
        assertThrowsCase(try ana.groupInfo(groupId: Data(count: 31))) { if case .Malformed = $0 { return true }; return false }
        assertThrowsCase(try ana.groupInfo(groupId: Data(count: 32))) { if case .UnknownGroup = $0 { return true }; return false }
        XCTAssertFalse(try ana.groupForget(groupId: Data(count: 3)))
        XCTAssertTrue(ana.groupIds().isEmpty)
        XCTAssertEqual(limits().maxGroupMembers, 1000)
    }
}

final class ChannelsTests: XCTestCase {
    func publicChannel() throws -> (Device, Data, Data, Device) {
        let agency = Device(userId: "agency", now: now)
        let cid = try agency.channelCreate(kind: .public)
        let key = try agency.channelPublicKey(channelId: cid)
        let citizen = Device(userId: "citizen", now: now)
        try citizen.channelSubscribe(channelId: cid, channelKey: key, kind: .public)
        return (agency, cid, key, citizen)
    }

    func testPublicAnnounceReplayAndWrongSigner() throws {
        let (agency, cid, key, citizen) = try publicChannel()
        let post = try agency.channelAnnounce(channelId: cid, contentType: .text, body: utf8("office closed"), now: now)
        let a = announcement(try citizen.channelReceive(post: post, now: now))
        XCTAssertEqual(a?.body, utf8("office closed"))
        XCTAssertEqual(a?.seq, 1)
        XCTAssertEqual(a?.signer, key)
        let before = citizen.stateLen()
        assertThrowsCase(try citizen.channelReceive(post: post, now: now)) { if case .StaleSequence = $0 { return true }; return false }
        XCTAssertEqual(citizen.stateLen(), before)
        let impostor = Device(userId: "impostor", now: now)
        let fakeKey = try impostor.channelPublicKey(channelId: try impostor.channelCreate(kind: .public))
        let fooled = Device(userId: "fooled", now: now)
        try fooled.channelSubscribe(channelId: cid, channelKey: fakeKey, kind: .public)
        assertThrowsCase(try fooled.channelReceive(post: post, now: now)) { if case .WrongSigner = $0 { return true }; return false }
    }

    func testVerifyAnnouncementOnAForwardedCopy() throws {
        let (agency, cid, key, _) = try publicChannel()
        let post = try agency.channelAnnounce(channelId: cid, contentType: .text, body: utf8("forward me"), now: now)
        XCTAssertEqual(try verifyAnnouncement(announcement: post, agencyKey: key).body, utf8("forward me"))
        var bad = post
        bad[bad.count - 1] ^= 1
        assertThrowsCase(try verifyAnnouncement(announcement: bad, agencyKey: key)) { if case .BadSignature = $0 { return true }; return false }
        assertThrowsCase(try verifyAnnouncement(announcement: post, agencyKey: key.prefix(31))) { if case .InvalidKey = $0 { return true }; return false }
    }

    func testRestrictedChannelKeyFanOutAndRemovalByRotation() throws {
        let net = try Net(["agency", "s1", "s2"], sessions: false)
        try net.connect("agency", "s1")
        try net.connect("agency", "s2")
        let agency = net["agency"]
        let cid = try agency.channelCreate(kind: .restricted)
        let key = try agency.channelPublicKey(channelId: cid)
        for s in ["s1", "s2"] { try net[s].channelSubscribe(channelId: cid, channelKey: key, kind: .restricted) }
        let fan = try agency.channelSendKey(channelId: cid, subscribers: ["s1", "s2"])
        XCTAssertEqual(fan.outgoing.map { $0.peer }.sorted(), ["s1", "s2"])
        for (_, got) in try net.deliver("agency", fan.outgoing) {
            guard case .channelKey(let r) = got else { return XCTFail("not a channel key: \(got)") }
            XCTAssertEqual(r.channelId, cid)
        }
        let rekey = try agency.channelRotateContentKey(channelId: cid, subscribers: ["s1"])
        XCTAssertEqual(rekey.outgoing.map { $0.peer }, ["s1"])
        try net.deliver("agency", rekey.outgoing)
        let post = try agency.channelAnnounce(channelId: cid, contentType: .text, body: utf8("after s2 left"), now: now)
        XCTAssertEqual(announcement(try net["s1"].channelReceive(post: post, now: now))?.body, utf8("after s2 left"))
        assertThrowsCase(try net["s2"].channelReceive(post: post, now: now)) { if case .MissingSenderKey = $0 { return true }; return false }
    }

    func testARestoredRestrictedPublisherRotatesItsContentKeyBeforePosting() throws {
        let net = try Net(["agency", "s1"])
        let agency = net["agency"]
        let cid = try agency.channelCreate(kind: .restricted)
        try net["s1"].channelSubscribe(channelId: cid, channelKey: try agency.channelPublicKey(channelId: cid), kind: .restricted)
        try net.deliver("agency", try agency.channelSendKey(channelId: cid, subscribers: ["s1"]).outgoing)
        let one = try agency.channelAnnounce(channelId: cid, contentType: .text, body: utf8("one"), now: now)
        let first = announcement(try net["s1"].channelReceive(post: one, now: now))
        let restored = try Device.fromSnapshot(key: key, snapshot: try agency.export(key: key))
        // The snapshot may be older than what was posted: the content key is retired.
        let before = restored.stateLen()
        assertThrowsCase(try restored.channelAnnounce(channelId: cid, contentType: .text, body: utf8("two"), now: now)) {
            if case .ChainExhausted = $0 { return true }; return false
        }
        assertThrowsCase(try restored.channelSendKey(channelId: cid, subscribers: ["s1"])) {
            if case .ChainExhausted = $0 { return true }; return false
        }
        XCTAssertEqual(restored.stateLen(), before)
        let rekey = try restored.channelRotateContentKey(channelId: cid, subscribers: ["s1"])
        XCTAssertEqual(rekey.outgoing.map { $0.peer }, ["s1"])
        try net.deliver("agency", rekey.outgoing)
        let two = try restored.channelAnnounce(channelId: cid, contentType: .text, body: utf8("two"), now: now)
        let a = announcement(try net["s1"].channelReceive(post: two, now: now))
        XCTAssertEqual(a?.body, utf8("two"))
        XCTAssertGreaterThan(a?.seq ?? 0, (first?.seq ?? 0) + 1) // skips past what the old copy may have issued
    }

    func testSigningKeyRotation() throws {
        let (agency, cid, oldKey, citizen) = try publicChannel()
        let rotation = try agency.channelRotateSigningKey(channelId: cid, now: now)
        let newKey = try agency.channelPublicKey(channelId: cid)
        guard case .keyRotated(let old, let new, _) = try citizen.channelReceive(post: rotation, now: now) else {
            return XCTFail("not a rotation")
        }
        XCTAssertEqual(old, oldKey)
        XCTAssertEqual(new, newKey)
        let post = try agency.channelAnnounce(channelId: cid, contentType: .text, body: utf8("after"), now: now)
        XCTAssertEqual(announcement(try citizen.channelReceive(post: post, now: now))?.signer, newKey)
        assertThrowsCase(try verifyAnnouncement(announcement: post, agencyKey: oldKey)) { if case .WrongSigner = $0 { return true }; return false }
        XCTAssertTrue(try citizen.channelForget(channelId: cid))
    }
}
