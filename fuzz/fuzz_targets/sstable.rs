//! SSTables: a data block, the index block, the bloom filter, the footer, the meta block, or
//! a whole table file opened and read through. Decoding never panics and returns a typed
//! error; each block that decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringstore_core::storage::sstable::block::{DataBlock, DataBlockBuilder, Index, IndexBuilder};
use ringstore_core::storage::sstable::bloom::Bloom;
use ringstore_core::storage::sstable::{Footer, decode_meta_block, encode_meta_block};
use ringstore_core::storage::{BlockCache, SimDisk, Table, key_hash, table_file_name};
use ringstore_fuzz::{repair_tail_crc, repair_tail_crc_at, split_mode};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let repair = mode & 0x80 != 0;
    let mut bytes = rest.to_vec();
    match mode % 6 {
        0 => data_block(bytes, repair),
        1 => index(bytes, repair),
        2 => {
            if repair {
                repair_tail_crc(&mut bytes);
            }
            if let Ok(bloom) = Bloom::decode(&bytes) {
                let mut out = Vec::new();
                bloom.encode(&mut out);
                assert_eq!(out, bytes, "a filter block re-encodes to other bytes");
                let _ = bloom.may_contain(key_hash(&bytes));
            }
        }
        3 => {
            if repair && bytes.len() == Footer::BYTES {
                repair_tail_crc(&mut bytes);
            }
            if let Ok(footer) = Footer::decode(&bytes) {
                let mut out = Vec::new();
                footer.encode(&mut out);
                assert_eq!(out, bytes, "a footer re-encodes to other bytes");
            }
        }
        4 => {
            if repair {
                repair_tail_crc(&mut bytes);
            }
            if let Ok(meta) = decode_meta_block(&bytes) {
                let mut out = Vec::new();
                encode_meta_block(&meta, &mut out);
                assert_eq!(out, bytes, "a meta block re-encodes to other bytes");
            }
        }
        _ => table(bytes, repair),
    }
});

fn data_block(mut bytes: Vec<u8>, repair: bool) {
    if repair {
        repair_tail_crc(&mut bytes);
    }
    let Ok(block) = DataBlock::decode(bytes.clone()) else {
        return;
    };
    let mut builder = DataBlockBuilder::default();
    let mut entries = Vec::new();
    for i in 0..block.len() {
        match block.entry_at(i) {
            Ok((key, cell)) => {
                assert_eq!(block.key_at(i).ok(), Some(key));
                entries.push((key.to_vec(), cell));
            }
            // A block whose offsets decode but whose entries do not: a typed error on read.
            Err(_) => return,
        }
    }
    for (key, _) in &entries {
        let _ = block.lower_bound(key);
        let _ = block.get(key);
    }
    for (key, cell) in &entries {
        builder.add(key, cell);
    }
    assert_eq!(
        builder.seal(),
        &bytes[..],
        "a data block re-encodes to other bytes"
    );
}

fn index(mut bytes: Vec<u8>, repair: bool) {
    // The first eight bytes are where the data blocks must end (the filter's offset).
    if bytes.len() < 8 {
        return;
    }
    let mut end = [0u8; 8];
    end.copy_from_slice(&bytes[..8]);
    let data_end = u64::from_le_bytes(end);
    let mut block = bytes.split_off(8);
    if repair {
        repair_tail_crc(&mut block);
    }
    let Ok(index) = Index::decode(&block, data_end) else {
        return;
    };
    let mut builder = IndexBuilder::default();
    for i in 0..index.len() {
        let (Some(key), Some(handle)) = (index.last_key_of(i), index.handle(i)) else {
            panic!("index entry {i} of {} is missing", index.len());
        };
        assert_eq!(index.find(key), Some(i));
        builder.add(key, handle);
    }
    let mut out = Vec::new();
    builder.encode(&mut out);
    assert_eq!(out, block, "an index block re-encodes to other bytes");
}

fn table(mut bytes: Vec<u8>, repair: bool) {
    if repair && bytes.len() >= Footer::BYTES {
        let at = bytes.len() - Footer::BYTES;
        repair_tail_crc(&mut bytes[at..]);
        if let Ok(f) = Footer::decode(&bytes[at..]) {
            let blocks = [
                (f.filter_offset, f.filter_len),
                (f.index_offset, f.index_len),
                (f.meta_offset, f.meta_len),
            ];
            for (offset, len) in blocks {
                repair_tail_crc_at(&mut bytes, offset, offset.saturating_add(u64::from(len)));
            }
            if let Some(index_end) = f.index_offset.checked_add(u64::from(f.index_len))
                && let (Ok(start), Ok(end)) =
                    (usize::try_from(f.index_offset), usize::try_from(index_end))
                && start <= end
                && end <= bytes.len()
                && let Ok(index) = Index::decode(&bytes[start..end], f.filter_offset)
            {
                for i in 0..index.len() {
                    if let Some(h) = index.handle(i) {
                        repair_tail_crc_at(&mut bytes, h.offset, h.offset + u64::from(h.len));
                    }
                }
            }
        }
    }
    let disk = SimDisk::new(0);
    disk.insert_durable_file(&table_file_name(1), bytes);
    let Ok(table) = Table::open(disk, 1, Arc::new(BlockCache::new(1 << 20))) else {
        return;
    };
    let table = Arc::new(table);
    let mut keys = Vec::new();
    for item in table.iter(None, false) {
        match item {
            Ok((key, _)) => keys.push(key),
            Err(_) => break,
        }
        if keys.len() > 100_000 {
            break;
        }
    }
    for key in &keys {
        let _ = table.get(key, key_hash(key));
    }
}
