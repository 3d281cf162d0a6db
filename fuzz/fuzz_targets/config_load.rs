//! Configuration files and VANTAGE__* overrides come from administrators: every input gets a list
//! of problems or a configuration, never a panic.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::config_load`), which `cargo test` also runs on the
//! committed seeds in `fuzz/seeds/config_load/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::config_load(data));
