//! Splitting arbitrary bytes into access units, then packetizing them, never panics and keeps
//! the output well-formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media::Codec;
use media::rtp::packetize;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let codec = if sel & 1 == 0 { Codec::H264 } else { Codec::H265 };
    let mtu = usize::from(sel >> 1) * 16;
    for au in media::split_access_units(codec, rest) {
        assert!(au.data.starts_with(&[0, 0, 0, 1]));
        let _ = media::ParameterSets::from_access_unit(codec, &au.data);
        for p in packetize(codec, &au.data, mtu) {
            assert!(p.data.len() <= mtu.max(media::rtp::MIN_PAYLOAD_SIZE));
        }
    }
});
