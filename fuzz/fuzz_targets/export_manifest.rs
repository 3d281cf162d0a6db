//! Export manifests are parsed and verified without panicking, and verification agrees with itself
//! (seed key vs the manifest's own key; the same manifest re-laid out).
//!
//! The body lives in `crates/fuzzing` (`fuzzing::export_manifest`), which `cargo test` also runs on
//! the committed seeds in `fuzz/seeds/export_manifest/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::export_manifest(data));
