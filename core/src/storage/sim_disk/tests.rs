//! Tests of the simulated disk's crash model, fault injection and determinism.

use super::*;

const SEEDS: u64 = 200;

/// A disk holding `name`, created, dir-synced, with `synced` synced and `unsynced` not.
fn disk_with(seed: u64, name: &str, synced: &[u8], unsynced: &[u8]) -> SimDisk {
    let disk = SimDisk::new(seed);
    disk.create(name).unwrap();
    disk.sync_dir().unwrap();
    disk.append(name, synced).unwrap();
    disk.sync(name).unwrap();
    disk.append(name, unsynced).unwrap();
    disk
}

#[test]
fn synced_data_survives_crash() {
    for seed in 0..SEEDS {
        let disk = disk_with(seed, "wal", b"durable", b"");
        disk.crash();
        assert_eq!(disk.read_all("wal").unwrap(), b"durable", "seed {seed}");
    }
}

#[test]
fn unsynced_data_may_be_lost_or_kept() {
    let (mut lost, mut kept) = (false, false);
    for seed in 0..SEEDS {
        let disk = disk_with(seed, "wal", b"durable", b"-tail");
        disk.crash();
        let after = disk.read_all("wal").unwrap();
        assert!(
            after.starts_with(b"durable"),
            "seed {seed}: synced prefix lost: {after:?}"
        );
        lost |= after == b"durable";
        kept |= after == b"durable-tail";
    }
    assert!(lost && kept, "over {SEEDS} seeds: lost={lost} kept={kept}");
}

#[test]
fn crash_can_tear_the_last_unsynced_write() {
    let torn = (0..SEEDS).any(|seed| {
        let disk = disk_with(seed, "wal", b"head", b"0123456789");
        disk.crash();
        let len = disk.len("wal").unwrap();
        len > 4 && len < 14
    });
    assert!(torn, "no seed in 0..{SEEDS} tore the unsynced append");
}

#[test]
fn no_torn_writes_when_disabled() {
    for seed in 0..SEEDS {
        let disk = disk_with(seed, "wal", b"head", b"0123456789");
        disk.set_faults(FaultConfig {
            torn_writes: false,
            ..FaultConfig::default()
        });
        disk.crash();
        let len = disk.len("wal").unwrap();
        assert!(len == 4 || len == 14, "seed {seed}: torn to {len} bytes");
    }
}

#[test]
fn created_but_not_dir_synced_file_may_vanish() {
    let (mut vanished, mut survived) = (false, false);
    for seed in 0..SEEDS {
        let disk = SimDisk::new(seed);
        disk.create("sst-1").unwrap();
        disk.append("sst-1", b"table").unwrap();
        disk.sync("sst-1").unwrap();
        disk.crash();
        if disk.exists("sst-1").unwrap() {
            assert_eq!(disk.read_all("sst-1").unwrap(), b"table", "seed {seed}");
            survived = true;
        } else {
            assert_eq!(disk.list().unwrap(), Vec::<String>::new());
            vanished = true;
        }
    }
    assert!(
        vanished && survived,
        "vanished={vanished} survived={survived}"
    );
}

#[test]
fn rename_is_atomic_across_crash() {
    let (mut old_seen, mut new_seen) = (false, false);
    for seed in 0..SEEDS {
        let disk = disk_with(seed, "MANIFEST", b"old manifest", b"");
        disk.create("MANIFEST.tmp").unwrap();
        disk.append("MANIFEST.tmp", b"new manifest!").unwrap();
        disk.sync("MANIFEST.tmp").unwrap();
        disk.rename("MANIFEST.tmp", "MANIFEST").unwrap();
        assert_eq!(disk.read_all("MANIFEST").unwrap(), b"new manifest!");
        disk.crash();
        let after = disk.read_all("MANIFEST").unwrap();
        match after.as_slice() {
            b"old manifest" => old_seen = true,
            b"new manifest!" => new_seen = true,
            other => panic!("seed {seed}: MANIFEST is a mix: {other:?}"),
        }
    }
    assert!(old_seen && new_seen, "old={old_seen} new={new_seen}");
}

#[test]
fn delete_then_dir_sync_is_durable() {
    let disk = disk_with(1, "a", b"x", b"");
    disk.delete("a").unwrap();
    disk.sync_dir().unwrap();
    disk.crash();
    assert!(!disk.exists("a").unwrap());
    assert!(disk.durable_image().is_empty());
}

fn busy_workload(seed: u64) -> SimDisk {
    let faults = FaultConfig {
        append_error_ppm: 100_000,
        sync_error_ppm: 100_000,
        read_error_ppm: 100_000,
        read_bit_flip_ppm: 100_000,
        torn_writes: true,
        capacity_bytes: 0,
    };
    let disk = SimDisk::with_faults(seed, faults);
    for i in 0..20u8 {
        let name = format!("f{}", i % 3);
        let _ = disk.create(&name);
        let _ = disk.append(&name, &[i; 17]);
        if i % 4 == 0 {
            let _ = disk.sync(&name);
        }
        if i % 7 == 0 {
            let _ = disk.sync_dir();
        }
        let _ = disk.read_vec(&name, 0, 1);
        if i == 10 {
            disk.crash();
        }
    }
    disk.crash();
    disk
}

#[test]
fn same_seed_and_calls_give_same_results() {
    let (a, b) = (busy_workload(42), busy_workload(42));
    assert_eq!(a.durable_image(), b.durable_image());
    assert_eq!(a.stats(), b.stats());
    assert!(a.stats().faults_injected > 0);
    let differs = (0..20).any(|seed| busy_workload(seed).durable_image() != a.durable_image());
    assert!(differs, "the seed should matter");
}

fn always(config: impl FnOnce(&mut FaultConfig)) -> FaultConfig {
    let mut faults = FaultConfig::default();
    config(&mut faults);
    faults
}

#[test]
fn injected_faults_name_their_operation() {
    let disk = disk_with(3, "f", b"abc", b"");
    disk.set_faults(always(|f| f.append_error_ppm = 1_000_000));
    let err = disk.append("f", b"defgh").unwrap_err();
    assert!(matches!(err, DiskError::Io { op: DiskOp::Append, ref name, .. } if name == "f"));
    let len = disk.len("f").unwrap();
    assert!(
        (3..=8).contains(&len),
        "a failed append leaves a prefix: {len}"
    );

    disk.set_faults(always(|f| f.sync_error_ppm = 1_000_000));
    let err = disk.sync("f").unwrap_err();
    assert!(
        matches!(
            err,
            DiskError::Io {
                op: DiskOp::Sync,
                ..
            }
        ),
        "{err:?}"
    );
    let err = disk.sync_dir().unwrap_err();
    assert!(
        matches!(
            err,
            DiskError::Io {
                op: DiskOp::SyncDir,
                ..
            }
        ),
        "{err:?}"
    );

    disk.set_faults(always(|f| f.read_error_ppm = 1_000_000));
    let err = disk.read_vec("f", 0, 3).unwrap_err();
    assert!(
        matches!(
            err,
            DiskError::Io {
                op: DiskOp::Read,
                ..
            }
        ),
        "{err:?}"
    );

    // Missing files fail as such, before any fault is drawn.
    assert_eq!(disk.read_vec("nope", 0, 1), Err(not_found("nope")));
    assert_eq!(disk.stats().faults_injected, 4);
}

#[test]
fn failed_sync_makes_nothing_durable() {
    for seed in 0..20 {
        let disk = disk_with(seed, "wal", b"head", b"tail");
        disk.set_faults(always(|f| {
            f.sync_error_ppm = 1_000_000;
            f.torn_writes = false;
        }));
        assert!(disk.sync("wal").is_err());
        assert_eq!(disk.durable_image()["wal"], b"head", "seed {seed}");
    }
}

#[test]
fn read_bit_flip_changes_exactly_one_bit() {
    let data: Vec<u8> = (0..=255).collect();
    let disk = disk_with(9, "sst", &data, b"");
    disk.set_faults(always(|f| f.read_bit_flip_ppm = 1_000_000));
    for _ in 0..50 {
        let read = disk.read_all("sst").unwrap();
        let flipped: u32 = read
            .iter()
            .zip(&data)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(flipped, 1);
    }
    disk.set_faults(FaultConfig::default());
    assert_eq!(
        disk.read_all("sst").unwrap(),
        data,
        "transient: stored bytes are intact"
    );
}

#[test]
fn flip_bit_persists_through_crash() {
    for seed in 0..20 {
        let disk = disk_with(seed, "f", &[0; 4], &[0; 4]);
        disk.flip_bit("f", 1, 2).unwrap();
        disk.flip_bit("f", 6, 7).unwrap();
        let mut expected = vec![0u8; 8];
        expected[1] = 0b100;
        expected[6] = 0b1000_0000;
        assert_eq!(disk.read_all("f").unwrap(), expected);
        disk.crash();
        let after = disk.read_all("f").unwrap();
        assert_eq!(after, expected[..after.len()], "seed {seed}");
    }
    let disk = disk_with(0, "f", b"ab", b"");
    let err = disk.flip_bit("f", 2, 0).unwrap_err();
    assert!(
        matches!(
            err,
            DiskError::OutOfBounds {
                offset: 2,
                file_len: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn read_out_of_bounds_is_reported() {
    let disk = disk_with(0, "f", b"hello", b"");
    assert_eq!(
        disk.read_vec("f", 3, 3),
        Err(DiskError::OutOfBounds {
            name: "f".into(),
            offset: 3,
            len: 3,
            file_len: 5
        })
    );
    assert!(matches!(
        disk.read_vec("f", u64::MAX, 2),
        Err(DiskError::OutOfBounds { .. })
    ));
    assert_eq!(disk.read_vec("f", 5, 0).unwrap(), b"");
}

#[test]
fn create_existing_name_fails() {
    let disk = disk_with(0, "f", b"x", b"");
    assert_eq!(
        disk.create("f"),
        Err(DiskError::AlreadyExists { name: "f".into() })
    );
    assert_eq!(disk.read_all("f").unwrap(), b"x", "nothing changed");
}

#[test]
fn image_round_trips() {
    let disk = disk_with(5, "a", b"synced", b"lost-if-not-synced");
    disk.insert_durable_file("b", b"fixture".to_vec());
    let image = disk.durable_image();
    assert_eq!(image.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(image["a"], b"synced");
    let copy = SimDisk::from_image(6, image.clone());
    assert_eq!(copy.list().unwrap(), ["a", "b"]);
    assert_eq!(copy.read_all("b").unwrap(), b"fixture");
    copy.crash();
    assert_eq!(copy.durable_image(), image);
}

#[test]
fn passes_disk_conformance() {
    crate::storage::testkit::disk_conformance(|| SimDisk::new(11));
}

#[test]
fn is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<SimDisk>();
}

#[test]
fn storage_engine_behaviour_suite_passes_on_the_simulated_disk() {
    crate::storage::testkit::lsm_behaviour(|| SimDisk::new(12));
}
