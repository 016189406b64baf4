//! `std::io` adapters: encrypt into any `Write`, decrypt from any `Read`.

use std::io::{self, Read, Write};

use zeroize::Zeroizing;

use super::{AttachmentError, AttachmentPointer, Decryptor, Encryptor, FinishStep};

fn to_io(e: AttachmentError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Encrypts everything written to it into `inner` (the blob: header, then segments).
/// Call [`Self::finish`] at the end: it writes the padding segments and returns the
/// pointer. An [`AttachmentError`] is reported as an `io::Error` of kind `InvalidData`
/// whose inner error is the `AttachmentError` (`get_ref()?.downcast_ref()`).
#[derive(Debug)]
pub struct EncryptingWriter<W: Write> {
    inner: W,
    encryptor: Encryptor,
}

impl<W: Write> EncryptingWriter<W> {
    /// Wraps `inner`; `encryptor` fixes the size, content type and file name.
    pub fn new(inner: W, encryptor: Encryptor) -> Self {
        EncryptingWriter { inner, encryptor }
    }

    /// Writes the last segments (one at a time: memory stays bounded), flushes, and
    /// returns the inner writer and the pointer. Refuses (as `InvalidData`) a stream
    /// shorter than the declared size.
    pub fn finish(mut self) -> io::Result<(W, AttachmentPointer)> {
        loop {
            match self.encryptor.finish_step().map_err(to_io)? {
                FinishStep::Ciphertext(bytes) => self.inner.write_all(&bytes)?,
                FinishStep::Done(pointer) => {
                    self.inner.flush()?;
                    return Ok((self.inner, pointer));
                }
            }
        }
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let blob = self.encryptor.update(buf).map_err(to_io)?;
        self.inner.write_all(&blob)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How many blob bytes [`DecryptingReader`] reads from its source at a time.
const READ_CHUNK: usize = 1 << 20;

/// Decrypts the blob read from `inner`, yielding plaintext as each segment is
/// authenticated. It returns end-of-file (`Ok(0)`) **only after** the whole blob was
/// read and [`Decryptor::finish`] succeeded (complete, digest matched); a truncated,
/// tampered or substituted blob is an `io::Error` of kind `InvalidData` carrying the
/// [`AttachmentError`]. So `read_to_end` succeeding means the attachment is complete
/// and authentic; bytes read before an error are authentic but must be discarded.
pub struct DecryptingReader<R: Read> {
    inner: R,
    decryptor: Decryptor,
    buf: Vec<u8>,
    out: Zeroizing<Vec<u8>>,
    pos: usize,
    done: bool,
}

impl<R: Read> core::fmt::Debug for DecryptingReader<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DecryptingReader").field("decryptor", &self.decryptor).finish_non_exhaustive()
    }
}

impl<R: Read> DecryptingReader<R> {
    /// Reads the blob `pointer` names from `inner`.
    pub fn new(inner: R, pointer: &AttachmentPointer) -> Self {
        DecryptingReader {
            inner,
            decryptor: Decryptor::new(pointer),
            buf: vec![0; READ_CHUNK],
            out: Zeroizing::new(Vec::new()),
            pos: 0,
            done: false,
        }
    }

    /// Whether the blob was read to its end and verified.
    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// The source.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.out.len() {
                let n = dst.len().min(self.out.len() - self.pos);
                dst[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done || dst.is_empty() {
                return Ok(0);
            }
            let n = self.inner.read(&mut self.buf)?;
            if n == 0 {
                self.decryptor.finish().map_err(to_io)?;
                self.done = true;
                return Ok(0);
            }
            self.out = self.decryptor.update(&self.buf[..n]).map_err(to_io)?;
            self.pos = 0;
        }
    }
}
