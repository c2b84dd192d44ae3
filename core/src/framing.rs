//! The frame every message on ringstore's sockets travels in: one 12-byte header, then a
//! postcard payload. Peer envelopes ([`crate::wire`], magic `"RS"`), UI socket frames
//! ([`crate::ui`], `"RU"`) and the native node's peer handshake (`"RH"`) are three
//! [`FrameFormat`]s of this one codec, so the checks a receiver makes before it trusts a
//! payload are written once.
//!
//! ```text
//! offset  size  field
//! 0       2     magic     FrameFormat::magic
//! 2       1     version   FrameFormat::version; a receiver refuses other versions
//! 3       1     tag       FrameFormat::tag: reserved (written 0, not checked), or a byte the
//!                         receiver checks (the UI socket's direction)
//! 4       4     len       u32 LE: payload bytes, at most FrameFormat::payload_bytes_max
//! 8       4     crc32     u32 LE over the payload
//! 12      len   payload   the message, encoded with postcard (serde, varint integers)
//! ```
//!
//! Decoding checks magic, version, tag, the bound and the checksum, in that order, before it
//! looks at the payload (so an announced length is never trusted before it is bounded), and
//! every failure is a [`FrameError`], never a panic. Each protocol wraps that error in its own
//! type ([`crate::wire::WireError`], [`crate::ui::UiError`]) so a caller knows which socket's
//! frame was bad.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes of header before the payload.
pub const HEADER_BYTES: usize = 12;

/// What byte 3 of the header holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// Reserved: written as zero, not checked (a later version may use it).
    Reserved,
    /// This value, which the receiver requires (the UI socket's direction).
    Checked(u8),
}

impl Tag {
    fn byte(self) -> u8 {
        match self {
            Tag::Reserved => 0,
            Tag::Checked(b) => b,
        }
    }
}

/// One frame format: its magic, version, tag byte and payload bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameFormat {
    /// The first two bytes.
    pub magic: [u8; 2],
    /// The version this build writes and the only one it accepts.
    pub version: u8,
    /// Byte 3.
    pub tag: Tag,
    /// The largest payload written or accepted.
    pub payload_bytes_max: usize,
}

/// Why bytes are not a frame of the expected format. Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than a header, or than it announces.
    #[error("truncated frame: {got} bytes, needed {needed}")]
    Truncated {
        /// Bytes present.
        got: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// Not a frame of this format.
    #[error("bad magic {0:?}")]
    BadMagic([u8; 2]),
    /// A version this build does not speak.
    #[error("unsupported version {got} (this build speaks {speaks})")]
    UnsupportedVersion {
        /// The version received.
        got: u8,
        /// The one this build speaks.
        speaks: u8,
    },
    /// A checked tag byte with another value (on the UI socket: a frame meant for the other
    /// end).
    #[error("a frame for the other end (tag {got}, expected {expected})")]
    WrongTag {
        /// The byte received.
        got: u8,
        /// The one expected.
        expected: u8,
    },
    /// A payload over the bound.
    #[error("frame of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Announced (or encoded) length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The payload does not match its checksum.
    #[error("checksum mismatch: stored {expected:#010x}, computed {got:#010x}")]
    ChecksumMismatch {
        /// Computed.
        got: u32,
        /// Stored.
        expected: u32,
    },
    /// The payload is not a valid message.
    #[error("undecodable payload: {0}")]
    Payload(String),
    /// Bytes after the announced payload, or after the message within it.
    #[error("{0} trailing bytes after the frame")]
    Trailing(usize),
}

/// Lets postcard append to a borrowed buffer.
struct Appender<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Appender<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl FrameFormat {
    /// Encodes `msg` into one frame. Fails only if it is over the bound.
    pub fn encode<T: Serialize + ?Sized>(&self, msg: &T) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(msg, &mut out)?;
        Ok(out)
    }

    /// Appends `msg`'s frame to `out`, encoding the payload in place (no intermediate buffer),
    /// so a transport can pack several frames into one write. On an error `out` is left as it
    /// was.
    pub fn encode_into<T: Serialize + ?Sized>(
        &self,
        msg: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        let start = out.len();
        out.extend_from_slice(&self.magic);
        out.push(self.version);
        out.push(self.tag.byte());
        out.extend_from_slice(&[0; 8]);
        if let Err(e) = postcard::to_extend(msg, Appender(out)) {
            out.truncate(start);
            return Err(FrameError::Payload(e.to_string()));
        }
        let len = out.len() - start - HEADER_BYTES;
        if len > self.payload_bytes_max {
            out.truncate(start);
            return Err(FrameError::TooLarge {
                len,
                max: self.payload_bytes_max,
            });
        }
        let crc = crc32fast::hash(&out[start + HEADER_BYTES..]);
        out[start + 4..start + 8].copy_from_slice(&(len as u32).to_le_bytes());
        out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    /// Decodes one frame that must span all of `bytes`.
    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, FrameError> {
        let (msg, used) = self.decode_prefix(bytes)?;
        if used < bytes.len() {
            return Err(FrameError::Trailing(bytes.len() - used));
        }
        Ok(msg)
    }

    /// Decodes the frame at the start of `bytes`, which may be followed by more frames;
    /// returns the message and the bytes it took.
    pub fn decode_prefix<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
    ) -> Result<(T, usize), FrameError> {
        let (payload, used) = self.check(bytes)?;
        let (msg, rest) = postcard::take_from_bytes::<T>(payload)
            .map_err(|e| FrameError::Payload(e.to_string()))?;
        if !rest.is_empty() {
            return Err(FrameError::Trailing(rest.len()));
        }
        Ok((msg, used))
    }

    /// Checks the header of the frame at the start of `bytes` and its payload's checksum;
    /// returns the payload and the frame's length.
    pub fn check<'a>(&self, bytes: &'a [u8]) -> Result<(&'a [u8], usize), FrameError> {
        if bytes.len() < HEADER_BYTES {
            return Err(FrameError::Truncated {
                got: bytes.len(),
                needed: HEADER_BYTES,
            });
        }
        let magic = [bytes[0], bytes[1]];
        if magic != self.magic {
            return Err(FrameError::BadMagic(magic));
        }
        if bytes[2] != self.version {
            return Err(FrameError::UnsupportedVersion {
                got: bytes[2],
                speaks: self.version,
            });
        }
        if let Tag::Checked(expected) = self.tag
            && bytes[3] != expected
        {
            return Err(FrameError::WrongTag {
                got: bytes[3],
                expected,
            });
        }
        let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        if len > self.payload_bytes_max {
            return Err(FrameError::TooLarge {
                len,
                max: self.payload_bytes_max,
            });
        }
        let needed = HEADER_BYTES + len;
        if bytes.len() < needed {
            return Err(FrameError::Truncated {
                got: bytes.len(),
                needed,
            });
        }
        let expected = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let payload = &bytes[HEADER_BYTES..needed];
        let got = crc32fast::hash(payload);
        if got != expected {
            return Err(FrameError::ChecksumMismatch { got, expected });
        }
        Ok((payload, needed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: FrameFormat = FrameFormat {
        magic: *b"TS",
        version: 3,
        tag: Tag::Reserved,
        payload_bytes_max: 64,
    };
    const TAGGED: FrameFormat = FrameFormat {
        tag: Tag::Checked(7),
        ..PLAIN
    };

    #[test]
    fn the_header_is_as_documented() {
        let bytes = TAGGED.encode(&(5u8, "abc")).unwrap();
        assert_eq!(&bytes[0..4], b"TS\x03\x07");
        assert_eq!(bytes[4..8], 5u32.to_le_bytes(), "u8 and a 3-byte string");
        assert_eq!(bytes[8..12], crc32fast::hash(&bytes[12..]).to_le_bytes());
        assert_eq!(&bytes[12..], b"\x05\x03abc");
        assert_eq!(
            PLAIN.encode(&5u8).unwrap()[3],
            0,
            "reserved is written as zero"
        );
    }

    #[test]
    fn every_check_has_its_error() {
        let good = TAGGED.encode(&(5u8, "abc")).unwrap();
        let with = |i: usize, b: u8| {
            let mut bad = good.clone();
            bad[i] = b;
            TAGGED.decode::<(u8, String)>(&bad)
        };
        assert_eq!(with(0, b'X'), Err(FrameError::BadMagic(*b"XS")));
        assert_eq!(
            with(2, 4),
            Err(FrameError::UnsupportedVersion { got: 4, speaks: 3 })
        );
        assert_eq!(
            with(3, 1),
            Err(FrameError::WrongTag {
                got: 1,
                expected: 7
            })
        );
        assert_eq!(with(4, 65), Err(FrameError::TooLarge { len: 65, max: 64 }));
        assert_eq!(
            with(4, 6),
            Err(FrameError::Truncated {
                got: good.len(),
                needed: 18
            })
        );
        assert!(matches!(
            with(13, 9),
            Err(FrameError::ChecksumMismatch { .. })
        ));
        assert_eq!(
            TAGGED.decode::<(u8, String)>(&good[..5]),
            Err(FrameError::Truncated {
                got: 5,
                needed: HEADER_BYTES
            })
        );
        // A reserved tag is not checked.
        let mut plain = PLAIN.encode(&5u8).unwrap();
        plain[3] = 9;
        assert_eq!(PLAIN.decode::<u8>(&plain), Ok(5));
    }

    #[test]
    fn a_payload_is_decoded_whole_and_nothing_follows_a_whole_frame() {
        let bytes = PLAIN.encode(&(5u8, 6u8)).unwrap();
        assert_eq!(PLAIN.decode::<u8>(&bytes), Err(FrameError::Trailing(1)));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            PLAIN.decode::<(u8, u8)>(&long),
            Err(FrameError::Trailing(1))
        );
        assert_eq!(PLAIN.decode_prefix::<(u8, u8)>(&long), Ok(((5, 6), 14)));
        assert!(matches!(
            PLAIN.decode::<String>(&PLAIN.encode(&[0xffu8; 3]).unwrap()),
            Err(FrameError::Payload(_))
        ));
    }

    #[test]
    fn the_encoder_refuses_what_the_decoder_would() {
        let mut out = vec![1, 2];
        assert_eq!(
            PLAIN.encode_into(&vec![0u8; 64], &mut out),
            Err(FrameError::TooLarge { len: 65, max: 64 })
        );
        assert_eq!(out, [1, 2], "left as it was");
        PLAIN.encode_into(&vec![0u8; 63], &mut out).unwrap();
        assert_eq!(out.len(), 2 + HEADER_BYTES + 64);
    }
}
