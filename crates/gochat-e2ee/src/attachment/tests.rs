use std::io::{Read, Write};

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::Digest;

use super::*;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// Encrypts with a chosen segment size, feeding the plaintext in `chunk`-byte pieces.
fn seal(pt: &[u8], segment: u32, chunk: usize, seed: u64) -> (Vec<u8>, AttachmentPointer) {
    let mut e =
        Encryptor::with_segment_size(pt.len() as u64, segment, "application/pdf", Some("memo.pdf"), &mut rng(seed))
            .unwrap();
    let mut blob = Vec::new();
    for piece in pt.chunks(chunk.max(1)) {
        blob.extend_from_slice(&e.update(piece).unwrap());
    }
    let (tail, p) = e.finish().unwrap();
    blob.extend_from_slice(&tail);
    (blob, p)
}

/// Decrypts feeding the blob in `chunk`-byte pieces.
fn open(p: &AttachmentPointer, blob: &[u8], chunk: usize) -> Result<Vec<u8>, AttachmentError> {
    let mut d = Decryptor::new(p);
    let mut out = Vec::new();
    for piece in blob.chunks(chunk.max(1)) {
        out.extend_from_slice(&d.update(piece)?);
    }
    d.finish()?;
    Ok(out)
}

#[test]
fn padme_buckets() {
    assert_eq!(padded_len(0), 1024);
    assert_eq!(padded_len(1), 1024);
    assert_eq!(padded_len(1024), 1024);
    assert_eq!(padded_len(1025), 1088);
    assert_eq!(padded_len(65_536), 65_536);
    assert_eq!(padded_len(65_537), 67_584);
    assert_eq!(padded_len(1 << 20), 1 << 20);
    assert_eq!(padded_len((1 << 20) + 1), (1 << 20) + (1 << 15));
    assert_eq!(padded_len(MAX_ATTACHMENT_BYTES), MAX_ATTACHMENT_BYTES);
    for size in [0u64, 1, 1000, 1025, 4097, 100_000, 1_234_567, 99_999_999, 1 << 33] {
        let p = padded_len(size);
        assert!(p >= size && p >= MIN_PADDED_BYTES);
        assert_eq!(padded_len(p), p, "idempotent");
        if size > 4096 {
            assert!((p - size) as f64 / size as f64 <= 0.12, "overhead for {size}");
        }
    }
}

#[test]
fn segment_for_offset_refuses_offsets_past_a_short_last_segment() {
    // 5,000 bytes pad to 5,120: two 2,048-byte segments and a last one of 1,024.
    let e = Encryptor::from_parts(AttachmentKey::from_bytes([1; 32]), [2; 7], 5000, 2048, "a/b", None).unwrap();
    let h = e.header();
    assert_eq!((h.padded_len(), h.segment_count()), (5120, 3));
    assert_eq!(h.segment_for_offset(5119).unwrap(), 2);
    assert!(matches!(h.segment_for_offset(5120), Err(AttachmentError::SegmentOutOfRange { index: 3, count: 3 })));
    assert!(matches!(h.segment_for_offset(6143), Err(AttachmentError::SegmentOutOfRange { index: 3, count: 3 })));
    assert!(h.segment_for_offset(u64::MAX).is_err());
}

#[test]
fn layout_of_the_blob() {
    let pt = data(5000, 1);
    let (blob, p) = seal(&pt, 1024, 777, 2);
    let h = AttachmentHeader::decode(&blob[..HEADER_BYTES]).unwrap();
    assert_eq!((h.segment_size(), h.padded_len(), h.segment_count()), (1024, 5120, 5));
    assert_eq!(blob.len() as u64, h.ciphertext_len());
    assert_eq!(blob.len(), HEADER_BYTES + 5120 + 5 * 16);
    assert_eq!(h.segment_range(4).unwrap(), (HEADER_BYTES as u64 + 4 * 1040)..(blob.len() as u64));
    assert_eq!(h.segment_for_offset(4999).unwrap(), 4);
    assert!(matches!(h.segment_range(5), Err(AttachmentError::SegmentOutOfRange { index: 5, count: 5 })));
    assert_eq!(h.nonce(4)[11], 1);
    assert_eq!(h.nonce(3)[11], 0);
    assert_eq!(&h.nonce(3)[7..11], &3u32.to_be_bytes());
    assert_eq!(p.size(), 5000);
    assert_eq!(p.digest(), &<[u8; 32]>::from(sha2::Sha256::digest(&blob)));
    assert_eq!(open(&p, &blob, 1).unwrap(), pt);
}

#[test]
fn empty_small_boundary_and_multi_segment_files_round_trip() {
    for (len, seg) in
        [(0usize, 1024u32), (1, 1024), (1024, 1024), (2048, 1024), (3000, 1024), (65_536, 65_536), (200_000, 65_536)]
    {
        let pt = data(len, 3);
        for chunk in [1usize, 1000, 1 << 20] {
            let (blob, p) = seal(&pt, seg, chunk, len as u64);
            for rchunk in [1usize, 53, 1040, 1 << 20] {
                assert_eq!(open(&p, &blob, rchunk).unwrap(), pt, "len {len} chunk {chunk}/{rchunk}");
            }
        }
    }
}

#[test]
fn one_shot_and_io_adapters_agree() {
    let pt = data(300_000, 4);
    let (blob, p) = encrypt(&pt, "video/mp4", None, &mut rng(5)).unwrap();
    assert_eq!(&*decrypt(&p, &blob).unwrap(), &pt[..]);
    let e = Encryptor::new(pt.len() as u64, "video/mp4", Some("clip.mp4"), &mut rng(6)).unwrap();
    let mut w = EncryptingWriter::new(Vec::new(), e);
    for piece in pt.chunks(4096) {
        w.write_all(piece).unwrap();
    }
    let (blob, p) = w.finish().unwrap();
    let mut r = DecryptingReader::new(&blob[..], &p);
    let mut back = Vec::new();
    r.read_to_end(&mut back).unwrap();
    assert!(r.is_complete());
    assert_eq!(back, pt);
    // A truncated blob read through the adapter ends in an error, not EOF.
    let mut r = DecryptingReader::new(&blob[..blob.len() - 1], &p);
    let err = r.read_to_end(&mut Vec::new()).unwrap_err();
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<AttachmentError>()).unwrap();
    assert!(matches!(inner, AttachmentError::Tampered { .. } | AttachmentError::Truncated { .. }));
    // Finishing a writer before the declared size is refused.
    let e = Encryptor::new(10, "text/plain", None, &mut rng(7)).unwrap();
    let mut w = EncryptingWriter::new(Vec::new(), e);
    w.write_all(b"short").unwrap();
    assert!(w.finish().is_err());
}

#[test]
fn wrong_key_tampering_truncation_trailing_data_and_digest_each_have_their_own_error() {
    let pt = data(4000, 8);
    let (blob, p) = seal(&pt, 1024, 4000, 9);
    // Wrong key: another attachment's pointer with this one's digest and size.
    let (_, other) = seal(&pt, 1024, 4000, 10);
    let mut enc = other.encode().to_vec();
    enc[34..66].copy_from_slice(p.digest());
    let wrong = AttachmentPointer::decode(&enc).unwrap();
    assert_eq!(open(&wrong, &blob, 1 << 20), Err(AttachmentError::WrongKey));
    // Tampering with a segment byte.
    let mut t = blob.clone();
    t[HEADER_BYTES + 1040 + 5] ^= 1;
    assert_eq!(open(&p, &t, 1 << 20), Err(AttachmentError::Tampered { segment: 1 }));
    // Tampering with the header (nonce prefix): every tag fails, segment 0 first.
    let mut t = blob.clone();
    t[15] ^= 1;
    assert_eq!(open(&p, &t, 1 << 20), Err(AttachmentError::Tampered { segment: 0 }));
    // Truncation at a segment boundary.
    let cut = &blob[..HEADER_BYTES + 2 * 1040];
    assert_eq!(
        open(&p, cut, 1 << 20),
        Err(AttachmentError::Truncated { expected: blob.len() as u64, received: cut.len() as u64 })
    );
    // Appending after the end.
    let mut long = blob.clone();
    long.push(0);
    assert_eq!(open(&p, &long, 1 << 20), Err(AttachmentError::TrailingData));
    // A pointer whose digest is wrong.
    let mut enc = p.encode().to_vec();
    enc[40] ^= 1;
    let bad_digest = AttachmentPointer::decode(&enc).unwrap();
    assert_eq!(open(&bad_digest, &blob, 1 << 20), Err(AttachmentError::DigestMismatch));
    // A pointer whose size is in another bucket.
    let mut enc = p.encode().to_vec();
    enc[66..74].copy_from_slice(&100_000u64.to_be_bytes());
    let bad_size = AttachmentPointer::decode(&enc).unwrap();
    assert_eq!(open(&bad_size, &blob, 1 << 20), Err(AttachmentError::SizeMismatch { declared: 100_000, found: 4096 }));
    // A pointer whose size is in the same bucket: the size is in every segment's AAD.
    for size in [3999u64, 4001, 4096] {
        let mut enc = p.encode().to_vec();
        enc[66..74].copy_from_slice(&size.to_be_bytes());
        let other_size = AttachmentPointer::decode(&enc).unwrap();
        assert_eq!(open(&other_size, &blob, 1 << 20), Err(AttachmentError::Tampered { segment: 0 }), "{size}");
    }
}

#[test]
fn reordered_dropped_and_duplicated_segments_are_refused() {
    let pt = data(4000, 11);
    let (blob, p) = seal(&pt, 1024, 4000, 12);
    let seg = |i: usize| &blob[HEADER_BYTES + i * 1040..HEADER_BYTES + (i + 1) * 1040];
    let header = &blob[..HEADER_BYTES];
    let swapped = [header, seg(1), seg(0), seg(2), &blob[HEADER_BYTES + 3 * 1040..]].concat();
    assert_eq!(open(&p, &swapped, 1 << 20), Err(AttachmentError::Tampered { segment: 0 }));
    let dropped = [header, seg(0), seg(2), &blob[HEADER_BYTES + 3 * 1040..]].concat();
    assert_eq!(open(&p, &dropped, 1 << 20), Err(AttachmentError::Tampered { segment: 1 }));
    let duplicated = [header, seg(0), seg(0), seg(1), seg(2)].concat();
    assert_eq!(open(&p, &duplicated, 1 << 20), Err(AttachmentError::Tampered { segment: 1 }));
    // The last segment moved forward (sealed as last) fails too.
    let last_first = [header, &blob[HEADER_BYTES + 3 * 1040..], seg(0), seg(1), seg(2)].concat();
    assert!(open(&p, &last_first, 1 << 20).is_err());
}

#[test]
fn a_refused_update_changes_nothing_and_the_stream_can_continue() {
    let pt = data(5000, 13);
    let (blob, p) = seal(&pt, 1024, 5000, 14);
    let mut d = Decryptor::new(&p);
    let mut out = d.update(&blob[..HEADER_BYTES + 1500]).unwrap().to_vec();
    assert_eq!(out.len(), 1024);
    let received = d.received();
    // Bytes completing segment 1 and all of segment 2, with a flip in segment 2.
    let mut bad = blob[HEADER_BYTES + 1500..HEADER_BYTES + 3 * 1040].to_vec();
    bad[1000] ^= 1;
    assert_eq!(d.update(&bad), Err(AttachmentError::Tampered { segment: 2 }));
    assert_eq!(d.received(), received);
    assert!(matches!(d.finish(), Err(AttachmentError::Truncated { .. })));
    // The genuine bytes continue the stream.
    out.extend_from_slice(&d.update(&blob[HEADER_BYTES + 1500..]).unwrap());
    let mut trailing = d.update(&[1]).unwrap_err();
    assert_eq!(trailing, AttachmentError::TrailingData);
    d.finish().unwrap();
    assert_eq!(out, pt);
    trailing = d.update(&[]).unwrap_err();
    assert_eq!(trailing, AttachmentError::Finished);
}

#[test]
fn random_access_decrypts_one_segment_alone() {
    let pt = data(10_000, 15);
    let (blob, p) = seal(&pt, 1024, 10_000, 16);
    let header = AttachmentHeader::decode(&blob[..HEADER_BYTES]).unwrap();
    let n = header.segment_count();
    assert_eq!(n, 10);
    let mut whole = Vec::new();
    for k in (0..n).rev() {
        let r = header.segment_range(k).unwrap();
        let part = decrypt_segment(&p, &blob[..HEADER_BYTES], k, &blob[r.start as usize..r.end as usize]).unwrap();
        whole.splice(0..0, part.iter().copied());
    }
    assert_eq!(whole, pt);
    let r = header.segment_range(3).unwrap();
    let s = &blob[r.start as usize..r.end as usize];
    assert_eq!(decrypt_segment(&p, &blob[..HEADER_BYTES], 4, s), Err(AttachmentError::Tampered { segment: 4 }));
    assert!(matches!(decrypt_segment(&p, &blob[..HEADER_BYTES], 3, &s[1..]), Err(AttachmentError::Truncated { .. })));
    assert_eq!(decrypt_segment(&p, &blob[..HEADER_BYTES], 3, &[s, &[0]].concat()), Err(AttachmentError::TrailingData));
    assert!(matches!(
        decrypt_segment(&p, &blob[..HEADER_BYTES], 10, s),
        Err(AttachmentError::SegmentOutOfRange { .. })
    ));
}

#[test]
fn encryptor_refuses_wrong_sizes_and_names() {
    let mut r = rng(17);
    assert!(matches!(
        Encryptor::new(MAX_ATTACHMENT_BYTES + 1, "a/b", None, &mut r),
        Err(AttachmentError::TooLarge { .. })
    ));
    assert_eq!(
        Encryptor::with_segment_size(1, 1023, "a/b", None, &mut r).unwrap_err(),
        AttachmentError::InvalidSegmentSize(1023)
    );
    for ct in ["", "a\u{7f}", "é", &"x".repeat(256)] {
        assert_eq!(Encryptor::new(1, ct, None, &mut r).unwrap_err(), AttachmentError::InvalidContentType, "{ct:?}");
    }
    for name in ["", ".", "..", "a/b", "a\\b", "a\nb", "\u{85}", &"n".repeat(256)] {
        assert_eq!(
            Encryptor::new(1, "a/b", Some(name), &mut r).unwrap_err(),
            AttachmentError::InvalidFileName,
            "{name:?}"
        );
    }
    let mut e = Encryptor::new(10, "text/plain", None, &mut r).unwrap();
    let mut blob = e.update(b"12345").unwrap();
    assert_eq!(e.update(b"123456"), Err(AttachmentError::TooMuchInput { declared: 10 }));
    assert!(matches!(e.finish_step(), Err(AttachmentError::SizeMismatch { declared: 10, found: 5 })));
    blob.extend_from_slice(&e.update(b"67890").unwrap());
    let (tail, p) = e.finish().unwrap();
    blob.extend_from_slice(&tail);
    assert!(matches!(e_finished(), AttachmentError::Finished));
    assert_eq!(&*decrypt(&p, &blob).unwrap(), b"1234567890");
}

fn e_finished() -> AttachmentError {
    let mut e = Encryptor::new(0, "text/plain", None, &mut rng(99)).unwrap();
    while let FinishStep::Ciphertext(_) = e.finish_step().unwrap() {}
    e.update(b"").unwrap_err()
}

#[test]
fn pointer_encoding_round_trips_and_is_validated() {
    let (_, p) = seal(b"hi", 1024, 2, 18);
    let enc = p.encode();
    assert_eq!(enc.len(), 2 + 32 + 32 + 8 + 1 + "application/pdf".len() + 2 + "memo.pdf".len());
    assert_eq!(AttachmentPointer::decode(&enc).unwrap(), p);
    let shown = format!("{p:?}");
    assert!(shown.contains("redacted") && !shown.contains(&format!("{:?}", &p.key().as_bytes()[..4])));
    for len in 0..enc.len() {
        assert!(AttachmentPointer::decode(&enc[..len]).is_err());
    }
    let mut long = enc.to_vec();
    long.push(0);
    assert!(AttachmentPointer::decode(&long).is_err());
    let mut big = enc.to_vec();
    big[66..74].copy_from_slice(&(MAX_ATTACHMENT_BYTES + 1).to_be_bytes());
    assert!(matches!(AttachmentPointer::decode(&big), Err(AttachmentError::TooLarge { .. })));
    let mut bad = enc.to_vec();
    let name_at = enc.len() - "memo.pdf".len();
    bad[name_at] = b'/';
    assert_eq!(AttachmentPointer::decode(&bad), Err(AttachmentError::InvalidFileName));
    // No file name.
    let (_, q) = encrypt(b"x", "text/plain", None, &mut rng(19)).unwrap();
    let back = AttachmentPointer::decode(&q.encode()).unwrap();
    assert_eq!(back.file_name(), None);
}

#[test]
fn header_is_validated() {
    let (blob, _) = seal(b"abc", 1024, 3, 20);
    let h = &blob[..HEADER_BYTES];
    assert!(AttachmentHeader::decode(h).is_ok());
    let mut bad = h.to_vec();
    bad[1] = 2;
    assert!(matches!(AttachmentHeader::decode(&bad), Err(AttachmentError::Decode(DecodeError::UnsupportedVersion(2)))));
    let mut bad = h.to_vec();
    bad[2..6].copy_from_slice(&(MAX_SEGMENT_SIZE + 1).to_be_bytes());
    assert!(AttachmentHeader::decode(&bad).is_err());
    let mut bad = h.to_vec();
    bad[6..14].copy_from_slice(&1025u64.to_be_bytes()); // not a bucket
    assert!(AttachmentHeader::decode(&bad).is_err());
    assert!(AttachmentHeader::decode(&h[..52]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trips_at_random_sizes_segment_sizes_and_chunkings(
        len in 0usize..12_000,
        seg in MIN_SEGMENT_SIZE..4096u32,
        wchunk in 1usize..5000,
        rchunk in 1usize..5000,
        seed in any::<u64>(),
    ) {
        let pt = data(len, seed as u8);
        let (blob, p) = seal(&pt, seg, wchunk, seed);
        prop_assert_eq!(open(&p, &blob, rchunk).unwrap(), pt);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn every_bit_flip_swap_and_truncation_is_refused(len in 0usize..2200, seg in MIN_SEGMENT_SIZE..1100u32, seed in any::<u64>()) {
        let pt = data(len, seed as u8);
        let (blob, p) = seal(&pt, seg, 1 << 20, seed);
        for bit in 0..blob.len() * 8 {
            let mut t = blob.clone();
            t[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(open(&p, &t, 1 << 20).is_err(), "bit {}", bit);
        }
        for cut in 0..blob.len() {
            prop_assert!(open(&p, &blob[..cut], 1 << 20).is_err(), "cut {}", cut);
        }
        let h = AttachmentHeader::decode(&blob[..HEADER_BYTES]).unwrap();
        let n = h.segment_count();
        for a in 0..n {
            for b in a + 1..n {
                let mut segs: Vec<&[u8]> = (0..n).map(|k| {
                    let r = h.segment_range(k).unwrap();
                    &blob[r.start as usize..r.end as usize]
                }).collect();
                segs.swap(a as usize, b as usize);
                let swapped = [&blob[..HEADER_BYTES], &segs.concat()].concat();
                prop_assert!(open(&p, &swapped, 1 << 20).is_err(), "swap {} {}", a, b);
            }
        }
    }
}
