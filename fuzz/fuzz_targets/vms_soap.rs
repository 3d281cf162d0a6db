//! XProtect SOAP answers (ServerCommandService Login, RecorderCommandService SequencesGet) and
//! timestamps: must never panic.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::vms_soap`), which `cargo test` also runs on the
//! committed seeds in `fuzz/seeds/vms_soap/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::vms_soap(data));
