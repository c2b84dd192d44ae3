//! What more than one of core's test binaries uses.

/// Compares `table` with the golden file `tests/event_log_hashes/FILE`, or writes it there
/// under `UPDATE_GOLDENFILES`; on a difference, fails listing the lines that changed (`what`
/// names what changed, for the message).
pub fn check_hash_table(file: &str, table: &str, what: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/event_log_hashes")
        .join(file);
    if std::env::var_os("UPDATE_GOLDENFILES").is_some() {
        std::fs::write(&path, table).expect("write hashes");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    let changed: Vec<String> = table
        .lines()
        .filter(|line| !expected.lines().any(|e| e == *line))
        .map(|line| format!("  now: {line}"))
        .collect();
    assert!(
        expected == table,
        "{what} changed ({}):\n{}\n(UPDATE_GOLDENFILES=1 regenerates, only after an intended change in behaviour)",
        path.display(),
        changed.join("\n")
    );
}
