// Mirrors bindings/kotlin/src/test/kotlin/gov/gochat/e2ee/AttachmentsTest.kt.
// Not run on the Linux CI machines (no Swift toolchain): run on a Mac with `swift test`
// (docs/ios.md).
import Foundation
import XCTest
@testable import GoChatE2EE

private let seg = 65_536
private let headerLen = 53

private func data(_ n: Int) -> Data { Data((0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }) }

private func flip(_ d: Data, _ at: Int, _ bit: UInt8 = 1) -> Data {
    var d = d
    d[d.startIndex + at] ^= bit
    return d
}

private func header(_ blob: Data) -> Data { blob.prefix(headerLen) }

/// Streams `plaintext` through an encryptor in `chunk`-byte writes: (blob, pointer).
private func encryptStream(_ plaintext: Data, chunk: Int, segmentSize: UInt32? = nil) throws -> (Data, Data) {
    let size = UInt64(plaintext.count)
    let enc: AttachmentEncryptor
    if let segmentSize {
        enc = try AttachmentEncryptor.withSegmentSize(size: size, segmentSize: segmentSize, contentType: "application/pdf", fileName: "report.pdf")
    } else {
        enc = try AttachmentEncryptor(size: size, contentType: "application/pdf", fileName: "report.pdf")
    }
    var blob = Data()
    for start in stride(from: 0, to: plaintext.count, by: chunk) {
        blob.append(try enc.update(plaintext: plaintext.subdata(in: start..<min(start + chunk, plaintext.count))))
    }
    while true {
        let step = try enc.finishStep()
        if let pointer = step.pointer {
            XCTAssertTrue(step.ciphertext.isEmpty)
            return (blob, pointer)
        }
        blob.append(step.ciphertext)
    }
}

/// Feeds `blob` to a decryptor in `chunk`-byte reads and finishes it.
private func decryptStream(_ pointer: Data, _ blob: Data, chunk: Int) throws -> Data {
    let d = try AttachmentDecryptor(pointer: pointer)
    var out = Data()
    for start in stride(from: 0, to: blob.count, by: chunk) {
        out.append(try d.update(ciphertext: blob.subdata(in: start..<min(start + chunk, blob.count))))
    }
    try d.finish()
    XCTAssertEqual(d.received(), UInt64(blob.count))
    return out
}

/// A two-segment attachment (1 KiB segments), streamed: (plaintext, blob, pointer).
private func small() throws -> (Data, Data, Data) {
    let plaintext = data(2_000)
    let (blob, pointer) = try encryptStream(plaintext, chunk: 700, segmentSize: 1_024)
    return (plaintext, blob, pointer)
}

final class AttachmentsTests: XCTestCase {
    func testOneShotRoundTrip() throws {
        let plaintext = utf8("the minutes of the meeting")
        let a = try attachmentEncrypt(plaintext: plaintext, contentType: "text/plain", fileName: "minutes.txt")
        let info = try attachmentHeaderInfo(header: header(a.blob))
        XCTAssertEqual(info.segmentSize, 65_536)
        XCTAssertEqual(info.paddedLen, 1_024)
        XCTAssertEqual(info.segmentCount, 1)
        XCTAssertEqual(info.ciphertextLen, UInt64(a.blob.count))
        XCTAssertEqual(a.blob.count, headerLen + 1_024 + 16)
        XCTAssertEqual(try attachmentDecrypt(pointer: a.pointer, blob: a.blob), plaintext)
        let b = try attachmentEncrypt(plaintext: plaintext, contentType: "text/plain")  // no file name
        XCTAssertNil(try attachmentPointerInfo(pointer: b.pointer).fileName)
        XCTAssertNotEqual(a.blob, b.blob, "a fresh key and nonce prefix for every attachment")
    }

    func testStreamingRoundTripOfAMultiSegmentFile() throws {
        let plaintext = data(300 * 1024)
        let (blob, pointer) = try encryptStream(plaintext, chunk: seg)
        let info = try attachmentHeaderInfo(header: header(blob))
        XCTAssertEqual(info.paddedLen, attachmentPaddedLen(size: UInt64(plaintext.count)))
        XCTAssertEqual(info.segmentCount, 5)
        XCTAssertEqual(info.ciphertextLen, UInt64(blob.count))
        XCTAssertEqual(try decryptStream(pointer, blob, chunk: seg), plaintext)
        XCTAssertEqual(try decryptStream(pointer, blob, chunk: 10_007), plaintext)
        let smallFile = data(5_000)
        let (blob2, pointer2) = try encryptStream(smallFile, chunk: 333, segmentSize: 1_024)
        XCTAssertEqual(try attachmentHeaderInfo(header: header(blob2)).segmentCount, 5)
        XCTAssertEqual(try decryptStream(pointer2, blob2, chunk: 1_000), smallFile)
    }

    func testEmptyFile() throws {
        let enc = try AttachmentEncryptor(size: 0, contentType: "application/octet-stream", fileName: nil)
        let first = try enc.finishStep()  // update never ran: the header, then the padding segment
        XCTAssertEqual(header(first.ciphertext), enc.header())
        XCTAssertEqual(first.ciphertext.count, headerLen + 1_024 + 16)
        let done = try enc.finishStep()
        XCTAssertTrue(done.ciphertext.isEmpty)
        let pointer = try XCTUnwrap(done.pointer)
        XCTAssertEqual(try attachmentPointerInfo(pointer: pointer).size, 0)
        XCTAssertEqual(try attachmentDecrypt(pointer: pointer, blob: first.ciphertext), Data())
        XCTAssertEqual(try decryptStream(pointer, first.ciphertext, chunk: 100), Data())
        assertThrowsCase(try enc.finishStep()) { if case .StreamFinished = $0 { return true }; return false }
        assertThrowsCase(try enc.update(plaintext: Data())) { if case .StreamFinished = $0 { return true }; return false }
        let enc2 = try AttachmentEncryptor(size: 0, contentType: "application/octet-stream")
        XCTAssertEqual(try enc2.update(plaintext: Data()), enc2.header())  // an empty update still sends the header
    }

    func testExactSegmentBoundary() throws {
        let plaintext = data(2 * seg)  // its own padding bucket: two full segments
        XCTAssertEqual(attachmentPaddedLen(size: UInt64(plaintext.count)), UInt64(plaintext.count))
        let (blob, pointer) = try encryptStream(plaintext, chunk: seg)
        XCTAssertEqual(try attachmentHeaderInfo(header: header(blob)).segmentCount, 2)
        XCTAssertEqual(blob.count, headerLen + 2 * (seg + 16))
        XCTAssertEqual(try decryptStream(pointer, blob, chunk: seg + 16), plaintext)
        // Cut at the segment boundary: the first segment was sealed as not-last.
        let d = try AttachmentDecryptor(pointer: pointer)
        XCTAssertEqual(try d.update(ciphertext: blob.prefix(headerLen + seg + 16)), plaintext.prefix(seg))
        assertThrowsCase(try d.finish()) { if case .Truncated(_, let retry) = $0 { return !retry }; return false }
    }

    func testAnotherPointersKeyIsWrongKey() throws {
        let (_, blob, _) = try small()
        let (_, _, other) = try small()
        let d = try AttachmentDecryptor(pointer: other)
        assertThrowsCase(try d.update(ciphertext: blob)) { if case .WrongKey = $0 { return true }; return false }
        XCTAssertEqual(d.received(), 0)
        assertThrowsCase(try attachmentDecrypt(pointer: other, blob: blob)) { if case .WrongKey = $0 { return true }; return false }
    }

    func testOneFlippedByteIsTampered() throws {
        let (_, blob, pointer) = try small()
        for at in [headerLen, headerLen + 1_024 + 16 + 5, blob.count - 1, 20] {  // 20: the nonce prefix
            assertThrowsCase(try attachmentDecrypt(pointer: pointer, blob: flip(blob, at))) {
                if case .Tampered = $0 { return true }; return false
            }
        }
    }

    func testTruncatedIsTruncated() throws {
        let (_, blob, pointer) = try small()
        assertThrowsCase(try attachmentDecrypt(pointer: pointer, blob: blob.dropLast())) { if case .Truncated = $0 { return true }; return false }
        assertThrowsCase(try attachmentDecrypt(pointer: pointer, blob: blob.prefix(40))) { if case .Truncated = $0 { return true }; return false }
        assertThrowsCase(try AttachmentDecryptor(pointer: pointer).finish()) { if case .Truncated = $0 { return true }; return false }
    }

    func testATrailingByteIsTrailingData() throws {
        let (_, blob, pointer) = try small()
        assertThrowsCase(try attachmentDecrypt(pointer: pointer, blob: blob + Data([0]))) {
            if case .TrailingData = $0 { return true }; return false
        }
    }

    func testAPointerWithAnotherDigestIsDigestMismatch() throws {
        let (plaintext, blob, pointer) = try small()
        let wrong = flip(pointer, 34)  // the digest is bytes 34..<66 of the pointer (protocol 14.4)
        let d = try AttachmentDecryptor(pointer: wrong)
        XCTAssertEqual(try d.update(ciphertext: blob), plaintext, "the segments are authentic under the key")
        assertThrowsCase(try d.finish()) { if case .DigestMismatch = $0 { return true }; return false }
        assertThrowsCase(try attachmentDecrypt(pointer: wrong, blob: blob)) { if case .DigestMismatch = $0 { return true }; return false }
    }

    func testARefusedUpdateLeavesTheDecryptorUsable() throws {
        let (plaintext, blob, pointer) = try small()
        let d = try AttachmentDecryptor(pointer: pointer)
        var out = try d.update(ciphertext: blob.prefix(100))
        let rest = blob.subdata(in: 100..<blob.count)
        assertThrowsCase(try d.update(ciphertext: flip(rest, 1_000, 0x40))) { if case .Tampered = $0 { return true }; return false }
        assertThrowsCase(try d.update(ciphertext: rest + Data([1]))) { if case .TrailingData = $0 { return true }; return false }
        XCTAssertEqual(d.received(), 100, "refused bytes are not counted")
        assertThrowsCase(try d.finish()) { if case .Truncated = $0 { return true }; return false }
        out.append(try d.update(ciphertext: rest))  // the genuine bytes, fetched again
        try d.finish()
        XCTAssertEqual(out, plaintext)
        assertThrowsCase(try d.update(ciphertext: Data([0]))) { if case .StreamFinished = $0 { return true }; return false }
    }

    func testRandomAccessToAMiddleSegment() throws {
        let plaintext = data(300 * 1024)
        let a = try attachmentEncrypt(plaintext: plaintext, contentType: "video/mp4", fileName: "clip.mp4")
        let h = header(a.blob)
        let index = try attachmentSegmentForOffset(header: h, plaintextOffset: 150_000)
        XCTAssertEqual(index, 2)
        let r = try attachmentSegmentRange(header: h, index: index)
        XCTAssertEqual(r.offset, UInt64(headerLen + 2 * (seg + 16)))
        XCTAssertEqual(r.length, UInt64(seg + 16))
        let segment = a.blob.subdata(in: Int(r.offset)..<Int(r.offset + r.length))
        XCTAssertEqual(try attachmentDecryptSegment(pointer: a.pointer, header: h, index: index, segment: segment),
                       plaintext.subdata(in: 2 * seg..<3 * seg))
        assertThrowsCase(try attachmentDecryptSegment(pointer: a.pointer, header: h, index: 1, segment: segment)) {
            if case .Tampered = $0 { return true }; return false
        }
        assertThrowsCase(try attachmentDecryptSegment(pointer: a.pointer, header: h, index: index, segment: segment.prefix(100))) {
            if case .Truncated = $0 { return true }; return false
        }
        let count = try attachmentHeaderInfo(header: h).segmentCount
        assertThrowsCase(try attachmentSegmentRange(header: h, index: count)) { if case .Malformed = $0 { return true }; return false }
        assertThrowsCase(try attachmentSegmentForOffset(header: h, plaintextOffset: UInt64(count) * UInt64(seg))) {
            if case .Malformed = $0 { return true }; return false
        }
        assertThrowsCase(try attachmentHeaderInfo(header: h.prefix(52))) { if case .Malformed = $0 { return true }; return false }
    }

    func testPointerInfoShowsTheMetadataAndNoKey() throws {
        let a = try attachmentEncrypt(plaintext: data(5_000), contentType: "image/jpeg", fileName: "photo.jpg")
        let info = try attachmentPointerInfo(pointer: a.pointer)
        XCTAssertEqual(info.size, 5_000)
        XCTAssertEqual(info.contentType, "image/jpeg")
        XCTAssertEqual(info.fileName, "photo.jpg")
        XCTAssertEqual(info.digest, a.pointer.subdata(in: 34..<66))
        XCTAssertEqual(Set(Mirror(reflecting: info).children.compactMap { $0.label }), ["size", "contentType", "fileName", "digest"])
        XCTAssertEqual(a.pointer.count, 2 + 32 + 32 + 8 + 1 + 10 + 2 + 9)
        assertThrowsCase(try attachmentPointerInfo(pointer: a.pointer + Data([0]))) { if case .Malformed = $0 { return true }; return false }
        assertThrowsCase(try AttachmentDecryptor(pointer: a.pointer.prefix(40))) { if case .Malformed = $0 { return true }; return false }
    }

    func testFinishStepBeforeAllThePlaintextIsSizeMismatch() throws {
        let plaintext = data(3_000)
        let enc = try AttachmentEncryptor.withSegmentSize(size: 3_000, segmentSize: 1_024, contentType: "text/csv", fileName: "table.csv")
        var blob = try enc.update(plaintext: plaintext.prefix(1_000))
        assertThrowsCase(try enc.finishStep()) { if case .SizeMismatch = $0 { return true }; return false }
        assertThrowsCase(try enc.update(plaintext: Data(count: 2_001))) { if case .SizeMismatch = $0 { return true }; return false }
        blob.append(try enc.update(plaintext: plaintext.subdata(in: 1_000..<3_000)))  // nothing had changed
        var step = try enc.finishStep()
        while step.pointer == nil {
            blob.append(step.ciphertext)
            step = try enc.finishStep()
        }
        XCTAssertEqual(try attachmentDecrypt(pointer: step.pointer!, blob: blob), plaintext)
    }

    func testADecryptorIsSafeToShareAcrossThreads() throws {
        let (plaintext, blob, pointer) = try small()
        let shared = try AttachmentDecryptor(pointer: pointer)
        var out = Data()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            if worker == 0 {
                for start in stride(from: 0, to: blob.count, by: 100) {
                    out.append(try! shared.update(ciphertext: blob.subdata(in: start..<min(start + 100, blob.count))))
                }
            } else {
                for _ in 0..<1_000 { XCTAssertLessThanOrEqual(shared.received(), UInt64(blob.count)) }
            }
        }
        try shared.finish()
        XCTAssertEqual(out, plaintext)
    }

    func testInvalidArgumentsAreMalformedOrTooLarge() {
        assertThrowsCase(try AttachmentEncryptor(size: 1, contentType: "", fileName: nil)) { if case .Malformed = $0 { return true }; return false }
        assertThrowsCase(try AttachmentEncryptor(size: 1, contentType: "text/plain", fileName: "../etc/passwd")) {
            if case .Malformed = $0 { return true }; return false
        }
        assertThrowsCase(try AttachmentEncryptor.withSegmentSize(size: 1, segmentSize: 1_023, contentType: "text/plain", fileName: nil)) {
            if case .Malformed = $0 { return true }; return false
        }
        assertThrowsCase(try AttachmentEncryptor(size: (1 << 40) + 1, contentType: "text/plain", fileName: nil)) {
            if case .TooLarge = $0 { return true }; return false
        }
    }

    func testLimitsIncludeTheAttachmentConstants() {
        let l = limits()
        XCTAssertEqual(l.headerBytes, 53)
        XCTAssertEqual(l.defaultSegmentSize, 65_536)
        XCTAssertEqual(l.minSegmentSize, 1_024)
        XCTAssertEqual(l.maxSegmentSize, 1_048_576)
        XCTAssertEqual(l.maxAttachmentBytes, 1 << 40)
        XCTAssertEqual(l.maxPointerBytes, 587)
        XCTAssertEqual([0, 1_025, 65_537].map { attachmentPaddedLen(size: $0) }, [1_024, 1_088, 67_584])
    }
}
