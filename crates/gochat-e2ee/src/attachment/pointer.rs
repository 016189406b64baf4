//! The attachment pointer (type 0x41, version 0x01): what a 1:1 or group message carries
//! so that its recipients can fetch and decrypt a blob.

use zeroize::Zeroizing;

use super::{
    AttachmentError, AttachmentKey, MAX_ATTACHMENT_BYTES, MAX_CONTENT_TYPE_BYTES, MAX_FILE_NAME_BYTES,
    MAX_POINTER_BYTES,
};
use crate::wire::{type_byte, DecodeError, Reader, Writer};

/// Everything a recipient needs to decrypt one blob: `0x41 || 0x01 || key [32] ||
/// digest [32] || size u64 || content_type_len u8 || content_type ||
/// file_name_len u16 || file_name`. A secret: it holds the key, so it travels only
/// inside end-to-end encrypted messages, is wiped on drop and never printed.
///
/// The server never sees it; it stores the blob (and learns only its length, that is
/// the padded size class) under a locator the app chooses and sends beside the pointer.
#[derive(Clone, PartialEq, Eq)]
pub struct AttachmentPointer {
    key: AttachmentKey,
    digest: [u8; 32],
    size: u64,
    content_type: String,
    file_name: Option<String>,
}

impl core::fmt::Debug for AttachmentPointer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AttachmentPointer")
            .field("key", &self.key)
            .field("digest", &self.digest)
            .field("size", &self.size)
            .field("content_type", &self.content_type)
            .field("file_name", &self.file_name)
            .finish()
    }
}

/// A content type is 1..=255 bytes of printable ASCII (0x20..=0x7e), e.g. `image/jpeg`.
pub(crate) fn check_content_type(ct: &str) -> Result<(), AttachmentError> {
    let ok = !ct.is_empty() && ct.len() <= MAX_CONTENT_TYPE_BYTES && ct.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AttachmentError::InvalidContentType)
    }
}

/// A file name is 1..=255 bytes of UTF-8 without control characters (C0, DEL, C1),
/// without `/` or `\`, and is not `.` or `..`: an app may save it as given without a
/// path traversal.
pub(crate) fn check_file_name(name: &str) -> Result<(), AttachmentError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_FILE_NAME_BYTES
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c.is_control() || c == '/' || c == '\\');
    if ok {
        Ok(())
    } else {
        Err(AttachmentError::InvalidFileName)
    }
}

impl AttachmentPointer {
    pub(crate) fn new(
        key: AttachmentKey,
        digest: [u8; 32],
        size: u64,
        content_type: String,
        file_name: Option<String>,
    ) -> Self {
        AttachmentPointer { key, digest, size, content_type, file_name }
    }

    /// The blob's key (secret).
    pub fn key(&self) -> &AttachmentKey {
        &self.key
    }

    /// SHA-256 of the whole blob (header and every segment).
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The plaintext size in bytes (before padding).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The content type (MIME type), e.g. `audio/ogg`.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The file name, if the sender gave one (safe to use as a file name: no path
    /// separators, no control characters, not `.` or `..`).
    pub fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }

    /// The encoding (secret: it holds the key; wiped on drop).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let name = self.file_name.as_deref().unwrap_or("");
        let len = 2 + 32 + 32 + 8 + 1 + self.content_type.len() + 2 + name.len();
        let mut w = Writer::with_header(type_byte::ATTACHMENT_POINTER, len);
        w.bytes(self.key.as_bytes())
            .bytes(&self.digest)
            .u64(self.size)
            .u8(self.content_type.len() as u8)
            .bytes(self.content_type.as_bytes())
            .u16(name.len() as u16)
            .bytes(name.as_bytes());
        w.into_secret_bytes()
    }

    /// Decodes a pointer, refusing another type or version, more than
    /// [`MAX_POINTER_BYTES`], a size over [`MAX_ATTACHMENT_BYTES`] (`TooLarge`), an
    /// invalid content type or file name, and trailing bytes. A file name of length 0
    /// means none.
    pub fn decode(bytes: &[u8]) -> Result<Self, AttachmentError> {
        let mut r = Reader::open(bytes, type_byte::ATTACHMENT_POINTER, MAX_POINTER_BYTES)?;
        let key = AttachmentKey::from_bytes(r.array()?);
        let digest = r.array()?;
        let size = r.u64()?;
        if size > MAX_ATTACHMENT_BYTES {
            return Err(AttachmentError::TooLarge { size });
        }
        let ct_len = usize::from(r.u8()?);
        let content_type =
            core::str::from_utf8(r.bytes(ct_len)?).map_err(|_| AttachmentError::InvalidContentType)?.to_owned();
        check_content_type(&content_type)?;
        let name_len = usize::from(r.u16()?);
        if name_len > MAX_FILE_NAME_BYTES {
            return Err(DecodeError::InvalidValue("file name length").into());
        }
        let file_name = match name_len {
            0 => None,
            n => {
                let name = core::str::from_utf8(r.bytes(n)?).map_err(|_| AttachmentError::InvalidFileName)?;
                check_file_name(name)?;
                Some(name.to_owned())
            }
        };
        r.finish()?;
        Ok(AttachmentPointer { key, digest, size, content_type, file_name })
    }
}
