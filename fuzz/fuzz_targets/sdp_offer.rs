//! SDP offers arrive from any WHEP client: scanning their video formats and choosing a payload
//! type must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let formats = webrtc::sdp::video_formats(text);
    let _ = webrtc::sdp::offered_codec_names(&formats);
    let _ = webrtc::sdp::first_video_mid(text);
});
