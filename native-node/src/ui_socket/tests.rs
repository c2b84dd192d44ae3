//! The slow-reader policy without sockets: a page whose socket never takes a frame gets at
//! most one frame in the writer and [`UPDATE_QUEUE`] queued; every later update is skipped
//! and counted, the node is read no more, and the feed is still drained. Time is tokio's
//! paused clock.

use super::*;
use collect::tests::{message, view};
use ringstore_core::ui::Direction;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// A socket that never has room.
struct Stalled;

impl Sink<Message> for Stalled {
    type Error = ();
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Pending
    }
    fn start_send(self: Pin<&mut Self>, _: Message) -> Result<(), ()> {
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Pending
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Pending
    }
}

#[derive(Default)]
struct Fake {
    reads: AtomicU64,
    skipped: AtomicU64,
}

impl Source for Fake {
    async fn read(&self) -> Option<(NodeView, LsmStats, LsmStats)> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Some((view(&[], &[]), LsmStats::default(), LsmStats::default()))
    }
    fn skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }
    fn id(&self) -> NodeId {
        NodeId(1)
    }
}

#[tokio::test(start_paused = true)]
async fn a_page_that_never_reads_gets_updates_skipped_not_queued() {
    let source = Fake::default();
    let (feed_tx, feed_rx) = broadcast::channel(crate::feed::FEED_CAPACITY);
    let (_replies_tx, replies_rx) = mpsc::channel(REPLY_QUEUE);
    let (updates_tx, updates_rx) = mpsc::channel(UPDATE_QUEUE);
    let collector = Collector::new(&view(&[], &[]));
    let feeding = async {
        // 40 intervals of a busy node: 100 messages each.
        for _ in 0..40 {
            for _ in 0..100 {
                let _ = feed_tx.send(message(2, Direction::Sent, None));
            }
            tokio::time::sleep(Duration::from_millis(UPDATE_MS)).await;
        }
    };
    tokio::select! {
        () = writer(Stalled, replies_rx, updates_rx) => panic!("the writer gave up"),
        () = ticker(&source, feed_rx, collector, updates_tx) => panic!("the ticker stopped"),
        () = feeding => {}
    }
    let reads = source.reads.load(Ordering::Relaxed);
    let skipped = source.skipped.load(Ordering::Relaxed);
    // One update stuck in the writer, UPDATE_QUEUE queued: the node was read for those only.
    assert_eq!(reads, 1 + UPDATE_QUEUE as u64);
    assert!(skipped >= 40 - reads - 1, "{skipped} skipped");
}
