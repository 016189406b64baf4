"""Encrypted attachments through the Python bindings (protocol chapter 14): one-shot and
streaming round trips, segment boundaries, every refusal a malicious server can cause
(each a typed error that leaves the decryptor usable), random access, the pointer's
metadata, and the limits."""

import threading

import pytest

import gochat_e2ee_ffi as g

SEG = 65_536
HEADER = 53
E = g.GoChatError


def data(n):
    return bytes((i * 31 + 7) & 0xFF for i in range(n))


def encrypt_stream(plaintext, chunk, segment_size=None):
    """Streams `plaintext` through an encryptor in `chunk`-byte writes: (blob, pointer)."""
    if segment_size is None:
        enc = g.AttachmentEncryptor(len(plaintext), "application/pdf", "report.pdf")
    else:
        enc = g.AttachmentEncryptor.with_segment_size(len(plaintext), segment_size, "application/pdf", "report.pdf")
    blob = bytearray()
    for start in range(0, len(plaintext), chunk):
        blob += enc.update(plaintext[start:start + chunk])
    while True:
        step = enc.finish_step()
        if step.pointer is not None:
            assert step.ciphertext == b""
            return bytes(blob), step.pointer
        blob += step.ciphertext


def decrypt_stream(pointer, blob, chunk):
    """Feeds `blob` to a decryptor in `chunk`-byte reads and finishes it."""
    d = g.AttachmentDecryptor(pointer)
    out = bytearray()
    for start in range(0, len(blob), chunk):
        out += d.update(blob[start:start + chunk])
    d.finish()
    assert d.received() == len(blob)
    return bytes(out)


def flip(b, at, bit=1):
    b = bytearray(b)
    b[at] ^= bit
    return bytes(b)


@pytest.fixture
def small():
    """A two-segment attachment (1 KiB segments), streamed: (plaintext, blob, pointer)."""
    plaintext = data(2_000)
    blob, pointer = encrypt_stream(plaintext, 700, 1_024)
    return plaintext, blob, pointer


def test_one_shot_round_trip():
    plaintext = b"the minutes of the meeting"
    a = g.attachment_encrypt(plaintext, "text/plain", "minutes.txt")
    info = g.attachment_header_info(a.blob[:HEADER])
    assert (info.segment_size, info.padded_len, info.segment_count) == (SEG, 1024, 1)
    assert info.ciphertext_len == len(a.blob) == HEADER + 1024 + 16
    assert g.attachment_decrypt(a.pointer, a.blob) == plaintext
    b = g.attachment_encrypt(plaintext, "text/plain")  # no file name: the default
    assert g.attachment_pointer_info(b.pointer).file_name is None
    assert a.blob != b.blob  # a fresh key and nonce prefix for every attachment


def test_streaming_round_trip_of_a_multi_segment_file():
    plaintext = data(300 * 1024)
    blob, pointer = encrypt_stream(plaintext, SEG)
    info = g.attachment_header_info(blob[:HEADER])
    assert info.padded_len == g.attachment_padded_len(len(plaintext))
    assert info.segment_count == 5 and info.ciphertext_len == len(blob)
    assert decrypt_stream(pointer, blob, SEG) == plaintext
    assert decrypt_stream(pointer, blob, 10_007) == plaintext
    small = data(5_000)
    blob2, pointer2 = encrypt_stream(small, 333, 1_024)
    assert g.attachment_header_info(blob2[:HEADER]).segment_count == 5
    assert decrypt_stream(pointer2, blob2, 1_000) == small


def test_empty_file():
    enc = g.AttachmentEncryptor(0, "application/octet-stream", None)
    first = enc.finish_step()  # update never ran: the header, then the padding segment
    assert first.ciphertext[:HEADER] == enc.header() and len(first.ciphertext) == HEADER + 1024 + 16
    done = enc.finish_step()
    assert done.ciphertext == b"" and done.pointer is not None
    assert g.attachment_pointer_info(done.pointer).size == 0
    assert g.attachment_decrypt(done.pointer, first.ciphertext) == b""
    assert decrypt_stream(done.pointer, first.ciphertext, 100) == b""
    with pytest.raises(E.StreamFinished):
        enc.finish_step()
    with pytest.raises(E.StreamFinished):
        enc.update(b"")
    enc2 = g.AttachmentEncryptor(0, "application/octet-stream")
    assert enc2.update(b"") == enc2.header()  # an empty update still sends the header


def test_exact_segment_boundary():
    plaintext = data(2 * SEG)  # its own padding bucket: two full segments, no padding
    assert g.attachment_padded_len(len(plaintext)) == len(plaintext)
    blob, pointer = encrypt_stream(plaintext, SEG)
    assert g.attachment_header_info(blob[:HEADER]).segment_count == 2
    assert len(blob) == HEADER + 2 * (SEG + 16)
    assert decrypt_stream(pointer, blob, SEG + 16) == plaintext
    # Cut at the segment boundary: the first segment was sealed as not-last.
    d = g.AttachmentDecryptor(pointer)
    assert d.update(blob[:HEADER + SEG + 16]) == plaintext[:SEG]
    with pytest.raises(E.Truncated) as ei:
        d.finish()
    assert ei.value.retry_may_help is False


def test_another_pointers_key_is_wrong_key(small):
    _, blob, _ = small
    other = encrypt_stream(data(2_000), 700, 1_024)[1]
    d = g.AttachmentDecryptor(other)
    with pytest.raises(E.WrongKey):
        d.update(blob)
    assert d.received() == 0
    with pytest.raises(E.WrongKey):
        g.attachment_decrypt(other, blob)


def test_one_flipped_byte_is_tampered(small):
    _, blob, pointer = small
    for at in (HEADER, HEADER + 1024 + 16 + 5, len(blob) - 1, 20):  # 20: the nonce prefix
        with pytest.raises(E.Tampered):
            g.attachment_decrypt(pointer, flip(blob, at))


def test_truncated_is_truncated(small):
    _, blob, pointer = small
    with pytest.raises(E.Truncated):
        g.attachment_decrypt(pointer, blob[:-1])
    with pytest.raises(E.Truncated):
        g.attachment_decrypt(pointer, blob[:40])
    with pytest.raises(E.Truncated):
        g.AttachmentDecryptor(pointer).finish()


def test_a_trailing_byte_is_trailing_data(small):
    _, blob, pointer = small
    with pytest.raises(E.TrailingData):
        g.attachment_decrypt(pointer, blob + b"\x00")


def test_a_pointer_with_another_digest_is_digest_mismatch(small):
    plaintext, blob, pointer = small
    wrong = flip(pointer, 34)  # the digest is bytes 34..66 of the pointer (protocol 14.4)
    d = g.AttachmentDecryptor(wrong)
    assert d.update(blob) == plaintext  # the segments are authentic under the key
    with pytest.raises(E.DigestMismatch):
        d.finish()
    with pytest.raises(E.DigestMismatch):
        g.attachment_decrypt(wrong, blob)


def test_a_refused_update_leaves_the_decryptor_usable(small):
    plaintext, blob, pointer = small
    d = g.AttachmentDecryptor(pointer)
    out = bytearray(d.update(blob[:100]))
    rest = blob[100:]
    with pytest.raises(E.Tampered):
        d.update(flip(rest, 1_000, 0x40))
    with pytest.raises(E.TrailingData):
        d.update(rest + b"\x01")
    assert d.received() == 100  # refused bytes are not counted
    with pytest.raises(E.Truncated):
        d.finish()
    out += d.update(rest)  # the genuine bytes, fetched again
    d.finish()
    assert bytes(out) == plaintext
    with pytest.raises(E.StreamFinished):
        d.update(b"\x00")


def test_random_access_to_a_middle_segment():
    plaintext = data(300 * 1024)
    a = g.attachment_encrypt(plaintext, "video/mp4", "clip.mp4")
    h = a.blob[:HEADER]
    index = g.attachment_segment_for_offset(h, 150_000)
    assert index == 2
    r = g.attachment_segment_range(h, index)
    assert (r.offset, r.length) == (HEADER + 2 * (SEG + 16), SEG + 16)
    segment = a.blob[r.offset:r.offset + r.length]
    assert g.attachment_decrypt_segment(a.pointer, h, index, segment) == plaintext[2 * SEG:3 * SEG]
    with pytest.raises(E.Tampered):
        g.attachment_decrypt_segment(a.pointer, h, 1, segment)
    with pytest.raises(E.Truncated):
        g.attachment_decrypt_segment(a.pointer, h, index, segment[:100])
    count = g.attachment_header_info(h).segment_count
    with pytest.raises(E.Malformed):
        g.attachment_segment_range(h, count)
    with pytest.raises(E.Malformed):
        g.attachment_segment_for_offset(h, count * SEG)
    with pytest.raises(E.Malformed):
        g.attachment_header_info(h[:52])


def test_pointer_info_shows_the_metadata_and_no_key():
    a = g.attachment_encrypt(data(5_000), "image/jpeg", "photo.jpg")
    info = g.attachment_pointer_info(a.pointer)
    assert (info.size, info.content_type, info.file_name) == (5_000, "image/jpeg", "photo.jpg")
    assert info.digest == a.pointer[34:66]
    assert set(vars(info)) == {"size", "content_type", "file_name", "digest"}  # no key
    assert repr(a.pointer[2:34]) not in str(info)
    assert len(a.pointer) == 2 + 32 + 32 + 8 + 1 + 10 + 2 + 9
    with pytest.raises(E.Malformed):
        g.attachment_pointer_info(a.pointer + b"\x00")
    with pytest.raises(E.Malformed):
        g.AttachmentDecryptor(a.pointer[:40])


def test_finish_step_before_all_the_plaintext_is_size_mismatch():
    plaintext = data(3_000)
    enc = g.AttachmentEncryptor.with_segment_size(3_000, 1_024, "text/csv", "table.csv")
    blob = bytearray(enc.update(plaintext[:1_000]))
    with pytest.raises(E.SizeMismatch):
        enc.finish_step()
    with pytest.raises(E.SizeMismatch):
        enc.update(bytes(2_001))
    blob += enc.update(plaintext[1_000:])  # neither refusal changed anything
    while (step := enc.finish_step()).pointer is None:
        blob += step.ciphertext
    assert g.attachment_decrypt(step.pointer, bytes(blob)) == plaintext


def test_a_decryptor_is_safe_to_share_across_threads(small):
    plaintext, blob, pointer = small
    shared = g.AttachmentDecryptor(pointer)
    stop = threading.Event()

    def read():
        while not stop.is_set():
            assert shared.received() <= len(blob)

    readers = [threading.Thread(target=read) for _ in range(3)]
    out = bytearray()

    def feed():
        for start in range(0, len(blob), 100):
            out.extend(shared.update(blob[start:start + 100]))

    for t in readers:
        t.start()
    feeder = threading.Thread(target=feed)
    feeder.start()
    feeder.join()
    stop.set()
    for t in readers:
        t.join()
    shared.finish()
    assert bytes(out) == plaintext


def test_invalid_arguments_are_malformed_or_too_large():
    with pytest.raises(E.Malformed):
        g.AttachmentEncryptor(1, "", None)
    with pytest.raises(E.Malformed):
        g.AttachmentEncryptor(1, "text/plain", "../etc/passwd")
    with pytest.raises(E.Malformed):
        g.AttachmentEncryptor.with_segment_size(1, 1_023, "text/plain", None)
    with pytest.raises(E.TooLarge):
        g.AttachmentEncryptor((1 << 40) + 1, "text/plain", None)


def test_limits_include_the_attachment_constants():
    lim = g.limits()
    assert lim.header_bytes == 53
    assert (lim.min_segment_size, lim.default_segment_size, lim.max_segment_size) == (1_024, 65_536, 1 << 20)
    assert lim.max_attachment_bytes == 1 << 40
    assert lim.max_pointer_bytes == 587
    assert [g.attachment_padded_len(n) for n in (0, 1_025, 65_537)] == [1_024, 1_088, 67_584]
