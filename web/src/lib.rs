//! `ringstore-web`: the browser host for `ringstore-core`.
#![forbid(unsafe_code)]
