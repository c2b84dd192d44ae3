//! `FileDisk` against the shared `Disk` conformance suite, and its directory lock.

use ringstore_core::storage::testkit::disk_conformance;
use ringstore_node::disk::FileDisk;

#[test]
fn file_disk_passes_disk_conformance() {
    let dirs = std::cell::RefCell::new(Vec::new());
    disk_conformance(|| {
        let dir = tempfile::TempDir::new().expect("temporary directory");
        let disk = FileDisk::open(dir.path()).expect("open a fresh FileDisk");
        dirs.borrow_mut().push(dir);
        disk
    });
}

#[test]
fn second_open_of_a_locked_dir_fails_while_the_first_lives() {
    let dir = tempfile::TempDir::new().unwrap();
    let first = FileDisk::open(dir.path()).unwrap();
    let err = FileDisk::open(dir.path()).expect_err("the directory is locked");
    assert!(err.to_string().contains("in use"), "unclear error: {err}");
    drop(first);
    FileDisk::open(dir.path()).expect("the lock is released when the first disk is dropped");
}
