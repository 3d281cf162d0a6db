//! Reading arbitrary bytes as a `moof` never panics, its sample tables are consistent, and
//! remuxing it keeps the samples where they were relative to the box's end.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::mp4_read_fragment`), which `cargo test` also
//! runs on the committed seeds in `fuzz/seeds/mp4_read_fragment/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::mp4_read_fragment(data));
