//! SPS parsing and `VideoParams` construction never panic on arbitrary bytes.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::sps_parse`), which `cargo test` also runs on the
//! committed seeds in `fuzz/seeds/sps_parse/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::sps_parse(data));
