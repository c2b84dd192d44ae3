//! The peer handshake: the first three WebSocket messages of every node-to-node connection.
//!
//! ```text
//! dialer (client)                                   listener (server)
//!      ◄──────── Hello { node, nonce_s, n } ─────────────  a fresh 16-byte nonce
//!      ───────── Auth { node, address, nonce_c, n, mac_c } ►  checks mac_c, n
//!      ◄──────── Welcome { mac_s }  or  Refused { reason } ─
//! ```
//!
//! Each side learns the other's [`NodeId`] (the dialer of a `--join ADDR` learns the seed's
//! id here) and the dialer's advertised address. With a cluster secret, each side proves it
//! knows the secret without sending it: `mac_c = HMAC-SHA256(secret, "ringstore-peer-v1 client"
//! ‖ nonce_s ‖ nonce_c ‖ client id (u32 LE) ‖ server id (u32 LE))`, and `mac_s` the same with
//! "server", the nonces and the ids swapped. Fresh nonces on both sides mean a recorded
//! handshake cannot be replayed. A side without a secret sends no MAC, and a side with one
//! refuses a peer that sends none. Both sides also refuse a peer with another N (replica count).
//!
//! # Frame layout (one binary WebSocket message each)
//!
//! ```text
//! offset  size  field
//! 0       2     magic     "RH"
//! 2       1     version   HANDSHAKE_VERSION; other versions are refused
//! 3       1     reserved  zero
//! 4       4     len       u32 LE: payload bytes, at most HANDSHAKE_BYTES_MAX
//! 8       4     crc32     u32 LE over the payload
//! 12      len   payload   a `Handshake`, encoded with postcard
//! ```

use hmac::{Hmac, Mac};
use ringstore_core::NodeId;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The version of the handshake.
pub const HANDSHAKE_VERSION: u8 = 1;
/// The largest handshake payload accepted.
pub const HANDSHAKE_BYTES_MAX: usize = 4096;
/// How long either side waits for the other's next handshake message.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
const MAGIC: [u8; 2] = *b"RH";
const HEADER_BYTES: usize = 12;

/// A nonce: 16 random bytes.
pub type Nonce = [u8; 16];
/// An HMAC-SHA256 tag.
pub type Tag = [u8; 32];

/// One handshake message. See the module docs for the exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Handshake {
    /// Listener → dialer, first.
    Hello {
        /// The listener's id.
        node: NodeId,
        /// The listener's nonce.
        nonce: Nonce,
        /// The listener's replica count.
        n: u32,
    },
    /// Dialer → listener.
    Auth {
        /// The dialer's id.
        node: NodeId,
        /// Where the dialer can be reached (`host:port`).
        address: String,
        /// The dialer's nonce.
        nonce: Nonce,
        /// The dialer's replica count.
        n: u32,
        /// Proof of the secret, if the dialer has one.
        mac: Option<Tag>,
    },
    /// Listener → dialer: accepted.
    Welcome {
        /// The listener's proof of the secret, if it has one.
        mac: Option<Tag>,
    },
    /// Either side: refused, and why. The connection is closed after it.
    Refused {
        /// Why.
        reason: String,
    },
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// The bytes are not a handshake frame.
    #[error("bad handshake frame: {0}")]
    BadFrame(String),
    /// The peer does not prove the cluster secret (or proves another one).
    #[error("wrong or missing cluster secret")]
    BadSecret,
    /// The peer runs with another replica count.
    #[error("the peer runs with N={theirs}, this node with N={ours}")]
    OtherN {
        /// This node's N.
        ours: u32,
        /// The peer's.
        theirs: u32,
    },
    /// The peer said something out of turn.
    #[error("unexpected handshake message: {0}")]
    Unexpected(String),
    /// The peer refused the connection.
    #[error("refused by the peer: {0}")]
    Refused(String),
    /// The dialer expected another node at that address.
    #[error("expected {expected} at that address, found {found}")]
    WrongNode {
        /// Who was expected.
        expected: NodeId,
        /// Who answered.
        found: NodeId,
    },
    /// The connection failed or timed out during the handshake.
    #[error("connection failed during the handshake: {0}")]
    Io(String),
}

impl Handshake {
    /// Encodes the message into a frame.
    pub fn encode(&self) -> Vec<u8> {
        let payload = postcard::to_allocvec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
        out.extend_from_slice(&MAGIC);
        out.push(HANDSHAKE_VERSION);
        out.push(0);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// Decodes one frame spanning all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Handshake, HandshakeError> {
        let bad = |why: String| HandshakeError::BadFrame(why);
        if bytes.len() < HEADER_BYTES {
            return Err(bad(format!("{} bytes, shorter than a header", bytes.len())));
        }
        if bytes[0..2] != MAGIC {
            return Err(bad("bad magic".into()));
        }
        if bytes[2] != HANDSHAKE_VERSION {
            return Err(bad(format!("version {} is not spoken here", bytes[2])));
        }
        let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        if len > HANDSHAKE_BYTES_MAX || HEADER_BYTES + len != bytes.len() {
            return Err(bad(format!("length {len} does not match the frame")));
        }
        let expected = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let payload = &bytes[HEADER_BYTES..];
        if crc32fast::hash(payload) != expected {
            return Err(bad("checksum mismatch".into()));
        }
        postcard::from_bytes(payload).map_err(|e| bad(e.to_string()))
    }
}

/// The secret both sides of a connection must know, if the cluster has one.
#[derive(Clone, Default)]
pub struct Secret(Option<Vec<u8>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Secret(set)"
        } else {
            "Secret(none)"
        })
    }
}

/// Which side a tag is computed for.
#[derive(Clone, Copy, Debug)]
pub enum Side {
    /// The dialer.
    Client,
    /// The listener.
    Server,
}

impl Secret {
    /// A secret (an empty string counts as none).
    pub fn new(secret: Option<&str>) -> Secret {
        Secret(
            secret
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec()),
        )
    }

    /// Whether there is a secret to prove.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    fn mac(&self, key: &[u8], side: Side, parts: [&[u8]; 4]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of every length");
        mac.update(match side {
            Side::Client => b"ringstore-peer-v1 client",
            Side::Server => b"ringstore-peer-v1 server",
        });
        for p in parts {
            mac.update(p);
        }
        mac
    }

    /// The tag `side` sends: over its peer's nonce, its own nonce, its id and its peer's id.
    pub fn tag(
        &self,
        side: Side,
        their_nonce: &Nonce,
        my_nonce: &Nonce,
        me: NodeId,
        them: NodeId,
    ) -> Option<Tag> {
        let key = self.0.as_ref()?;
        let mac = self.mac(
            key,
            side,
            [
                their_nonce,
                my_nonce,
                &me.0.to_le_bytes(),
                &them.0.to_le_bytes(),
            ],
        );
        Some(mac.finalize().into_bytes().into())
    }

    /// Checks the tag the peer on `side` sent (`their_*` are the peer's values). With no secret
    /// here, anything is accepted; with one, a missing or wrong tag is refused (in constant
    /// time).
    pub fn verify(
        &self,
        side: Side,
        tag: Option<&Tag>,
        my_nonce: &Nonce,
        their_nonce: &Nonce,
        them: NodeId,
        me: NodeId,
    ) -> Result<(), HandshakeError> {
        let Some(key) = self.0.as_ref() else {
            return Ok(());
        };
        let tag = tag.ok_or(HandshakeError::BadSecret)?;
        let mac = self.mac(
            key,
            side,
            [
                my_nonce,
                their_nonce,
                &them.0.to_le_bytes(),
                &me.0.to_le_bytes(),
            ],
        );
        mac.verify_slice(tag).map_err(|_| HandshakeError::BadSecret)
    }
}

/// A fresh random nonce.
pub fn nonce() -> Nonce {
    let mut n = [0u8; 16];
    // getrandom fails only on platforms without an entropy source; a zero nonce then still
    // authenticates (the MAC covers the other side's nonce too), it only weakens replay
    // protection, and every platform ringstore runs on has one.
    let _ = getrandom::fill(&mut n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips_and_damage_is_detected() {
        let msgs = [
            Handshake::Hello {
                node: NodeId(1),
                nonce: [7; 16],
                n: 3,
            },
            Handshake::Auth {
                node: NodeId(2),
                address: "127.0.0.1:7002".into(),
                nonce: [9; 16],
                n: 3,
                mac: Some([1; 32]),
            },
            Handshake::Welcome { mac: None },
            Handshake::Refused {
                reason: "no".into(),
            },
        ];
        for m in msgs {
            let bytes = m.encode();
            assert_eq!(Handshake::decode(&bytes), Ok(m));
            for i in (0..bytes.len()).filter(|&i| i != 3) {
                let mut bad = bytes.clone();
                bad[i] ^= 0x10;
                assert!(Handshake::decode(&bad).is_err(), "flip at {i}");
            }
        }
        assert!(Handshake::decode(b"garbage").is_err());
    }

    #[test]
    fn tags_prove_the_secret_and_nothing_else() {
        let a = Secret::new(Some("s3cret"));
        let b = Secret::new(Some("s3cret"));
        let other = Secret::new(Some("other"));
        let none = Secret::new(None);
        let (ns, nc) = ([1u8; 16], [2u8; 16]);
        let (client, server) = (NodeId(2), NodeId(1));
        let tag = a.tag(Side::Client, &ns, &nc, client, server);
        assert!(tag.is_some());
        assert_eq!(
            b.verify(Side::Client, tag.as_ref(), &ns, &nc, client, server),
            Ok(())
        );
        assert_eq!(
            other.verify(Side::Client, tag.as_ref(), &ns, &nc, client, server),
            Err(HandshakeError::BadSecret)
        );
        // A tag for one side, nonce or id does not pass for another.
        assert!(
            b.verify(Side::Server, tag.as_ref(), &ns, &nc, client, server)
                .is_err()
        );
        assert!(
            b.verify(Side::Client, tag.as_ref(), &[3; 16], &nc, client, server)
                .is_err()
        );
        assert!(
            b.verify(Side::Client, tag.as_ref(), &ns, &nc, NodeId(5), server)
                .is_err()
        );
        assert_eq!(
            b.verify(Side::Client, None, &ns, &nc, client, server),
            Err(HandshakeError::BadSecret)
        );
        assert!(none.tag(Side::Client, &ns, &nc, client, server).is_none());
        assert_eq!(
            none.verify(Side::Client, None, &ns, &nc, client, server),
            Ok(())
        );
        assert!(
            Secret::new(Some(""))
                .tag(Side::Client, &ns, &nc, client, server)
                .is_none()
        );
    }
}
