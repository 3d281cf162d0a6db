//! The RTSP request parser never panics, never claims more bytes than it was given, and parses a
//! stream of pipelined messages to the end or to an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtsp_server::request::{Message, parse_message, uri_path};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((msg, used))) = parse_message(rest) {
        assert!(used > 0 && used <= rest.len());
        if let Message::Request(r) = msg {
            let _ = r.path();
            let _ = r.header("CSeq");
        }
        rest = &rest[used..];
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = uri_path(s);
    }
});
