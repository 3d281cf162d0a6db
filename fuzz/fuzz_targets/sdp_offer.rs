//! SDP offers arrive from any WHEP client: scanning their video formats and choosing a payload
//! type must never panic.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::sdp_offer`), which `cargo test` also runs on the
//! committed seeds in `fuzz/seeds/sdp_offer/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::sdp_offer(data));
