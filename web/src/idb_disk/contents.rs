//! A file's bytes as a list of shared chunks, so that a copy of a disk ([`super::IdbDisk`]'s
//! `fork`, which the timeline's snapshots take) shares every chunk with the original until
//! one side changes it, and an append to a shared file copies at most its last chunk, not the
//! whole file (a WAL segment grows by small appends between snapshots).
//!
//! Every chunk but the last holds exactly [`CHUNK_BYTES`]; the last holds 1 to
//! [`CHUNK_BYTES`] (no chunk is empty). A chunk's allocation grows by doubling up to
//! [`CHUNK_BYTES`], so a small file (a tiny SSTable) costs about its size.

use std::sync::Arc;

/// The size of every chunk but the last.
pub const CHUNK_BYTES: usize = 8 << 10;

/// A file's contents. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct Contents {
    chunks: Vec<Arc<Vec<u8>>>,
    len: usize,
}

impl Contents {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends `bytes`, copying the last chunk first if a copy of the file shares it.
    pub fn append(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len();
        while !bytes.is_empty() {
            let room = match self.chunks.last() {
                Some(last) if last.len() < CHUNK_BYTES => CHUNK_BYTES - last.len(),
                _ => {
                    self.chunks.push(Arc::new(Vec::new()));
                    CHUNK_BYTES
                }
            };
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            if let Some(last) = self.chunks.last_mut() {
                // Copied first if a copy of the file shares it.
                let chunk = Arc::make_mut(last);
                let want = (chunk.len() + now.len())
                    .max(2 * chunk.len())
                    .min(CHUNK_BYTES);
                if chunk.capacity() < want {
                    chunk.reserve_exact(want - chunk.len());
                }
                chunk.extend_from_slice(now);
            }
            bytes = rest;
        }
    }

    /// Cuts the contents to `len` bytes, or extends them with zeros to it.
    pub fn resize(&mut self, len: usize) {
        if len >= self.len {
            // Zeros, a chunk's worth at a time.
            let zeros = [0u8; 1024];
            while self.len < len {
                let n = (len - self.len).min(zeros.len());
                self.append(&zeros[..n]);
            }
            return;
        }
        let keep_chunks = len.div_ceil(CHUNK_BYTES);
        self.chunks.truncate(keep_chunks);
        if let Some(last) = self.chunks.last_mut() {
            let in_last = len - (keep_chunks - 1) * CHUNK_BYTES;
            if last.len() != in_last {
                Arc::make_mut(last).truncate(in_last);
            }
        }
        self.len = len;
    }

    /// Copies `out.len()` bytes from `offset` into `out`. The range must be within the
    /// contents (the caller checks).
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        let mut at = offset;
        let mut done = 0;
        while done < out.len() {
            let chunk = &self.chunks[at / CHUNK_BYTES];
            let start = at % CHUNK_BYTES;
            let n = (chunk.len() - start).min(out.len() - done);
            out[done..done + n].copy_from_slice(&chunk[start..start + n]);
            done += n;
            at += n;
        }
    }

    /// The bytes in `[start, end)`, which must be within the contents.
    pub fn to_vec(&self, start: usize, end: usize) -> Vec<u8> {
        let mut out = vec![0; end.saturating_sub(start)];
        self.read(start, &mut out);
        out
    }

    /// Each chunk's address and length, to count contents shared between copies once.
    pub fn chunks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.chunks
            .iter()
            .map(|c| (Arc::as_ptr(c) as usize, c.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends, cuts, extensions and reads agree with a plain `Vec` at every step, across
    /// chunk boundaries, and a copy taken midway is unchanged by what the original does next.
    #[test]
    fn contents_behave_as_a_vec_and_copies_stay_as_they_were() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut draw = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut c = Contents::default();
        let mut model: Vec<u8> = Vec::new();
        let mut copies: Vec<(Contents, Vec<u8>)> = Vec::new();
        for step in 0..3_000 {
            match draw(10) {
                0 => {
                    let len = draw(model.len() + 1);
                    c.resize(len);
                    model.truncate(len);
                }
                1 => {
                    let len = model.len() + draw(3 * CHUNK_BYTES);
                    c.resize(len);
                    model.resize(len, 0);
                }
                2 => copies.push((c.clone(), model.clone())),
                _ => {
                    let n = if draw(4) == 0 {
                        draw(2 * CHUNK_BYTES + 10)
                    } else {
                        draw(300)
                    };
                    let bytes: Vec<u8> = (0..n).map(|i| (step + i) as u8).collect();
                    c.append(&bytes);
                    model.extend_from_slice(&bytes);
                }
            }
            assert_eq!(c.len(), model.len(), "step {step}");
            assert_eq!(c.to_vec(0, c.len()), model, "step {step}");
            let chunks: Vec<(usize, usize)> = c.chunks().collect();
            assert!(chunks.iter().all(|&(_, n)| n > 0 && n <= CHUNK_BYTES));
            assert!(chunks.iter().rev().skip(1).all(|&(_, n)| n == CHUNK_BYTES));
            if model.len() > 10 {
                let start = draw(model.len() - 10);
                let mut out = vec![0; draw(model.len() - start)];
                c.read(start, &mut out);
                assert_eq!(out, model[start..start + out.len()], "step {step}");
            }
        }
        assert!(copies.len() > 100);
        for (copy, model) in &copies {
            assert_eq!(copy.to_vec(0, copy.len()), *model);
        }
    }

    /// An append to a copied file copies only its last chunk: every full chunk stays shared.
    #[test]
    fn an_append_after_a_copy_shares_every_full_chunk() {
        let mut c = Contents::default();
        c.append(&vec![7; 5 * CHUNK_BYTES + 100]);
        let copy = c.clone();
        c.append(b"more");
        let before: Vec<usize> = copy.chunks().map(|(p, _)| p).collect();
        let after: Vec<usize> = c.chunks().map(|(p, _)| p).collect();
        assert_eq!(before[..5], after[..5]);
        assert_ne!(before[5], after[5]);
        assert_eq!(copy.len() + 4, c.len());
    }
}
