//! The two 1:1 message layouts: the prekey message and the ratchet message.
//!
//! ```text
//! PreKeyMessage = 0x03 || 0x02 || PreKeyHeader || RatchetHeader || ciphertext
//! RatchetMessage = 0x04 || 0x02 || RatchetHeader || ciphertext
//! ```
//! The AEAD authenticates the session AD followed by every byte before the ciphertext,
//! type byte included, so a message cannot be re-labelled as the other type.

use crate::handshake::PreKeyHeader;
use crate::keys::KeyError;
use crate::ratchet::{check_ciphertext_len, RatchetHeader, MAX_PADDED_BYTES, RATCHET_HEADER_BYTES};
use crate::wire::{type_byte, DecodeError, Reader};

/// The largest valid 1:1 message (a prekey message with a maximal body). Anything
/// larger is refused before any parsing.
pub const MAX_MESSAGE_BYTES: usize =
    2 + PreKeyHeader::MAX_BYTES + RATCHET_HEADER_BYTES + MAX_PADDED_BYTES + crate::crypto::AEAD_TAG_BYTES;

/// The kind of a 1:1 message, read from its type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A session-starting message (type 0x03).
    PreKey,
    /// A message on an established session (type 0x04).
    Ratchet,
}

/// A parsed incoming message; borrowed from the input.
#[derive(Debug)]
pub(crate) struct Incoming<'a> {
    pub(crate) prekey: Option<PreKeyHeader>,
    pub(crate) header: RatchetHeader,
    /// Every byte before the ciphertext.
    pub(crate) prefix: &'a [u8],
    pub(crate) ciphertext: &'a [u8],
}

/// Why an incoming message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    Decode(DecodeError),
    Key(KeyError),
}

impl From<DecodeError> for ParseError {
    fn from(e: DecodeError) -> Self {
        ParseError::Decode(e)
    }
}

impl From<KeyError> for ParseError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Decode(d) => ParseError::Decode(d),
            other => ParseError::Key(other),
        }
    }
}

/// Reads the kind of a message from its first byte without parsing the rest.
pub fn message_kind(bytes: &[u8]) -> Option<MessageKind> {
    match bytes.first() {
        Some(&type_byte::PREKEY_MESSAGE) => Some(MessageKind::PreKey),
        Some(&type_byte::RATCHET_MESSAGE) => Some(MessageKind::Ratchet),
        _ => None,
    }
}

impl<'a> Incoming<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLarge { len: bytes.len(), max: MAX_MESSAGE_BYTES }.into());
        }
        let mut r = match message_kind(bytes) {
            Some(MessageKind::PreKey) => Reader::open(bytes, type_byte::PREKEY_MESSAGE, MAX_MESSAGE_BYTES)?,
            Some(MessageKind::Ratchet) => Reader::open(bytes, type_byte::RATCHET_MESSAGE, MAX_MESSAGE_BYTES)?,
            None => {
                return Err(match bytes.first() {
                    None => DecodeError::Empty,
                    Some(&found) => DecodeError::WrongType { expected: type_byte::RATCHET_MESSAGE, found },
                }
                .into())
            }
        };
        let prekey = match message_kind(bytes) {
            Some(MessageKind::PreKey) => Some(PreKeyHeader::read(&mut r)?),
            _ => None,
        };
        let header = RatchetHeader::read(&mut r)?;
        let split = r.position();
        let ciphertext = r.rest();
        check_ciphertext_len(ciphertext.len())?;
        let prefix = r.input().get(..split).ok_or(DecodeError::Truncated)?;
        Ok(Incoming { prekey, header, prefix, ciphertext })
    }
}
