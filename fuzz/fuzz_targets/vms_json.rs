//! XProtect REST/IDP JSON parsers: must never panic, whatever the gateway sends.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::vms_json`), which `cargo test` also runs on the
//! committed seeds in `fuzz/seeds/vms_json/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::vms_json(data));
