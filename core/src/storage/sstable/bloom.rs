//! The bloom filter in each table's filter block: lets a lookup skip a table that cannot hold
//! the key without reading any of its data blocks.
//!
//! Built from the [`super::key_hash`] of every key, probed with double hashing
//! (`h_i = h + i * delta`, `delta` a rotation of `h`), so one 64-bit hash per lookup serves
//! every table. At 10 bits per key and 7 probes the false-positive rate is about 1%.

use super::split_tail_u32;
use crate::storage::codec::{Decoder, FormatError, PutLe, crc32, verify_crc};

/// The most probes a filter may ask for; more is never useful and bounds a corrupt filter's cost.
const NUM_HASHES_MAX: u8 = 30;
/// The largest bit array a writer builds (512 MiB, about 430 million keys at 10 bits per key);
/// larger tables get a denser filter.
const FILTER_BYTES_MAX: u64 = 512 << 20;

/// A bloom filter. Encoded as the filter block:
///
/// ```text
/// offset  size    field
/// 0       1       num_hashes  u8, probes per key, 1..=30; 0 = no filter (bit array empty)
/// 1       n       bits        bit i is bit (i % 8) of byte (i / 8)
/// 1+n     4       crc32       u32, over bytes 0..1+n
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bloom {
    num_hashes: u8,
    bits: Vec<u8>,
}

impl Bloom {
    /// Builds a filter over key hashes with `bits_per_key` bits per key (0: no filter, which
    /// answers "maybe" to everything).
    pub fn build(hashes: &[u64], bits_per_key: u32) -> Bloom {
        let bits_per_key = bits_per_key.min(64);
        if bits_per_key == 0 {
            return Bloom {
                num_hashes: 0,
                bits: Vec::new(),
            };
        }
        // k = bits_per_key * ln 2, rounded.
        let num_hashes = ((bits_per_key * 69 + 50) / 100).clamp(1, u32::from(NUM_HASHES_MAX));
        let num_bits = (hashes.len() as u64)
            .saturating_mul(u64::from(bits_per_key))
            .max(64);
        let num_bytes = num_bits.div_ceil(8).min(FILTER_BYTES_MAX) as usize;
        let mut bloom = Bloom {
            num_hashes: num_hashes as u8,
            bits: vec![0; num_bytes],
        };
        let num_bits = bloom.num_bits();
        for &hash in hashes {
            for bit in probes(hash, bloom.num_hashes, num_bits) {
                bloom.bits[(bit / 8) as usize] |= 1 << (bit % 8);
            }
        }
        bloom
    }

    fn num_bits(&self) -> u64 {
        self.bits.len() as u64 * 8
    }

    /// Whether a key with this hash may have been added (`false` means certainly not).
    pub fn may_contain(&self, hash: u64) -> bool {
        let num_bits = self.num_bits();
        if num_bits == 0 {
            return true;
        }
        probes(hash, self.num_hashes, num_bits).all(|bit| {
            // `bit < num_bits`, so the index is in bounds; `get` keeps that a non-panicking fact.
            self.bits
                .get((bit / 8) as usize)
                .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
        })
    }

    /// Appends the filter block documented on [`Bloom`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.push(self.num_hashes);
        out.extend_from_slice(&self.bits);
        let crc = crc32(&out[start..]);
        out.put_u32(crc);
    }

    /// Verifies and decodes a filter block.
    pub fn decode(bytes: &[u8]) -> Result<Bloom, FormatError> {
        const WHAT: &str = "filter block";
        let (body, crc) = split_tail_u32(WHAT, bytes)?;
        verify_crc(WHAT, body, crc)?;
        let mut d = Decoder::new(WHAT, body);
        let num_hashes = d.u8()?;
        let bits = d.bytes(d.remaining())?.to_vec();
        match (num_hashes, bits.is_empty()) {
            (0, true) => {}
            (0, false) => return Err(d.invalid("a bit array without probes")),
            (_, true) => return Err(d.invalid("probes without a bit array")),
            (n, false) if n > NUM_HASHES_MAX => {
                return Err(d.invalid(format!("{n} probes, more than {NUM_HASHES_MAX}")));
            }
            (_, false) => {}
        }
        Ok(Bloom { num_hashes, bits })
    }
}

/// The bit positions probed for `hash`, each `< num_bits` (which must be non-zero).
fn probes(hash: u64, num_hashes: u8, num_bits: u64) -> impl Iterator<Item = u64> {
    let delta = hash.rotate_right(33) | 1;
    (0..u64::from(num_hashes)).map(move |i| hash.wrapping_add(i.wrapping_mul(delta)) % num_bits)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::storage::sstable::key_hash;

    fn hashes(range: core::ops::Range<u32>) -> Vec<u64> {
        range
            .map(|i| key_hash(format!("key-{i}").as_bytes()))
            .collect()
    }

    #[test]
    fn bloom_has_no_false_negatives() {
        let added = hashes(0..10_000);
        let bloom = Bloom::build(&added, 10);
        assert!(added.iter().all(|&h| bloom.may_contain(h)));
    }

    #[test]
    fn bloom_false_positive_rate_is_near_one_percent_at_ten_bits_per_key() {
        let bloom = Bloom::build(&hashes(0..10_000), 10);
        let false_positives = hashes(10_000..20_000)
            .into_iter()
            .filter(|&h| bloom.may_contain(h))
            .count();
        // Theory says about 0.8% at 10 bits/key and 7 probes.
        assert!(
            false_positives < 200,
            "{false_positives} false positives in 10,000"
        );
    }

    #[test]
    fn bloom_round_trips_and_detects_a_flipped_bit() {
        let added = hashes(0..100);
        let bloom = Bloom::build(&added, 10);
        let mut buf = Vec::new();
        bloom.encode(&mut buf);
        assert_eq!(Bloom::decode(&buf).unwrap(), bloom);
        for at in 0..buf.len() {
            let mut bad = buf.clone();
            bad[at] ^= 0x10;
            let err = Bloom::decode(&bad).unwrap_err();
            assert!(
                matches!(err, FormatError::ChecksumMismatch { .. }),
                "{err:?}"
            );
        }
    }

    #[test]
    fn bloom_with_zero_bits_per_key_says_maybe() {
        let bloom = Bloom::build(&hashes(0..10), 0);
        let mut buf = Vec::new();
        bloom.encode(&mut buf);
        assert_eq!(buf.len(), 5);
        let decoded = Bloom::decode(&buf).unwrap();
        assert!(decoded.may_contain(12345));
    }

    #[test]
    fn bloom_decode_of_short_or_inconsistent_bytes_is_an_error() {
        assert!(matches!(
            Bloom::decode(&[1, 2]),
            Err(FormatError::Truncated { .. })
        ));
        let mut buf = vec![200u8, 0xff];
        let crc = crc32(&buf);
        buf.put_u32(crc);
        assert!(matches!(
            Bloom::decode(&buf),
            Err(FormatError::Invalid { .. })
        ));
    }
}
