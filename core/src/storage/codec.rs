//! Little-endian encoding helpers and the typed decode error shared by every on-disk format.
//!
//! Every format (WAL record, SSTable block and footer, manifest record) is decoded through
//! [`Decoder`], which never panics: running out of bytes or meeting a bad value is a
//! [`FormatError`].

/// Why a byte sequence could not be decoded. Decoding never changes state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The stored checksum does not match the bytes.
    #[error("{what}: checksum mismatch (stored {expected:#010x}, computed {got:#010x})")]
    ChecksumMismatch {
        /// Which structure.
        what: &'static str,
        /// Checksum computed over the bytes read.
        got: u32,
        /// Checksum stored beside them.
        expected: u32,
    },
    /// A magic number is not the expected one: this is not the file it claims to be.
    #[error("{what}: bad magic {got:#x}")]
    BadMagic {
        /// Which structure.
        what: &'static str,
        /// The magic found.
        got: u64,
    },
    /// A format version this build does not read.
    #[error("{what}: unsupported format version {got} (this build reads {supported})")]
    UnsupportedVersion {
        /// Which structure.
        what: &'static str,
        /// Version found.
        got: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The bytes end before the structure does.
    #[error("{what}: truncated (needed {needed} more bytes, {available} left)")]
    Truncated {
        /// Which structure.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A field holds a value that is not allowed.
    #[error("{what}: {detail}")]
    Invalid {
        /// Which structure.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// CRC32 (IEEE) of `bytes`, the checksum of every format.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Checks `bytes` against a stored checksum.
pub fn verify_crc(what: &'static str, bytes: &[u8], expected: u32) -> Result<(), FormatError> {
    let got = crc32(bytes);
    if got == expected {
        Ok(())
    } else {
        Err(FormatError::ChecksumMismatch {
            what,
            got,
            expected,
        })
    }
}

/// A cursor over bytes being decoded. Every read is bounds-checked.
#[derive(Debug)]
pub struct Decoder<'a> {
    what: &'static str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Decodes `bytes`, naming `what` in errors.
    pub fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Decoder {
            what,
            bytes,
            pos: 0,
        }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.remaining() < n {
            return Err(FormatError::Truncated {
                what: self.what,
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, FormatError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// An [`FormatError::Invalid`] naming this decoder's structure.
    pub fn invalid(&self, detail: impl Into<String>) -> FormatError {
        FormatError::Invalid {
            what: self.what,
            detail: detail.into(),
        }
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), FormatError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(FormatError::Invalid {
                what: self.what,
                detail: format!("{} trailing bytes", self.remaining()),
            })
        }
    }
}

/// Appends little-endian integers to a byte vector.
pub trait PutLe {
    /// Appends a `u16`.
    fn put_u16(&mut self, v: u16);
    /// Appends a `u32`.
    fn put_u32(&mut self, v: u32);
    /// Appends a `u64`.
    fn put_u64(&mut self, v: u64);
}

impl PutLe for Vec<u8> {
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_reports_truncation_instead_of_panicking() {
        let mut d = Decoder::new("test", &[1, 2, 3]);
        assert_eq!(d.u16().unwrap(), 0x0201);
        let err = d.u32().unwrap_err();
        assert_eq!(
            err,
            FormatError::Truncated {
                what: "test",
                needed: 4,
                available: 1
            }
        );
    }

    #[test]
    fn verify_crc_names_both_checksums() {
        let err = verify_crc("block", b"abc", 0).unwrap_err();
        assert_eq!(
            err,
            FormatError::ChecksumMismatch {
                what: "block",
                got: crc32(b"abc"),
                expected: 0
            }
        );
    }
}
