//! Splitting arbitrary bytes into access units, then packetizing them, never panics and keeps
//! the output well-formed.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::annexb_split`), which `cargo test` also runs on the
//! committed seeds in `fuzz/seeds/annexb_split/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::annexb_split(data));
