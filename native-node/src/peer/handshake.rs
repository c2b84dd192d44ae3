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
//!
//! This is the core's shared frame header ([`HANDSHAKE_FORMAT`], `ringstore_core::framing`),
//! as the wire envelopes and UI frames use it.
//!
//! # One receive loop, any WebSocket library
//!
//! Both sides read through tokio-tungstenite (the listener upgrades its connections itself, to
//! bound them until the handshake completes: [`super::inbound`]); [`recv`] and [`send`] are
//! written once over any message stream and sink whose messages are a [`SocketMessage`], which
//! axum's message type is too.

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use hmac::{Hmac, Mac};
use ringstore_core::NodeId;
use ringstore_core::framing::{self, FrameFormat};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt::Display;
use std::time::Duration;

/// The version of the handshake.
pub const HANDSHAKE_VERSION: u8 = 1;
/// The largest handshake payload accepted.
pub const HANDSHAKE_BYTES_MAX: usize = 4096;
/// How long either side waits for the other's next handshake message.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// The handshake's frame format: the core's shared header (`ringstore_core::framing`).
pub const HANDSHAKE_FORMAT: FrameFormat = FrameFormat {
    magic: *b"RH",
    version: HANDSHAKE_VERSION,
    tag: framing::Tag::Reserved,
    payload_bytes_max: HANDSHAKE_BYTES_MAX,
};

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
    /// Encodes the message into a frame. Fails only if it is over the bound (an address of
    /// kilobytes).
    pub fn encode(&self) -> Result<Vec<u8>, HandshakeError> {
        HANDSHAKE_FORMAT
            .encode(self)
            .map_err(|e| HandshakeError::BadFrame(e.to_string()))
    }

    /// Decodes one frame spanning all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Handshake, HandshakeError> {
        HANDSHAKE_FORMAT
            .decode(bytes)
            .map_err(|e| HandshakeError::BadFrame(e.to_string()))
    }
}

/// One WebSocket message as the handshake sees it, whichever library carried it
/// (tokio-tungstenite's on both sides, [`super::inbound`] and [`super::link`]; axum's too).
#[derive(Debug, PartialEq, Eq)]
pub enum Seen<'a> {
    /// A binary message: a handshake frame, or garbage.
    Binary(&'a [u8]),
    /// A ping or a pong: skipped.
    Control,
    /// The peer closed the connection.
    Closed,
    /// Anything else (a text message): not a handshake.
    Other,
}

/// A WebSocket message type the handshake can send and read.
pub trait SocketMessage {
    /// A binary message holding `bytes`.
    fn binary(bytes: Vec<u8>) -> Self;
    /// What the message is, to the handshake.
    fn seen(&self) -> Seen<'_>;
}

/// The two libraries' messages have the same variants (tungstenite's raw `Frame` aside, which
/// a reader never sees), so one body serves both.
macro_rules! socket_message {
    ($message:ty) => {
        impl SocketMessage for $message {
            fn binary(bytes: Vec<u8>) -> Self {
                Self::Binary(bytes.into())
            }

            fn seen(&self) -> Seen<'_> {
                match self {
                    Self::Binary(b) => Seen::Binary(b),
                    Self::Ping(_) | Self::Pong(_) => Seen::Control,
                    Self::Close(_) => Seen::Closed,
                    _ => Seen::Other,
                }
            }
        }
    };
}

socket_message!(axum::extract::ws::Message);
socket_message!(tokio_tungstenite::tungstenite::Message);

/// Waits for the peer's next handshake message, skipping pings and pongs, for at most
/// [`HANDSHAKE_TIMEOUT_MS`]: the one receive loop of both sides.
pub async fn recv<S, M, E>(socket: &mut S) -> Result<Handshake, HandshakeError>
where
    S: Stream<Item = Result<M, E>> + Unpin,
    M: SocketMessage,
    E: Display,
{
    let deadline = tokio::time::Instant::now() + Duration::from_millis(HANDSHAKE_TIMEOUT_MS);
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next())
            .await
            .map_err(|_| HandshakeError::Io("timed out".into()))?;
        let msg = match next {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => return Err(HandshakeError::Io(e.to_string())),
            None => return Err(HandshakeError::Io("closed by the peer".into())),
        };
        match msg.seen() {
            Seen::Binary(b) => return Handshake::decode(b),
            Seen::Control => {}
            Seen::Closed => return Err(HandshakeError::Io("closed by the peer".into())),
            Seen::Other => {
                return Err(HandshakeError::BadFrame("not a binary message".into()));
            }
        }
    }
}

/// Sends one handshake message.
pub async fn send<S, M>(socket: &mut S, msg: &Handshake) -> Result<(), HandshakeError>
where
    S: Sink<M> + Unpin,
    S::Error: Display,
    M: SocketMessage,
{
    socket
        .send(M::binary(msg.encode()?))
        .await
        .map_err(|e| HandshakeError::Io(e.to_string()))
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
            let bytes = m.encode().unwrap();
            assert_eq!(Handshake::decode(&bytes), Ok(m));
            for i in (0..bytes.len()).filter(|&i| i != 3) {
                let mut bad = bytes.clone();
                bad[i] ^= 0x10;
                assert!(Handshake::decode(&bad).is_err(), "flip at {i}");
            }
        }
        assert!(Handshake::decode(b"garbage").is_err());
        let huge = Handshake::Refused {
            reason: "x".repeat(HANDSHAKE_BYTES_MAX),
        };
        assert!(matches!(huge.encode(), Err(HandshakeError::BadFrame(_))));
    }

    /// The one receive loop, over both libraries' message types, without a socket.
    #[tokio::test(start_paused = true)]
    async fn the_receive_loop_skips_control_messages_and_names_every_failure() {
        use axum::extract::ws::Message as Axum;
        use futures_util::stream;
        use tokio_tungstenite::tungstenite::Message as Tungstenite;

        let hello = Handshake::Hello {
            node: NodeId(1),
            nonce: [7; 16],
            n: 3,
        };
        let frame = hello.encode().unwrap();
        let ok = |m: Axum| Ok::<_, std::io::Error>(m);
        let mut s = stream::iter([
            ok(Axum::Ping(Vec::new().into())),
            ok(Axum::Pong(Vec::new().into())),
            ok(Axum::binary(frame.clone())),
        ]);
        assert_eq!(recv(&mut s).await, Ok(hello.clone()));
        assert_eq!(
            recv(&mut s).await,
            Err(HandshakeError::Io("closed by the peer".into())),
            "the stream ended"
        );
        let mut s = stream::iter([Ok::<_, std::io::Error>(Tungstenite::binary(frame))]);
        assert_eq!(recv(&mut s).await, Ok(hello));
        let mut s = stream::iter([Ok::<_, std::io::Error>(Tungstenite::text("hi"))]);
        assert!(matches!(
            recv(&mut s).await,
            Err(HandshakeError::BadFrame(_))
        ));
        let mut s = stream::iter([ok(Axum::Close(None))]);
        assert!(matches!(recv(&mut s).await, Err(HandshakeError::Io(_))));
        let mut s = stream::iter([ok(Axum::binary(b"garbage".to_vec()))]);
        assert!(matches!(
            recv(&mut s).await,
            Err(HandshakeError::BadFrame(_))
        ));
        let mut s = stream::iter([Err::<Axum, _>(std::io::Error::other("reset"))]);
        assert_eq!(recv(&mut s).await, Err(HandshakeError::Io("reset".into())));
        // A peer that says nothing is given up after the timeout (tokio's paused clock).
        let mut silent = stream::pending::<Result<Axum, std::io::Error>>();
        let started = tokio::time::Instant::now();
        assert_eq!(
            recv(&mut silent).await,
            Err(HandshakeError::Io("timed out".into()))
        );
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(HANDSHAKE_TIMEOUT_MS)
        );
    }

    #[tokio::test]
    async fn send_writes_one_binary_frame() {
        let mut sent: Vec<axum::extract::ws::Message> = Vec::new();
        let msg = Handshake::Welcome { mac: Some([3; 32]) };
        send(&mut sent, &msg).await.unwrap();
        assert_eq!(sent.len(), 1);
        let Seen::Binary(bytes) = sent[0].seen() else {
            panic!("{:?}", sent[0]);
        };
        assert_eq!(Handshake::decode(bytes), Ok(msg));
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
