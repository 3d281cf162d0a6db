//! A playback `Range` header and `duration` never panic the parsers, and a granted range lies
//! inside the body.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::http_range`), which `cargo test` also runs on the
//! committed seeds in `fuzz/seeds/http_range/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::http_range(data));
