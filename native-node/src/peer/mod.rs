//! Node-to-node transport: WebSocket connections carrying the core's wire
//! [`Envelope`](ringstore_core::wire::Envelope)s.
//!
//! Each node *dials* one connection to every peer it sends to and uses it only to send
//! ([`link`]); it *accepts* its peers' connections and only reads from them ([`inbound`]). Two
//! one-way connections per pair keep both sides simple: nobody decides who owns a shared
//! connection, and a reconnect on one side never races the other's.
//!
//! - **Handshake** ([`handshake`]): ids, address, N, and the cluster secret proven by HMAC.
//! - **Frames**: a binary WebSocket message holds one or more envelopes back to back (a link
//!   packs what is queued into one write, up to [`BATCH_BYTES`]); a message is at most
//!   [`FRAME_BYTES_MAX`] (the largest envelope), enforced by the WebSocket layer before it
//!   buffers a message. An envelope that does not decode closes the connection with a log line.
//! - **Bounds**: a link queues at most [`LINK_QUEUE_MAX`] messages; past that the node drops
//!   and counts (`ringstore_messages_dropped{reason="queue_full"}`); a message the encoder
//!   refuses (over the frame bound) is dropped with a log line and counted as
//!   `reason="too_large"`, as the simulator's network drops it; a link that cannot
//!   connect drops what it holds, reconnecting with exponential backoff (50 ms to 5 s, jitter).

pub mod handshake;
pub mod inbound;
pub mod link;

use crate::metrics::Metrics;
use handshake::Secret;
use ringstore_core::NodeId;
use ringstore_core::wire::Message;
/// The frame bounds and the splitting of a WebSocket message are the core's, shared with the
/// simulator's network.
pub use ringstore_core::wire::{ENVELOPES_PER_FRAME_MAX, FRAME_BYTES_MAX, unpack};
use std::sync::Arc;

/// A link packs queued messages into one write up to about this many bytes.
pub const BATCH_BYTES: usize = 256 << 10;
/// The WebSocket read buffer of a peer connection. tungstenite zeroes its whole read buffer
/// before every read (128 KiB by default): peer messages are small, so a small buffer saves a
/// large memset on every wakeup of every connection (a larger message is still read whole,
/// in several reads).
pub const READ_BUFFER_BYTES: usize = 8 << 10;
/// Messages queued per link at most.
pub const LINK_QUEUE_MAX: usize = 4_096;
/// The WebSocket path peers connect to.
pub const PEER_PATH: &str = "/ws/peer";

/// What both sides of the transport need to know about this node.
#[derive(Clone, Debug)]
pub struct PeerContext {
    /// This node.
    pub me: NodeId,
    /// The address peers reach it at.
    pub address: String,
    /// Its replica count (peers must agree).
    pub n: u32,
    /// The cluster secret, if any.
    pub secret: Secret,
    /// Where to count.
    pub metrics: Arc<Metrics>,
    /// Places for connections in their handshake ([`inbound::PENDING_HANDSHAKES_MAX`]).
    pub pending_handshakes: Arc<tokio::sync::Semaphore>,
}

/// A batch of messages from one peer, for the node task.
#[derive(Debug)]
pub struct PeerInbound {
    /// The authenticated sender.
    pub from: NodeId,
    /// Its messages, in the order sent.
    pub msgs: Vec<Message>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::wire::{Envelope, ReqId};

    #[test]
    fn packed_messages_unpack_and_garbage_is_an_error() {
        let msg = Message::Read {
            req: ReqId {
                coordinator: NodeId(1),
                seq: 9,
            },
            key: b"k".to_vec(),
        };
        let mut packed = Vec::new();
        for _ in 0..3 {
            Envelope::encode_into(&msg, &mut packed).unwrap();
        }
        assert_eq!(unpack(&packed).unwrap(), vec![msg.clone(); 3]);
        assert!(unpack(b"").is_err());
        assert!(unpack(b"hello, not a frame").is_err());
        packed.push(0);
        assert!(unpack(&packed).is_err(), "a trailing partial frame");
    }
}
