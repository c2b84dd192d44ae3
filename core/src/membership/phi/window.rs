//! [`Samples`]: a first-in first-out window of `u32` samples kept in chunks shared between
//! copies. A copy of a failure detector (every snapshot of a simulated cluster the page's
//! timeline keeps) shares every chunk with the original until one side writes to it; a new
//! sample copies at most the last chunk, and dropping the oldest copies nothing.
//!
//! Why not a general persistent vector (`imbl::Vector`, which the history uses): measured on
//! the page's 64-node gossip cluster (`web/examples/page_speed.rs --gossip 64`, two runs each),
//! it made the whole simulation 15% slower than a plain `VecDeque` (30.0 against 35.3 simulated
//! s per real s); this is within 6% (33.3). A copy costs its list of chunk pointers, and later
//! the one chunk written since; the timeline's 78 snapshots of a 16-node run took 101 MiB of
//! heap on the host with it, 150 with `imbl::Vector`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::VecDeque;
use std::sync::Arc;

/// Samples per chunk.
const CHUNK: usize = 64;

/// The window. Sample `i` (oldest first) is at position `head + i` of the chunks laid end
/// to end; the chunks hold exactly the positions `0..head + len`, rounded up to a chunk.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    chunks: VecDeque<Arc<[u32; CHUNK]>>,
    head: usize,
    len: usize,
}

impl Samples {
    /// Samples held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends `sample` as the newest.
    pub fn push_back(&mut self, sample: u32) {
        let end = self.head + self.len;
        if end == self.chunks.len() * CHUNK {
            self.chunks.push_back(Arc::new([0; CHUNK]));
        }
        if let Some(chunk) = self.chunks.get_mut(end / CHUNK) {
            Arc::make_mut(chunk)[end % CHUNK] = sample;
            self.len += 1;
        }
    }

    /// Removes and returns the oldest sample.
    pub fn pop_front(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let sample = self.chunks.front()?[self.head];
        self.head += 1;
        self.len -= 1;
        if self.head == CHUNK || self.len == 0 {
            self.chunks.pop_front();
            self.head = 0;
        }
        if self.len == 0 {
            self.chunks.clear();
        }
        Some(sample)
    }

    /// The samples, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (self.head..self.head + self.len).map(|p| self.chunks[p / CHUNK][p % CHUNK])
    }
}

impl PartialEq for Samples {
    fn eq(&self, other: &Samples) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Samples {}

/// As a sequence of samples, oldest first (what a `VecDeque<u32>` writes).
impl Serialize for Samples {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Samples {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Samples, D::Error> {
        let mut samples = Samples::default();
        for s in Vec::<u32>::deserialize(d)? {
            samples.push_back(s);
        }
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes and pops agree with a `VecDeque` at every step, copies taken midway keep what
    /// they held, and a copy shares every chunk but the ones written since.
    #[test]
    fn samples_behave_as_a_deque_and_copies_share_their_chunks() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut draw = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut s = Samples::default();
        let mut model: VecDeque<u32> = VecDeque::new();
        let mut copies = Vec::new();
        for step in 0..20_000u32 {
            match draw(10) {
                0..=5 => {
                    s.push_back(step);
                    model.push_back(step);
                }
                6..=8 => assert_eq!(s.pop_front(), model.pop_front(), "step {step}"),
                _ if draw(50) == 0 => copies.push((s.clone(), model.clone())),
                _ => {}
            }
            assert_eq!(s.len(), model.len());
            assert!(s.chunks.len() * CHUNK >= s.head + s.len && s.head < CHUNK.max(1));
        }
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            model.iter().copied().collect::<Vec<_>>()
        );
        assert!(copies.len() > 10);
        for (copy, model) in &copies {
            assert_eq!(copy.iter().collect::<VecDeque<_>>(), *model);
        }
        // A window of 1,000, copied, then one more sample in and the oldest out.
        let mut w = Samples::default();
        (0..1_000).for_each(|i| w.push_back(i));
        let copy = w.clone();
        w.push_back(1_000);
        w.pop_front();
        let shared = w
            .chunks
            .iter()
            .filter(|c| copy.chunks.iter().any(|d| Arc::ptr_eq(c, d)))
            .count();
        assert_eq!(shared, w.chunks.len() - 1, "all but the written chunk");
        assert_ne!(w, copy);
        assert_eq!(
            round_trip(&copy).len(),
            1_000,
            "encodes and decodes as a sequence"
        );
    }

    fn round_trip(s: &Samples) -> Vec<u32> {
        let bytes = postcard::to_allocvec(s).unwrap();
        let back: Samples = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(&back, s);
        back.iter().collect()
    }
}
