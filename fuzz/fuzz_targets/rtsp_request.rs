//! The RTSP request parser never panics, never claims more bytes than it was given, and parses a
//! stream of pipelined messages to the end or to an error.
//!
//! The body lives in `crates/fuzzing` (`fuzzing::rtsp_request`), which `cargo test` also runs on the
//! committed seeds in `fuzz/seeds/rtsp_request/` and on mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzing::rtsp_request(data));
