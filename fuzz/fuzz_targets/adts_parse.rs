//! The ADTS parser never panics, and what it accepts is consistent: whole frames covering the
//! input, each a non-empty raw AAC frame that fits the 13-bit AU-header size, and a 2-byte
//! AudioSpecificConfig that agrees with the reported parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtsp_server::AudioClip;
use rtsp_server::audio::parse_adts;

fuzz_target!(|data: &[u8]| {
    let Ok((params, frames)) = parse_adts(data) else {
        assert!(AudioClip::from_adts(data).is_err());
        return;
    };
    assert!(!frames.is_empty());
    let raw: usize = frames.iter().map(|f| f.len()).sum();
    let headers = data.len() - raw;
    // Each frame has a 7-byte header, or 9 with its CRC.
    assert!(headers >= 7 * frames.len() && headers <= 9 * frames.len());
    assert!(frames.iter().all(|f| !f.is_empty() && f.len() < 8192));
    assert_eq!(params.config.len(), 2);
    let object_type = params.config[0] >> 3;
    assert_eq!(params.rfc6381, format!("mp4a.40.{object_type}"));
    assert!(params.sample_rate >= 7350 && params.sample_rate <= 96_000);
    assert!(params.channels >= 1 && params.channels <= 8);
    let clip = AudioClip::from_adts(data).expect("parse_adts accepted it");
    assert_eq!(clip.frames().len(), frames.len());
    assert_eq!(clip.params(), &params);
});
