//! Reading arbitrary bytes as a segment's init segment never panics, and an MSE init segment built
//! from what it accepts reads back as the same tracks.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::mp4_read_init`), which `cargo test` also runs on
//! the committed seeds in `fuzz/seeds/mp4_read_init/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::mp4_read_init(data));
