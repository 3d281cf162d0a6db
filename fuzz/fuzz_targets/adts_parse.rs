//! The ADTS parser never panics, and what it accepts is consistent: whole frames covering the
//! input, each a non-empty raw AAC frame that fits the 13-bit AU-header size, and a 2-byte
//! AudioSpecificConfig that agrees with the reported parameters.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::adts_parse`), which `cargo test` also runs on the
//! committed seeds in `fuzz/seeds/adts_parse/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::adts_parse(data));
