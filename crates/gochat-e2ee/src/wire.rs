//! One bounded reader and writer for every byte layout in the protocol.
//!
//! Every message, bundle and snapshot starts with a one-byte *type* and a one-byte
//! *version*. The type byte decides which decoder runs, so a message of one type can
//! never be parsed as another (no protocol confusion). Every read is bounds-checked and
//! every decoder must consume its input exactly: trailing bytes are an error.
//!
//! All integers are big-endian. The layouts themselves are specified in `docs/protocol.md`.

use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

/// The version of the layouts that have not changed since the first release: identity
/// keys, prekey records and bundles (version 1; their bytes feed fingerprints and
/// signatures, so they keep it).
pub const WIRE_VERSION: u8 = 0x01;
/// The version of the 1:1 message layouts (prekey and ratchet messages): version 2 added
/// the sender epoch to the ratchet header and moved message encryption to AES-256-GCM-SIV.
pub const MESSAGE_VERSION: u8 = 0x02;
/// The version of retry requests: version 2 added the request time.
pub const RETRY_REQUEST_VERSION: u8 = 0x02;
/// The version of snapshots: version 2 state holds pinned identities, sender epochs,
/// dropped-chain records and recipient-bound retry windows; version 3 adds groups and
/// channels; version 4 adds the trust anchors (certificate roots, revocation lists, the
/// require-certificate flag) and then the device lists, after everything else. Versions 2
/// and 3 are still read (their state ends before the sections they lack).
pub const SNAPSHOT_VERSION: u8 = 0x04;
/// The older snapshot versions still read.
pub const SNAPSHOT_VERSIONS_READ_ALSO: [u8; 2] = [0x02, 0x03];

/// The one version this library writes and reads for objects of `type_byte`.
pub const fn version_of(type_byte: u8) -> u8 {
    match type_byte {
        type_byte::PREKEY_MESSAGE | type_byte::RATCHET_MESSAGE => MESSAGE_VERSION,
        type_byte::RETRY_REQUEST => RETRY_REQUEST_VERSION,
        type_byte::SNAPSHOT => SNAPSHOT_VERSION,
        _ => WIRE_VERSION,
    }
}

/// Type bytes: the first byte of every encoded object.
pub mod type_byte {
    /// A standalone [`IdentityKey`](crate::keys::IdentityKey).
    pub const IDENTITY_KEY: u8 = 0x01;
    /// A [`PreKeyBundle`](crate::keys::PreKeyBundle).
    pub const PREKEY_BUNDLE: u8 = 0x02;
    /// A PQXDH prekey message (session-starting message).
    pub const PREKEY_MESSAGE: u8 = 0x03;
    /// A Double Ratchet message on an established session.
    pub const RATCHET_MESSAGE: u8 = 0x04;
    /// A signed retry request ("I could not decrypt, start over").
    pub const RETRY_REQUEST: u8 = 0x05;
    /// An encrypted snapshot of a stateful object.
    pub const SNAPSHOT: u8 = 0x10;
    /// A signed one-time prekey record (for upload to a server).
    pub const ONE_TIME_PREKEY: u8 = 0x06;
    /// A signed ML-KEM-1024 prekey record (for upload to a server).
    pub const PQ_PREKEY: u8 = 0x07;
    /// A signed X25519 signed-prekey record (for upload to a server).
    pub const SIGNED_PREKEY: u8 = 0x08;
    /// A signed group membership change (add, remove, replace).
    pub const GROUP_COMMIT: u8 = 0x21;
    /// A signed full group state for a new member (and for group creation).
    pub const GROUP_WELCOME: u8 = 0x22;
    /// A sender-key distribution (only ever inside a pairwise session).
    pub const GROUP_DISTRIBUTION: u8 = 0x23;
    /// A group message encrypted with a sender key and signed.
    pub const GROUP_MESSAGE: u8 = 0x24;
    /// The header of an encrypted attachment (the first bytes of the blob).
    pub const ATTACHMENT: u8 = 0x40;
    /// An attachment pointer (key, digest, size, content type, file name).
    pub const ATTACHMENT_POINTER: u8 = 0x41;
    /// A safety number's scannable (QR) payload.
    pub const SAFETY_NUMBER_QR: u8 = 0x50;
    /// A user's device list, signed by the user's master key.
    pub const DEVICE_LIST: u8 = 0x55;
    /// A master key's endorsement of one device.
    pub const DEVICE_ENDORSEMENT: u8 = 0x56;
    /// A provisioning offer: the QR code a new device shows to be linked (15.9).
    pub const PROVISIONING_OFFER: u8 = 0x57;
    /// A provisioning message: the phone's sealed link payload for one offer (15.9).
    pub const PROVISIONING_MESSAGE: u8 = 0x58;
    /// A root's certificate for an agency key (domains, validity).
    pub const AGENCY_CERTIFICATE: u8 = 0x51;
    /// An agency's certificate for a user device's identity key.
    pub const DEVICE_CERTIFICATE: u8 = 0x52;
    /// A device certificate with its agency certificate.
    pub const CERTIFICATE_CHAIN: u8 = 0x53;
    /// A signed list of revoked certificate serials of one issuer.
    pub const REVOCATION_LIST: u8 = 0x54;
}

/// Why a byte string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the layout was complete.
    #[error("input is truncated")]
    Truncated,
    /// The layout was complete but bytes were left over.
    #[error("input has {0} trailing bytes")]
    TrailingBytes(usize),
    /// The input was empty.
    #[error("input is empty")]
    Empty,
    /// The type byte names another kind of object (or none at all).
    #[error("unexpected type byte 0x{found:02x} (expected 0x{expected:02x})")]
    WrongType {
        /// The type byte the decoder expected.
        expected: u8,
        /// The type byte found in the input.
        found: u8,
    },
    /// The version byte is not one this library reads.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// The input is longer than the documented maximum for its type.
    #[error("input of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The documented maximum.
        max: usize,
    },
    /// A field holds a value outside its documented range (for example a flag that is
    /// neither 0 nor 1).
    #[error("invalid value in field `{0}`")]
    InvalidValue(&'static str),
}

/// A headerless state encoding of exactly `len` bytes in a buffer wiped on drop.
pub(crate) fn encode_state(len: usize, write: impl FnOnce(&mut Writer)) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::raw(len);
    write(&mut w);
    w.into_secret_bytes()
}

/// Decodes a headerless state encoding with `read`, refusing trailing bytes.
pub(crate) fn decode_state<T>(
    bytes: &[u8],
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::raw(bytes);
    let out = read(&mut r)?;
    r.finish()?;
    Ok(out)
}

/// A bounds-checked cursor over an input slice.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf`, checking its type and version bytes and its total size.
    pub(crate) fn open(buf: &'a [u8], expected_type: u8, max_len: usize) -> Result<Self, DecodeError> {
        if buf.is_empty() {
            return Err(DecodeError::Empty);
        }
        if buf.len() > max_len {
            return Err(DecodeError::TooLarge { len: buf.len(), max: max_len });
        }
        let mut r = Reader { buf, pos: 0 };
        r.header(expected_type)?;
        Ok(r)
    }

    /// Reads a type byte and a version byte, refusing any other type or version.
    pub(crate) fn header(&mut self, expected_type: u8) -> Result<(), DecodeError> {
        let found = self.u8()?;
        if found != expected_type {
            return Err(DecodeError::WrongType { expected: expected_type, found });
        }
        let version = self.u8()?;
        let older_snapshot = expected_type == type_byte::SNAPSHOT && SNAPSHOT_VERSIONS_READ_ALSO.contains(&version);
        if version != version_of(expected_type) && !older_snapshot {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        Ok(())
    }

    /// Reads a raw (headerless) layout, such as the inside of a snapshot.
    pub(crate) fn raw(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The whole input.
    pub(crate) fn input(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A flag byte: 0 is false, 1 is true, anything else is refused.
    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue(field)),
        }
    }

    /// A `u32` length followed by that many bytes, refused above `max`.
    pub(crate) fn var_bytes(&mut self, max: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError::InvalidValue(field));
        }
        self.bytes(len)
    }

    /// A count (`u32`) for a following list, refused above `max`.
    pub(crate) fn count(&mut self, max: usize, field: &'static str) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(DecodeError::InvalidValue(field));
        }
        Ok(n)
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        out
    }

    /// Whether the whole input has been consumed.
    pub(crate) fn rest_is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Succeeds only if the whole input has been consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// An append-only encoder; the mirror image of [`Reader`].
///
/// A writer may hold secret state (the plaintext of a snapshot, the input of
/// `state_digest`), so it never leaves a freed copy of what it holds: when it outgrows
/// its buffer it copies the bytes into a larger one and wipes the old one before freeing
/// it (a plain `Vec` would hand the old block back to the allocator as it is), and a
/// writer dropped before [`Writer::into_bytes`] wipes its buffer. What `into_bytes`
/// returns is the caller's to wipe: secret encodings go through
/// [`Writer::into_secret_bytes`].
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl core::fmt::Debug for Writer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Writer").field("len", &self.buf.len()).finish_non_exhaustive()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

/// The smallest buffer a growing writer allocates.
const MIN_GROWTH: usize = 64;

impl Writer {
    /// Starts an object with its type and version bytes.
    pub(crate) fn with_header(type_byte: u8, capacity: usize) -> Self {
        let mut w = Writer { buf: Vec::with_capacity(capacity.max(2)) };
        w.u8(type_byte).u8(version_of(type_byte));
        w
    }

    /// Starts a headerless layout.
    pub(crate) fn raw(capacity: usize) -> Self {
        Writer { buf: Vec::with_capacity(capacity) }
    }

    /// Makes room for `n` more bytes. Growing moves the bytes into a new buffer (at
    /// least twice as large) and wipes the old one before it is freed.
    fn reserve(&mut self, n: usize) {
        let needed = self.buf.len().saturating_add(n);
        if needed <= self.buf.capacity() {
            return;
        }
        let mut grown = Vec::with_capacity(needed.max(self.buf.capacity().saturating_mul(2)).max(MIN_GROWTH));
        grown.extend_from_slice(&self.buf);
        // Wipes the contents and the spare capacity: the whole old block.
        self.buf.zeroize();
        self.buf = grown;
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn flag(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.reserve(v.len());
        self.buf.extend_from_slice(v);
        self
    }

    /// A `u32` length prefix followed by the bytes.
    pub(crate) fn var_bytes(&mut self, v: &[u8]) -> &mut Self {
        // Lengths are bounded far below u32::MAX by every caller (see limits).
        self.u32(v.len() as u32);
        self.bytes(v)
    }

    /// The encoding (of a public layout).
    pub(crate) fn into_bytes(mut self) -> Vec<u8> {
        core::mem::take(&mut self.buf)
    }

    /// The encoding of secret state, wiped when dropped.
    pub(crate) fn into_secret_bytes(self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_wrong_type_version_size_and_trailing_bytes() {
        assert_eq!(Reader::open(&[], 1, 10).unwrap_err(), DecodeError::Empty);
        assert_eq!(Reader::open(&[2, 1], 1, 10).unwrap_err(), DecodeError::WrongType { expected: 1, found: 2 });
        assert_eq!(Reader::open(&[1, 9], 1, 10).unwrap_err(), DecodeError::UnsupportedVersion(9));
        assert_eq!(Reader::open(&[1; 11], 1, 10).unwrap_err(), DecodeError::TooLarge { len: 11, max: 10 });
        let mut r = Reader::open(&[1, 1, 0, 0, 0, 7, 9], 1, 10).unwrap();
        assert_eq!(r.u32().unwrap(), 7);
        assert_eq!(r.finish().unwrap_err(), DecodeError::TrailingBytes(1));
    }

    #[test]
    fn reader_refuses_bad_flags_and_oversized_lengths() {
        let mut r = Reader::raw(&[2]);
        assert_eq!(r.flag("f").unwrap_err(), DecodeError::InvalidValue("f"));
        let mut r = Reader::raw(&[0, 0, 0, 5, 1, 2]);
        assert_eq!(r.var_bytes(4, "v").unwrap_err(), DecodeError::InvalidValue("v"));
        let mut r = Reader::raw(&[0, 0, 0, 3, 1, 2]);
        assert_eq!(r.var_bytes(4, "v").unwrap_err(), DecodeError::Truncated);
    }

    #[test]
    fn a_growing_writer_keeps_every_byte() {
        let mut w = Writer::raw(0);
        let mut expected = Vec::new();
        for i in 0..1000u32 {
            w.u32(i).u8(i as u8);
            expected.extend_from_slice(&i.to_be_bytes());
            expected.push(i as u8);
        }
        assert_eq!(&*w.into_secret_bytes(), &expected[..]);
        assert_eq!(Writer::with_header(9, 0).into_bytes(), [9, WIRE_VERSION]);
    }

    #[test]
    fn writer_and_reader_round_trip() {
        let mut w = Writer::with_header(7, 0);
        w.u8(1).u16(2).u32(3).u64(4).flag(true).var_bytes(b"abc").bytes(b"z");
        let bytes = w.into_bytes();
        let mut r = Reader::open(&bytes, 7, 100).unwrap();
        assert_eq!((r.u8().unwrap(), r.u16().unwrap(), r.u32().unwrap(), r.u64().unwrap()), (1, 2, 3, 4));
        assert!(r.flag("f").unwrap());
        assert_eq!(r.var_bytes(10, "v").unwrap(), b"abc");
        assert_eq!(r.rest(), b"z");
        r.finish().unwrap();
    }
}
