//! Scanning arbitrary bytes as a recording segment never panics, and what it reports is
//! consistent: fragments lie in order inside the valid prefix, which lies inside the input.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::fmp4_scan`), which `cargo test` also runs on the
//! committed seeds in `fuzz/seeds/fmp4_scan/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::fmp4_scan(data));
