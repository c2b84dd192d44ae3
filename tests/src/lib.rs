//! End-to-end tests across ringstore crates live in `tests/tests/`.
