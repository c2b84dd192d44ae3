//! The conformance suite for the [`Disk`] contract, without crashes.
//!
//! It exercises every method on a fresh, empty disk: names, contents, every error variant
//! ([`DiskError::NotFound`], [`DiskError::AlreadyExists`], [`DiskError::OutOfBounds`]), that
//! rename replaces, that a deleted name can be created again empty, that clones of a handle
//! share one disk, and that preallocating changes nothing a reader or writer can see. Durability across crashes is implementation-specific and tested beside each
//! implementation.

use crate::storage::{Disk, DiskError};

fn must<T>(result: Result<T, DiskError>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("disk conformance: {what}: unexpected error: {err}"),
    }
}

fn expect_err<T: std::fmt::Debug>(result: Result<T, DiskError>, expected: DiskError, what: &str) {
    match result {
        Err(err) if err == expected => {}
        Err(err) => panic!("disk conformance: {what}: expected error {expected:?}, got {err:?}"),
        Ok(value) => {
            panic!("disk conformance: {what}: expected error {expected:?}, got Ok({value:?})")
        }
    }
}

fn check_eq<T: PartialEq + std::fmt::Debug>(got: T, expected: T, what: &str) {
    assert!(
        got == expected,
        "disk conformance: {what}: expected {expected:?}, got {got:?}"
    );
}

fn not_found(name: &str) -> DiskError {
    DiskError::NotFound {
        name: name.to_string(),
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Runs the whole suite, each part on a fresh disk from `make_empty`. Panics on the first
/// violation of the [`Disk`] contract, naming it.
pub fn disk_conformance<D: Disk>(make_empty: impl Fn() -> D) {
    missing_files_are_not_found(&make_empty());
    create_list_and_already_exists(&make_empty());
    append_and_read(&make_empty());
    reads_past_the_end_are_out_of_bounds(&make_empty());
    sync_keeps_contents(&make_empty());
    truncate_cuts_the_tail(&make_empty());
    rename_moves_and_replaces(&make_empty());
    delete_then_create_starts_empty(&make_empty());
    clones_share_one_disk(&make_empty());
    large_files_read_back(&make_empty());
    preallocate_changes_nothing_visible(&make_empty());
}

/// Every operation on a name that does not exist fails with `NotFound` naming it.
pub fn missing_files_are_not_found<D: Disk>(disk: &D) {
    check_eq(
        must(disk.list(), "list of empty disk"),
        vec![],
        "a fresh disk is empty",
    );
    check_eq(
        must(disk.exists("a"), "exists"),
        false,
        "exists on a missing file",
    );
    expect_err(disk.len("a"), not_found("a"), "len of a missing file");
    expect_err(
        disk.read_vec("a", 0, 1),
        not_found("a"),
        "read_at of a missing file",
    );
    expect_err(
        disk.read_all("a"),
        not_found("a"),
        "read_all of a missing file",
    );
    expect_err(
        disk.append("a", b"x"),
        not_found("a"),
        "append to a missing file",
    );
    expect_err(disk.sync("a"), not_found("a"), "sync of a missing file");
    expect_err(
        disk.truncate("a", 0),
        not_found("a"),
        "truncate of a missing file",
    );
    expect_err(disk.delete("a"), not_found("a"), "delete of a missing file");
    expect_err(
        disk.rename("a", "b"),
        not_found("a"),
        "rename of a missing file",
    );
    check_eq(
        must(disk.list(), "list"),
        vec![],
        "failed operations create nothing",
    );
    must(disk.sync_dir(), "sync_dir of an empty disk");
}

/// `create` makes an empty file; `list` is sorted; a second `create` is `AlreadyExists`.
pub fn create_list_and_already_exists<D: Disk>(disk: &D) {
    for name in [
        "wal-0000000000000003.log",
        "MANIFEST",
        "sst-0000000000000001.sst",
    ] {
        must(disk.create(name), "create");
    }
    let expected = names(&[
        "MANIFEST",
        "sst-0000000000000001.sst",
        "wal-0000000000000003.log",
    ]);
    check_eq(
        must(disk.list(), "list"),
        expected.clone(),
        "list is every name, sorted",
    );
    check_eq(
        must(disk.len("MANIFEST"), "len"),
        0,
        "a created file is empty",
    );
    check_eq(
        must(disk.read_all("MANIFEST"), "read_all"),
        vec![],
        "a created file reads empty",
    );
    check_eq(
        must(disk.exists("MANIFEST"), "exists"),
        true,
        "exists after create",
    );
    must(disk.append("MANIFEST", b"keep"), "append");
    let exists = DiskError::AlreadyExists {
        name: "MANIFEST".to_string(),
    };
    expect_err(
        disk.create("MANIFEST"),
        exists,
        "create of an existing name",
    );
    check_eq(
        must(disk.read_all("MANIFEST"), "read_all"),
        b"keep".to_vec(),
        "failed create changes nothing",
    );
    check_eq(
        must(disk.list(), "list"),
        expected,
        "failed create adds no name",
    );
}

/// Appends go at the end, in order; reads see them before any sync.
pub fn append_and_read<D: Disk>(disk: &D) {
    must(disk.create("a"), "create");
    must(disk.append("a", b"hello"), "append");
    must(disk.append("a", b""), "empty append");
    must(disk.append("a", b" world"), "append");
    check_eq(
        must(disk.len("a"), "len"),
        11,
        "len counts unsynced appends",
    );
    check_eq(
        must(disk.read_all("a"), "read_all"),
        b"hello world".to_vec(),
        "reads see appends",
    );
    check_eq(
        must(disk.read_vec("a", 6, 5), "read_at"),
        b"world".to_vec(),
        "read_at an offset",
    );
    check_eq(
        must(disk.read_vec("a", 11, 0), "read_at"),
        vec![],
        "empty read at the end",
    );
    let mut buf = [0u8; 3];
    must(disk.read_at("a", 2, &mut buf), "read_at");
    check_eq(&buf, b"llo", "read_at fills the buffer");
}

/// A read that does not fit is `OutOfBounds` with the real file length.
pub fn reads_past_the_end_are_out_of_bounds<D: Disk>(disk: &D) {
    must(disk.create("a"), "create");
    must(disk.append("a", b"0123456789"), "append");
    let oob = |offset, len| DiskError::OutOfBounds {
        name: "a".to_string(),
        offset,
        len,
        file_len: 10,
    };
    expect_err(disk.read_vec("a", 8, 5), oob(8, 5), "read crossing the end");
    expect_err(disk.read_vec("a", 10, 1), oob(10, 1), "read at the end");
    expect_err(
        disk.read_vec("a", 100, 4),
        oob(100, 4),
        "read far past the end",
    );
    must(disk.create("empty"), "create");
    let oob = DiskError::OutOfBounds {
        name: "empty".to_string(),
        offset: 0,
        len: 1,
        file_len: 0,
    };
    expect_err(disk.read_vec("empty", 0, 1), oob, "read of an empty file");
    check_eq(
        must(disk.read_all("a"), "read_all"),
        b"0123456789".to_vec(),
        "failed reads change nothing",
    );
}

/// `sync` and `sync_dir` succeed and change nothing visible.
pub fn sync_keeps_contents<D: Disk>(disk: &D) {
    must(disk.create("a"), "create");
    must(disk.sync("a"), "sync of an empty file");
    must(disk.append("a", b"abc"), "append");
    must(disk.sync("a"), "sync");
    must(disk.sync_dir(), "sync_dir");
    must(disk.append("a", b"def"), "append after sync");
    must(disk.sync("a"), "second sync");
    must(disk.sync("a"), "sync with nothing new");
    check_eq(
        must(disk.read_all("a"), "read_all"),
        b"abcdef".to_vec(),
        "sync keeps contents",
    );
    check_eq(
        must(disk.list(), "list"),
        names(&["a"]),
        "sync_dir keeps names",
    );
}

/// `truncate` cuts the tail; later appends go at the new end.
pub fn truncate_cuts_the_tail<D: Disk>(disk: &D) {
    must(disk.create("wal"), "create");
    must(disk.append("wal", b"good record|torn"), "append");
    must(disk.sync("wal"), "sync");
    must(disk.truncate("wal", 12), "truncate");
    check_eq(must(disk.len("wal"), "len"), 12, "len after truncate");
    check_eq(
        must(disk.read_all("wal"), "read_all"),
        b"good record|".to_vec(),
        "truncate keeps the head",
    );
    must(disk.append("wal", b"next"), "append after truncate");
    check_eq(
        must(disk.read_all("wal"), "read_all"),
        b"good record|next".to_vec(),
        "append after truncate goes at the new end",
    );
    must(disk.truncate("wal", 16), "truncate to the current length");
    must(disk.truncate("wal", 0), "truncate to zero");
    check_eq(must(disk.len("wal"), "len"), 0, "truncate to zero empties");
    must(disk.sync("wal"), "sync after truncate");
}

/// `rename` moves contents to the new name and replaces an existing destination.
pub fn rename_moves_and_replaces<D: Disk>(disk: &D) {
    must(disk.create("MANIFEST.tmp"), "create");
    must(disk.append("MANIFEST.tmp", b"v1"), "append");
    must(
        disk.rename("MANIFEST.tmp", "MANIFEST"),
        "rename to a new name",
    );
    check_eq(
        must(disk.list(), "list"),
        names(&["MANIFEST"]),
        "rename moves the name",
    );
    expect_err(
        disk.len("MANIFEST.tmp"),
        not_found("MANIFEST.tmp"),
        "old name after rename",
    );
    check_eq(
        must(disk.read_all("MANIFEST"), "read_all"),
        b"v1".to_vec(),
        "rename keeps contents",
    );
    must(disk.append("MANIFEST", b"+"), "append through the new name");

    must(
        disk.create("MANIFEST.tmp"),
        "create again under the old name",
    );
    must(disk.append("MANIFEST.tmp", b"v2"), "append");
    must(
        disk.rename("MANIFEST.tmp", "MANIFEST"),
        "rename over an existing file",
    );
    check_eq(
        must(disk.list(), "list"),
        names(&["MANIFEST"]),
        "rename replaces the destination",
    );
    check_eq(
        must(disk.read_all("MANIFEST"), "read_all"),
        b"v2".to_vec(),
        "destination has the new contents",
    );
    must(
        disk.append("MANIFEST", b"!"),
        "append after replacing rename",
    );
    check_eq(
        must(disk.read_all("MANIFEST"), "read_all"),
        b"v2!".to_vec(),
        "appends go to the renamed file",
    );
    must(disk.sync("MANIFEST"), "sync after rename");
    must(disk.sync_dir(), "sync_dir after rename");
}

/// `delete` removes the name; creating it again gives an empty file.
pub fn delete_then_create_starts_empty<D: Disk>(disk: &D) {
    must(disk.create("a"), "create");
    must(disk.create("b"), "create");
    must(disk.append("a", b"old"), "append");
    must(disk.delete("a"), "delete");
    check_eq(
        must(disk.exists("a"), "exists"),
        false,
        "exists after delete",
    );
    check_eq(
        must(disk.list(), "list"),
        names(&["b"]),
        "delete removes only that name",
    );
    expect_err(disk.read_all("a"), not_found("a"), "read after delete");
    expect_err(disk.delete("a"), not_found("a"), "second delete");
    must(disk.create("a"), "create after delete");
    check_eq(must(disk.len("a"), "len"), 0, "a re-created file is empty");
    must(disk.append("a", b"new"), "append");
    check_eq(
        must(disk.read_all("a"), "read_all"),
        b"new".to_vec(),
        "a re-created file has only new data",
    );
    must(disk.sync_dir(), "sync_dir after delete");
}

/// Clones are handles to the same disk.
pub fn clones_share_one_disk<D: Disk>(disk: &D) {
    let other = disk.clone();
    must(other.create("a"), "create through a clone");
    must(other.append("a", b"shared"), "append through a clone");
    check_eq(
        must(disk.read_all("a"), "read_all"),
        b"shared".to_vec(),
        "the original sees a clone's writes",
    );
    must(disk.append("a", b"!"), "append through the original");
    check_eq(
        must(other.len("a"), "len"),
        7,
        "a clone sees the original's writes",
    );
    must(disk.delete("a"), "delete through the original");
    check_eq(
        must(other.exists("a"), "exists"),
        false,
        "a clone sees deletes",
    );
}

/// Many appends add up; slices anywhere read back exactly.
pub fn large_files_read_back<D: Disk>(disk: &D) {
    must(disk.create("big"), "create");
    let pattern: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for chunk in pattern.chunks(4093) {
        must(disk.append("big", chunk), "append chunk");
    }
    must(disk.sync("big"), "sync");
    check_eq(
        must(disk.len("big"), "len"),
        pattern.len() as u64,
        "len of many appends",
    );
    check_eq(
        must(disk.read_all("big"), "read_all") == pattern,
        true,
        "read_all returns every byte",
    );
    for (offset, len) in [
        (0, 1),
        (4090, 10),
        (100_000, 65_536),
        (199_999, 1),
        (123_457, 0),
    ] {
        let got = must(disk.read_vec("big", offset as u64, len), "read_at");
        check_eq(
            got == pattern[offset..offset + len],
            true,
            "a slice reads back exactly",
        );
    }
}

/// `preallocate` is only a hint: lengths, reads, appends, truncates and renames are exactly as if
/// it had never been called.
pub fn preallocate_changes_nothing_visible<D: Disk>(disk: &D) {
    must(disk.create("wal"), "create");
    must(disk.append("wal", b"head"), "append");
    must(disk.preallocate("wal", 1 << 20), "preallocate");
    check_eq(must(disk.len("wal"), "len"), 4, "len after preallocate");
    expect_err(
        disk.read_vec("wal", 2, 3),
        DiskError::OutOfBounds {
            name: "wal".into(),
            offset: 2,
            len: 3,
            file_len: 4,
        },
        "a read past the appended bytes",
    );
    must(disk.append("wal", b"|tail"), "append after preallocate");
    must(disk.sync("wal"), "sync");
    check_eq(
        must(disk.read_all("wal"), "read_all"),
        b"head|tail".to_vec(),
        "appends go at the end of what was appended",
    );
    must(
        disk.preallocate("wal", 2),
        "preallocate less than the length",
    );
    must(disk.preallocate("wal", 2 << 20), "preallocate again, more");
    check_eq(
        must(disk.len("wal"), "len"),
        9,
        "len after preallocating again",
    );

    must(disk.create("next"), "create");
    must(disk.rename("wal", "next"), "rename over a file");
    check_eq(must(disk.len("next"), "len"), 9, "len moves with the name");
    must(disk.append("next", b"!"), "append after rename");
    check_eq(
        must(disk.read_all("next"), "read_all"),
        b"head|tail!".to_vec(),
        "appends after rename",
    );
    must(disk.truncate("next", 4), "truncate");
    check_eq(must(disk.len("next"), "len"), 4, "len after truncate");
    must(disk.append("next", b"+"), "append after truncate");
    check_eq(
        must(disk.read_all("next"), "read_all"),
        b"head+".to_vec(),
        "appends go at the truncated end",
    );
    must(disk.sync("next"), "sync after truncate");
    must(disk.delete("next"), "delete");
    must(disk.create("next"), "create again");
    check_eq(
        must(disk.len("next"), "len"),
        0,
        "a re-created file is empty",
    );
    must(disk.sync_dir(), "sync_dir");
}
