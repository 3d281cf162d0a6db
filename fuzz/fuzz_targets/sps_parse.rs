//! SPS parsing and `VideoParams` construction never panic on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media::{Codec, ParameterSets, VideoParams};

fuzz_target!(|data: &[u8]| {
    let _ = media::sps::parse_h264_sps(data);
    let _ = media::sps::parse_h265_sps(data);
    if let Some(s) = media::sps::parse_h265_sps(data) {
        let _ = s.rfc6381();
    }
    let mut r = media::bits::BitReader::new(data);
    while r.read_ue().is_some() {}
    for codec in [Codec::H264, Codec::H265] {
        let ps = ParameterSets {
            vps: Some(data.to_vec().into()),
            sps: Some(data.to_vec().into()),
            pps: Some(data.to_vec().into()),
        };
        if let Ok(p) = VideoParams::from_parameter_sets(codec, &ps, 0) {
            let _ = p.sdp_fmtp();
        }
    }
});
