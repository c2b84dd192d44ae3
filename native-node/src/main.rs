//! The `ringstore` binary.
fn main() {}
